//! `format_type(oid, typmod)` as PostgreSQL answers it where
//! `datafusion-pg-catalog`'s does not: `-` for oid 0 (it said `oid(0)`),
//! the names of the types it lacks (`oid[]`, `interval[]`, `aclitem[]`,
//! `regclass`, ...), and `???` for an oid that names no type. Every other
//! answer is pg-catalog's, whose function this one wraps.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, StringArray};
use datafusion::arrow::datatypes::{DataType, Int32Type};
use datafusion::common::Result;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
};

/// Types pg-catalog's `format_type` names `oid(n)`, with PostgreSQL's names.
const NAMES: &[(i32, &str)] = &[
    (194, "pg_node_tree"),
    (650, "cidr"),
    (705, "unknown"),
    (829, "macaddr"),
    (869, "inet"),
    (1002, "\"char\"[]"),
    (1003, "name[]"),
    (1008, "regproc[]"),
    (1028, "oid[]"),
    (1033, "aclitem"),
    (1034, "aclitem[]"),
    (1187, "interval[]"),
    (2205, "regclass"),
    (2206, "regtype"),
    (2210, "regclass[]"),
    (2211, "regtype[]"),
    (2249, "record"),
    (2276, "\"any\""),
    (2277, "anyarray"),
    (2283, "anyelement"),
    (3614, "tsvector"),
    (3615, "tsquery"),
    (3734, "regconfig"),
    (4089, "regnamespace"),
    (4096, "regrole"),
];

/// `format_type` over pg-catalog's, `inner`.
pub fn format_type_over(inner: Arc<ScalarUDF>) -> ScalarUDF {
    ScalarUDF::from(FormatType {
        signature: inner.signature().clone(),
        inner,
    })
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct FormatType {
    inner: Arc<ScalarUDF>,
    signature: Signature,
}

impl ScalarUDFImpl for FormatType {
    fn name(&self) -> &str {
        "format_type"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let oids = args.args[0].to_array(rows)?;
        let oids = datafusion::arrow::compute::cast(&oids, &DataType::Int32)?;
        let oids = oids.as_primitive::<Int32Type>();
        let names = self.inner.invoke_with_args(args)?.to_array(rows)?;
        let names = datafusion::arrow::compute::cast(&names, &DataType::Utf8)?;
        let answered: StringArray = names
            .as_string::<i32>()
            .iter()
            .enumerate()
            .map(|(row, name)| {
                let oid = (!oids.is_null(row)).then(|| oids.value(row))?;
                let name = name?;
                Some(match oid {
                    0 => "-".to_string(),
                    _ if name.starts_with("oid(") => NAMES
                        .iter()
                        .find_map(|(o, n)| (*o == oid).then(|| n.to_string()))
                        .unwrap_or_else(|| "???".to_string()),
                    _ => name.to_string(),
                })
            })
            .collect();
        Ok(ColumnarValue::Array(Arc::new(answered) as ArrayRef))
    }
}
