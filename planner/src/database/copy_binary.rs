//! `COPY ... FROM STDIN (FORMAT binary)`: PostgreSQL's binary COPY data
//! (asyncpg's `copy_records_to_table` sends it) read into the text each
//! field stands for, which then goes the way of a text COPY: cast to its
//! column's type and written in one statement. Each field is its column
//! type's binary form, as PostgreSQL's `*_send` functions write it (an
//! array's elements each in theirs).

use chrono::{DateTime, NaiveTime};
use datafusion::arrow::array::Decimal128Array;
use datafusion::arrow::datatypes::{DataType, Field};
use weir_executor::batch::typed_text::{PG_TYPE_KEY, uuid_text};

use crate::pg_text::{array_element, datetime_text, float4_text, float8_text, time_text};
use crate::{Error, Result};

const SIGNATURE: &[u8] = b"PGCOPY\n\xff\r\n\0";
/// The header flag saying each row starts with an oid, which weir has not.
const FLAG_OIDS: i32 = 1 << 16;
/// Seconds from the Unix epoch to PostgreSQL's, 2000-01-01.
const POSTGRES_EPOCH_SECONDS: i64 = 946_684_800;
const POSTGRES_EPOCH_DAYS: i64 = 10_957;

fn bad_format(message: impl Into<String>) -> Error {
    Error::user("22P03", message)
}

/// Reads `data` a field at a time, each in bounds or an error.
struct Reader<'a> {
    data: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn bytes(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&end| end <= self.data.len())
            .ok_or_else(|| bad_format("COPY data ends inside a row"))?;
        let bytes = &self.data[self.at..end];
        self.at = end;
        Ok(bytes)
    }

    fn i16(&mut self) -> Result<i16> {
        Ok(i16::from_be_bytes(
            self.bytes(2)?.try_into().unwrap_or_default(),
        ))
    }

    fn i32(&mut self) -> Result<i32> {
        Ok(i32::from_be_bytes(
            self.bytes(4)?.try_into().unwrap_or_default(),
        ))
    }
}

/// The rows of binary COPY data for columns `fields`: each field's text,
/// `None` for NULL.
pub fn binary_rows(data: &[u8], fields: &[&Field]) -> Result<Vec<Vec<Option<String>>>> {
    let mut reader = Reader { data, at: 0 };
    if reader.bytes(SIGNATURE.len()).ok() != Some(SIGNATURE) {
        return Err(bad_format("COPY file signature not recognized"));
    }
    if reader.i32()? & FLAG_OIDS != 0 {
        return Err(Error::not_supported(
            "binary COPY with OIDs is not supported",
        ));
    }
    let extension = reader.i32()?;
    reader.bytes(usize::try_from(extension).map_err(|_| bad_format("bad header extension"))?)?;
    let mut rows = Vec::new();
    loop {
        let count = reader.i16()?;
        if count == -1 {
            break;
        }
        if count as usize != fields.len() {
            return Err(Error::user(
                "22P04",
                format!(
                    "COPY row {} has {count} fields, the table takes {}",
                    rows.len() + 1,
                    fields.len()
                ),
            ));
        }
        let mut row = Vec::with_capacity(fields.len());
        for field in fields {
            let length = reader.i32()?;
            if length < 0 {
                row.push(None);
                continue;
            }
            let bytes = reader.bytes(length as usize)?;
            let text = field_text(field, bytes).map_err(|message| {
                bad_format(format!(
                    "COPY row {}, column {}: {message}",
                    rows.len() + 1,
                    field.name()
                ))
            })?;
            row.push(Some(text));
        }
        rows.push(row);
    }
    Ok(rows)
}

fn fixed<const N: usize>(bytes: &[u8]) -> std::result::Result<[u8; N], String> {
    bytes
        .try_into()
        .map_err(|_| format!("expected {N} bytes, got {}", bytes.len()))
}

