//! PostgreSQL's text output for the types whose text arrow-pg writes
//! differently: floats (`1`, `1e+20`, `Infinity`, not `1.0`, `1e20`, `inf`),
//! times (`2024-01-01 00:00:00`, a fraction only when there is one),
//! intervals (`00:00:01.5`, `-1 days +02:00:00`), arrays (`{1,"b c",NULL}`)
//! and numerics of more than 28 digits, which arrow-pg cannot write.
//! Clients and test suites written against PostgreSQL compare these texts.

use std::fmt::Write;

use chrono::{DateTime, NaiveDateTime, NaiveTime, Timelike};
use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::datatypes::{
    DataType, Decimal128Type, Float32Type, Float64Type, IntervalMonthDayNano,
    IntervalMonthDayNanoType, IntervalUnit, Time32MillisecondType, Time32SecondType,
    Time64MicrosecondType, Time64NanosecondType, TimeUnit, TimestampMicrosecondType,
    TimestampMillisecondType, TimestampNanosecondType, TimestampSecondType,
};
use datafusion::arrow::util::display::array_value_to_string;

/// The text of `column[row]` as PostgreSQL writes it, for the types this
/// module covers; `None` for every other type (arrow-pg's text is right).
/// `extra_float_digits` is the session's parameter of that name.
pub fn pg_text(column: &ArrayRef, row: usize, extra_float_digits: i8) -> Option<String> {
    Some(match column.data_type() {
        DataType::Float64 => float8_text(
            column.as_primitive::<Float64Type>().value(row),
            extra_float_digits,
        ),
        DataType::Float32 => float4_text(
            column.as_primitive::<Float32Type>().value(row),
            extra_float_digits,
        ),
        DataType::Timestamp(unit, zone) => {
            let nanos = timestamp_nanos(column, row, unit)?;
            let time = DateTime::from_timestamp_nanos(nanos).naive_utc();
            let mut text = datetime_text(&time);
            if zone.is_some() {
                // Times with a zone are shown in UTC, the only session time zone weir has.
                text.push_str("+00");
            }
            text
        }
        DataType::Time32(_) | DataType::Time64(_) => time_text(&time_of_day(column, row)?),
        DataType::Interval(IntervalUnit::MonthDayNano) => {
            interval_text(column.as_primitive::<IntervalMonthDayNanoType>().value(row))
        }
        // Every digit: arrow-pg's numeric text goes through a 28-digit decimal.
        DataType::Decimal128(..) => column.as_primitive::<Decimal128Type>().value_as_string(row),
        DataType::List(_) => array_text(&column.as_list::<i32>().value(row), extra_float_digits),
        _ => return None,
    })
}

/// An `int2vector` or `oidvector` (a list of integers) as PostgreSQL
/// writes one: its elements with a space between, `1 3`.
pub fn vector_text(column: &ArrayRef, row: usize) -> Option<String> {
    let elements = column.as_list_opt::<i32>()?.value(row);
    let texts: Vec<String> = (0..elements.len())
        .map(|i| array_value_to_string(&elements, i).unwrap_or_default())
        .collect();
    Some(texts.join(" "))
}

/// An array as PostgreSQL writes it: `{1,2,NULL}`, `{a,"b c",""}`.
fn array_text(elements: &ArrayRef, extra_float_digits: i8) -> String {
    let mut text = String::from("{");
    for i in 0..elements.len() {
        if i > 0 {
            text.push(',');
        }
        if elements.is_null(i) {
            text.push_str("NULL");
            continue;
        }
        let element = element_text(elements, i, extra_float_digits);
        text.push_str(&array_element(&element));
    }
    text.push('}');
    text
}

/// An element's text as an array literal holds it: quoted when it is
/// empty, reads as NULL, or holds a brace, comma, quote, backslash or
/// space, with quotes and backslashes escaped.
pub fn array_element(text: &str) -> String {
    let quote = text.is_empty()
        || text.eq_ignore_ascii_case("null")
        || text
            .chars()
            .any(|c| matches!(c, '{' | '}' | ',' | '"' | '\\') || c.is_whitespace());
    if !quote {
        return text.to_string();
    }
    let mut quoted = String::with_capacity(text.len() + 2);
    quoted.push('"');
    for c in text.chars() {
        if c == '"' || c == '\\' {
            quoted.push('\\');
        }
        quoted.push(c);
    }
    quoted.push('"');
    quoted
}

