//! SQL column types to Arrow types: the types a table column may have.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, IntervalUnit, TimeUnit};
use datafusion::sql::sqlparser::ast::{self, ArrayElemTypeDef, ExactNumberInfo, TimezoneInfo};

use crate::{Error, Result};

/// Precision and scale of `NUMERIC` without a declared precision.
const DEFAULT_DECIMAL: (u8, i8) = (38, 10);
const MAX_DECIMAL_PRECISION: u64 = 38;

/// The zone every `TIMESTAMPTZ` is stored in; clients see it converted.
pub const UTC: &str = "+00:00";

/// The [`PG_TYPE_KEY`] of a column declared as `sql_type`, if it has one:
/// the PostgreSQL type clients are told of a column stored as text.
///
/// [`PG_TYPE_KEY`]: weir_executor::batch::typed_text::PG_TYPE_KEY
pub fn shown_type(sql_type: &ast::DataType) -> Option<&'static str> {
    use ast::DataType as Sql;
    match sql_type {
        Sql::Varchar(_) | Sql::CharacterVarying(_) => Some("varchar"),
        Sql::Uuid => Some("uuid"),
        Sql::JSON => Some("json"),
        Sql::JSONB => Some("jsonb"),
        _ => None,
    }
}

/// The Arrow type a column declared as `sql_type` is stored as.
pub fn column_type(sql_type: &ast::DataType) -> Result<DataType> {
    use ast::DataType as Sql;
    let unsupported = || Error::not_supported(format!("column type {sql_type} is not supported"));
    Ok(match sql_type {
        Sql::Boolean | Sql::Bool => DataType::Boolean,
        Sql::SmallInt(_) | Sql::Int2(_) => DataType::Int16,
        Sql::Int(_) | Sql::Integer(_) | Sql::Int4(_) => DataType::Int32,
        Sql::BigInt(_) | Sql::Int8(_) => DataType::Int64,
        Sql::Real | Sql::Float4 => DataType::Float32,
        Sql::Double(_) | Sql::DoublePrecision | Sql::Float8 => DataType::Float64,
        Sql::Float(ExactNumberInfo::Precision(p)) if *p <= 24 => DataType::Float32,
        Sql::Float(_) => DataType::Float64,
        Sql::Numeric(info) | Sql::Decimal(info) | Sql::Dec(info) => {
            let (precision, scale) = match info {
                ExactNumberInfo::None => DEFAULT_DECIMAL,
                ExactNumberInfo::Precision(p) => (decimal_precision(*p)?, 0),
                ExactNumberInfo::PrecisionAndScale(p, s) => {
                    let precision = decimal_precision(*p)?;
                    if *s < 0 || *s > i64::from(precision) {
                        return Err(Error::user(
                            "22023",
                            format!(
                                "NUMERIC scale {s} must be between 0 and precision {precision}"
                            ),
                        ));
                    }
                    (precision, *s as i8)
                }
            };
            DataType::Decimal128(precision, scale)
        }
        Sql::Varchar(_)
        | Sql::CharacterVarying(_)
        | Sql::Text
        | Sql::String(_)
        | Sql::Char(_)
        | Sql::Character(_) => DataType::Utf8,
        Sql::Uuid | Sql::JSON | Sql::JSONB => DataType::Utf8,
        Sql::Date => DataType::Date32,
        Sql::Time(_, TimezoneInfo::None | TimezoneInfo::WithoutTimeZone) => {
            DataType::Time64(TimeUnit::Microsecond)
        }
        Sql::Timestamp(_, TimezoneInfo::None | TimezoneInfo::WithoutTimeZone) => {
            DataType::Timestamp(TimeUnit::Microsecond, None)
        }
        Sql::Timestamp(_, TimezoneInfo::WithTimeZone | TimezoneInfo::Tz) => {
            DataType::Timestamp(TimeUnit::Microsecond, Some(UTC.into()))
        }
        Sql::Interval { .. } => DataType::Interval(IntervalUnit::MonthDayNano),
        Sql::Bytea | Sql::Blob(_) | Sql::Binary(_) | Sql::Varbinary(_) => DataType::Binary,
        // One-dimensional arrays of the scalar types (`INT[]`, `TEXT[]`);
        // uuid, json and jsonb elements would lose their type.
        Sql::Array(
            ArrayElemTypeDef::SquareBracket(element, _)
            | ArrayElemTypeDef::AngleBracket(element)
            | ArrayElemTypeDef::Parenthesis(element),
        ) => {
            let element_type = column_type(element)?;
            let nested = matches!(element_type, DataType::List(_));
            if nested || matches!(shown_type(element), Some(t) if t != "varchar") {
                return Err(Error::not_supported(format!(
                    "arrays of {element} are not supported"
                )));
            }
            DataType::List(Arc::new(Field::new_list_field(element_type, true)))
        }
        Sql::Custom(name, modifiers) if modifiers.is_empty() => {
            match name.to_string().to_ascii_lowercase().as_str() {
                "timestamptz" => DataType::Timestamp(TimeUnit::Microsecond, Some(UTC.into())),
                "int2" => DataType::Int16,
                "int4" => DataType::Int32,
                "serial" | "bigserial" => return Err(unsupported()),
                _ => {
                    return Err(Error::user(
                        "42704",
                        format!("type \"{name}\" does not exist"),
                    ));
                }
            }
        }
        _ => return Err(unsupported()),
    })
}

