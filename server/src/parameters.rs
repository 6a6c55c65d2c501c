//! Bind parameters to DataFusion values.
//!
//! arrow-pg decodes them, but for `numeric`, which it takes through
//! `rust_decimal` (28 digits): a value with more digits lost its scale and
//! came out divided by a power of ten. weir decodes `numeric` itself, text
//! and binary, into the exact `Decimal128` the statement expects, or refuses
//! it with `22003`. A Bind whose parameter count differs from the
//! statement's is a protocol violation (`08P01`), as in PostgreSQL.

use std::sync::Arc;

use arrow_pg::datatypes::df::deserialize_parameters;
use datafusion::arrow::datatypes::{DataType, Decimal128Type, DecimalType};
use datafusion::common::{ParamValues, ScalarValue};
use pgwire::api::Type;
use pgwire::api::portal::Portal;
use pgwire::error::{PgWireError, PgWireResult};
use weir_planner::Error;

use crate::errors::to_pgwire;

/// The values of `portal`'s parameters, typed as the statement infers them
/// (`types`, one per parameter); `None` when there are none.
pub(crate) fn bind_parameters<S: Clone + Default>(
    portal: &Portal<S>,
    types: &[Option<&DataType>],
) -> PgWireResult<Option<ParamValues>> {
    // A client may declare parameters at Parse that the statement never uses.
    let declared = portal.statement.parameter_types.len().max(types.len());
    if portal.parameter_len() != declared {
        return Err(error(
            "08P01",
            format!(
                "bind message supplies {} parameters, but prepared statement requires {declared}",
                portal.parameter_len(),
            ),
        ));
    }
    if types.is_empty() {
        return Ok(None);
    }
    let mut padded = types.to_vec();
    padded.resize(declared, None);
    let numerics: Vec<Option<Option<(u8, i8)>>> = (0..declared)
        .map(|i| numeric_target(portal, i, padded[i]))
        .collect();
    let numeric = |i: usize| numerics[i].is_some();
    let mut values = if (0..declared).any(numeric) {
        // arrow-pg fails on a numeric it cannot hold, so it is handed the
        // others only, and NULL in the numerics' places.
        let mut others = Portal::<S>::default();
        others.statement = Arc::clone(&portal.statement);
        others.parameter_format = portal.parameter_format.clone();
        others.parameters = (0..declared)
            .map(|i| {
                if numeric(i) {
                    None
                } else {
                    portal.parameters[i].clone()
                }
            })
            .collect();
        deserialize_parameters(&others, &padded)?
    } else {
        deserialize_parameters(portal, &padded)?
    };
    if let ParamValues::List(list) = &mut values {
        list.truncate(types.len());
        for (i, value) in list.iter_mut().enumerate() {
            let (Some(Some(target)), Some(bytes)) = (numerics.get(i), &portal.parameters[i]) else {
                continue;
            };
            value.value = if portal.parameter_format.is_binary(i) {
                binary_numeric(bytes, *target)?
            } else {
                text_numeric(bytes, *target)?
            };
        }
    }
    Ok(Some(values))
}

/// For a parameter weir decodes as numeric, `Some` of the precision and
/// scale it goes into, if the statement says; `None` for a parameter
/// arrow-pg decodes (a numeric bound to an integer or float converts there).
fn numeric_target<S>(
    portal: &Portal<S>,
    i: usize,
    inferred: Option<&DataType>,
) -> Option<Option<(u8, i8)>> {
    let client_type = portal.statement.parameter_types.get(i).cloned().flatten();
    match (client_type, inferred) {
        (None, Some(DataType::Decimal128(p, s))) => Some(Some((*p, *s))),
        (Some(t), Some(DataType::Decimal128(p, s))) if t == Type::NUMERIC => Some(Some((*p, *s))),
        (Some(t), None) if t == Type::NUMERIC => Some(None),
        _ => None,
    }
}

fn error(code: &'static str, message: String) -> PgWireError {
    to_pgwire(Error::user(code, message))
}

fn overflow() -> PgWireError {
    error("22003", "numeric field overflow".into())
}