/// One array element's text, as it would be written alone.
fn element_text(elements: &ArrayRef, i: usize, extra_float_digits: i8) -> String {
    match elements.data_type() {
        DataType::Boolean => if elements.as_boolean().value(i) {
            "t"
        } else {
            "f"
        }
        .into(),
        DataType::Utf8 => elements.as_string::<i32>().value(i).to_string(),
        DataType::Binary => {
            let mut hex = String::from("\\x");
            for b in elements.as_binary::<i32>().value(i) {
                let _ = write!(hex, "{b:02x}");
            }
            hex
        }
        _ => pg_text(elements, i, extra_float_digits)
            .unwrap_or_else(|| array_value_to_string(elements, i).unwrap_or_default()),
    }
}

/// A float8 as PostgreSQL writes it.
pub fn float8_text(v: f64, extra_float_digits: i8) -> String {
    float_text(v, (format!("{v:e}"), v.to_string()), 15, extra_float_digits)
}

/// A float4 as PostgreSQL writes it.
pub fn float4_text(v: f32, extra_float_digits: i8) -> String {
    let shortest = (format!("{v:e}"), v.to_string());
    float_text(f64::from(v), shortest, 6, extra_float_digits)
}

/// A float's shortest exact digits (`extra_float_digits` > 0, the default
/// since PostgreSQL 12) or `digits + extra_float_digits` significant digits,
/// in `%g` style: exponential below 1e-4 and from 10^`digits` up. `shortest`
/// is the value's shortest digits as Rust writes them, with and without an
/// exponent, taken from the float's own type (a float4's digits are its own,
/// not those of its widened float8).
fn float_text(v: f64, shortest: (String, String), digits: i32, extra_float_digits: i8) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    if extra_float_digits > 0 {
        let (exponential, fixed) = shortest;
        let (mantissa, exponent) = split_exponent(&exponential);
        return if exponent < -4 || exponent >= digits {
            exponent_text(mantissa, exponent)
        } else {
            fixed
        };
    }
    let precision = (digits + i32::from(extra_float_digits)).max(1);
    let exponential = format!("{:.*e}", precision as usize - 1, v);
    let (mantissa, exponent) = split_exponent(&exponential);
    if exponent < -4 || exponent >= precision {
        exponent_text(trim_fraction(mantissa), exponent)
    } else {
        let decimals = (precision - 1 - exponent) as usize;
        trim_fraction(&format!("{v:.decimals$}")).to_string()
    }
}

/// `1.5e-7` as (`1.5`, -7).
fn split_exponent(exponential: &str) -> (&str, i32) {
    match exponential.split_once('e') {
        Some((mantissa, exponent)) => (mantissa, exponent.parse().unwrap_or(0)),
        None => (exponential, 0),
    }
}

/// `1.5`, -7 as `1.5e-07`: a sign and at least two exponent digits, as C's `%e`.
fn exponent_text(mantissa: &str, exponent: i32) -> String {
    let sign = if exponent < 0 { '-' } else { '+' };
    format!("{mantissa}e{sign}{:02}", exponent.abs())
}

/// `1.500` as `1.5`, `2.000` as `2`.
fn trim_fraction(text: &str) -> &str {
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.')
    } else {
        text
    }
}

fn timestamp_nanos(column: &ArrayRef, row: usize, unit: &TimeUnit) -> Option<i64> {
    match unit {
        TimeUnit::Second => column
            .as_primitive::<TimestampSecondType>()
            .value(row)
            .checked_mul(1_000_000_000),
        TimeUnit::Millisecond => column
            .as_primitive::<TimestampMillisecondType>()
            .value(row)
            .checked_mul(1_000_000),
        TimeUnit::Microsecond => column
            .as_primitive::<TimestampMicrosecondType>()
            .value(row)
            .checked_mul(1_000),
        TimeUnit::Nanosecond => Some(column.as_primitive::<TimestampNanosecondType>().value(row)),
    }
}

