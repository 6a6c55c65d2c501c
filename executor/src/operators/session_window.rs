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
//! Watermarks pass through. On an append-only input, the watermark on the
//! time column also closes sessions: a session ending at or before it can
//! gain no row (later rows are at or past the watermark, a gap or more
//! after its last row), so at the end of each epoch in which the watermark
//! moved, the rows of closed sessions leave the state; their output rows
//! stay. State then holds only open sessions.
//!
//! [`session_bounds`] is the one definition of sessions, shared with the
//! batch form of `SESSION` so that a view and a query agree.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, Int64Array, UInt32Array};
use datafusion::arrow::compute::{SortOptions, cast, concat_batches, take_record_batch};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::row::RowConverter;
use datafusion::common::ScalarValue;
use datafusion::error::{DataFusionError, Result};
use weir_storage::StateStore;

use super::partitions::{RowChanges, partition_keys, touched_partitions};
use super::unary::{ChunkHandler, Emitted, run_handler};
use crate::message::{Barrier, StreamChunk, Watermark};
use crate::operator::{BoxedMessageStream, BoxedOperator, Operator, OperatorInfo};
use crate::state::{StateTable, StateTableId};
use crate::watermark::time_number;

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
    /// Whether rows only arrive, so closed sessions can be forgotten.
    append_only: bool,
    /// The time column's latest watermark, and the one state was last
    /// cleaned at.
    watermark: Option<i64>,
    cleaned_at: Option<i64>,
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
        let append_only = input_info.append_only;
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
        let partition_keys = partition_keys(&input_info.schema, &partition)?;
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
            append_only,
            watermark: None,
            cleaned_at: None,
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
    match (value.is_null(), time_number(value)) {
        (true, _) => Ok(None),
        (false, Some(number)) => Ok(Some(number)),
        (false, None) => Err(DataFusionError::Internal(format!(
            "session time {value:?} is not a timestamp"
        ))),
    }
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

    /// Deletes the rows of sessions the watermark has closed, once per
    /// watermark, on an append-only input.
    fn forget_closed(&mut self) -> Result<()> {
        let Some(watermark) = self.watermark else {
            return Ok(());
        };
        if !self.append_only || self.cleaned_at == Some(watermark) {
            return Ok(());
        }
        self.cleaned_at = Some(watermark);
        let mut batches = Vec::new();
        self.rows.scan(4096, |batch| {
            batches.push(batch);
            Ok(true)
        })?;
        let all = concat_batches(self.rows.schema(), &batches)?;
        let times: Vec<Option<i64>> = cast(all.column(self.time), &DataType::Int64)?
            .as_any()
            .downcast_ref::<Int64Array>()
            .map(|numbers| numbers.iter().collect())
            .unwrap_or_default();
        let keys: Vec<ArrayRef> = self
            .partition
            .iter()
            .map(|&c| Arc::clone(all.column(c)))
            .collect();
        let keys = self.partition_keys.convert_columns(&keys)?;
        let same_key = |a: usize, b: usize| self.partition.is_empty() || keys.row(a) == keys.row(b);
        let mut closed = Vec::new();
        let mut first = 0;
        for row in 1..=all.num_rows() {
            if row < all.num_rows() && same_key(first, row) {
                continue;
            }
            // Rows of one key are adjacent, in time order.
            for (offset, bounds) in session_bounds(&times[first..row], self.gap)
                .iter()
                .enumerate()
            {
                // A row without a time is in no session and never will be.
                if bounds.is_none_or(|(_, end)| end <= watermark) {
                    closed.push((first + offset) as u32);
                }
            }
            first = row;
        }
        if !closed.is_empty() {
            let closed = take_record_batch(&all, &UInt32Array::from(closed))?;
            self.rows.delete(&closed)?;
        }
        Ok(())
    }

    fn apply(&mut self, chunk: &StreamChunk) -> Result<Option<StreamChunk>> {
        let partitions = touched_partitions(chunk.data(), &self.partition, &self.partition_keys)?;
        let before = partitions
            .iter()
            .map(|key| self.annotated(key))
            .collect::<Result<Vec<_>>>()?;
        self.rows.apply_chunk(chunk)?;
        let mut changes = RowChanges::default();
        for (key, before) in partitions.iter().zip(before) {
            changes.difference(&before, &self.annotated(key)?);
        }
        changes.into_chunk(&self.schema)
    }
}

