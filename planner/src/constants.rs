//! Typed constants read as PostgreSQL reads them:
//! - `123::numeric` is `123` and `1.10::numeric` is `1.10`: PostgreSQL's
//!   unconstrained numeric keeps the scale it is given, weir's is a decimal
//!   of fixed scale (`NUMERIC` alone is `NUMERIC(38, 10)`), so a cast of a
//!   constant to a bare `NUMERIC` gets the constant's own scale;
//! - `1e3` is the numeric `1000` and `1.5e-3` is `0.0015`; `1e300`, beyond
//!   a 38-digit decimal, is a double precision constant (in PostgreSQL a
//!   numeric of 301 digits, which weir cannot hold);
//! - `INTERVAL '1 day 02:00:00'` and `'-1 days +02:00:00'::interval`, the
//!   forms PostgreSQL writes, read as it reads them
//!   ([`crate::interval_input`]), spelled out for Arrow's parser.

use std::ops::ControlFlow;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, AsArray, StringArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{IntervalMonthDayNano, IntervalMonthDayNanoType, IntervalUnit};

use datafusion::sql::sqlparser::ast::{
    CastKind, DataType, ExactNumberInfo, Expr, Statement, UnaryOperator, Value, VisitMut,
    VisitorMut,
};

use crate::interval_input::parse_interval;

/// Rewrites the typed constants of `statement` described above.
pub fn rewrite_constants(statement: &mut Statement) {
    let _ = statement.visit(&mut TypedConstants);
}

struct TypedConstants;

impl VisitorMut for TypedConstants {
    type Break = ();

    fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        match expr {
            Expr::Cast {
                expr: value,
                data_type:
                    data_type @ (DataType::Numeric(ExactNumberInfo::None)
                    | DataType::Decimal(ExactNumberInfo::None)),
                ..
            } => {
                if let Some(scale) = constant_scale(value) {
                    *data_type = DataType::Numeric(ExactNumberInfo::PrecisionAndScale(38, scale));
                }
            }
            Expr::Cast {
                expr: value,
                data_type: DataType::Interval { .. },
                ..
            } => spell_out_interval(value),
            Expr::Value(value) => {
                if let Value::Number(text, _) = &value.value
                    && let Some(typed) = exponent_constant(text)
                {
                    *expr = typed;
                }
            }
            Expr::Interval(interval)
                if interval.leading_field.is_none() && interval.last_field.is_none() =>
            {
                spell_out_interval(&mut interval.value)
            }
            _ => {}
        }
        ControlFlow::Continue(())
    }
}

/// A number in exponent form as PostgreSQL types it: a numeric of its
/// plain digits (`1e3` is `1000.`, `1.5e-3` is `0.0015`; Arrow would make
/// `1e3` a decimal of scale -3, which casts to float inexactly), or, when
/// that needs more than a 38-digit decimal (`1e300`), a double precision.
fn exponent_constant(text: &str) -> Option<Expr> {
    let (mantissa, exponent) = text.split_once(['e', 'E'])?;
    let exponent: i64 = exponent.parse().ok()?;
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = format!("{whole}{fraction}");
    let point = whole.len() as i64 + exponent;
    let scale = (fraction.len() as i64 - exponent).max(0);
    let cast = |text: String, data_type: DataType| Expr::Cast {
        kind: CastKind::DoubleColon,
        expr: Box::new(Expr::value(Value::SingleQuotedString(text))),
        data_type,
        array: false,
        format: None,
    };
    if point.max(0) + scale > 38 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Some(cast(text.to_string(), DataType::DoublePrecision));
    }
    // A trailing point keeps a whole number a numeric (of scale 0).
    let plain = if point <= 0 {
        format!("0.{}{digits}", "0".repeat(point.unsigned_abs() as usize))
    } else if point as usize >= digits.len() {
        format!("{digits}{}.", "0".repeat(point as usize - digits.len()))
    } else {
        let (int, frac) = digits.split_at(point as usize);
        format!("{int}.{frac}")
    };
    Some(Expr::value(Value::Number(plain, false)))
}

