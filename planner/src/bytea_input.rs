//! `pg_bytea(text)`: text read as PostgreSQL reads bytea input
//! ([`crate::pg_casts`] routes casts of text to bytea here). `\x` starts
//! hex digits (`'\xdeadbeef'` is four bytes); otherwise the escape format:
//! `\\` is a backslash, `\nnn` an octal byte, every other character its
//! UTF-8 bytes. Bad input is `22P02`, as in PostgreSQL.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, BinaryBuilder};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::Result;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

use crate::udf_shape::{in_shape_of_args, invalid_input};

/// `pg_bytea(text)`.
pub fn pg_bytea_function() -> ScalarUDF {
    ScalarUDF::from(PgBytea {
        signature: Signature::any(1, Volatility::Immutable),
    })
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct PgBytea {
    signature: Signature,
}

impl ScalarUDFImpl for PgBytea {
    fn name(&self) -> &str {
        "pg_bytea"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Binary)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        in_shape_of_args(&args.args, |values| {
            let texts = cast(&values[0], &DataType::Utf8)?;
            let texts = texts.as_string::<i32>();
            let mut out = BinaryBuilder::with_capacity(texts.len(), texts.len() * 8);
            for row in 0..texts.len() {
                if texts.is_null(row) {
                    out.append_null();
                } else {
                    let bytes = bytea_input(texts.value(row)).map_err(invalid_input)?;
                    out.append_value(bytes);
                }
            }
            let bytes: ArrayRef = Arc::new(out.finish());
            Ok(bytes)
        })
    }
}

/// The bytes `text` stands for, or why it stands for none.
pub fn bytea_input(text: &str) -> std::result::Result<Vec<u8>, String> {
    if let Some(hex) = text.strip_prefix("\\x") {
        return hex_bytes(hex);
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'\\' {
            out.push(bytes[i]);
            i += 1;
        } else if bytes.get(i + 1) == Some(&b'\\') {
            out.push(b'\\');
            i += 2;
        } else {
            let octal = bytes
                .get(i + 1..i + 4)
                .filter(|d| d[0] <= b'3' && d.iter().all(|b| (b'0'..=b'7').contains(b)));
            let Some(digits) = octal else {
                return Err("invalid input syntax for type bytea".into());
            };
            out.push(digits.iter().fold(0u8, |n, d| n * 8 + (d - b'0')));
            i += 4;
        }
    }
    Ok(out)
}

/// Hex digit pairs, whitespace between pairs allowed.
fn hex_bytes(hex: &str) -> std::result::Result<Vec<u8>, String> {
    let digits: Vec<u8> = hex.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    if !digits.len().is_multiple_of(2) {
        return Err("invalid hexadecimal data: odd number of digits".into());
    }
    digits
        .chunks(2)
        .map(|pair| {
            let text = std::str::from_utf8(pair).unwrap_or("");
            u8::from_str_radix(text, 16).map_err(|_| {
                format!(
                    "invalid hexadecimal digit: \"{}\"",
                    String::from_utf8_lossy(pair)
                )
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_and_escape_formats() {
        assert_eq!(
            bytea_input("\\xdeadBEEF").unwrap(),
            [0xde, 0xad, 0xbe, 0xef]
        );
        assert_eq!(bytea_input("\\x").unwrap(), Vec::<u8>::new());
        assert_eq!(bytea_input("ab").unwrap(), b"ab");
        assert_eq!(bytea_input("a\\\\b\\001").unwrap(), b"a\\b\x01");
        assert!(bytea_input("\\xabc").is_err());
        assert!(bytea_input("\\xzz").is_err());
        assert!(bytea_input("\\9").is_err());
    }
}
