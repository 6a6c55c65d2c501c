//! `pg_get_function_result(oid)`, `pg_get_function_arguments(oid)` and
//! `pg_get_function_identity_arguments(oid)`, which psql's `\df` shows, as
//! scalar subqueries over `pg_catalog.pg_proc`: the function's return type
//! by `format_type`, its argument types by [`type_list`]. A call with an
//! oid that no function has is NULL, as in PostgreSQL. (The subquery
//! aggregates its one row with `max`: DataFusion plans a correlated scalar
//! subquery only when it is aggregated.) [`crate::catalog_lookups`] puts
//! the subqueries in place of the calls.

use std::sync::Arc;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::exec_err;
use datafusion::error::Result;
use datafusion::logical_expr::{ColumnarValue, ScalarUDF, Volatility, create_udf};
use datafusion::sql::sqlparser::ast::Expr;

use crate::pg_functions::map_text;

/// The UDF that names a `proargtypes` list.
const TYPE_LIST: &str = "weir_type_list";

/// The scalar subquery that answers `function(oid)`, for the three
/// functions this module covers.
pub fn signature_sql(function: &str, oid: &Expr) -> Option<String> {
    let column = match function {
        "pg_get_function_result" => "format_type(prorettype, NULL)",
        "pg_get_function_arguments" | "pg_get_function_identity_arguments" => {
            "weir_type_list(proargtypes)"
        }
        _ => return None,
    };
    // The derived table shows only its two columns, so no name in `oid`
    // can bind to pg_proc's inside rather than to the query's.
    Some(format!(
        "(SELECT max(weir_signature.text) AS {function} FROM \
         (SELECT oid AS function, {column} AS text FROM pg_catalog.pg_proc) AS weir_signature \
         WHERE weir_signature.function = ({oid}))"
    ))
}

/// `weir_type_list(proargtypes)`: `"23 25"` as `integer, text`.
pub fn type_list_function() -> ScalarUDF {
    create_udf(
        TYPE_LIST,
        vec![DataType::Utf8],
        DataType::Utf8,
        Volatility::Immutable,
        Arc::new(type_list),
    )
}

fn type_list(args: &[ColumnarValue]) -> Result<ColumnarValue> {
    let [types] = args else {
        return exec_err!("{TYPE_LIST} takes one argument");
    };
    map_text(types, |oids| Some(type_names(oids)))
}

/// Each oid of a space-separated list by its type's name, comma-separated.
fn type_names(oids: &str) -> String {
    oids.split_whitespace()
        .map(|oid| match oid.parse().ok().and_then(builtin_type_name) {
            Some(name) => name.to_string(),
            None => oid.to_string(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The name `format_type` gives the builtin types functions take.
fn builtin_type_name(oid: u32) -> Option<&'static str> {
    Some(match oid {
        16 => "boolean",
        17 => "bytea",
        18 => "\"char\"",
        19 => "name",
        20 => "bigint",
        21 => "smallint",
        22 => "int2vector",
        23 => "integer",
        24 => "regproc",
        25 => "text",
        26 => "oid",
        30 => "oidvector",
        114 => "json",
        700 => "real",
        701 => "double precision",
        869 => "inet",
        1042 => "character",
        1043 => "character varying",
        1082 => "date",
        1083 => "time without time zone",
        1114 => "timestamp without time zone",
        1184 => "timestamp with time zone",
        1186 => "interval",
        1266 => "time with time zone",
        1700 => "numeric",
        2205 => "regclass",
        2206 => "regtype",
        2249 => "record",
        2275 => "cstring",
        2276 => "\"any\"",
        2277 => "anyarray",
        2283 => "anyelement",
        2950 => "uuid",
        3802 => "jsonb",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argument_types_are_named_in_order() {
        assert_eq!(type_names("23 25 1700"), "integer, text, numeric");
        assert_eq!(type_names(""), "");
        assert_eq!(type_names("99999"), "99999");
    }
}
