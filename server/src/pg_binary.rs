//! PostgreSQL's binary form of the values arrow-pg cannot send in binary:
//! numerics of more than 28 digits or of a negative scale (arrow-pg goes
//! through a 28-digit decimal, and fails), the types weir keeps as text:
//! uuid (16 bytes), json (its text), jsonb (a version byte, then its text),
//! and arrays of no elements (no dimensions). The numeric form is the one
//! PostgreSQL's `numeric_send` writes: digit groups of base 10000 around
//! the decimal point, with the weight of the first, the sign and the
//! display scale.

use std::error::Error;

use bytes::{BufMut, BytesMut};
use pgwire::api::Type;
use pgwire::types::ToSqlText;
use pgwire::types::format::FormatOptions;
use tokio_postgres::types::{IsNull, ToSql, to_sql_checked};
use weir_executor::batch::typed_text::uuid_bytes;

const NUMERIC_POSITIVE: u16 = 0x0000;
const NUMERIC_NEGATIVE: u16 = 0x4000;

/// A decimal's unscaled value and scale, sent as a PostgreSQL numeric.
#[derive(Debug)]
pub(crate) struct Numeric {
    pub value: i128,
    pub scale: i8,
}

impl Numeric {
    /// `numeric_send`'s bytes.
    pub(crate) fn binary(&self) -> Vec<u8> {
        // A negative scale (`1e3` is 1 at scale -3) is whole digits.
        let (digits, scale) = if self.scale < 0 {
            let shift = 10u128.pow(u32::from(self.scale.unsigned_abs()));
            (self.value.unsigned_abs() * shift, 0usize)
        } else {
            (self.value.unsigned_abs(), self.scale as usize)
        };
        let text = digits.to_string();
        let (whole, fraction) = if text.len() > scale {
            text.split_at(text.len() - scale)
        } else {
            ("", text.as_str())
        };
        let fraction = format!("{fraction:0>scale$}");
        // Groups of four digits, aligned on the point.
        let whole_padded = format!("{}{whole}", "0".repeat((4 - whole.len() % 4) % 4));
        let fraction_padded = format!("{fraction}{}", "0".repeat((4 - fraction.len() % 4) % 4));
        let group = |s: &str| -> Vec<i16> {
            s.as_bytes()
                .chunks(4)
                .map(|c| std::str::from_utf8(c).unwrap_or("0").parse().unwrap_or(0))
                .collect()
        };
        let mut groups = group(&whole_padded);
        let mut weight = groups.len() as i16 - 1;
        groups.extend(group(&fraction_padded));
        while groups.first() == Some(&0) {
            groups.remove(0);
            weight -= 1;
        }
        while groups.last() == Some(&0) {
            groups.pop();
        }
        let negative = self.value < 0 && !groups.is_empty();
        if groups.is_empty() {
            weight = 0;
        }
        let mut out = Vec::with_capacity(8 + 2 * groups.len());
        out.extend((groups.len() as i16).to_be_bytes());
        out.extend(weight.to_be_bytes());
        let sign = if negative {
            NUMERIC_NEGATIVE
        } else {
            NUMERIC_POSITIVE
        };
        out.extend(sign.to_be_bytes());
        out.extend((scale as u16).to_be_bytes());
        for g in groups {
            out.extend(g.to_be_bytes());
        }
        out
    }
}

impl ToSql for Numeric {
    fn to_sql(&self, _: &Type, out: &mut BytesMut) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        out.put_slice(&self.binary());
        Ok(IsNull::No)
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::NUMERIC
    }

    to_sql_checked!();
}

impl ToSqlText for Numeric {
    fn to_sql_text(
        &self,
        _: &Type,
        out: &mut BytesMut,
        _: &FormatOptions,
    ) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        let text = datafusion::arrow::array::Decimal128Array::from(vec![self.value])
            .with_precision_and_scale(38, self.scale.max(0))
            .map(|a| a.value_as_string(0))
            .unwrap_or_default();
        out.put_slice(text.as_bytes());
        Ok(IsNull::No)
    }
}

/// A value's bytes already in the form its field is sent in (text or
/// binary): written as they are.
#[derive(Debug)]
pub(crate) struct Encoded(pub Vec<u8>);

impl Encoded {
    /// The binary form of `text`, a value of the text type named `pg_type`;
    /// `None` for a type sent as arrow-pg sends it.
    pub(crate) fn of_text(pg_type: &str, text: &str) -> Option<Encoded> {
        match pg_type {
            "uuid" => uuid_bytes(text).map(|b| Encoded(b.to_vec())),
            "json" => Some(Encoded(text.as_bytes().to_vec())),
            "jsonb" => Some(Encoded([&[JSONB_VERSION], text.as_bytes()].concat())),
            _ => None,
        }
    }

    /// An array of no elements, as `array_send` writes it: no dimensions.
    pub(crate) fn empty_array(element: &Type) -> Encoded {
        let mut bytes = Vec::with_capacity(12);
        bytes.extend(0i32.to_be_bytes()); // dimensions
        bytes.extend(0i32.to_be_bytes()); // has nulls
        bytes.extend(element.oid().to_be_bytes());
        Encoded(bytes)
    }
}

/// The version byte that starts jsonb's binary form.
const JSONB_VERSION: u8 = 1;

impl ToSql for Encoded {
    fn to_sql(&self, _: &Type, out: &mut BytesMut) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        out.put_slice(&self.0);
        Ok(IsNull::No)
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

impl ToSqlText for Encoded {
    fn to_sql_text(
        &self,
        _: &Type,
        out: &mut BytesMut,
        _: &FormatOptions,
    ) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        out.put_slice(&self.0);
        Ok(IsNull::No)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numeric(value: i128, scale: i8) -> Vec<u8> {
        Numeric { value, scale }.binary()
    }

    #[test]
    fn numerics_as_numeric_send_writes_them() {
        // -1.0: one group (1), weight 0, negative, scale 1.
        assert_eq!(numeric(-10, 1), [0, 1, 0, 0, 0x40, 0, 0, 1, 0, 1]);
        // 2.75: groups 2 and 7500, weight 0, scale 2.
        assert_eq!(numeric(275, 2), [0, 2, 0, 0, 0, 0, 0, 2, 0, 2, 0x1d, 0x4c]);
        // 0: no groups, scale kept.
        assert_eq!(numeric(0, 2), [0, 0, 0, 0, 0, 0, 0, 2]);
        // 1e3: one group 1000, weight 0, scale 0.
        assert_eq!(numeric(1, -3), [0, 1, 0, 0, 0, 0, 0, 0, 0x03, 0xe8]);
        // 0.000001: group 100 at weight -2.
        assert_eq!(numeric(1, 6), [0, 1, 0xff, 0xfe, 0, 0, 0, 6, 0, 100]);
        // 12345678: groups 1234 and 5678, weight 1.
        assert_eq!(
            numeric(12_345_678, 0),
            [0, 2, 0, 1, 0, 0, 0, 0, 0x04, 0xd2, 0x16, 0x2e]
        );
    }
}
