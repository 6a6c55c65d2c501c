//! `connector = 'datagen'`: rows of the columns the source declares, each
//! column made by its own generator.
//!
//! Source options: `seed`, `rows_per_second` (default 10000), `number_of_rows`
//! (a bounded run), `start_time` (when row 0 falls due; the moment of
//! creation when not given, fixed in the stored definition). Per column,
//! `'fields.<column>.<option>'`:
//!
//! | column type | kinds | options |
//! |---|---|---|
//! | SMALLINT, INT, BIGINT | `random` (default), `sequence` | `min`, `max` (random, default 0 and 32767); `start`, `end` (sequence, default 0 and the type's largest) |
//! | REAL, DOUBLE | `random` (default), `sequence` | as above |
//! | VARCHAR, TEXT | `random` (default), `sequence` | `length` (random, default 10); `start`, `end` (sequence) |
//! | BOOLEAN | `random` | |
//! | TIMESTAMP, TIMESTAMPTZ, DATE | `event_time` | the instant the row falls due |
//!
//! A sequence runs from `start` to `end` and starts again.

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::compute::kernels::cast_utils::string_to_timestamp_nanos;
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::temporal_conversions::timestamp_ns_to_datetime;
use datafusion::sql::sqlparser::ast::{CreateTable, SqlOption};
use weir_executor::generated::datagen::{ColumnGenerator, Datagen};
use weir_executor::generated::{GeneratedRows, Pace};

use super::declared_columns;
use crate::options::{WithOptions, invalid, option_text, text_option};
use crate::{Error, Result};

const DEFAULT_ROWS_PER_SECOND: u64 = 10_000;
const DEFAULT_SEED: u64 = 42;
const DEFAULT_RANDOM_MAX: i64 = 32_767;
const DEFAULT_TEXT_LENGTH: usize = 10;
/// Longest random text a column may ask for.
const MAX_TEXT_LENGTH: usize = 1 << 20;
const FIELD_PREFIX: &str = "fields.";

/// The rows a datagen source declared by `create` generates.
pub(super) fn rows(
    create: &CreateTable,
    mut options: WithOptions,
) -> Result<Arc<dyn GeneratedRows>> {
    let schema = Arc::new(Schema::new(declared_columns(create, "datagen", false)?));
    let seed = options.take_number("seed", 0)?.unwrap_or(DEFAULT_SEED);
    let per_second = options
        .take_number("rows_per_second", 1)?
        .unwrap_or(DEFAULT_ROWS_PER_SECOND);
    let rows = options.take_number("number_of_rows", 0)?;
    let start_nanos = match options.take("start_time") {
        Some(text) => string_to_timestamp_nanos(text.trim()).map_err(|_| {
            invalid(format!(
                "option start_time: \"{text}\" is not a timestamp (e.g. '2026-01-01 00:00:00')"
            ))
        })?,
        None => {
            return Err(Error::Internal(
                "datagen source planned without its start_time".into(),
            ));
        }
    };
    let mut fields = field_options(options.take_prefixed(FIELD_PREFIX), &schema)?;
    options.finish("connector 'datagen'")?;
    let generators = schema
        .fields()
        .iter()
        .map(|field| {
            let options = fields.remove(field.name()).unwrap_or_default();
            column_generator(field, options)
        })
        .collect::<Result<Vec<_>>>()?;
    let pace = Pace {
        start_nanos,
        per_second,
    };
    let datagen = Datagen::new(schema, seed, generators, pace, rows)?;
    Ok(Arc::new(datagen))
}

/// `start_time = '<now>'` when a datagen source's `options` lack one.
pub(super) fn start_time_option(options: &[SqlOption], now_nanos: i64) -> Option<SqlOption> {
    let has = |key: &str, value: Option<&str>| {
        options.iter().any(|option| match option {
            SqlOption::KeyValue { key: k, value: v } => {
                k.value.eq_ignore_ascii_case(key)
                    && value.is_none_or(|value| {
                        option_text(v).is_some_and(|text| text.eq_ignore_ascii_case(value))
                    })
            }
            _ => false,
        })
    };
    if !has("connector", Some("datagen")) || has("start_time", None) {
        return None;
    }
    let now = timestamp_ns_to_datetime(now_nanos)?;
    Some(text_option("start_time", now.to_string()))
}

/// `fields.<column>.<option>` options, by column, each column's options
/// by name; every column must exist.
fn field_options(
    options: BTreeMap<String, String>,
    schema: &Schema,
) -> Result<BTreeMap<String, BTreeMap<String, String>>> {
    let mut fields: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for (key, value) in options {
        let Some((column, option)) = key.rsplit_once('.') else {
            return Err(invalid(format!(
                "option {FIELD_PREFIX}{key}: expected {FIELD_PREFIX}<column>.<option>"
            )));
        };
        if schema.index_of(column).is_err() {
            return Err(Error::user(
                "42703",
                format!("option {FIELD_PREFIX}{key}: column \"{column}\" does not exist"),
            ));
        }
        fields
            .entry(column.to_string())
            .or_default()
            .insert(option.to_string(), value);
    }
    Ok(fields)
}

