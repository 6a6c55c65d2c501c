//! Top-N: `ORDER BY ... LIMIT n [OFFSET m]`, optionally per partition
//! (group top-N, as `ROW_NUMBER() OVER (PARTITION BY ...) <= n` asks).
//!
//! State: every input row, keyed by partition columns, then the sort
//! columns in the query's order, then the input's stream key; a
//! partition's rows are one prefix scan, already sorted. For each
//! partition a chunk touches, the operator reads the first `m + n` rows
//! before and after applying the chunk and emits the difference, so it
//! keeps nothing in memory and a retraction inside the top pulls the
//! next row up. Output: the input's schema and stream key; with
//! [`TopNOperator::with_row_number`], also each row's number within its
//! partition, so a row that moves up or down is retracted and re-inserted
//! with its new number.
//!
//! With [`TopNOperator::emit_on_window_close`], a top-N partitioned by a
//! window column that carries a watermark emits nothing as rows come: when
//! the watermark passes a window, each of its partitions emits its final
//! top rows once and leaves the state, which holds open windows only.
//! Watermarks on partition columns pass on (a row leaving the top is of
//! the same partition as the row that pushed it out).
//!
//! With [`TopNOperator::expire_after`] (`state_ttl`), a partition no row
//! has changed for that long of processing time expires as an aggregate's
//! group does: its rows are retracted from the output and deleted from
//! state; a later row starts the partition afresh.

use std::sync::Arc;
use std::time::{Duration, Instant};

use datafusion::arrow::array::ArrayRef;
use datafusion::arrow::compute::SortOptions;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::row::RowConverter;
use datafusion::common::ScalarValue;
use datafusion::error::{DataFusionError, Result};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::expressions::Column;
use weir_storage::StateStore;

use super::partitions::{RowChanges, partition_keys, touched_partitions};
use super::unary::{ChunkHandler, Emitted, run_handler};
use crate::aggregate::{GroupExpiry, WindowClose};
use crate::message::{Barrier, Op, StreamChunk, Watermark};
use crate::operator::{BoxedMessageStream, BoxedOperator, Operator, OperatorInfo};
use crate::state::{StateTable, StateTableId};
use crate::watermark::{WatermarkDerivation, WatermarkProgress};

pub struct TopNOperator {
    info: OperatorInfo,
    input: BoxedOperator,
    top: TopN,
}

/// The limit of a top-N.
#[derive(Debug, Clone, Copy)]
pub struct Limit {
    pub offset: usize,
    pub fetch: usize,
}

struct TopN {
    partition: Vec<usize>,
    partition_keys: RowConverter,
    limit: Limit,
    rows: StateTable,
    /// Where the output carries each row's 1-based number, if it does.
    row_number: Option<usize>,
    schema: SchemaRef,
    expiry: Option<GroupExpiry>,
    /// `EMIT ON WINDOW CLOSE`: the open partitions by window, as an
    /// aggregate keeps its open groups (the partitions are its groups).
    closing: Option<WindowClose>,
}

impl TopNOperator {
    /// Keeps the first rows by `order` (column, options) within each
    /// partition of `partition` columns.
    pub fn new(
        input: BoxedOperator,
        partition: Vec<usize>,
        order: Vec<(usize, SortOptions)>,
        limit: Limit,
        store: Arc<dyn StateStore>,
        table: u32,
        identity: String,
    ) -> Result<Self> {
        // Rows leave the top as better ones arrive: never append-only.
        let info = OperatorInfo {
            identity,
            append_only: false,
            ..input.info().clone()
        };
        let mut key_columns = partition.clone();
        let mut key_order = vec![SortOptions::default(); partition.len()];
        for (column, options) in &order {
            key_columns.push(*column);
            key_order.push(*options);
        }
        for &column in &info.stream_key {
            key_columns.push(column);
            key_order.push(SortOptions::default());
        }
        let rows = StateTable::with_layout(
            store,
            StateTableId(table),
            Arc::clone(&info.schema),
            key_columns,
            key_order,
            partition.len(),
        )?;
        let partition_keys = partition_keys(&info.schema, &partition)?;
        let top = TopN {
            partition,
            partition_keys,
            limit,
            rows,
            row_number: None,
            schema: Arc::clone(&info.schema),
            expiry: None,
            closing: None,
        };
        Ok(Self { info, input, top })
    }

