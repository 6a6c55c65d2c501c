//! Interval input as PostgreSQL reads it, its own output form included:
//! `1 year 2 mons 3 days 04:05:06.5`, `-1 days +02:00:00`, `1.5 days`,
//! `2 hours ago`, `@ 1 minute`. Arrow's parser takes only part of that, so
//! a cast of text to an interval goes through `pg_interval(text)`
//! ([`crate::pg_casts`]), which reads this grammar and leaves whatever it
//! does not know to Arrow (and its error).

use std::sync::Arc;

use crate::udf_shape::in_shape_of_args;
use datafusion::arrow::array::{Array, ArrayRef, AsArray, IntervalMonthDayNanoBuilder};
use datafusion::arrow::compute::{CastOptions, cast, cast_with_options};
use datafusion::arrow::datatypes::{DataType, IntervalMonthDayNano, IntervalUnit};
use datafusion::common::Result;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

const INTERVAL: DataType = DataType::Interval(IntervalUnit::MonthDayNano);
const NANOS_PER_SECOND: f64 = 1e9;
const NANOS_PER_DAY: f64 = 86_400.0 * NANOS_PER_SECOND;

/// `pg_interval(text)`.
pub fn pg_interval_function() -> ScalarUDF {
    ScalarUDF::from(PgInterval {
        signature: Signature::any(1, Volatility::Immutable),
    })
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct PgInterval {
    signature: Signature,
}

impl ScalarUDFImpl for PgInterval {
    fn name(&self) -> &str {
        "pg_interval"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(INTERVAL)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        in_shape_of_args(&args.args, |values| {
            let intervals = intervals(&cast(&values[0], &DataType::Utf8)?)?;
            Ok(intervals)
        })
    }
}

fn intervals(texts: &ArrayRef) -> Result<ArrayRef> {
    let texts = texts.as_string::<i32>();
    let mut out = IntervalMonthDayNanoBuilder::with_capacity(texts.len());
    for row in 0..texts.len() {
        if texts.is_null(row) {
            out.append_null();
            continue;
        }
        let text = texts.value(row);
        match parse_interval(text) {
            Some(interval) => out.append_value(interval),
            None => {
                // Arrow's reading, or its error.
                let one: ArrayRef =
                    Arc::new(datafusion::arrow::array::StringArray::from(vec![text]));
                // Not `cast`, which reads what it cannot as NULL.
                let strict = CastOptions {
                    safe: false,
                    ..CastOptions::default()
                };
                let parsed = cast_with_options(&one, &INTERVAL, &strict)?;
                out.append_value(
                    parsed
                        .as_primitive::<datafusion::arrow::datatypes::IntervalMonthDayNanoType>()
                        .value(0),
                );
            }
        }
    }
    Ok(Arc::new(out.finish()))
}

/// Months, days and nanoseconds, kept apart as PostgreSQL keeps them; a
/// fraction of a month spills into days (30 each), of a day into time.
#[derive(Default)]
struct Parts {
    months: f64,
    days: f64,
    nanos: f64,
}

/// `text` in PostgreSQL's interval syntax; `None` when it is not.
pub fn parse_interval(text: &str) -> Option<IntervalMonthDayNano> {
    let mut parts = Parts::default();
    let mut words = text.split_whitespace().peekable();
    if words.peek() == Some(&"@") {
        words.next();
    }
    let mut any = false;
    let mut ago = false;
    while let Some(word) = words.next() {
        if word.eq_ignore_ascii_case("ago") {
            ago = true;
            if words.next().is_some() {
                return None;
            }
            break;
        }
        if word.contains(':') {
            parts.nanos += clock_nanos(word)?;
            any = true;
            continue;
        }
        let (number, unit) = split_number(word);
        let amount: f64 = number.parse().ok()?;
        let unit = match unit {
            "" => match words.peek() {
                Some(next) if unit_scale(next).is_some() => words.next()?,
                _ => "second",
            },
            unit => unit,
        };
        let (months, days, nanos) = unit_scale(unit)?;
        parts.months += amount * months;
        parts.days += amount * days;
        parts.nanos += amount * nanos;
        any = true;
    }
    if !any {
        return None;
    }
    let sign = if ago { -1.0 } else { 1.0 };
    let months = parts.months.trunc();
    let days = parts.days + (parts.months - months) * 30.0;
    let whole_days = days.trunc();
    let nanos = parts.nanos + (days - whole_days) * NANOS_PER_DAY;
    let micros = (nanos / 1_000.0).round();
    Some(IntervalMonthDayNano::new(
        (sign * months) as i32,
        (sign * whole_days) as i32,
        (sign * micros) as i64 * 1_000,
    ))
}

/// `-1.5days` as (`-1.5`, `days`).
fn split_number(word: &str) -> (&str, &str) {
    let end = word
        .char_indices()
        .find(|&(i, c)| !(c.is_ascii_digit() || c == '.' || ((c == '-' || c == '+') && i == 0)))
        .map_or(word.len(), |(i, _)| i);
    word.split_at(end)
}

/// `[+-]hh:mm[:ss[.fraction]]` in nanoseconds.
fn clock_nanos(word: &str) -> Option<f64> {
    let (negative, clock) = match word.as_bytes().first()? {
        b'-' => (true, &word[1..]),
        b'+' => (false, &word[1..]),
        _ => (false, word),
    };
    let mut fields = clock.split(':');
    let hours: f64 = fields.next()?.parse().ok()?;
    let minutes: f64 = fields.next()?.parse().ok()?;
    let seconds: f64 = match fields.next() {
        Some(s) => s.parse().ok()?,
        None => 0.0,
    };
    if fields.next().is_some() || !hours.is_finite() {
        return None;
    }
    let nanos = ((hours * 60.0 + minutes) * 60.0 + seconds) * NANOS_PER_SECOND;
    Some(if negative { -nanos } else { nanos })
}

/// What one of `unit` is, in (months, days, nanoseconds).
fn unit_scale(unit: &str) -> Option<(f64, f64, f64)> {
    let second = NANOS_PER_SECOND;
    Some(match unit.to_ascii_lowercase().as_str() {
        "microsecond" | "microseconds" | "us" | "usec" | "usecs" => (0.0, 0.0, 1e3),
        "millisecond" | "milliseconds" | "ms" | "msec" | "msecs" => (0.0, 0.0, 1e6),
        "second" | "seconds" | "s" | "sec" | "secs" => (0.0, 0.0, second),
        "minute" | "minutes" | "m" | "min" | "mins" => (0.0, 0.0, 60.0 * second),
        "hour" | "hours" | "h" | "hr" | "hrs" => (0.0, 0.0, 3600.0 * second),
        "day" | "days" | "d" => (0.0, 1.0, 0.0),
        "week" | "weeks" | "w" => (0.0, 7.0, 0.0),
        "month" | "months" | "mon" | "mons" => (1.0, 0.0, 0.0),
        "year" | "years" | "y" | "yr" | "yrs" => (12.0, 0.0, 0.0),
        "decade" | "decades" => (120.0, 0.0, 0.0),
        "century" | "centuries" => (1200.0, 0.0, 0.0),
        "millennium" | "millennia" | "millenniums" => (12000.0, 0.0, 0.0),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reads(text: &str) -> (i32, i32, i64) {
        let i = parse_interval(text).unwrap_or_else(|| panic!("{text}"));
        (i.months, i.days, i.nanoseconds)
    }

    #[test]
    fn postgres_output_reads_back() {
        let hour = 3_600_000_000_000;
        assert_eq!(
            reads("1 year 2 mons 3 days 04:05:06.5"),
            (14, 3, 4 * hour + 306_500_000_000)
        );
        assert_eq!(reads("-1 days +02:00:00"), (0, -1, 2 * hour));
        assert_eq!(
            reads("-1 years +3 days -00:00:01"),
            (-12, 3, -1_000_000_000)
        );
        assert_eq!(reads("00:00:01.5"), (0, 0, 1_500_000_000));
        assert_eq!(reads("100:00:00"), (0, 0, 100 * hour));
    }

    #[test]
    fn units_fractions_and_ago() {
        let hour = 3_600_000_000_000;
        assert_eq!(reads("1 day 2 hours"), (0, 1, 2 * hour));
        assert_eq!(reads("1.5 days"), (0, 1, 12 * hour));
        assert_eq!(reads("1.5 months"), (1, 15, 0));
        assert_eq!(reads("2 hours ago"), (0, 0, -2 * hour));
        assert_eq!(reads("@ 3 mins"), (0, 0, 180_000_000_000));
        assert_eq!(reads("90"), (0, 0, 90_000_000_000));
        assert_eq!(reads("2weeks"), (0, 14, 0));
        assert!(parse_interval("P1Y").is_none());
        assert!(parse_interval("1 fortnight").is_none());
        assert!(parse_interval("").is_none());
    }
}
