//! PostgreSQL's catalog and information functions that drivers and tools
//! call first, where `datafusion-pg-catalog` has none or answers for a
//! server that is not weir:
//!
//! - `version()`: `PostgreSQL 15.0 (weir x.y.z) ...`, the form drivers parse
//!   for the server version (SQLAlchemy, pgjdbc).
//! - `session_user`: the bootstrap superuser, for contexts that are no
//!   session's (each session answers its own role, see the server).
//! - `pg_function_is_visible(oid)`: true; every function is in the path.
//! - `to_regtype(text)`: the type's canonical name, NULL for an unknown one.
//! - `pg_get_serial_sequence(table, column)`: NULL; weir has no sequences.
//! - `pg_get_triggerdef(oid, pretty)`: NULL; weir has no triggers.
//! - `pg_collation_is_visible(oid)`: true, as for functions.
//! - `pg_is_in_recovery()`: false; weir has no standbys.
//! - `quote_literal(text)`: the text as a string literal, quotes doubled,
//!   in `E'...'` form with backslashes doubled where it has any.
//! - `json_build_object(key, value, ...)`: see [`crate::json_build_object`].
//!
//! Functions that read the session (`current_setting`, `set_config`,
//! `pg_backend_pid`) belong to the server, which owns sessions.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, BooleanArray, StringArray};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{ScalarValue, exec_err};
use datafusion::error::Result;
use datafusion::logical_expr::{ColumnarValue, ScalarUDF, Volatility, create_udf};

use crate::roles::BOOTSTRAP_ROLE;

/// The server version weir answers as (`server_version`, `version()`): 15,
/// the newest release whose `pg_dump` and `psql` Debian ships, because a
/// `pg_dump` refuses to dump a server newer than itself.
pub const SERVER_VERSION: &str = "15.0";

/// [`SERVER_VERSION`] as a number (`server_version_num`).
pub const SERVER_VERSION_NUM: &str = "150000";

/// Every function of this module.
pub fn pg_functions() -> Vec<ScalarUDF> {
    vec![
        constant_text("version", &version_text()),
        constant_text("session_user", BOOTSTRAP_ROLE),
        crate::json_build_object::json_build_object(),
        create_udf(
            "pg_is_in_recovery",
            vec![],
            DataType::Boolean,
            Volatility::Stable,
            Arc::new(|_| Ok(ColumnarValue::Scalar(ScalarValue::Boolean(Some(false))))),
        ),
        create_udf(
            "pg_function_is_visible",
            vec![DataType::Int64],
            DataType::Boolean,
            Volatility::Stable,
            Arc::new(function_is_visible),
        ),
        create_udf(
            "pg_collation_is_visible",
            vec![DataType::Int64],
            DataType::Boolean,
            Volatility::Stable,
            Arc::new(function_is_visible),
        ),
        create_udf(
            "pg_get_serial_sequence",
            vec![DataType::Utf8, DataType::Utf8],
            DataType::Utf8,
            Volatility::Stable,
            Arc::new(|_| Ok(ColumnarValue::Scalar(ScalarValue::Utf8(None)))),
        ),
        create_udf(
            "pg_get_triggerdef",
            vec![DataType::Int64, DataType::Boolean],
            DataType::Utf8,
            Volatility::Stable,
            Arc::new(|_| Ok(ColumnarValue::Scalar(ScalarValue::Utf8(None)))),
        ),
        create_udf(
            "quote_literal",
            vec![DataType::Utf8],
            DataType::Utf8,
            Volatility::Immutable,
            Arc::new(|args| match args {
                [text] => map_text(text, |t| Some(quote_literal(t))),
                _ => exec_err!("quote_literal takes one argument"),
            }),
        ),
        create_udf(
            "to_regtype",
            vec![DataType::Utf8],
            DataType::Utf8,
            Volatility::Stable,
            Arc::new(to_regtype),
        ),
    ]
}

fn version_text() -> String {
    format!(
        "PostgreSQL {SERVER_VERSION} (weir {}) on {}-linux, 64-bit",
        env!("CARGO_PKG_VERSION"),
        std::env::consts::ARCH
    )
}

/// A function of no arguments that answers `text`.
fn constant_text(name: &str, text: &str) -> ScalarUDF {
    let value = ScalarValue::Utf8(Some(text.to_string()));
    create_udf(
        name,
        vec![],
        DataType::Utf8,
        Volatility::Stable,
        Arc::new(move |_| Ok(ColumnarValue::Scalar(value.clone()))),
    )
}

