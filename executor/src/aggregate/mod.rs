//! Aggregate calls with retraction, for the hash aggregate operator.
//!
//! Each call keeps a few partial values in its group's state row:
//! `count` a count of non-null arguments, `sum` and `avg` a running sum
//! (in a wide type: Int64, UInt64, Float64 or Decimal128(38, s)) and that
//! count. Aggregates that cannot be undone from a partial value — `min`,
//! `max`, `bool_and`, `bool_or`, `string_agg` — and every `DISTINCT` call
//! keep a multiset of their argument per group in a table of their own,
//! so deleting the current extreme finds the next one.

mod state_ttl;
mod window_close;

pub use state_ttl::GroupExpiry;
pub use window_close::WindowClose;

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field};
use datafusion::common::ScalarValue;
use datafusion::error::{DataFusionError, Result};
use datafusion::physical_expr::PhysicalExpr;

/// The aggregate functions weir maintains incrementally.
#[derive(Debug, Clone, PartialEq)]
pub enum AggKind {
    Count,
    Sum,
    Avg,
    Min,
    Max,
    BoolAnd,
    BoolOr,
    StringAgg { delimiter: String },
}

impl AggKind {
    /// The kind for a DataFusion aggregate function name, if maintained.
    pub fn from_name(name: &str) -> Option<AggKind> {
        Some(match name {
            "count" => AggKind::Count,
            "sum" => AggKind::Sum,
            "avg" | "mean" => AggKind::Avg,
            "min" => AggKind::Min,
            "max" => AggKind::Max,
            "bool_and" => AggKind::BoolAnd,
            "bool_or" => AggKind::BoolOr,
            "string_agg" => AggKind::StringAgg {
                delimiter: String::new(),
            },
            _ => return None,
        })
    }

    /// Whether the result is read from the multiset of values.
    pub fn reads_multiset(&self) -> bool {
        matches!(
            self,
            AggKind::Min
                | AggKind::Max
                | AggKind::BoolAnd
                | AggKind::BoolOr
                | AggKind::StringAgg { .. }
        )
    }

    /// Whether the multiset is ordered from the largest value.
    /// Keeps its current extreme among the partials, so only deleting
    /// that extreme has to read the multiset.
    pub fn keeps_extreme(&self) -> bool {
        matches!(
            self,
            AggKind::Min | AggKind::Max | AggKind::BoolAnd | AggKind::BoolOr
        )
    }

    /// Whether `value` beats the current extreme `than`.
    pub fn better(&self, value: &ScalarValue, than: &ScalarValue) -> bool {
        if than.is_null() {
            return true;
        }
        let order = value.partial_cmp(than);
        if self.descending() {
            order == Some(std::cmp::Ordering::Greater)
        } else {
            order == Some(std::cmp::Ordering::Less)
        }
    }

    pub fn descending(&self) -> bool {
        matches!(self, AggKind::Max | AggKind::BoolOr)
    }
}

/// One aggregate call of a query.
#[derive(Debug, Clone)]
pub struct AggCall {
    pub kind: AggKind,
    /// `None` for `count(*)`.
    pub arg: Option<Arc<dyn PhysicalExpr>>,
    pub distinct: bool,
    /// `FILTER (WHERE ...)`.
    pub filter: Option<Arc<dyn PhysicalExpr>>,
    pub output: Field,
}

/// The type partial sums are kept in.
fn sum_type(arg: &DataType) -> DataType {
    match arg {
        DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64 => DataType::Int64,
        DataType::UInt8 | DataType::UInt16 | DataType::UInt32 | DataType::UInt64 => {
            DataType::UInt64
        }
        DataType::Float16 | DataType::Float32 | DataType::Float64 => DataType::Float64,
        DataType::Decimal128(_, s) => DataType::Decimal128(38, *s),
        other => other.clone(),
    }
}

impl AggCall {
    pub fn needs_multiset(&self) -> bool {
        self.distinct || self.kind.reads_multiset()
    }

    fn arg_type(&self, input: &datafusion::arrow::datatypes::Schema) -> Result<DataType> {
        match &self.arg {
            Some(arg) => arg.data_type(input),
            None => Ok(DataType::Int64),
        }
    }