fn decimal_precision(p: u64) -> Result<u8> {
    if p == 0 || p > MAX_DECIMAL_PRECISION {
        return Err(Error::user(
            "22023",
            format!("NUMERIC precision {p} must be between 1 and {MAX_DECIMAL_PRECISION}"),
        ));
    }
    Ok(p as u8)
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
    use datafusion::sql::sqlparser::parser::Parser;

    fn arrow(sql: &str) -> Result<DataType> {
        let mut parser = Parser::new(&PostgreSqlDialect {})
            .try_with_sql(sql)
            .unwrap();
        column_type(&parser.parse_data_type().unwrap())
    }

    #[test]
    fn every_documented_type_maps() {
        assert_eq!(arrow("BOOLEAN").unwrap(), DataType::Boolean);
        assert_eq!(arrow("SMALLINT").unwrap(), DataType::Int16);
        assert_eq!(arrow("INT").unwrap(), DataType::Int32);
        assert_eq!(arrow("BIGINT").unwrap(), DataType::Int64);
        assert_eq!(arrow("REAL").unwrap(), DataType::Float32);
        assert_eq!(arrow("DOUBLE PRECISION").unwrap(), DataType::Float64);
        assert_eq!(
            arrow("NUMERIC(10, 2)").unwrap(),
            DataType::Decimal128(10, 2)
        );
        assert_eq!(arrow("DECIMAL").unwrap(), DataType::Decimal128(38, 10));
        assert_eq!(arrow("VARCHAR(20)").unwrap(), DataType::Utf8);
        assert_eq!(arrow("TEXT").unwrap(), DataType::Utf8);
        assert_eq!(arrow("DATE").unwrap(), DataType::Date32);
        assert_eq!(
            arrow("TIMESTAMP").unwrap(),
            DataType::Timestamp(TimeUnit::Microsecond, None)
        );
        assert_eq!(
            arrow("TIMESTAMPTZ").unwrap(),
            DataType::Timestamp(TimeUnit::Microsecond, Some(UTC.into()))
        );
        assert_eq!(
            arrow("TIMESTAMP WITH TIME ZONE").unwrap(),
            DataType::Timestamp(TimeUnit::Microsecond, Some(UTC.into()))
        );
        assert_eq!(
            arrow("INTERVAL").unwrap(),
            DataType::Interval(IntervalUnit::MonthDayNano)
        );
        assert_eq!(arrow("BYTEA").unwrap(), DataType::Binary);
        assert_eq!(
            arrow("TIME").unwrap(),
            DataType::Time64(TimeUnit::Microsecond)
        );
        for text in ["UUID", "JSON", "JSONB"] {
            assert_eq!(arrow(text).unwrap(), DataType::Utf8);
        }
        assert_eq!(
            arrow("INT[]").unwrap(),
            DataType::List(Arc::new(Field::new_list_field(DataType::Int32, true)))
        );
        assert!(matches!(arrow("INT[][]"), Err(Error::NotSupported(_))));
        assert!(matches!(arrow("UUID[]"), Err(Error::NotSupported(_))));
    }

    #[test]
    fn bad_types_are_refused() {
        assert!(matches!(
            arrow("NUMERIC(50)"),
            Err(Error::User { code: "22023", .. })
        ));
        assert!(matches!(
            arrow("NUMERIC(5, 7)"),
            Err(Error::User { code: "22023", .. })
        ));
        assert!(matches!(
            arrow("nosuchtype"),
            Err(Error::User { code: "42704", .. })
        ));
        assert!(matches!(
            arrow("TIME WITH TIME ZONE"),
            Err(Error::NotSupported(_))
        ));
    }
}