impl ChunkHandler for Sessions {
    fn chunk(&mut self, chunk: StreamChunk) -> Result<Emitted> {
        Ok((self.apply(&chunk)?, None))
    }

    fn watermark(&mut self, watermark: Watermark) -> Result<Emitted> {
        if watermark.column == self.time
            && let Some(value) = time_value(&watermark.value)?
        {
            self.watermark = Some(self.watermark.map_or(value, |w| w.max(value)));
        }
        let column = if watermark.column >= self.at {
            watermark.column + self.bounds.len()
        } else {
            watermark.column
        };
        Ok((
            None,
            Some(Watermark {
                column,
                value: watermark.value,
            }),
        ))
    }

    fn epoch_end(&mut self) -> Result<Option<StreamChunk>> {
        self.forget_closed()?;
        Ok(None)
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
    use crate::operators::testing::{
        append_only_messages, barrier, chunk, lines, messages, run, stop, stored_entries,
    };

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
        futures::executor::block_on(run(Box::new(operator(messages(t, all), store))))
    }

    fn operator(input: BoxedOperator, store: Arc<dyn StateStore>) -> SessionWindowOperator {
        SessionWindowOperator::new(
            input,
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
        .unwrap()
    }

    #[test]
    fn on_append_only_input_the_watermark_closes_sessions_and_their_rows_leave_the_state() {
        let t = "I I I";
        let watermark = |value: i64| {
            Message::Watermark(Watermark {
                column: 2,
                value: ScalarValue::Int64(Some(value)),
            })
        };
        let run_with = |input: Vec<Message>| {
            let store: Arc<dyn StateStore> = Arc::new(MemoryStateStore::default());
            let messages = futures::executor::block_on(crate::operators::testing::collect(
                Box::new(operator(append_only_messages(t, input), Arc::clone(&store))),
            ));
            (messages, stored_entries(&store))
        };
        let rows = |text: &str| Message::Chunk(chunk(t, text));
        let (closed, kept_after_close) = run_with(vec![
            rows("+ 1 7 100\n+ 2 7 105\n+ 3 8 118"),
            watermark(120),
            barrier(1),
            rows("+ 4 7 130"),
            barrier(2),
            stop(3),
        ]);
        let (_, kept_without) = run_with(vec![
            rows("+ 1 7 100\n+ 2 7 105\n+ 3 8 118"),
            barrier(1),
            rows("+ 4 7 130"),
            barrier(2),
            stop(3),
        ]);
        // User 7's session ended at 115: its two rows are gone; user 8's
        // (ending 128) and the new one stay.
        assert_eq!(kept_without - kept_after_close, 2);
        let forwarded: Vec<&Watermark> = closed
            .iter()
            .filter_map(|m| match m {
                Message::Watermark(w) => Some(w),
                _ => None,
            })
            .collect();
        assert_eq!(forwarded.len(), 1);
        assert_eq!(forwarded[0].column, 2, "the time column keeps its place");
        let output: Vec<String> = closed
            .iter()
            .filter_map(|m| match m {
                Message::Chunk(c) => Some(crate::operators::testing::pretty(c)),
                _ => None,
            })
            .flatten()
            .collect();
        assert_eq!(
            output,
            lines(
                "+ 1 7 100 100 115
                 + 2 7 105 100 115
                 + 3 8 118 118 128
                 + 4 7 130 130 140"
            )
        );
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