fn time_of_day(column: &ArrayRef, row: usize) -> Option<NaiveTime> {
    let nanos: i64 = match column.data_type() {
        DataType::Time32(TimeUnit::Second) => {
            i64::from(column.as_primitive::<Time32SecondType>().value(row)) * 1_000_000_000
        }
        DataType::Time32(_) => {
            i64::from(column.as_primitive::<Time32MillisecondType>().value(row)) * 1_000_000
        }
        DataType::Time64(TimeUnit::Microsecond) => {
            column.as_primitive::<Time64MicrosecondType>().value(row) * 1_000
        }
        DataType::Time64(_) => column.as_primitive::<Time64NanosecondType>().value(row),
        _ => return None,
    };
    let seconds = u32::try_from(nanos.div_euclid(1_000_000_000)).ok()?;
    let fraction = u32::try_from(nanos.rem_euclid(1_000_000_000)).ok()?;
    NaiveTime::from_num_seconds_from_midnight_opt(seconds, fraction)
}

/// `2024-01-01 12:00:00.5`: microseconds at most, trailing zeros dropped.
pub fn datetime_text(time: &NaiveDateTime) -> String {
    let mut text = time.format("%Y-%m-%d ").to_string();
    text.push_str(&time_text(&time.time()));
    text
}

/// `12:00:00.5`: microseconds at most, trailing zeros dropped.
pub fn time_text(time: &NaiveTime) -> String {
    let mut text = time.format("%H:%M:%S").to_string();
    push_fraction(&mut text, time.nanosecond() / 1_000);
    text
}

/// `.5` for 500000 microseconds, nothing for none.
fn push_fraction(text: &mut String, micros: u32) {
    if micros > 0 {
        let _ = write!(text, ".{micros:06}");
        let trimmed = text.trim_end_matches('0').len();
        text.truncate(trimmed);
    }
}

/// An interval in PostgreSQL's `postgres` style: `1 year 2 mons 3 days
/// 04:05:06.5`; a field after a negative one carries its `+`; the time is
/// shown when non-zero or when it is all there is; microseconds at most.
fn interval_text(interval: IntervalMonthDayNano) -> String {
    interval_parts_text(interval.months, interval.days, interval.nanoseconds)
}