/// The text of one field, from its column type's binary form.
fn field_text(field: &Field, bytes: &[u8]) -> std::result::Result<String, String> {
    Ok(match field.data_type() {
        DataType::Boolean => match fixed::<1>(bytes)? {
            [0] => "f".into(),
            _ => "t".into(),
        },
        DataType::Int16 => i16::from_be_bytes(fixed(bytes)?).to_string(),
        DataType::Int32 => i32::from_be_bytes(fixed(bytes)?).to_string(),
        DataType::Int64 => i64::from_be_bytes(fixed(bytes)?).to_string(),
        DataType::Float32 => float4_text(f32::from_be_bytes(fixed(bytes)?), 1),
        DataType::Float64 => float8_text(f64::from_be_bytes(fixed(bytes)?), 1),
        DataType::Decimal128(..) => numeric_text(bytes)?,
        DataType::Utf8 => match field.metadata().get(PG_TYPE_KEY).map(String::as_str) {
            Some("uuid") => {
                let hex: String = fixed::<16>(bytes)?
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect();
                uuid_text(&hex).ok_or("bad uuid")?
            }
            Some("jsonb") => match bytes.split_first() {
                Some((1, text)) => utf8(text)?,
                _ => return Err("unsupported jsonb version".into()),
            },
            _ => utf8(bytes)?,
        },
        DataType::Binary => {
            let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
            format!("\\x{hex}")
        }
        DataType::Date32 => {
            let days = i64::from(i32::from_be_bytes(fixed(bytes)?)) + POSTGRES_EPOCH_DAYS;
            DateTime::from_timestamp(days * 86_400, 0)
                .ok_or("date out of range")?
                .format("%Y-%m-%d")
                .to_string()
        }
        DataType::Timestamp(_, zone) => {
            let micros = i64::from_be_bytes(fixed(bytes)?);
            let time = DateTime::from_timestamp_micros(micros)
                .and_then(|t| {
                    t.checked_add_signed(chrono::TimeDelta::seconds(POSTGRES_EPOCH_SECONDS))
                })
                .ok_or("timestamp out of range")?;
            let text = datetime_text(&time.naive_utc());
            if zone.is_some() { text + "+00" } else { text }
        }
        DataType::Time64(_) => {
            let micros = i64::from_be_bytes(fixed(bytes)?);
            let seconds = u32::try_from(micros.div_euclid(1_000_000)).map_err(|_| "bad time")?;
            let nanos = (micros.rem_euclid(1_000_000) * 1_000) as u32;
            time_text(
                &NaiveTime::from_num_seconds_from_midnight_opt(seconds, nanos).ok_or("bad time")?,
            )
        }
        DataType::Interval(_) => {
            let bytes = fixed::<16>(bytes)?;
            let micros = i64::from_be_bytes(fixed(&bytes[0..8])?);
            let days = i32::from_be_bytes(fixed(&bytes[8..12])?);
            let months = i32::from_be_bytes(fixed(&bytes[12..16])?);
            format!("{months} months {days} days {micros} microseconds")
        }
        DataType::List(element) => array_text(element, bytes)?,
        other => {
            return Err(format!(
                "binary COPY into a {other} column is not supported"
            ));
        }
    })
}

/// `array_send`'s form (dimensions, a null flag, the element type, each
/// dimension's length and lower bound, then the elements) as an array
/// literal of the elements' texts: `{1,NULL,"b c"}`. One dimension.
fn array_text(element: &Field, bytes: &[u8]) -> std::result::Result<String, String> {
    let mut reader = Reader { data: bytes, at: 0 };
    let short = |_| "array field too short".to_string();
    let dimensions = reader.i32().map_err(short)?;
    let _has_nulls = reader.i32().map_err(short)?;
    let _element_type = reader.i32().map_err(short)?;
    let length = match dimensions {
        0 => 0,
        1 => {
            let length = reader.i32().map_err(short)?;
            let _lower_bound = reader.i32().map_err(short)?;
            usize::try_from(length).map_err(|_| "negative array length")?
        }
        _ => return Err("multidimensional arrays are not supported".into()),
    };
    let mut texts = Vec::with_capacity(length);
    for _ in 0..length {
        let size = reader.i32().map_err(short)?;
        if size < 0 {
            texts.push("NULL".to_string());
            continue;
        }
        let value = reader.bytes(size as usize).map_err(short)?;
        texts.push(array_element(&field_text(element, value)?));
    }
    Ok(format!("{{{}}}", texts.join(",")))
}

