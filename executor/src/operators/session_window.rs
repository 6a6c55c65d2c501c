//! Session windows: `SESSION(t, ts, gap [, key ...])` puts each row in the
//! session of its key that it extends: rows less than `gap` apart (by
//! `ts`) share one. A session spans from its first row's time to its
//! last row's time plus `gap`.
//!
//! State: every input row, keyed by the partition (session key) columns,
//! then the time column, then the input's stream key; a key's rows are
//! one prefix scan, already in time order. For each key a chunk touches,
//! the operator computes the sessions before and after applying the
//! chunk and emits the difference: a row that joins two sessions into one
//! retracts every row of both, annotated with the old bounds, and inserts
//! them again with the new. Output: the input's columns with
//! `window_start` and `window_end` (in the order the plan asks) inserted
//! after the visible ones; a row whose time is NULL is in no session and
//! has NULL bounds. Retractions are handled: removing a row may split a
//! session.
//!
//! [`session_bounds`] is the one definition of sessions, shared with the
//! batch form of `SESSION` so that a view and a query agree.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, RecordBatch, UInt32Array};
use datafusion::arrow::compute::{SortOptions, take};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::row::{RowConverter, SortField};
use datafusion::common::ScalarValue;
use datafusion::error::{DataFusionError, Result};
use weir_storage::StateStore;

use super::unary::{ChunkHandler, Emitted, run_handler};
use crate::message::{Barrier, Op, StreamChunk};
use crate::operator::{BoxedMessageStream, BoxedOperator, Operator, OperatorInfo};
use crate::state::{StateTable, StateTableId};

/// Each time's session, as (start, end): consecutive times (in order)
/// less than `gap` apart share a session, which ends `gap` after its last
/// time. `times` must be in ascending order apart from NULLs, which are in
/// no session and do not separate others.
pub fn session_bounds(times: &[Option<i64>], gap: i64) -> Vec<Option<(i64, i64)>> {
    let mut bounds = vec![None; times.len()];
    let mut session: Vec<usize> = Vec::new();
    let mut first = 0;
    let mut last = 0;
    let mut close = |session: &mut Vec<usize>, first: i64, last: i64| {
        for &row in session.iter() {
            bounds[row] = Some((first, last.saturating_add(gap)));
        }
        session.clear();
    };
    for (row, time) in times.iter().enumerate() {
        let Some(time) = *time else { continue };
        if !session.is_empty() && time.saturating_sub(last) >= gap {
            close(&mut session, first, last);
        }
        if session.is_empty() {
            first = time;
        }
        last = time;
        session.push(row);
    }
    close(&mut session, first, last);
    bounds
}

/// Which bound an output column holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SessionBound {
    Start,
    End,
}

pub struct SessionWindowOperator {
    info: OperatorInfo,
    input: BoxedOperator,
    sessions: Sessions,
}

struct Sessions {
    partition: Vec<usize>,
    partition_keys: RowConverter,
    time: usize,
    gap: i64,
    rows: StateTable,
    /// Where the bounds go in the output, and which is which.
    at: usize,
    bounds: Vec<SessionBound>,
    schema: SchemaRef,
}