    /// The columns of this call's partial values in the group state row.
    pub fn partial_fields(
        &self,
        index: usize,
        input: &datafusion::arrow::datatypes::Schema,
    ) -> Result<Vec<Field>> {
        let count = Field::new(format!("_count_{index}"), DataType::Int64, false);
        Ok(match self.kind {
            AggKind::Count => vec![count],
            AggKind::Min | AggKind::Max | AggKind::BoolAnd | AggKind::BoolOr => vec![Field::new(
                format!("_extreme_{index}"),
                self.arg_type(input)?,
                true,
            )],
            AggKind::Sum | AggKind::Avg => vec![
                Field::new(
                    format!("_sum_{index}"),
                    sum_type(&self.arg_type(input)?),
                    true,
                ),
                count,
            ],
            _ => Vec::new(),
        })
    }

    /// Partial values for a group with no rows.
    pub fn empty_partials(
        &self,
        input: &datafusion::arrow::datatypes::Schema,
    ) -> Result<Vec<ScalarValue>> {
        Ok(match self.kind {
            AggKind::Count => vec![ScalarValue::Int64(Some(0))],
            AggKind::Min | AggKind::Max | AggKind::BoolAnd | AggKind::BoolOr => {
                vec![ScalarValue::try_from(&self.arg_type(input)?)?]
            }
            AggKind::Sum | AggKind::Avg => vec![
                ScalarValue::try_from(&sum_type(&self.arg_type(input)?))?,
                ScalarValue::Int64(Some(0)),
            ],
            _ => Vec::new(),
        })
    }

    /// Adds (`sign` 1) or retracts (`sign` -1) a non-null value (for
    /// `count(*)`, any value) from `partials`.
    pub fn apply(
        &self,
        partials: &mut [ScalarValue],
        value: &ScalarValue,
        sign: i64,
    ) -> Result<()> {
        match self.kind {
            AggKind::Count => add_count(&mut partials[0], sign),
            AggKind::Sum | AggKind::Avg => {
                let value = value.cast_to(&partials[0].data_type())?;
                partials[0] = match (&partials[0], sign > 0) {
                    (sum, _) if sum.is_null() => {
                        if sign > 0 {
                            value
                        } else {
                            value.arithmetic_negate()?
                        }
                    }
                    (sum, true) => sum.add(&value)?,
                    (sum, false) => sum.sub(&value)?,
                };
                add_count(&mut partials[1], sign)
            }
            _ => Ok(()),
        }
    }

    /// The call's result from its partial values, or for multiset kinds
    /// from `values`: the group's distinct values in multiset order, each
    /// with its multiplicity (only as many as the kind needs).
    pub fn result(
        &self,
        partials: &[ScalarValue],
        values: &[(ScalarValue, i64)],
    ) -> Result<ScalarValue> {
        let output = self.output.data_type();
        let null = || ScalarValue::try_from(output);
        match &self.kind {
            AggKind::Count => partials[0].cast_to(output),
            AggKind::Sum => {
                if count_of(&partials[1])? == 0 {
                    null()
                } else {
                    partials[0].cast_to(output)
                }
            }
            AggKind::Avg => average(&partials[0], count_of(&partials[1])?, output),
            AggKind::Min | AggKind::Max | AggKind::BoolAnd | AggKind::BoolOr => {
                partials[0].cast_to(output)
            }
            AggKind::StringAgg { delimiter } => {
                if values.is_empty() {
                    return null();
                }
                let mut parts = Vec::new();
                for (value, times) in values {
                    let text = value.to_string();
                    for _ in 0..*times {
                        parts.push(text.clone());
                    }
                }
                ScalarValue::Utf8(Some(parts.join(delimiter))).cast_to(output)
            }
        }
    }

    /// How many multiset entries [`AggCall::result`] needs: one for an
    /// extreme, all for `string_agg`.
    pub fn values_needed(&self) -> usize {
        match self.kind {
            AggKind::StringAgg { .. } => usize::MAX,
            _ => 1,
        }
    }
}

fn count_of(value: &ScalarValue) -> Result<i64> {
    match value {
        ScalarValue::Int64(Some(n)) => Ok(*n),
        other => Err(DataFusionError::Internal(format!(
            "aggregate count is {other:?}"
        ))),
    }
}

fn add_count(count: &mut ScalarValue, sign: i64) -> Result<()> {
    *count = ScalarValue::Int64(Some(count_of(count)? + sign));
    Ok(())
}