/// One column's generator from its options.
fn column_generator(
    field: &Field,
    mut options: BTreeMap<String, String>,
) -> Result<ColumnGenerator> {
    let column = field.name();
    let data_type = field.data_type();
    let mut take = |option: &str| options.remove(option);
    let kind = take("kind").map(|k| k.to_ascii_lowercase());
    let number = |option: &str, text: Option<String>| -> Result<Option<f64>> {
        text.map(|text| {
            text.trim().parse::<f64>().map_err(|_| {
                invalid(format!(
                    "option {FIELD_PREFIX}{column}.{option}: \"{text}\" is not a number"
                ))
            })
        })
        .transpose()
    };
    let integer_range = integer_range(data_type);
    let generator = match (kind.as_deref(), data_type) {
        (None | Some("random"), DataType::Boolean) => ColumnGenerator::RandomBoolean,
        (None | Some("event_time"), DataType::Timestamp(_, _) | DataType::Date32) => {
            ColumnGenerator::EventTime
        }
        (None | Some("random"), DataType::Utf8) => {
            let length = match take("length") {
                Some(text) => text
                    .trim()
                    .parse::<usize>()
                    .ok()
                    .filter(|l| *l <= MAX_TEXT_LENGTH)
                    .ok_or_else(|| {
                        invalid(format!(
                            "option {FIELD_PREFIX}{column}.length: \"{text}\" is not a length \
                             up to {MAX_TEXT_LENGTH}"
                        ))
                    })?,
                None => DEFAULT_TEXT_LENGTH,
            };
            ColumnGenerator::RandomText { length }
        }
        (None | Some("random"), DataType::Float32 | DataType::Float64) => {
            let min = number("min", take("min"))?.unwrap_or(0.0);
            let max = number("max", take("max"))?.unwrap_or(DEFAULT_RANDOM_MAX as f64);
            if min >= max || !min.is_finite() || !max.is_finite() {
                return Err(invalid(format!(
                    "column \"{column}\": min {min} must be below max {max}"
                )));
            }
            ColumnGenerator::RandomNumber { min, max }
        }
        (None | Some("random"), _) if integer_range.is_some() => {
            let (low, high) = integer_range.unwrap_or_default();
            let min = whole(column, "min", take("min"), (low, high))?.unwrap_or(0.max(low));
            let max = whole(column, "max", take("max"), (low, high))?
                .unwrap_or(DEFAULT_RANDOM_MAX.min(high));
            if min > max {
                return Err(invalid(format!(
                    "column \"{column}\": min {min} is above max {max}"
                )));
            }
            ColumnGenerator::RandomInteger { min, max }
        }
        (Some("sequence"), _)
            if integer_range.is_some()
                || data_type.is_floating()
                || *data_type == DataType::Utf8 =>
        {
            let range = integer_range.unwrap_or((i64::MIN, i64::MAX));
            let start = whole(column, "start", take("start"), range)?.unwrap_or(0);
            let end = whole(column, "end", take("end"), range)?.or(integer_range.map(|r| r.1));
            if end.is_some_and(|end| end < start) {
                return Err(invalid(format!(
                    "column \"{column}\": sequence start {start} is after its end"
                )));
            }
            ColumnGenerator::Sequence { start, end }
        }
        (Some(kind), _) => {
            return Err(invalid(format!(
                "column \"{column}\" of type {data_type} cannot be generated by kind '{kind}'"
            )));
        }
        (None, _) => {
            return Err(Error::not_supported(format!(
                "datagen cannot generate column \"{column}\" of type {data_type}"
            )));
        }
    };
    match options.into_keys().next() {
        Some(option) => Err(invalid(format!(
            "option {FIELD_PREFIX}{column}.{option} does not apply to this column's generator"
        ))),
        None => Ok(generator),
    }
}

/// The range of an integer type's values.
fn integer_range(data_type: &DataType) -> Option<(i64, i64)> {
    match data_type {
        DataType::Int16 => Some((i16::MIN.into(), i16::MAX.into())),
        DataType::Int32 => Some((i32::MIN.into(), i32::MAX.into())),
        DataType::Int64 => Some((i64::MIN, i64::MAX)),
        _ => None,
    }
}

/// A whole-number option within `(low, high)`.
fn whole(
    column: &str,
    option: &str,
    text: Option<String>,
    (low, high): (i64, i64),
) -> Result<Option<i64>> {
    let Some(text) = text else {
        return Ok(None);
    };
    match text.trim().parse::<i64>() {
        Ok(value) if (low..=high).contains(&value) => Ok(Some(value)),
        _ => Err(invalid(format!(
            "option {FIELD_PREFIX}{column}.{option}: \"{text}\" is not a whole number \
             between {low} and {high}"
        ))),
    }
}