    /// Adds each row's number in its partition (`ROW_NUMBER()`, UInt64)
    /// as output column `at`; later columns move right by one.
    pub fn with_row_number(mut self, at: usize, name: &str) -> Self {
        let mut fields: Vec<Field> = self
            .info
            .schema
            .fields()
            .iter()
            .map(|f| f.as_ref().clone())
            .collect();
        fields.insert(at, Field::new(name, DataType::UInt64, false));
        self.info.schema = Arc::new(Schema::new(fields));
        for column in &mut self.info.stream_key {
            if *column >= at {
                *column += 1;
            }
        }
        self.top.schema = Arc::clone(&self.info.schema);
        self.top.row_number = Some(at);
        self
    }
}

impl TopNOperator {
    /// Expires partitions no row has changed for `ttl`. A top-N without
    /// partitions keeps its rows.
    pub fn expire_after(mut self, ttl: Duration) -> Self {
        if !self.top.partition.is_empty() {
            self.top.expiry = Some(GroupExpiry::new(ttl));
        }
        self
    }

    pub fn state_ttl(&self) -> Option<Duration> {
        self.top.expiry.as_ref().map(GroupExpiry::ttl)
    }

    /// Emits each partition's top once, when the watermark on input column
    /// `window` (a partition column) passes its window; keeps that
    /// watermark in `store` and publishes it, with the open partitions, to
    /// `progress`.
    pub fn emit_on_window_close(
        mut self,
        window: usize,
        store: Arc<dyn StateStore>,
        progress: WatermarkProgress,
    ) -> Result<Self> {
        let schema = &self.info.schema;
        let partition: Vec<Arc<dyn PhysicalExpr>> = self
            .top
            .partition
            .iter()
            .map(|&c| Arc::new(Column::new(schema.field(c).name(), c)) as Arc<dyn PhysicalExpr>)
            .collect();
        let Some(derivation) = WatermarkDerivation::all(&partition, schema, Some(&[window]))
            .into_iter()
            .next()
        else {
            return Err(DataFusionError::Plan(format!(
                "{}: the window column is not a partition column",
                self.info.identity
            )));
        };
        let window_type = schema.field(window).data_type().clone();
        self.top.closing = Some(WindowClose::new(
            derivation,
            true,
            &window_type,
            store,
            StateTableId(2),
            progress,
        )?);
        self.info.append_only = true;
        Ok(self)
    }
}

impl TopN {
    /// A partition's key, encoded as the expiry tracks it.
    fn encoded_key(&self, key: &[ArrayRef]) -> Result<Vec<u8>> {
        Ok(self
            .partition_keys
            .convert_columns(key)?
            .row(0)
            .data()
            .to_vec())
    }

    /// Counts every stored partition as changed now: when they last
    /// changed is not kept across restarts.
    fn restore_expiry(&mut self) -> Result<()> {
        let Some(expiry) = &mut self.expiry else {
            return Ok(());
        };
        let (partition, keys) = (&self.partition, &self.partition_keys);
        let now = Instant::now();
        self.rows.scan(4096, |batch| {
            let columns: Vec<ArrayRef> = partition
                .iter()
                .map(|&c| Arc::clone(batch.column(c)))
                .collect();
            let encoded = keys.convert_columns(&columns)?;
            expiry.touch(encoded.iter().map(|row| row.data()), now);
            Ok(true)
        })
    }

    /// Retracts the rows of partitions unchanged for the TTL and deletes
    /// their state.
    fn expire(&mut self) -> Result<Option<StreamChunk>> {
        let Some(expiry) = &mut self.expiry else {
            return Ok(None);
        };
        let expired = expiry.expire(Instant::now());
        if expired.is_empty() {
            return Ok(None);
        }
        self.retire(&expired, Op::Delete)
    }

    /// Emits the top rows of the partitions with these encoded keys as
    /// `op` (retracted on expiry, inserted when their window closes), and
    /// forgets the partitions.
    fn retire(&mut self, encoded: &[Vec<u8>], op: Op) -> Result<Option<StreamChunk>> {
        let parser = self.partition_keys.parser();
        let keys = self
            .partition_keys
            .convert_rows(encoded.iter().map(|key| parser.parse(key)))?;
        let mut changes = RowChanges::default();
        for i in 0..encoded.len() {
            let key: Vec<ArrayRef> = keys.iter().map(|k| k.slice(i, 1)).collect();
            let top = self.top(&key)?;
            match op {
                Op::Insert => changes.difference(&[], &top),
                _ => changes.difference(&top, &[]),
            }
            self.forget_partition(&key)?;
        }
        changes.into_chunk(&self.schema)
    }

    /// Notes the partitions (keys as single-row arrays) as open in their
    /// windows.
    fn open_partitions(&mut self, keys: &[Vec<ArrayRef>]) -> Result<()> {
        let Some(window) = &mut self.closing else {
            return Ok(());
        };
        for key in keys {
            let encoded = self.partition_keys.convert_columns(key)?;
            window.open_groups(&key[window.group_column()], &encoded, [0])?;
        }
        Ok(())
    }