fn arrow_interval(text: &str) -> Option<IntervalMonthDayNano> {
    let text: ArrayRef = Arc::new(StringArray::from(vec![text]));
    let interval = datafusion::arrow::datatypes::DataType::Interval(IntervalUnit::MonthDayNano);
    let parsed = cast(&text, &interval).ok()?;
    Some(parsed.as_primitive::<IntervalMonthDayNanoType>().value(0))
}

fn string_constant(expr: &Expr) -> Option<&str> {
    match expr {
        Expr::Value(value) => match &value.value {
            Value::SingleQuotedString(text) => Some(text),
            _ => None,
        },
        _ => None,
    }
}

/// An interval string in PostgreSQL's syntax that Arrow's parser refuses
/// or reads otherwise, as Arrow reads it.
fn spell_out_interval(value: &mut Expr) {
    let Some(text) = string_constant(value) else {
        return;
    };
    let Some(interval) = parse_interval(text) else {
        return;
    };
    if arrow_interval(text) == Some(interval) {
        return;
    }
    *value = Expr::value(Value::SingleQuotedString(format!(
        "{} months {} days {} nanoseconds",
        interval.months, interval.days, interval.nanoseconds
    )));
}

/// The digits after the point of a plain decimal constant (`-1.50`,
/// `'12'`); `None` for anything else, which keeps the default scale.
fn constant_scale(expr: &Expr) -> Option<i64> {
    let text = match expr {
        Expr::Value(value) => match &value.value {
            Value::Number(text, _) | Value::SingleQuotedString(text) => text.trim(),
            _ => return None,
        },
        Expr::UnaryOp {
            op: UnaryOperator::Minus | UnaryOperator::Plus,
            expr,
        } => return constant_scale(expr),
        _ => return None,
    };
    let unsigned = text.strip_prefix(['-', '+']).unwrap_or(text);
    let (whole, fraction) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let plain = digits(whole) && digits(fraction) && !(whole.is_empty() && fraction.is_empty());
    let scale = fraction.len();
    (plain && whole.len() + scale <= 38).then_some(scale as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rewrite_tests::rewritten_by;

    fn rewritten(sql: &str) -> String {
        rewritten_by(rewrite_constants, sql)
    }

    #[test]
    fn constants_keep_their_scale() {
        assert_eq!(
            rewritten("SELECT 123::numeric, 1.10::NUMERIC, CAST('-2.5' AS DECIMAL)"),
            "SELECT 123::NUMERIC(38,0), 1.10::NUMERIC(38,2), CAST('-2.5' AS NUMERIC(38,1))"
        );
        assert_eq!(
            rewritten("SELECT 1e3::numeric, 'x'::numeric, a::numeric, 1.5::numeric(5,1)"),
            "SELECT 1000.::NUMERIC(38,0), 'x'::NUMERIC, a::NUMERIC, 1.5::NUMERIC(5,1)"
        );
    }

    #[test]
    fn exponents_are_plain_numerics_or_doubles() {
        assert_eq!(
            rewritten("SELECT 1e300, 1.5e-3, 1e3, 2.5E-60, 12.5e1"),
            "SELECT '1e300'::DOUBLE PRECISION, 0.0015, 1000., '2.5E-60'::DOUBLE PRECISION, 125."
        );
    }

    #[test]
    fn postgres_intervals_are_spelled_out() {
        assert_eq!(
            rewritten("SELECT INTERVAL '-1 days +02:00:00', '1 mon'::interval, INTERVAL '1' DAY"),
            "SELECT INTERVAL '0 months -1 days 7200000000000 nanoseconds', '1 mon'::INTERVAL, \
             INTERVAL '1' DAY"
        );
    }
}