/// [`interval_text`] of an interval given by its parts.
pub fn interval_parts_text(months: i32, days: i32, nanoseconds: i64) -> String {
    let interval = IntervalMonthDayNano::new(months, days, nanoseconds);
    let mut text = String::new();
    let mut previous_negative = false;
    let mut fields = [
        (i64::from(interval.months / 12), "year"),
        (i64::from(interval.months % 12), "mon"),
        (i64::from(interval.days), "day"),
    ]
    .into_iter()
    .filter(|(value, _)| *value != 0)
    .peekable();
    let only_time = fields.peek().is_none();
    for (value, unit) in fields {
        if !text.is_empty() {
            text.push(' ');
        }
        let plus = if previous_negative && value > 0 {
            "+"
        } else {
            ""
        };
        let plural = if value == 1 { "" } else { "s" };
        let _ = write!(text, "{plus}{value} {unit}{plural}");
        previous_negative = value < 0;
    }
    let micros = interval.nanoseconds / 1_000;
    if only_time || micros != 0 {
        if !text.is_empty() {
            text.push(' ');
        }
        let sign = match micros {
            m if m < 0 => "-",
            _ if previous_negative => "+",
            _ => "",
        };
        let magnitude = micros.unsigned_abs();
        let seconds = magnitude / 1_000_000;
        let _ = write!(
            text,
            "{sign}{:02}:{:02}:{:02}",
            seconds / 3600,
            seconds / 60 % 60,
            seconds % 60
        );
        push_fraction(&mut text, (magnitude % 1_000_000) as u32);
    }
    text
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{
        Float32Array, Float64Array, IntervalMonthDayNanoArray, Time64MicrosecondArray,
        TimestampMicrosecondArray,
    };

    use super::*;

    fn float8(v: f64) -> String {
        let column: ArrayRef = Arc::new(Float64Array::from(vec![v]));
        pg_text(&column, 0, 1).unwrap()
    }

    #[test]
    fn floats_read_as_postgres_writes_them() {
        for (v, text) in [
            (1.0, "1"),
            (-2.5, "-2.5"),
            (0.1, "0.1"),
            (1e20, "1e+20"),
            (1e15, "1e+15"),
            (1e14, "100000000000000"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (123456789012345678.0, "1.2345678901234568e+17"),
            (f64::INFINITY, "Infinity"),
            (f64::NEG_INFINITY, "-Infinity"),
            (f64::NAN, "NaN"),
            (0.0, "0"),
            (-0.0, "-0"),
        ] {
            assert_eq!(float8(v), text, "{v}");
        }
        let column: ArrayRef = Arc::new(Float32Array::from(vec![0.1f32, 1e6, 123456.0]));
        let texts: Vec<String> = (0..3).map(|i| pg_text(&column, i, 1).unwrap()).collect();
        assert_eq!(texts, ["0.1", "1e+06", "123456"]);
    }

    #[test]
    fn fewer_float_digits_round() {
        let column: ArrayRef = Arc::new(Float64Array::from(vec![0.1 + 0.2, 1e20, 2.0]));
        let texts: Vec<String> = (0..3).map(|i| pg_text(&column, i, 0).unwrap()).collect();
        assert_eq!(texts, ["0.3", "1e+20", "2"]);
    }

    #[test]
    fn arrays_read_as_postgres_writes_them() {
        use datafusion::arrow::array::ListArray;
        use datafusion::arrow::datatypes::Int32Type;
        let ints: ArrayRef = Arc::new(ListArray::from_iter_primitive::<Int32Type, _, _>(vec![
            Some(vec![Some(1), None, Some(-3)]),
            Some(vec![]),
        ]));
        assert_eq!(pg_text(&ints, 0, 1).unwrap(), "{1,NULL,-3}");
        assert_eq!(pg_text(&ints, 1, 1).unwrap(), "{}");
        let texts = datafusion::arrow::array::StringArray::from(vec![
            Some("a"),
            Some("b c"),
            Some(""),
            Some("NULL"),
            Some("q\"\\"),
        ]);
        let field = Arc::new(datafusion::arrow::datatypes::Field::new_list_field(
            DataType::Utf8,
            true,
        ));
        let list: ArrayRef = Arc::new(ListArray::new(
            field,
            datafusion::arrow::buffer::OffsetBuffer::from_lengths([5]),
            Arc::new(texts),
            None,
        ));
        assert_eq!(
            pg_text(&list, 0, 1).unwrap(),
            r#"{a,"b c","","NULL","q\"\\"}"#
        );
    }

    #[test]
    fn intervals_read_as_postgres_writes_them() {
        let second = 1_000_000_000;
        for ((months, days, nanos), text) in [
            ((0, 0, 0), "00:00:00"),
            ((0, 1, 2 * 3600 * second), "1 day 02:00:00"),
            ((3, 0, 0), "3 mons"),
            ((14, 0, 0), "1 year 2 mons"),
            ((0, -1, 0), "-1 days"),
            ((0, 0, 1_500_000_000), "00:00:01.5"),
            ((0, -1, 2 * 3600 * second), "-1 days +02:00:00"),
            ((-12, 3, -second), "-1 years +3 days -00:00:01"),
            ((0, 0, 100 * 3600 * second), "100:00:00"),
        ] {
            let column: ArrayRef = Arc::new(IntervalMonthDayNanoArray::from(vec![
                IntervalMonthDayNano::new(months, days, nanos),
            ]));
            assert_eq!(pg_text(&column, 0, 1).unwrap(), text);
        }
    }

    #[test]
    fn times_show_a_fraction_only_when_there_is_one() {
        let column: ArrayRef = Arc::new(TimestampMicrosecondArray::from(vec![
            1_704_067_200_000_000,
            1_704_067_200_500_000,
            1_704_067_200_000_001,
        ]));
        let texts: Vec<String> = (0..3).map(|i| pg_text(&column, i, 1).unwrap()).collect();
        assert_eq!(
            texts,
            [
                "2024-01-01 00:00:00",
                "2024-01-01 00:00:00.5",
                "2024-01-01 00:00:00.000001"
            ]
        );
        let zoned: ArrayRef = Arc::new(
            TimestampMicrosecondArray::from(vec![1_704_067_200_000_000]).with_timezone("UTC"),
        );
        assert_eq!(pg_text(&zoned, 0, 1).unwrap(), "2024-01-01 00:00:00+00");
        let time: ArrayRef = Arc::new(Time64MicrosecondArray::from(vec![3_723_250_000]));
        assert_eq!(pg_text(&time, 0, 1).unwrap(), "01:02:03.25");
    }
}