    /// Loads a restored `EMIT ON WINDOW CLOSE` top-N's watermark and
    /// reopens its stored partitions: closed ones left the state when they
    /// closed.
    fn restore_windows(&mut self) -> Result<()> {
        let Some(window) = &mut self.closing else {
            return Ok(());
        };
        window.restore(&self.rows, &self.partition_keys, &self.partition)
    }

    /// Emits the final top of every partition whose window `watermark`
    /// closes, and forgets them.
    fn close_windows(&mut self, watermark: &Watermark) -> Result<Option<StreamChunk>> {
        let Some(window) = &mut self.closing else {
            return Ok(None);
        };
        let Some((_, closed)) = window.advance(watermark)? else {
            return Ok(None);
        };
        if closed.is_empty() {
            return Ok(None);
        }
        self.retire(&closed, Op::Insert)
    }

    /// Deletes every stored row of the partition with this key.
    fn forget_partition(&mut self, key: &[ArrayRef]) -> Result<()> {
        let mut stored = Vec::new();
        self.rows.scan_prefix(key, 4096, |batch| {
            stored.push(batch);
            Ok(true)
        })?;
        for batch in stored {
            self.rows.delete(&batch)?;
        }
        Ok(())
    }

    /// The rows now in the top of the partition with this key.
    fn top(&self, key: &[ArrayRef]) -> Result<Vec<Vec<ScalarValue>>> {
        let wanted = self.limit.offset.saturating_add(self.limit.fetch);
        let mut rows = Vec::new();
        let mut seen = 0;
        self.rows.scan_prefix(key, wanted.clamp(1, 1024), |batch| {
            for row in 0..batch.num_rows() {
                if seen >= wanted {
                    return Ok(false);
                }
                if seen >= self.limit.offset {
                    let mut values = batch
                        .columns()
                        .iter()
                        .map(|c| ScalarValue::try_from_array(c, row))
                        .collect::<Result<Vec<_>>>()?;
                    if let Some(at) = self.row_number {
                        let number = (seen + 1) as u64;
                        values.insert(at, ScalarValue::UInt64(Some(number)));
                    }
                    rows.push(values);
                }
                seen += 1;
            }
            Ok(seen < wanted)
        })?;
        Ok(rows)
    }

    fn apply(&mut self, chunk: &StreamChunk) -> Result<Option<StreamChunk>> {
        let partitions = touched_partitions(chunk.data(), &self.partition, &self.partition_keys)?;
        if self.expiry.is_some() {
            let keys = partitions
                .iter()
                .map(|key| self.encoded_key(key))
                .collect::<Result<Vec<_>>>()?;
            if let Some(expiry) = &mut self.expiry {
                expiry.touch(keys.iter().map(Vec::as_slice), Instant::now());
            }
        }
        let before = match self.closing {
            Some(_) => Vec::new(),
            None => partitions
                .iter()
                .map(|key| self.top(key))
                .collect::<Result<Vec<_>>>()?,
        };
        self.rows.apply_chunk(chunk)?;
        if self.closing.is_some() {
            // Closing windows: nothing until the window closes.
            self.open_partitions(&partitions)?;
            return Ok(None);
        }
        let mut changes = RowChanges::default();
        for (key, before) in partitions.iter().zip(before) {
            changes.difference(&before, &self.top(key)?);
        }
        changes.into_chunk(&self.schema)
    }
}

impl ChunkHandler for TopN {
    fn start(&mut self) -> Result<Option<StreamChunk>> {
        self.restore_expiry()?;
        self.restore_windows()?;
        Ok(None)
    }

    fn watermark(&mut self, watermark: Watermark) -> Result<Emitted> {
        if !self.partition.contains(&watermark.column) {
            return Ok((None, None));
        }
        let closed = self.close_windows(&watermark)?;
        let column = match self.row_number {
            Some(at) if watermark.column >= at => watermark.column + 1,
            _ => watermark.column,
        };
        Ok((
            closed,
            Some(Watermark {
                column,
                value: watermark.value,
            }),
        ))
    }

    fn chunk(&mut self, chunk: StreamChunk) -> Result<Emitted> {
        let chunk = match &mut self.closing {
            // Rows of windows already closed are late: counted and dropped.
            Some(window) => {
                let windows = Arc::clone(chunk.data().column(window.input_column()));
                window.drop_late(chunk, &windows)?
            }
            None => chunk,
        };
        Ok((self.apply(&chunk)?, None))
    }

