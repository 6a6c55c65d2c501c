//! `SESSION(t, ts, gap [, key ...])`: session windows.
//!
//! The table function is rewritten (with `TUMBLE` and `HOP`, in
//! [`crate::windows`]) into `t` with two window function columns:
//!
//! ```sql
//! SELECT *, weir_session_start(ts, <gap ms>) OVER (PARTITION BY key ORDER BY ts) AS window_start,
//!           weir_session_end(ts, <gap ms>) OVER (PARTITION BY key ORDER BY ts) AS window_end
//! FROM t
//! ```
//!
//! A batch query evaluates them here, over each key's rows in time order;
//! a view turns the pair into a session window operator, which maintains
//! the same sessions as rows come and go. Both use the executor's
//! `session_bounds`, so they agree. Without keys, all rows share one
//! timeline of sessions.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, Int64Array};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, TimeUnit};
use datafusion::common::{ScalarValue, exec_err, plan_err};
use datafusion::error::Result;
use datafusion::logical_expr::function::{PartitionEvaluatorArgs, WindowUDFFieldArgs};
use datafusion::logical_expr::{
    PartitionEvaluator, Signature, Volatility, WindowUDF, WindowUDFImpl,
};
use weir_executor::operators::{SessionBound, session_bounds};

pub const SESSION_START: &str = "weir_session_start";
pub const SESSION_END: &str = "weir_session_end";

/// The two window functions a `SESSION` stands for.
pub fn session_functions() -> Vec<WindowUDF> {
    [SessionBound::Start, SessionBound::End]
        .into_iter()
        .map(|bound| {
            WindowUDF::from(SessionFunction {
                bound,
                signature: Signature::any(2, Volatility::Immutable),
            })
        })
        .collect()
}

/// The bound a window function named `name` computes, if it is one.
pub fn session_bound(name: &str) -> Option<SessionBound> {
    match name {
        SESSION_START => Some(SessionBound::Start),
        SESSION_END => Some(SessionBound::End),
        _ => None,
    }
}

/// `gap_ms` in the unit of a time column of type `time`.
pub fn gap_in_unit(gap_ms: i64, time: &DataType) -> Option<i64> {
    match time {
        DataType::Timestamp(TimeUnit::Second, _) => Some((gap_ms + 999) / 1000),
        DataType::Timestamp(TimeUnit::Millisecond, _) => Some(gap_ms),
        DataType::Timestamp(TimeUnit::Microsecond, _) => gap_ms.checked_mul(1000),
        DataType::Timestamp(TimeUnit::Nanosecond, _) => gap_ms.checked_mul(1_000_000),
        _ => None,
    }
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct SessionFunction {
    bound: SessionBound,
    signature: Signature,
}

impl WindowUDFImpl for SessionFunction {
    fn name(&self) -> &str {
        match self.bound {
            SessionBound::Start => SESSION_START,
            SessionBound::End => SESSION_END,
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn partition_evaluator(
        &self,
        _args: PartitionEvaluatorArgs,
    ) -> Result<Box<dyn PartitionEvaluator>> {
        Ok(Box::new(SessionEvaluator { bound: self.bound }))
    }

    fn field(&self, field_args: WindowUDFFieldArgs) -> Result<FieldRef> {
        let time = field_args.input_fields()[0].data_type().clone();
        if gap_in_unit(0, &time).is_none() {
            return plan_err!("SESSION's time column: expected type TIMESTAMP, not {time}");
        }
        Ok(Arc::new(Field::new(field_args.name(), time, true)))
    }
}

#[derive(Debug)]
struct SessionEvaluator {
    bound: SessionBound,
}

impl PartitionEvaluator for SessionEvaluator {
    fn evaluate_all(&mut self, values: &[ArrayRef], _num_rows: usize) -> Result<ArrayRef> {
        let [time, gap] = values else {
            return exec_err!("session functions take a time and a gap");
        };
        let gap_ms = match ScalarValue::try_from_array(gap, 0)? {
            ScalarValue::Int64(Some(gap)) if gap > 0 => gap,
            other => return exec_err!("a session gap is a positive number of ms, not {other}"),
        };
        let Some(gap) = gap_in_unit(gap_ms, time.data_type()) else {
            return exec_err!("SESSION needs a timestamp column, not {}", time.data_type());
        };
        let numbers = cast(time, &DataType::Int64)?;
        let numbers = numbers
            .as_any()
            .downcast_ref::<Int64Array>()
            .expect("cast to Int64");
        let times: Vec<Option<i64>> = numbers.iter().collect();
        let bounds: Int64Array = session_bounds(&times, gap)
            .into_iter()
            .map(|bounds| {
                bounds.map(|(start, end)| match self.bound {
                    SessionBound::Start => start,
                    SessionBound::End => end,
                })
            })
            .collect();
        Ok(cast(&bounds, time.data_type())?)
    }
}