fn function_is_visible(args: &[ColumnarValue]) -> Result<ColumnarValue> {
    let [oid] = args else {
        return exec_err!("pg_function_is_visible takes one argument");
    };
    Ok(match oid {
        ColumnarValue::Scalar(v) => {
            ColumnarValue::Scalar(ScalarValue::Boolean((!v.is_null()).then_some(true)))
        }
        ColumnarValue::Array(a) => {
            let visible: BooleanArray = (0..a.len())
                .map(|i| (!a.is_null(i)).then_some(true))
                .collect();
            ColumnarValue::Array(Arc::new(visible))
        }
    })
}

fn to_regtype(args: &[ColumnarValue]) -> Result<ColumnarValue> {
    let [name] = args else {
        return exec_err!("to_regtype takes one argument");
    };
    map_text(name, |name| canonical_type_name(name).map(str::to_string))
}

/// `text` as PostgreSQL's `quote_literal` writes it.
fn quote_literal(text: &str) -> String {
    let quoted = text.replace('\'', "''");
    if text.contains('\\') {
        format!("E'{}'", quoted.replace('\\', "\\\\"))
    } else {
        format!("'{quoted}'")
    }
}

/// `f` of each text of `value`, as text; NULL where the text is NULL or
/// `f` answers `None`.
pub(crate) fn map_text(
    value: &ColumnarValue,
    f: impl Fn(&str) -> Option<String>,
) -> Result<ColumnarValue> {
    Ok(match value {
        ColumnarValue::Scalar(scalar) => {
            let text = match scalar {
                ScalarValue::Utf8(t) | ScalarValue::LargeUtf8(t) | ScalarValue::Utf8View(t) => {
                    t.as_deref().and_then(&f)
                }
                _ => None,
            };
            ColumnarValue::Scalar(ScalarValue::Utf8(text))
        }
        ColumnarValue::Array(array) => {
            let texts = datafusion::arrow::compute::cast(array, &DataType::Utf8)?;
            let mapped: StringArray = texts
                .as_string::<i32>()
                .iter()
                .map(|t| t.and_then(&f))
                .collect();
            ColumnarValue::Array(Arc::new(mapped) as ArrayRef)
        }
    })
}

/// PostgreSQL's name for a type weir knows, from any of its spellings.
fn canonical_type_name(name: &str) -> Option<&'static str> {
    let name = name.trim().to_ascii_lowercase();
    let name = name.strip_prefix("pg_catalog.").unwrap_or(&name);
    Some(match name {
        "bool" | "boolean" => "boolean",
        "int2" | "smallint" => "smallint",
        "int4" | "int" | "integer" => "integer",
        "int8" | "bigint" => "bigint",
        "float4" | "real" => "real",
        "float8" | "double precision" => "double precision",
        "numeric" | "decimal" => "numeric",
        "text" => "text",
        "varchar" | "character varying" => "character varying",
        "bpchar" | "char" | "character" => "character",
        "bytea" => "bytea",
        "date" => "date",
        "time" | "time without time zone" => "time without time zone",
        "timestamp" | "timestamp without time zone" => "timestamp without time zone",
        "timestamptz" | "timestamp with time zone" => "timestamp with time zone",
        "interval" => "interval",
        "oid" => "oid",
        "regclass" => "regclass",
        "regtype" => "regtype",
        "name" => "name",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_reads_as_postgres_then_weir() {
        let text = version_text();
        assert!(text.starts_with("PostgreSQL 15.0 (weir "), "{text}");
    }

    #[test]
    fn literals_are_quoted_as_postgres_quotes_them() {
        assert_eq!(quote_literal("O'Brien"), "'O''Brien'");
        assert_eq!(quote_literal(r"a\b'c"), r"E'a\\b''c'");
        assert_eq!(quote_literal(""), "''");
    }

    #[test]
    fn type_names_are_canonical() {
        assert_eq!(canonical_type_name("int4"), Some("integer"));
        assert_eq!(
            canonical_type_name("pg_catalog.TIMESTAMPTZ"),
            Some("timestamp with time zone")
        );
        assert_eq!(canonical_type_name("no_such_type"), None);
    }
}