/// A numeric in PostgreSQL's binary form: digit count, weight (of the
/// first base-10000 digit), sign, display scale, then the digits.
fn binary_numeric(bytes: &[u8], target: Option<(u8, i8)>) -> PgWireResult<ScalarValue> {
    let word = |i: usize| -> PgWireResult<u16> {
        bytes
            .get(2 * i..2 * i + 2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]))
            .ok_or_else(|| {
                error(
                    "08P01",
                    "insufficient data left in numeric parameter".into(),
                )
            })
    };
    let (ndigits, weight, sign, dscale) = (word(0)?, word(1)? as i16, word(2)?, word(3)?);
    if sign == 0xC000 || sign == 0xD000 || sign == 0xF000 {
        return Err(error(
            "22P02",
            "NaN and infinite numerics are not supported".into(),
        ));
    }
    let mut digits: i128 = 0;
    for k in 0..usize::from(ndigits) {
        let digit = word(4 + k)?;
        if digit >= 10_000 {
            return Err(error("22P03", "invalid digit in binary numeric".into()));
        }
        digits = digits
            .checked_mul(10_000)
            .and_then(|d| d.checked_add(i128::from(digit)))
            .ok_or_else(overflow)?;
    }
    let (precision, scale) = target.unwrap_or((38, dscale.min(38) as i8));
    // value = digits * 10000^(weight - ndigits + 1); mantissa = value * 10^scale.
    let shift = 4 * (i32::from(weight) - i32::from(ndigits) + 1) + i32::from(scale);
    let mut mantissa = rescale(digits, shift)?;
    if sign == 0x4000 {
        mantissa = -mantissa;
    }
    decimal(mantissa, precision, scale, target.is_some())
}

/// `value * 10^shift`, rounding half away from zero when `shift` < 0.
fn rescale(value: i128, shift: i32) -> PgWireResult<i128> {
    if shift >= 0 {
        10i128
            .checked_pow(shift as u32)
            .and_then(|p| value.checked_mul(p))
            .ok_or_else(overflow)
    } else {
        let Some(divisor) = 10i128.checked_pow(shift.unsigned_abs()) else {
            return Ok(0);
        };
        let (quotient, remainder) = (value / divisor, value % divisor);
        Ok(quotient + i128::from(remainder * 2 >= divisor))
    }
}

fn text_numeric(bytes: &[u8], target: Option<(u8, i8)>) -> PgWireResult<ScalarValue> {
    let text = std::str::from_utf8(bytes)
        .map_err(|_| error("22021", "numeric parameter is not UTF-8".into()))?
        .trim();
    let (precision, scale) = target.unwrap_or_else(|| {
        let scale = text.split_once('.').map_or(0, |(_, f)| f.len().min(38));
        (38, scale as i8)
    });
    let mantissa =
        datafusion::arrow::compute::kernels::cast_utils::parse_decimal::<Decimal128Type>(
            text, 38, scale,
        )
        .map_err(|_| {
            error(
                "22P02",
                format!("invalid input syntax for type numeric: \"{text}\""),
            )
        })?;
    decimal(mantissa, precision, scale, target.is_some())
}

/// A `Decimal128` of `mantissa` at `scale`; past `precision` digits, `22003`
/// for a declared type and the smallest precision that holds it otherwise.
fn decimal(mantissa: i128, precision: u8, scale: i8, declared: bool) -> PgWireResult<ScalarValue> {
    if declared {
        Decimal128Type::validate_decimal_precision(mantissa, precision, scale)
            .map_err(|_| overflow())?;
        return Ok(ScalarValue::Decimal128(Some(mantissa), precision, scale));
    }
    let digits = mantissa
        .unsigned_abs()
        .checked_ilog10()
        .map_or(1, |d| d as u8 + 1);
    let precision = digits.max(scale.max(0) as u8).clamp(1, 38);
    Ok(ScalarValue::Decimal128(Some(mantissa), precision, scale))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// PostgreSQL's binary numeric for `1234567890123456789.0123456789`:
    /// base-10000 digits 123 4567 8901 2345 6789 . 0123 4567 89(00).
    fn big() -> Vec<u8> {
        let mut bytes = Vec::new();
        for word in [8u16, 4, 0, 10, 123, 4567, 8901, 2345, 6789, 123, 4567, 8900] {
            bytes.extend_from_slice(&word.to_be_bytes());
        }
        bytes
    }

    #[test]
    fn numerics_beyond_28_digits_keep_every_digit() {
        let value = binary_numeric(&big(), Some((38, 10))).unwrap();
        assert_eq!(
            value,
            ScalarValue::Decimal128(Some(12345678901234567890123456789), 38, 10)
        );
        let value = text_numeric(b"1234567890123456789.0123456789", Some((38, 10))).unwrap();
        assert_eq!(
            value,
            ScalarValue::Decimal128(Some(12345678901234567890123456789), 38, 10)
        );
    }

    #[test]
    fn scale_rounds_and_precision_overflows() {
        // 2.5 into numeric(5, 0) rounds half away from zero.
        let mut bytes = Vec::new();
        for word in [2u16, 0, 0x4000, 1, 2, 5000] {
            bytes.extend_from_slice(&word.to_be_bytes());
        }
        assert_eq!(
            binary_numeric(&bytes, Some((5, 0))).unwrap(),
            ScalarValue::Decimal128(Some(-3), 5, 0)
        );
        assert!(binary_numeric(&big(), Some((10, 2))).is_err());
        assert_eq!(
            binary_numeric(&bytes, None).unwrap(),
            ScalarValue::Decimal128(Some(-25), 2, 1)
        );
        assert!(text_numeric(b"12x", None).is_err());
    }
}