fn utf8(bytes: &[u8]) -> std::result::Result<String, String> {
    String::from_utf8(bytes.to_vec()).map_err(|_| "invalid UTF-8".to_string())
}

/// `numeric_send`'s form (digit groups of base 10000, the weight of the
/// first, sign, display scale) as decimal text.
fn numeric_text(bytes: &[u8]) -> std::result::Result<String, String> {
    let short = || "numeric field too short".to_string();
    let word = |i: usize| -> std::result::Result<i16, String> {
        Ok(i16::from_be_bytes(fixed(
            bytes.get(i * 2..i * 2 + 2).ok_or_else(short)?,
        )?))
    };
    let groups = word(0)?;
    let weight = i64::from(word(1)?);
    let sign = word(2)? as u16;
    let scale = word(3)?;
    match sign {
        0x0000 | 0x4000 => {}
        0xC000 => return Err("NaN is not a number weir can store".into()),
        _ => return Err("invalid numeric sign".into()),
    }
    let scale = u32::try_from(scale).map_err(|_| "invalid numeric scale")?;
    // The value times 10^scale, built group by group.
    let mut unscaled: i128 = 0;
    let mut exponent: i64 = 0;
    for i in 0..groups as usize {
        let digit = word(4 + i)?;
        if !(0..10_000).contains(&digit) {
            return Err("invalid numeric digit".into());
        }
        unscaled = unscaled
            .checked_mul(10_000)
            .and_then(|v| v.checked_add(i128::from(digit)))
            .ok_or("numeric beyond 38 digits")?;
        exponent = weight - i as i64;
    }
    // The last group read sits at 10000^exponent; bring it to 10^-scale.
    let shift = exponent * 4 + i64::from(scale);
    let unscaled = if groups == 0 {
        0
    } else if shift >= 0 {
        10i128
            .checked_pow(shift as u32)
            .and_then(|p| unscaled.checked_mul(p))
            .ok_or("numeric beyond 38 digits")?
    } else {
        unscaled / 10i128.pow((-shift) as u32)
    };
    let value = if sign == 0x4000 { -unscaled } else { unscaled };
    let scale = i8::try_from(scale).map_err(|_| "numeric scale beyond 38")?;
    let array = Decimal128Array::from(vec![value])
        .with_precision_and_scale(38, scale.min(38))
        .map_err(|e| e.to_string())?;
    Ok(array.value_as_string(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numerics_read_back() {
        // -1.0, 2.75, 0.00, 0.000001, 12345678
        let cases: [(&[u8], &str); 5] = [
            (&[0, 1, 0, 0, 0x40, 0, 0, 1, 0, 1], "-1.0"),
            (&[0, 2, 0, 0, 0, 0, 0, 2, 0, 2, 0x1d, 0x4c], "2.75"),
            (&[0, 0, 0, 0, 0, 0, 0, 2], "0.00"),
            (&[0, 1, 0xff, 0xfe, 0, 0, 0, 6, 0, 100], "0.000001"),
            (
                &[0, 2, 0, 1, 0, 0, 0, 0, 0x04, 0xd2, 0x16, 0x2e],
                "12345678",
            ),
        ];
        for (bytes, text) in cases {
            assert_eq!(numeric_text(bytes).unwrap(), text);
        }
    }

    #[test]
    fn rows_and_their_errors() {
        let int = Field::new("i", DataType::Int32, true);
        let text = Field::new("t", DataType::Utf8, true);
        let mut data = SIGNATURE.to_vec();
        data.extend([0, 0, 0, 0, 0, 0, 0, 0]);
        data.extend([0, 2, 0, 0, 0, 4, 0, 0, 0, 7, 0, 0, 0, 2, b'h', b'i']);
        data.extend([0, 2, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]);
        data.extend([0xff, 0xff]);
        let rows = binary_rows(&data, &[&int, &text]).unwrap();
        assert_eq!(
            rows,
            [
                vec![Some("7".to_string()), Some("hi".to_string())],
                vec![None, Some(String::new())]
            ]
        );
        assert!(binary_rows(&data[..data.len() - 4], &[&int, &text]).is_err());
        assert!(binary_rows(b"PGCOPY", &[&int]).is_err());
        assert!(binary_rows(&data, &[&int]).is_err());
    }
}
