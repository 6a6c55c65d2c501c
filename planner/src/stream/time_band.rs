//! Interval joins from their SQL shape: the band a join's filter puts the
//! two sides' times in, as in Nexmark q7's
//! `B.date_time BETWEEN B1.date_time - INTERVAL '10' SECOND AND B1.date_time`.
//!
//! The filter's top-level conjuncts are read as comparisons of a left time
//! column and a right time column, each plus or minus a constant interval
//! (`BETWEEN` counts as two). Those of the first such pair of columns
//! bound `left.t - right.t` below and above; with both bounds, the join
//! can forget rows the watermarks put out of reach (see the executor's
//! hash join). Strict comparisons bound as their non-strict forms do, a
//! looser band that forgets a little later. An equality of two time
//! columns among the join keys (a window join on `window_start`) is the
//! band [0, 0].

use datafusion::arrow::datatypes::{DataType, TimeUnit};
use datafusion::common::{Column, DFSchema, ScalarValue};
use datafusion::logical_expr::utils::split_conjunction;
use datafusion::logical_expr::{Between, BinaryExpr, Expr, Operator};
use weir_executor::operators::TimeBand;

const NANOS_PER_DAY: i128 = 86_400_000_000_000;

/// The band a join of `left` and `right` puts their times in, by its
/// equalities `on` and its `filter`, if they bound them from both sides.
pub(super) fn time_band(
    on: &[(Expr, Expr)],
    filter: Option<&Expr>,
    left: &DFSchema,
    right: &DFSchema,
) -> Option<TimeBand> {
    // An equality of two times (a window join on window_start) is the band
    // [0, 0]; only times, so that the band is in a time unit.
    let is_time = |expr: &Expr, schema: &DFSchema| match expr {
        Expr::Column(c) => schema
            .index_of_column(c)
            .is_ok_and(|i| matches!(schema.field(i).data_type(), DataType::Timestamp(..))),
        _ => false,
    };
    let mut comparisons: Vec<(&Expr, Operator, &Expr)> = Vec::new();
    for (l, r) in on {
        if is_time(l, left) && is_time(r, right) {
            comparisons.push((l, Operator::GtEq, r));
            comparisons.push((l, Operator::LtEq, r));
        }
    }
    for conjunct in filter.map(split_conjunction).unwrap_or_default() {
        match conjunct {
            Expr::BinaryExpr(BinaryExpr { left, op, right }) => {
                comparisons.push((left.as_ref(), *op, right.as_ref()));
            }
            Expr::Between(Between {
                expr,
                negated: false,
                low,
                high,
            }) => {
                comparisons.push((expr.as_ref(), Operator::GtEq, low.as_ref()));
                comparisons.push((expr.as_ref(), Operator::LtEq, high.as_ref()));
            }
            _ => {}
        }
    }
    let mut columns: Option<(usize, usize)> = None;
    let (mut lower, mut upper): (Option<i128>, Option<i128>) = (None, None);
    for (a, op, b) in comparisons {
        let (Some((a, a_offset)), Some((b, b_offset))) = (shifted_column(a), shifted_column(b))
        else {
            continue;
        };
        // As `left + l op right + r`, that is `left - right op r - l`.
        let (pair, op, difference) = match (
            left.index_of_column(&a).ok(),
            right.index_of_column(&b).ok(),
            right.index_of_column(&a).ok(),
            left.index_of_column(&b).ok(),
        ) {
            (Some(l), Some(r), _, _) => ((l, r), op, b_offset - a_offset),
            (_, _, Some(r), Some(l)) => ((l, r), op.swap()?, a_offset - b_offset),
            _ => continue,
        };
        if *columns.get_or_insert(pair) != pair {
            continue;
        }
        match op {
            Operator::Gt | Operator::GtEq => {
                lower = Some(lower.map_or(difference, |l| l.max(difference)));
            }
            Operator::Lt | Operator::LtEq => {
                upper = Some(upper.map_or(difference, |u| u.min(difference)));
            }
            _ => {}
        }
    }
    let (left_column, right_column) = columns?;
    let time = left.field(left_column).data_type();
    if time != right.field(right_column).data_type() {
        return None;
    }
    let per_unit: i128 = match time {
        DataType::Timestamp(TimeUnit::Second, _) => 1_000_000_000,
        DataType::Timestamp(TimeUnit::Millisecond, _) => 1_000_000,
        DataType::Timestamp(TimeUnit::Microsecond, _) => 1_000,
        DataType::Timestamp(TimeUnit::Nanosecond, _) => 1,
        _ => return None,
    };
    // Rounded outwards: the band may only grow.
    let lower = i64::try_from(lower?.div_euclid(per_unit)).ok()?;
    let upper = i64::try_from(-(-upper?).div_euclid(per_unit)).ok()?;
    (lower <= upper).then_some(TimeBand {
        left: left_column,
        right: right_column,
        lower,
        upper,
    })
}

