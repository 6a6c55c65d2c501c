//! Catalog functions psql's `\d+`, `\dt+` and `pg_dump` call for the text
//! they show beside a relation:
//!
//! - `col_description`, `obj_description`, `shobj_description`: NULL, the
//!   answer for an object without a comment; weir has no `COMMENT ON`.
//! - `pg_get_ruledef`: NULL; weir has no rules (`pg_rewrite` lists only
//!   PostgreSQL's own).
//! - `acldefault(kind, owner)`: NULL, as an object's `relacl`, `nspacl`
//!   and the like are: weir keeps privileges in its own catalog
//!   (`GRANT`), not as PostgreSQL access lists.
//! - `pg_size_pretty(bytes)`: PostgreSQL's rounding to `bytes`, `kB`, `MB`,
//!   `GB`, `TB` and `PB`.
//! - `pg_table_size`, `pg_indexes_size`: 0, as `pg_relation_size` answers
//!   (weir's relations share one store; see `docs/sql.md`).
//! - `weir_view_definition(name)`: the query of view `name` as
//!   `pg_get_viewdef` shows it, ` SELECT ...;`. `pg_get_viewdef(oid)` is
//!   rewritten to it over `pg_class` ([`crate::catalog_lookups`]), since
//!   a function sees no oids.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, AsArray, Int64Array, StringArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Int64Type};
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::sql::sqlparser::ast::Statement;
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::Parser;

use crate::catalog::Catalog;
use crate::udf_shape::in_shape_of_args;

/// Every function of this module.
pub fn catalog_text_functions(catalog: Arc<Catalog>) -> Vec<ScalarUDF> {
    let mut functions: Vec<ScalarUDF> = [
        "col_description",
        "obj_description",
        "shobj_description",
        "pg_get_ruledef",
    ]
    .into_iter()
    .map(|name| {
        ScalarUDF::from(CatalogText {
            name,
            answer: Answer::Null,
            signature: Signature::variadic_any(Volatility::Stable),
        })
    })
    .collect();
    functions.push(ScalarUDF::from(CatalogText {
        name: "acldefault",
        answer: Answer::NoAccessList,
        signature: Signature::any(2, Volatility::Stable),
    }));
    for name in ["pg_table_size", "pg_indexes_size"] {
        functions.push(ScalarUDF::from(CatalogText {
            name,
            answer: Answer::NoBytes,
            signature: Signature::any(1, Volatility::Stable),
        }));
    }
    functions.push(ScalarUDF::from(CatalogText {
        name: "pg_size_pretty",
        answer: Answer::PrettySize,
        signature: Signature::any(1, Volatility::Immutable),
    }));
    functions.push(ScalarUDF::from(CatalogText {
        name: "weir_view_definition",
        answer: Answer::ViewDefinition(catalog),
        signature: Signature::any(1, Volatility::Stable),
    }));
    functions
}

#[derive(Debug)]
enum Answer {
    Null,
    NoAccessList,
    NoBytes,
    PrettySize,
    ViewDefinition(Arc<Catalog>),
}

#[derive(Debug)]
struct CatalogText {
    name: &'static str,
    answer: Answer,
    signature: Signature,
}

impl PartialEq for CatalogText {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Eq for CatalogText {}

impl std::hash::Hash for CatalogText {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.name.hash(state);
    }
}

impl ScalarUDFImpl for CatalogText {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(match self.answer {
            Answer::NoBytes => DataType::Int64,
            Answer::NoAccessList => access_list(),
            _ => DataType::Utf8,
        })
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        match &self.answer {
            Answer::Null => Ok(ColumnarValue::Scalar(ScalarValue::Utf8(None))),
            Answer::NoAccessList => Ok(ColumnarValue::Scalar(ScalarValue::try_from(
                &access_list(),
            )?)),
            Answer::NoBytes => in_shape_of_args(&args.args, |arrays| {
                let zeros: Int64Array = (0..arrays[0].len())
                    .map(|i| (!arrays[0].is_null(i)).then_some(0))
                    .collect();
                Ok(Arc::new(zeros) as ArrayRef)
            }),
            Answer::PrettySize => in_shape_of_args(&args.args, |arrays| {
                let bytes = cast(&arrays[0], &DataType::Int64)?;
                let texts: StringArray = bytes
                    .as_primitive::<Int64Type>()
                    .iter()
                    .map(|b| b.map(pretty_size))
                    .collect();
                Ok(Arc::new(texts) as ArrayRef)
            }),
            Answer::ViewDefinition(catalog) => in_shape_of_args(&args.args, |arrays| {
                let names = cast(&arrays[0], &DataType::Utf8)?;
                let texts: StringArray = names
                    .as_string::<i32>()
                    .iter()
                    .map(|name| view_definition(catalog, name?))
                    .collect();
                Ok(Arc::new(texts) as ArrayRef)
            }),
        }
    }
}

/// `aclitem[]`, as weir types it: a list of text.
fn access_list() -> DataType {
    DataType::List(Arc::new(Field::new_list_field(DataType::Utf8, true)))
}

/// The query of view `name` (plain or materialized), as
/// `pg_get_viewdef` writes it.
fn view_definition(catalog: &Catalog, name: &str) -> Option<String> {
    if catalog.view(name).is_none() && catalog.plain_view(name).is_none() {
        return None;
    }
    let sql = catalog.definition(name)?;
    let query = Parser::parse_sql(&PostgreSqlDialect {}, &sql)
        .ok()
        .and_then(|statements| match statements.into_iter().next() {
            Some(Statement::CreateView(create)) => Some(create.query.to_string()),
            _ => None,
        })
        .unwrap_or(sql);
    Some(format!(" {query};"))
}

/// `bytes` as PostgreSQL's `pg_size_pretty` writes them: below 10 kB in
/// bytes, then in the largest unit that keeps the number below 20480 (half
/// units rounded away from zero).
fn pretty_size(bytes: i64) -> String {
    const UNITS: [&str; 5] = ["kB", "MB", "GB", "TB", "PB"];
    if bytes.abs() < 10 * 1024 {
        return format!("{bytes} bytes");
    }
    let half_rounded = |x: i64| (x + x.signum()) / 2;
    // In half units: one more bit than the unit, for the rounding.
    let mut halves = bytes / (1 << 9);
    for (i, unit) in UNITS.iter().enumerate() {
        if halves.abs() < 2 * 10 * 1024 - 1 || i == UNITS.len() - 1 {
            return format!("{} {unit}", half_rounded(halves));
        }
        halves /= 1 << 10;
    }
    unreachable!("the last unit answers")
}

#[cfg(test)]
mod tests {
    use super::pretty_size;

    #[test]
    fn sizes_round_as_postgres_rounds_them() {
        assert_eq!(pretty_size(0), "0 bytes");
        assert_eq!(pretty_size(10_239), "10239 bytes");
        assert_eq!(pretty_size(10_240), "10 kB");
        assert_eq!(pretty_size(8_192 * 1024), "8192 kB");
        assert_eq!(pretty_size(20 * 1024 * 1024), "20 MB");
        assert_eq!(pretty_size(1_536 * 1024 * 1024 * 1024 * 1024), "1536 TB");
        assert_eq!(pretty_size(-10_240), "-10 kB");
    }
}
