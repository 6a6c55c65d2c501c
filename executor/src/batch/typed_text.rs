//! Columns stored as text but typed for clients (DESIGN §5 keeps one Arrow
//! type per column): `uuid`, `json` and `jsonb`. Every row written into
//! such a column is checked here and kept in its normal form: a uuid in
//! lower-case 8-4-4-4-12 hex, json as written (once it parses), jsonb in
//! [`Json`]'s normal form. Input that is not of the type is `22P02`.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, StringBuilder};
use datafusion::arrow::datatypes::{DataType, Field, SchemaRef};
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::error::{DataFusionError, Result};

use crate::json::Json;

/// Field metadata naming the PostgreSQL type a column is shown as, where
/// its Arrow type alone would show another.
pub const PG_TYPE_KEY: &str = "weir.pg_type";

/// The text types whose values are checked on write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TextType {
    Uuid,
    Json,
    Jsonb,
}

impl TextType {
    pub fn of(field: &Field) -> Option<TextType> {
        if field.data_type() != &DataType::Utf8 {
            return None;
        }
        match field.metadata().get(PG_TYPE_KEY)?.as_str() {
            "uuid" => Some(TextType::Uuid),
            "json" => Some(TextType::Json),
            "jsonb" => Some(TextType::Jsonb),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            TextType::Uuid => "uuid",
            TextType::Json => "json",
            TextType::Jsonb => "jsonb",
        }
    }

    /// `text` in this type's normal form, or why it is not of the type.
    pub fn normal_form(self, text: &str) -> std::result::Result<String, String> {
        match self {
            TextType::Uuid => uuid_text(text)
                .ok_or_else(|| format!("invalid input syntax for type uuid: \"{text}\"")),
            TextType::Json => Json::parse(text).map(|_| text.to_string()),
            TextType::Jsonb => Json::parse(text).map(|v| v.normalized().text()),
        }
    }
}

/// `batch`, in the table's column order, with its typed text columns
/// checked and normalized; the same batch when `table` has none.
pub(crate) fn checked_rows(table: &SchemaRef, batch: RecordBatch) -> Result<RecordBatch> {
    let typed: Vec<(usize, TextType)> = table
        .fields()
        .iter()
        .enumerate()
        .filter_map(|(i, f)| TextType::of(f).map(|t| (i, t)))
        .collect();
    if typed.is_empty() {
        return Ok(batch);
    }
    let mut columns = batch.columns().to_vec();
    for (i, text_type) in typed {
        let Some(column) = columns.get(i) else {
            continue;
        };
        if column.data_type() != &DataType::Utf8 {
            continue;
        }
        columns[i] = normalized(column, text_type)?;
    }
    Ok(RecordBatch::try_new(batch.schema(), columns)?)
}

fn normalized(column: &ArrayRef, text_type: TextType) -> Result<ArrayRef> {
    let texts = column.as_string::<i32>();
    let mut out = StringBuilder::with_capacity(texts.len(), texts.value_data().len());
    for value in texts.iter() {
        match value {
            None => out.append_null(),
            Some(text) => {
                let normal = text_type.normal_form(text).map_err(|message| {
                    let message = if message.contains(text_type.name()) {
                        message
                    } else {
                        format!(
                            "invalid input syntax for type {}: {message}",
                            text_type.name()
                        )
                    };
                    DataFusionError::ArrowError(Box::new(ArrowError::ParseError(message)), None)
                })?;
                out.append_value(normal);
            }
        }
    }
    Ok(Arc::new(out.finish()))
}

/// A uuid as PostgreSQL reads it (32 hex digits, upper or lower case,
/// hyphens between groups of four, optionally in braces) in its output form.
pub fn uuid_text(text: &str) -> Option<String> {
    let inner = match text.strip_prefix('{') {
        Some(rest) => rest.strip_suffix('}')?,
        None => text,
    };
    if inner.starts_with('-') || inner.ends_with('-') || inner.contains("--") {
        return None;
    }
    let digits: Vec<u8> = inner.bytes().filter(|&b| b != b'-').collect();
    if digits.len() != 32 || !digits.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    let lower = String::from_utf8(digits).ok()?.to_ascii_lowercase();
    Some(format!(
        "{}-{}-{}-{}-{}",
        &lower[0..8],
        &lower[8..12],
        &lower[12..16],
        &lower[16..20],
        &lower[20..32]
    ))
}

/// A uuid's 16 bytes, from its output form.
pub fn uuid_bytes(text: &str) -> Option<[u8; 16]> {
    let hex: Vec<u8> = text.bytes().filter(|&b| b != b'-').collect();
    let mut out = [0u8; 16];
    for (byte, pair) in out.iter_mut().zip(hex.chunks(2)) {
        *byte = u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok()?;
    }
    (hex.len() == 32).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_in_every_accepted_form() {
        let canonical = "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11";
        for form in [
            "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11",
            "{a0eebc99-9c0b4ef8-bb6d6bb9-bd380a11}",
            "a0eebc999c0b4ef8bb6d6bb9bd380a11",
            "a0ee-bc99-9c0b-4ef8-bb6d-6bb9-bd38-0a11",
        ] {
            assert_eq!(uuid_text(form).as_deref(), Some(canonical), "{form}");
        }
        for bad in [
            "",
            "a0eebc99",
            "-a0eebc999c0b4ef8bb6d6bb9bd380a11",
            "g0eebc999c0b4ef8bb6d6bb9bd380a11",
        ] {
            assert!(uuid_text(bad).is_none(), "{bad}");
        }
        let bytes = uuid_bytes(canonical).unwrap();
        assert_eq!(bytes[0], 0xa0);
        assert_eq!(bytes[15], 0x11);
    }

    #[test]
    fn json_kept_jsonb_normalized() {
        assert_eq!(
            TextType::Json.normal_form("{\"b\":1, \"a\":2}").unwrap(),
            "{\"b\":1, \"a\":2}"
        );
        assert_eq!(
            TextType::Jsonb.normal_form("{\"b\":1, \"a\":2}").unwrap(),
            "{\"a\": 2, \"b\": 1}"
        );
        assert!(TextType::Json.normal_form("{oops}").is_err());
    }
}