fn average(sum: &ScalarValue, count: i64, output: &DataType) -> Result<ScalarValue> {
    if count == 0 {
        return ScalarValue::try_from(output);
    }
    match (sum, output) {
        (ScalarValue::Decimal128(Some(raw), _, scale), DataType::Decimal128(p, s)) => {
            let shift = i32::from(*s) - i32::from(*scale);
            let scaled = if shift >= 0 {
                raw.checked_mul(10i128.pow(shift as u32))
            } else {
                Some(raw / 10i128.pow((-shift) as u32))
            };
            let scaled = scaled.ok_or_else(|| {
                DataFusionError::Execution("numeric value out of range in avg".into())
            })?;
            Ok(ScalarValue::Decimal128(
                Some(scaled / i128::from(count)),
                *p,
                *s,
            ))
        }
        (sum, DataType::Float64) => {
            let ScalarValue::Float64(Some(total)) = sum.cast_to(&DataType::Float64)? else {
                return Ok(ScalarValue::Float64(None));
            };
            Ok(ScalarValue::Float64(Some(total / count as f64)))
        }
        (sum, output) => sum
            .cast_to(output)?
            .div(ScalarValue::Int64(Some(count)).cast_to(output)?),
    }
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::datatypes::Schema;
    use datafusion::physical_expr::expressions::col;

    use super::*;

    fn call(kind: AggKind, output: DataType) -> (AggCall, Schema) {
        let schema = Schema::new(vec![Field::new("v", DataType::Int32, true)]);
        let call = AggCall {
            kind,
            arg: Some(col("v", &schema).unwrap()),
            distinct: false,
            filter: None,
            output: Field::new("out", output, true),
        };
        (call, schema)
    }

    #[test]
    fn sums_and_averages_retract() {
        let (sum, schema) = call(AggKind::Sum, DataType::Int64);
        let mut partials = sum.empty_partials(&schema).unwrap();
        assert_eq!(
            sum.result(&partials, &[]).unwrap(),
            ScalarValue::Int64(None)
        );
        sum.apply(&mut partials, &ScalarValue::Int32(Some(5)), 1)
            .unwrap();
        sum.apply(&mut partials, &ScalarValue::Int32(Some(7)), 1)
            .unwrap();
        sum.apply(&mut partials, &ScalarValue::Int32(Some(5)), -1)
            .unwrap();
        assert_eq!(
            sum.result(&partials, &[]).unwrap(),
            ScalarValue::Int64(Some(7))
        );
        sum.apply(&mut partials, &ScalarValue::Int32(Some(7)), -1)
            .unwrap();
        assert_eq!(
            sum.result(&partials, &[]).unwrap(),
            ScalarValue::Int64(None)
        );

        let (avg, schema) = call(AggKind::Avg, DataType::Float64);
        let mut partials = avg.empty_partials(&schema).unwrap();
        avg.apply(&mut partials, &ScalarValue::Int32(Some(1)), 1)
            .unwrap();
        avg.apply(&mut partials, &ScalarValue::Int32(Some(2)), 1)
            .unwrap();
        assert_eq!(
            avg.result(&partials, &[]).unwrap(),
            ScalarValue::Float64(Some(1.5))
        );
    }

    #[test]
    fn extremes_are_kept_and_strings_come_from_the_multiset() {
        let (max, schema) = call(AggKind::Max, DataType::Int32);
        assert!(max.needs_multiset() && max.kind.keeps_extreme());
        let empty = max.empty_partials(&schema).unwrap();
        assert_eq!(max.result(&empty, &[]).unwrap(), ScalarValue::Int32(None));
        let nine = ScalarValue::Int32(Some(9));
        assert!(max.kind.better(&nine, &empty[0]));
        assert!(max.kind.better(&nine, &ScalarValue::Int32(Some(3))));
        assert!(!AggKind::Min.better(&nine, &ScalarValue::Int32(Some(3))));
        assert!(!max.kind.better(&nine, &nine));
        assert_eq!(max.result(std::slice::from_ref(&nine), &[]).unwrap(), nine);
        let (agg, _) = call(
            AggKind::StringAgg {
                delimiter: ",".into(),
            },
            DataType::Utf8,
        );
        let values = [
            (ScalarValue::Int32(Some(1)), 2),
            (ScalarValue::Int32(Some(3)), 1),
        ];
        assert_eq!(
            agg.result(&[], &values).unwrap(),
            ScalarValue::Utf8(Some("1,1,3".into()))
        );
    }
}