impl SessionWindowOperator {
    /// Sessions of `time` (a timestamp or integer column) within each
    /// partition of `partition` columns, `gap` apart in the time column's
    /// own unit; `bounds` are inserted as output columns from `at` on,
    /// named `names`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        input: BoxedOperator,
        partition: Vec<usize>,
        time: usize,
        gap: i64,
        bounds: Vec<(SessionBound, String)>,
        at: usize,
        store: Arc<dyn StateStore>,
        identity: String,
    ) -> Result<Self> {
        let input_info = input.info().clone();
        let time_type = input_info.schema.field(time).data_type().clone();
        if !matches!(time_type, DataType::Timestamp(..) | DataType::Int64) {
            return Err(DataFusionError::Plan(format!(
                "a session's time column is a timestamp, not {time_type}"
            )));
        }
        let mut key_columns = partition.clone();
        key_columns.push(time);
        key_columns.extend(input_info.stream_key.iter().copied());
        let key_order = vec![SortOptions::default(); key_columns.len()];
        let rows = StateTable::with_layout(
            store,
            StateTableId(1),
            Arc::clone(&input_info.schema),
            key_columns,
            key_order,
            partition.len(),
        )?;
        let partition_keys = RowConverter::new(
            partition
                .iter()
                .map(|&c| SortField::new(input_info.schema.field(c).data_type().clone()))
                .collect(),
        )?;
        let mut fields: Vec<Field> = input_info
            .schema
            .fields()
            .iter()
            .map(|f| f.as_ref().clone())
            .collect();
        for (offset, (_, name)) in bounds.iter().enumerate() {
            fields.insert(at + offset, Field::new(name, time_type.clone(), true));
        }
        let schema = Arc::new(Schema::new(fields));
        let stream_key = input_info
            .stream_key
            .iter()
            .map(|&c| if c >= at { c + bounds.len() } else { c })
            .collect();
        let info = OperatorInfo {
            identity,
            schema: Arc::clone(&schema),
            stream_key,
            append_only: false,
        };
        let sessions = Sessions {
            partition,
            partition_keys,
            time,
            gap,
            rows,
            at,
            bounds: bounds.into_iter().map(|(bound, _)| bound).collect(),
            schema,
        };
        Ok(Self {
            info,
            input,
            sessions,
        })
    }
}

/// A time value as a number in its column's unit.
fn time_value(value: &ScalarValue) -> Result<Option<i64>> {
    Ok(match value {
        ScalarValue::TimestampSecond(v, _)
        | ScalarValue::TimestampMillisecond(v, _)
        | ScalarValue::TimestampMicrosecond(v, _)
        | ScalarValue::TimestampNanosecond(v, _)
        | ScalarValue::Int64(v) => *v,
        other => {
            return Err(DataFusionError::Internal(format!(
                "session time {other:?} is not a timestamp"
            )));
        }
    })
}

impl Sessions {
    /// Every row of the partition with this key, annotated with its
    /// session's bounds.
    fn annotated(&self, key: &[ArrayRef]) -> Result<Vec<Vec<ScalarValue>>> {
        let mut rows = Vec::new();
        self.rows.scan_prefix(key, 1024, |batch| {
            for row in 0..batch.num_rows() {
                rows.push(
                    batch
                        .columns()
                        .iter()
                        .map(|c| ScalarValue::try_from_array(c, row))
                        .collect::<Result<Vec<_>>>()?,
                );
            }
            Ok(true)
        })?;
        let times = rows
            .iter()
            .map(|row| time_value(&row[self.time]))
            .collect::<Result<Vec<_>>>()?;
        let time_type = self.schema.field(self.at).data_type();
        for (row, bounds) in rows.iter_mut().zip(session_bounds(&times, self.gap)) {
            for (offset, bound) in self.bounds.iter().enumerate() {
                let value = bounds.map(|(start, end)| match bound {
                    SessionBound::Start => start,
                    SessionBound::End => end,
                });
                row.insert(
                    self.at + offset,
                    ScalarValue::Int64(value).cast_to(time_type)?,
                );
            }
        }
        Ok(rows)
    }

    /// One key (as single-row arrays) per partition the chunk touches.
    fn partitions(&self, data: &RecordBatch) -> Result<Vec<Vec<ArrayRef>>> {
        if self.partition.is_empty() {
            return Ok(vec![Vec::new()]);
        }
        let columns: Vec<ArrayRef> = self
            .partition
            .iter()
            .map(|&c| Arc::clone(data.column(c)))
            .collect();
        let encoded = self.partition_keys.convert_columns(&columns)?;
        let mut first: HashMap<&[u8], u32> = HashMap::new();
        for row in 0..data.num_rows() {
            first.entry(encoded.row(row).data()).or_insert(row as u32);
        }
        let mut rows: Vec<u32> = first.into_values().collect();
        rows.sort_unstable();
        let indices = UInt32Array::from(rows);
        let keys: Vec<ArrayRef> = columns
            .iter()
            .map(|c| Ok(take(c.as_ref(), &indices, None)?))
            .collect::<Result<_>>()?;
        Ok((0..indices.len())
            .map(|i| keys.iter().map(|k| k.slice(i, 1)).collect())
            .collect())
    }