    fn epoch_end(&mut self) -> Result<Option<StreamChunk>> {
        self.expire()
    }

    fn barrier(&mut self, barrier: &Barrier) -> Result<()> {
        if let Some(window) = &mut self.closing {
            window.commit(barrier.epoch)?;
        }
        self.rows.commit(barrier.epoch)
    }
}

impl Operator for TopNOperator {
    fn info(&self) -> &OperatorInfo {
        &self.info
    }

    fn execute(self: Box<Self>) -> BoxedMessageStream {
        let Self { input, top, .. } = *self;
        run_handler(input.execute(), top)
    }
}

#[cfg(test)]
mod tests {
    use weir_storage::MemoryStateStore;

    use super::*;
    use crate::message::Message;
    use crate::operators::testing::{barrier, chunk, lines, messages, run, stop};

    /// A top-N of rows `I I I` by column 2, descending, within partitions
    /// of `partition`.
    fn descending_top(input: Vec<Message>, partition: Vec<usize>, limit: Limit) -> TopNOperator {
        let descending = SortOptions {
            descending: true,
            nulls_first: false,
        };
        let store: Arc<dyn StateStore> = Arc::new(MemoryStateStore::default());
        TopNOperator::new(
            messages("I I I", input),
            partition,
            vec![(2, descending)],
            limit,
            store,
            1,
            "top".into(),
        )
        .unwrap()
    }

    fn top(partition: Vec<usize>, rows: &[&str], limit: Limit) -> Vec<String> {
        let mut input: Vec<Message> = rows
            .iter()
            .map(|r| Message::Chunk(chunk("I I I", r)))
            .collect();
        input.push(barrier(1));
        input.push(stop(2));
        let operator = descending_top(input, partition, limit);
        futures::executor::block_on(run(Box::new(operator)))
    }

    #[test]
    fn retracting_a_top_row_pulls_the_next_one_up() {
        let limit = Limit {
            offset: 0,
            fetch: 2,
        };
        let out = top(
            vec![],
            &["+ 1 0 10\n+ 2 0 30\n+ 3 0 20", "- 2 0 30", "+ 4 0 5"],
            limit,
        );
        assert_eq!(out, lines("+ 2 0 30\n+ 3 0 20\n- 2 0 30\n+ 1 0 10"));
    }

    #[test]
    fn expired_partitions_are_retracted_and_start_afresh() {
        let t = "I I I";
        let input = vec![
            Message::Chunk(chunk(t, "+ 1 7 10\n+ 2 7 30")),
            barrier(1),
            Message::Chunk(chunk(t, "+ 3 7 20")),
            barrier(2),
            stop(3),
        ];
        let limit = Limit {
            offset: 0,
            fetch: 2,
        };
        let operator = descending_top(input, vec![1], limit).expire_after(Duration::ZERO);
        assert_eq!(operator.state_ttl(), Some(Duration::ZERO));
        let out = futures::executor::block_on(run(Box::new(operator)));
        // Each epoch's end expires what it changed: 20 arrives alone.
        assert_eq!(
            out,
            lines("+ 2 7 30\n+ 1 7 10\n- 2 7 30\n- 1 7 10\n+ 3 7 20\n- 3 7 20")
        );
    }

    #[test]
    fn partitions_and_offsets() {
        let limit = Limit {
            offset: 1,
            fetch: 1,
        };
        let out = top(vec![1], &["+ 1 7 10\n+ 2 7 30\n+ 3 8 20\n+ 4 8 25"], limit);
        assert_eq!(out, lines("+ 1 7 10\n+ 3 8 20"));
    }

    #[test]
    fn numbered_rows_are_renumbered_when_they_move() {
        let t = "I I I";
        let input = vec![
            Message::Chunk(chunk(t, "+ 1 7 10\n+ 2 7 30\n+ 3 8 20")),
            Message::Chunk(chunk(t, "+ 4 7 20")),
            barrier(1),
            stop(2),
        ];
        let limit = Limit {
            offset: 0,
            fetch: 2,
        };
        let operator = descending_top(input, vec![1], limit).with_row_number(3, "rn");
        assert_eq!(operator.info().schema.field(3).name(), "rn");
        let out = futures::executor::block_on(run(Box::new(operator)));
        // 4 (20) takes second place in partition 7 and pushes 1 (10) out.
        assert_eq!(
            out,
            lines(
                "+ 2 7 30 1
                 + 1 7 10 2
                 + 3 8 20 1
                 - 1 7 10 2
                 + 4 7 20 2"
            )
        );
    }
}