/// `column`, `column + interval` or `column - interval`, with the interval
/// in nanoseconds.
fn shifted_column(expr: &Expr) -> Option<(Column, i128)> {
    match expr {
        Expr::Column(column) => Some((column.clone(), 0)),
        Expr::BinaryExpr(BinaryExpr { left, op, right }) => {
            let (Expr::Column(column), Expr::Literal(value, _)) = (left.as_ref(), right.as_ref())
            else {
                return None;
            };
            let nanos = interval_nanos(value)?;
            match op {
                Operator::Plus => Some((column.clone(), nanos)),
                Operator::Minus => Some((column.clone(), -nanos)),
                _ => None,
            }
        }
        _ => None,
    }
}

/// A fixed-length interval's nanoseconds (none for months, whose length
/// varies).
fn interval_nanos(value: &ScalarValue) -> Option<i128> {
    match value {
        ScalarValue::IntervalMonthDayNano(Some(v)) if v.months == 0 => {
            Some(i128::from(v.days) * NANOS_PER_DAY + i128::from(v.nanoseconds))
        }
        ScalarValue::IntervalDayTime(Some(v)) => {
            Some(i128::from(v.days) * NANOS_PER_DAY + i128::from(v.milliseconds) * 1_000_000)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::datatypes::{Field, Schema};
    use datafusion::logical_expr::{col, lit};
    use datafusion::scalar::ScalarValue;

    use super::*;

    fn schema(table: &str) -> DFSchema {
        let fields = vec![
            Field::new("id", DataType::Int64, false),
            Field::new("t", DataType::Timestamp(TimeUnit::Microsecond, None), false),
        ];
        DFSchema::try_from_qualified_schema(table, &Schema::new(fields)).unwrap()
    }

    fn seconds(n: i32) -> Expr {
        lit(ScalarValue::new_interval_mdn(
            0,
            0,
            i64::from(n) * 1_000_000_000,
        ))
    }

    fn band(filter: Expr) -> Option<(i64, i64)> {
        let (l, r) = (schema("l"), schema("r"));
        time_band(&[], Some(&filter), &l, &r).map(|b| {
            assert_eq!((b.left, b.right), (1, 1));
            (b.lower, b.upper)
        })
    }

    #[test]
    fn a_between_of_shifted_times_is_a_band() {
        // q7: l.t BETWEEN r.t - 10 s AND r.t
        let q7 = col("l.t").between(col("r.t") - seconds(10), col("r.t"));
        assert_eq!(band(q7), Some((-10_000_000, 0)));
        // Mirrored, strict, with another conjunct.
        let mirrored = col("r.t")
            .lt(col("l.t") + seconds(5))
            .and(col("r.t").gt_eq(col("l.t") - seconds(2)))
            .and(col("l.id").eq(lit(3)));
        assert_eq!(band(mirrored), Some((-5_000_000, 2_000_000)));
    }

    #[test]
    fn equal_times_among_the_join_keys_are_a_band_of_zero() {
        let (l, r) = (schema("l"), schema("r"));
        let on = [(col("l.id"), col("r.id")), (col("l.t"), col("r.t"))];
        let band = time_band(&on, None, &l, &r).unwrap();
        assert_eq!(
            (band.left, band.right, band.lower, band.upper),
            (1, 1, 0, 0)
        );
        assert!(time_band(&on[..1], None, &l, &r).is_none());
    }

    #[test]
    fn one_bound_or_no_times_is_no_band() {
        assert_eq!(band(col("l.t").gt_eq(col("r.t"))), None);
        assert_eq!(band(col("l.id").lt(col("r.id"))), None);
        assert_eq!(band(col("l.t").lt(col("r.t") * lit(2))), None);
    }
}
