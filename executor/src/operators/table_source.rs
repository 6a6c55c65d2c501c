//! Table source: a table's change log, from an offset on, as a stream.
//!
//! No state of its own: its position is a log offset (which checkpoints
//! will record). Inserts and deletes are emitted as logged — an UPDATE
//! arrives as the delete of the old row and the insert of the new one.
//!
//! Barriers come from the barrier injector. On each one the source first
//! emits everything durable in the log at that moment, then the barrier:
//! so a barrier injected after a write was acknowledged always follows that
//! write, which is what makes `FLUSH` complete. The offset reached at each
//! barrier is published in a [`SourceProgress`] for checkpoints.
//!
//! A new view's source starts from a snapshot of the table (its rows as
//! inserts, as of a log offset) and follows the log from that offset, so
//! the log below what checkpoints need can be truncated. It registers as a
//! reader of the log, which keeps the log from its position on.
//!
//! A source resumed from a checkpoint reads nothing before its first
//! barrier and passes that one on at once: views restored together all
//! start at that barrier, so one restored view reading another misses none
//! of its changes.

use std::collections::VecDeque;
use std::sync::Arc;

use datafusion::arrow::array::{Int64Array, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::common::cast::as_int8_array;
use datafusion::error::{DataFusionError, Result};
use futures::stream;
use tokio::sync::{mpsc, watch};
use weir_storage::{
    ChangeOp, LogEntry, LogOffset, LogReader, RowReceiver, TableId, TableKey, TableStore,
};

use crate::batch::storage_error;
use crate::checkpoint::SourceProgress;
use crate::message::{Barrier, Message, Op, StreamChunk};
use crate::operator::{BoxedMessageStream, Operator, OperatorInfo};

/// The hidden column that keys an append-only table's rows: its log offset.
pub const ROW_ID_COLUMN: &str = "_row_id";

pub struct TableSourceOperator {
    info: OperatorInfo,
    store: Arc<TableStore>,
    table: TableId,
    offset: LogOffset,
    barriers: mpsc::UnboundedReceiver<Barrier>,
    batch_rows: usize,
    progress: SourceProgress,
    resumed: bool,
    reader: LogReader,
    /// The table's rows, sent before anything else (a snapshot start).
    snapshot: Option<RowReceiver>,
}

/// How many rows a chunk of the source holds at most.
const BATCH_ROWS: usize = 4096;

impl TableSourceOperator {
    /// Reads `table` from `offset`, taking barriers from `barriers`.
    ///
    /// # Errors
    /// When the table does not exist, or its log no longer holds `offset`.
    pub fn new(
        store: Arc<TableStore>,
        table: TableId,
        offset: LogOffset,
        barriers: mpsc::UnboundedReceiver<Barrier>,
        identity: String,
    ) -> Result<Self> {
        let reader = store
            .register_reader(table, offset)
            .map_err(storage_error)?;
        let (start, _) = store.log_bounds(table).map_err(storage_error)?;
        if offset < start {
            let name = store.layout(table).map_err(storage_error)?.name;
            return Err(DataFusionError::Execution(format!(
                "{identity}: log of {name} starts at offset {}, cannot read from {}",
                start.0, offset.0
            )));
        }
        Self::open(store, table, offset, reader, None, barriers, identity)
    }

    /// Reads `table` from a snapshot of its rows on, taking barriers from
    /// `barriers`: what a new view starts from.
    ///
    /// # Errors
    /// When the table does not exist.
    pub fn from_snapshot(
        store: Arc<TableStore>,
        table: TableId,
        barriers: mpsc::UnboundedReceiver<Barrier>,
        identity: String,
    ) -> Result<Self> {
        let snapshot = store.snapshot(table, BATCH_ROWS).map_err(storage_error)?;
        Self::open(
            store,
            table,
            snapshot.offset,
            snapshot.reader,
            Some(snapshot.rows),
            barriers,
            identity,
        )
    }

    fn open(
        store: Arc<TableStore>,
        table: TableId,
        offset: LogOffset,
        reader: LogReader,
        snapshot: Option<RowReceiver>,
        barriers: mpsc::UnboundedReceiver<Barrier>,
        identity: String,
    ) -> Result<Self> {
        let layout = store.layout(table).map_err(storage_error)?;
        let columns = layout.schema.fields().len();
        let (stream_key, append_only, schema) = match layout.key {
            TableKey::Primary(columns) => (columns, false, layout.schema),
            TableKey::RowId => {
                // Rows of an append-only table are identified by their log offset.
                let mut fields: Vec<_> = layout.schema.fields().iter().cloned().collect();
                fields.push(Arc::new(Field::new(ROW_ID_COLUMN, DataType::Int64, false)));
                (vec![columns], true, Arc::new(Schema::new(fields)))
            }
        };
        let info = OperatorInfo {
            identity,
            schema,
            stream_key,
            append_only,
        };
        Ok(Self {
            info,
            store,
            table,
            offset,
            barriers,
            batch_rows: BATCH_ROWS,
            progress: SourceProgress::default(),
            resumed: false,
            reader,
            snapshot,
        })
    }

    /// Publishes the offset reached at each barrier to `progress`; with
    /// `resumed`, waits for the first barrier before reading.
    pub fn with_progress(mut self, progress: SourceProgress, resumed: bool) -> Self {
        progress.set(self.offset.0);
        self.progress = progress;
        self.resumed = resumed;
        self
    }
}

/// A log entry as a chunk in the table's schema.
fn chunk_of(entry: LogEntry, info: &OperatorInfo) -> Result<StreamChunk> {
    let codes = as_int8_array(entry.chunk.column(0))?;
    let ops = codes
        .values()
        .iter()
        .map(|&code| match ChangeOp::from_code(code) {
            Some(ChangeOp::Insert) => Ok(Op::Insert),
            Some(ChangeOp::Delete) => Ok(Op::Delete),
            None => Err(DataFusionError::Internal(format!("unknown log op {code}"))),
        })
        .collect::<Result<Vec<_>>>()?;
    let mut columns = entry.chunk.columns()[1..].to_vec();
    if info.append_only {
        let first = entry.first.0 as i64;
        let rows = entry.chunk.num_rows() as i64;
        columns.push(Arc::new(Int64Array::from_iter_values(first..first + rows)));
    }
    let data = RecordBatch::try_new(Arc::clone(&info.schema), columns)?;
    StreamChunk::new(ops, data)
}

struct Reader {
    info: OperatorInfo,
    store: Arc<TableStore>,
    table: TableId,
    offset: LogOffset,
    barriers: mpsc::UnboundedReceiver<Barrier>,
    log_end: watch::Receiver<LogOffset>,
    batch_rows: usize,
    ready: VecDeque<Message>,
    stopped: bool,
    progress: SourceProgress,
    /// Reads nothing until the first barrier, which passes at once.
    paused: bool,
    reader: LogReader,
    snapshot: Option<RowReceiver>,
}

impl Reader {
    /// Queues chunks for the log from the current offset up to `until`,
    /// at most `max_rows` rows (at least one entry) per call.
    fn read(&mut self, until: LogOffset, max_rows: usize) -> Result<()> {
        if self.offset >= until {
            return Ok(());
        }
        let entries = self
            .store
            .read_log(self.table, self.offset, max_rows)
            .map_err(storage_error)?;
        for mut entry in entries {
            if entry.first >= until {
                break;
            }
            if entry.end() > until {
                let keep = (until.0 - entry.first.0) as usize;
                entry.chunk = entry.chunk.slice(0, keep);
            }
            self.offset = entry.end();
            self.reader.advance(self.offset);
            if entry.chunk.num_rows() > 0 {
                let chunk = chunk_of(entry, &self.info)?;
                self.ready.push_back(Message::Chunk(chunk));
            }
        }
        Ok(())
    }

    /// Everything durable now, then the barrier.
    fn on_barrier(&mut self, barrier: Barrier) -> Result<()> {
        if self.paused {
            self.paused = false;
            self.stopped = barrier.is_stop();
            self.ready.push_back(Message::Barrier(barrier));
            return Ok(());
        }
        let (_, end) = self.store.log_bounds(self.table).map_err(storage_error)?;
        while self.offset < end {
            let before = self.offset;
            self.read(end, self.batch_rows)?;
            if self.offset == before {
                return Err(DataFusionError::Internal(format!(
                    "{}: log ends at {} but offset {} cannot be read",
                    self.info.identity, end.0, before.0
                )));
            }
        }
        self.progress.set(self.offset.0);
        self.stopped = barrier.is_stop();
        self.ready.push_back(Message::Barrier(barrier));
        Ok(())
    }

    /// The snapshot's next rows as inserts, or `None` once it is sent.
    async fn next_snapshot_rows(&mut self) -> Option<Result<Message>> {
        let rows = self.snapshot.as_mut()?.recv().await;
        let Some(rows) = rows else {
            self.snapshot = None;
            return None;
        };
        let chunk = rows.map_err(storage_error).and_then(|rows| {
            let data =
                RecordBatch::try_new(Arc::clone(&self.info.schema), rows.columns().to_vec())?;
            StreamChunk::new(vec![Op::Insert; data.num_rows()], data)
        });
        if chunk.is_err() {
            self.stopped = true;
            self.snapshot = None;
        }
        Some(chunk.map(Message::Chunk))
    }

    /// The next message, or `None` once stopped (or the injector is gone).
    async fn next(&mut self) -> Option<Result<Message>> {
        while self.snapshot.is_some() {
            if let Some(message) = self.next_snapshot_rows().await {
                return Some(message);
            }
        }
        loop {
            if let Some(message) = self.ready.pop_front() {
                return Some(Ok(message));
            }
            if self.stopped {
                return None;
            }
            let step = if let Ok(barrier) = self.barriers.try_recv() {
                self.on_barrier(barrier)
            } else {
                let end = *self.log_end.borrow_and_update();
                if !self.paused && self.offset < end {
                    self.read(end, self.batch_rows)
                } else {
                    tokio::select! {
                        biased;
                        barrier = self.barriers.recv() => match barrier {
                            Some(barrier) => self.on_barrier(barrier),
                            None => return None,
                        },
                        changed = self.log_end.changed() => {
                            if changed.is_err() {
                                // The table was dropped: only barriers remain.
                                match self.barriers.recv().await {
                                    Some(barrier) => self.on_barrier(barrier),
                                    None => return None,
                                }
                            } else {
                                Ok(())
                            }
                        }
                    }
                }
            };
            if let Err(e) = step {
                self.stopped = true;
                return Some(Err(e));
            }
        }
    }
}

impl Operator for TableSourceOperator {
    fn info(&self) -> &OperatorInfo {
        &self.info
    }

    fn execute(self: Box<Self>) -> BoxedMessageStream {
        let log_end = match self.store.subscribe_log_end(self.table) {
            Ok(log_end) => log_end,
            Err(e) => return Box::pin(stream::iter([Err(storage_error(e))])),
        };
        let reader = Reader {
            info: self.info,
            store: self.store,
            table: self.table,
            offset: self.offset,
            barriers: self.barriers,
            log_end,
            batch_rows: self.batch_rows,
            ready: VecDeque::new(),
            stopped: false,
            progress: self.progress,
            paused: self.resumed,
            reader: self.reader,
            snapshot: self.snapshot,
        };
        Box::pin(stream::unfold(reader, |mut reader| async move {
            let message = reader.next().await?;
            Some((message, reader))
        }))
    }
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::{ArrayRef, StringArray};
    use futures::StreamExt;
    use weir_storage::{TableLayout, TableWrite};

    use super::*;
    use crate::message::{BarrierKind, Epoch, Mutation};
    use crate::operators::testing::{lines, pretty};

    async fn table(store: &TableStore) -> TableLayout {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("name", DataType::Utf8, true),
        ]));
        let layout = TableLayout {
            id: TableId(1),
            name: "t".into(),
            schema,
            key: TableKey::Primary(vec![0]),
        };
        store
            .create_table(layout.clone(), Vec::new())
            .await
            .unwrap();
        layout
    }

    async fn insert(store: &TableStore, layout: &TableLayout, ids: &[i64], name: &str) {
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from(ids.to_vec())),
            Arc::new(StringArray::from(vec![name; ids.len()])),
        ];
        let rows = RecordBatch::try_new(Arc::clone(&layout.schema), columns).unwrap();
        store
            .write(
                layout.id,
                TableWrite {
                    delete_keys: vec![],
                    inserts: vec![rows],
                },
            )
            .await
            .unwrap();
    }

    async fn update(store: &TableStore, layout: &TableLayout, id: i64, name: &str) {
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from(vec![id])),
            Arc::new(StringArray::from(vec![name])),
        ];
        let rows = RecordBatch::try_new(Arc::clone(&layout.schema), columns).unwrap();
        let key: ArrayRef = Arc::new(Int64Array::from(vec![id]));
        store
            .write(
                layout.id,
                TableWrite {
                    delete_keys: vec![key],
                    inserts: vec![rows],
                },
            )
            .await
            .unwrap();
    }

    fn barrier(epoch: u64) -> Barrier {
        Barrier::new(Epoch(epoch), BarrierKind::Visibility)
    }

    /// The messages up to and including the next barrier, rendered.
    async fn until_barrier(stream: &mut BoxedMessageStream) -> Vec<String> {
        let mut out = Vec::new();
        while let Some(message) = stream.next().await {
            match message.unwrap() {
                Message::Chunk(chunk) => out.extend(pretty(&chunk)),
                Message::Barrier(b) => {
                    out.push(format!("barrier {}", b.epoch.0));
                    return out;
                }
                Message::Watermark(_) => {}
            }
        }
        out.push("end".into());
        out
    }

    #[tokio::test]
    async fn every_acknowledged_write_precedes_the_next_barrier() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(TableStore::open(dir.path()).unwrap());
        let layout = table(&store).await;
        insert(&store, &layout, &[1, 2], "a").await;

        let (barriers, receiver) = mpsc::unbounded_channel();
        let source = TableSourceOperator::new(
            Arc::clone(&store),
            layout.id,
            LogOffset(0),
            receiver,
            "src".into(),
        )
        .unwrap();
        assert_eq!(source.info().stream_key, vec![0]);
        let mut stream = Box::new(source).execute();

        barriers.send(barrier(1)).unwrap();
        assert_eq!(
            until_barrier(&mut stream).await,
            lines("+ 1 a\n+ 2 a\nbarrier 1")
        );

        // Written while the source waits; the barrier comes right after the acknowledgement.
        update(&store, &layout, 2, "b").await;
        insert(&store, &layout, &[3], "c").await;
        barriers.send(barrier(2)).unwrap();
        assert_eq!(
            until_barrier(&mut stream).await,
            lines("- 2 a\n+ 2 b\n+ 3 c\nbarrier 2")
        );

        // No writes: the barrier passes alone; a stop ends the stream.
        barriers
            .send(barrier(3).with_mutation(Mutation::Stop))
            .unwrap();
        assert_eq!(until_barrier(&mut stream).await, lines("barrier 3"));
        assert!(stream.next().await.is_none());
    }

    #[tokio::test]
    async fn starts_at_any_offset_but_not_below_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(TableStore::open(dir.path()).unwrap());
        let layout = table(&store).await;
        insert(&store, &layout, &[1, 2, 3], "a").await;
        insert(&store, &layout, &[4], "b").await;

        let (barriers, receiver) = mpsc::unbounded_channel();
        let source = TableSourceOperator::new(
            Arc::clone(&store),
            layout.id,
            LogOffset(2),
            receiver,
            "src".into(),
        )
        .unwrap();
        let mut stream = Box::new(source).execute();
        barriers.send(barrier(1)).unwrap();
        assert_eq!(
            until_barrier(&mut stream).await,
            lines("+ 3 a\n+ 4 b\nbarrier 1")
        );
        drop(barriers);
        assert!(
            stream.next().await.is_none(),
            "the stream ends with its injector"
        );

        store.truncate_log(layout.id, LogOffset(3)).await.unwrap();
        let (_barriers, receiver) = mpsc::unbounded_channel();
        assert!(
            TableSourceOperator::new(store, layout.id, LogOffset(1), receiver, "src".into())
                .is_err()
        );
    }

    #[tokio::test]
    async fn a_snapshot_start_sends_the_rows_then_the_log_after_them() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(TableStore::open(dir.path()).unwrap());
        let layout = table(&store).await;
        insert(&store, &layout, &[1, 2], "a").await;
        update(&store, &layout, 2, "b").await;
        // Nothing needs the log below the snapshot: a new source does not.
        store.truncate_log(layout.id, LogOffset(4)).await.unwrap();

        let (barriers, receiver) = mpsc::unbounded_channel();
        let source = TableSourceOperator::from_snapshot(
            Arc::clone(&store),
            layout.id,
            receiver,
            "src".into(),
        )
        .unwrap();
        let mut stream = Box::new(source).execute();
        insert(&store, &layout, &[3], "c").await;
        barriers.send(barrier(1)).unwrap();
        assert_eq!(
            until_barrier(&mut stream).await,
            lines("+ 1 a\n+ 2 b\n+ 3 c\nbarrier 1")
        );
        // The source holds the log from where it has read on.
        store.truncate_log(layout.id, LogOffset(100)).await.unwrap();
        update(&store, &layout, 1, "d").await;
        barriers.send(barrier(2)).unwrap();
        assert_eq!(
            until_barrier(&mut stream).await,
            lines("- 1 a\n+ 1 d\nbarrier 2")
        );
    }
}