    fn apply(&mut self, chunk: &StreamChunk) -> Result<Option<StreamChunk>> {
        let partitions = self.partitions(chunk.data())?;
        let before = partitions
            .iter()
            .map(|key| self.annotated(key))
            .collect::<Result<Vec<_>>>()?;
        self.rows.apply_chunk(chunk)?;
        let (mut ops, mut out) = (Vec::new(), Vec::new());
        for (key, before) in partitions.iter().zip(before) {
            let after = self.annotated(key)?;
            let kept: HashSet<&Vec<ScalarValue>> = after.iter().collect();
            let had: HashSet<&Vec<ScalarValue>> = before.iter().collect();
            for row in before.iter().filter(|r| !kept.contains(r)) {
                ops.push(Op::Delete);
                out.push(row.clone());
            }
            for row in after.iter().filter(|r| !had.contains(r)) {
                ops.push(Op::Insert);
                out.push(row.clone());
            }
        }
        if out.is_empty() {
            return Ok(None);
        }
        StreamChunk::from_rows(Arc::clone(&self.schema), ops, out).map(Some)
    }
}

impl ChunkHandler for Sessions {
    fn chunk(&mut self, chunk: StreamChunk) -> Result<Emitted> {
        Ok((self.apply(&chunk)?, None))
    }

    fn barrier(&mut self, barrier: &Barrier) -> Result<()> {
        self.rows.commit(barrier.epoch)
    }
}

impl Operator for SessionWindowOperator {
    fn info(&self) -> &OperatorInfo {
        &self.info
    }

    fn execute(self: Box<Self>) -> BoxedMessageStream {
        let Self {
            input, sessions, ..
        } = *self;
        run_handler(input.execute(), sessions)
    }
}

#[cfg(test)]
mod tests {
    use weir_storage::MemoryStateStore;

    use super::*;
    use crate::message::Message;
    use crate::operators::testing::{barrier, chunk, lines, messages, run, stop};

    #[test]
    fn rows_closer_than_the_gap_share_a_session() {
        let times = [
            Some(1),
            None,
            Some(5),
            Some(9),
            Some(20),
            Some(20),
            Some(29),
        ];
        assert_eq!(
            session_bounds(&times, 10),
            [
                Some((1, 19)),
                None,
                Some((1, 19)),
                Some((1, 19)),
                Some((20, 39)),
                Some((20, 39)),
                Some((20, 39)),
            ]
        );
        assert_eq!(session_bounds(&[Some(0), Some(10)], 10)[1], Some((10, 20)));
        assert!(session_bounds(&[], 10).is_empty());
    }

    /// Sessions of column 2 (time) per column 1 (user), gap 10.
    fn sessions(input: Vec<&str>) -> Vec<String> {
        let t = "I I I";
        let mut all: Vec<Message> = input.iter().map(|r| Message::Chunk(chunk(t, r))).collect();
        all.push(barrier(1));
        all.push(stop(2));
        let store: Arc<dyn StateStore> = Arc::new(MemoryStateStore::default());
        let operator = SessionWindowOperator::new(
            messages(t, all),
            vec![1],
            2,
            10,
            vec![
                (SessionBound::Start, "window_start".into()),
                (SessionBound::End, "window_end".into()),
            ],
            3,
            store,
            "session".into(),
        )
        .unwrap();
        futures::executor::block_on(run(Box::new(operator)))
    }

    #[test]
    fn a_row_between_two_sessions_joins_them_and_its_retraction_splits_them() {
        let out = sessions(vec![
            "+ 1 7 100\n+ 2 7 115\n+ 3 8 100",
            "+ 4 7 108",
            "- 4 7 108",
        ]);
        assert_eq!(
            out,
            lines(
                "+ 1 7 100 100 110
                 + 2 7 115 115 125
                 + 3 8 100 100 110
                 - 1 7 100 100 110
                 - 2 7 115 115 125
                 + 1 7 100 100 125
                 + 4 7 108 100 125
                 + 2 7 115 100 125
                 - 1 7 100 100 125
                 - 4 7 108 100 125
                 - 2 7 115 100 125
                 + 1 7 100 100 110
                 + 2 7 115 115 125"
            )
        );
    }
}
