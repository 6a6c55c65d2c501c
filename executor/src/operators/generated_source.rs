//! Generated source: a replayable stream's rows (Nexmark events, datagen
//! rows, files), from an offset on.
//!
//! No state of its own: rows are a pure function of their offset, so its
//! position is the next offset, published at each barrier for checkpoints,
//! and a restored source regenerates exactly what followed. Rows are
//! inserts keyed by a hidden `_row_id`: their offset. A stream without a
//! pace comes as fast as it is pulled; one with a pace emits each row once
//! it falls due, in chunks at most [`MAX_WAIT`] apart. A stream that grows
//! (a directory of files) is asked how far its rows go, and asked again
//! after a while when none are new. A bounded run then only passes
//! barriers on.
//!
//! A paused source (`ALTER SOURCE ... PAUSE`) generates nothing and only
//! passes barriers on until it is resumed.
//!
//! A barrier is taken between chunks. As with table sources, a source
//! resumed from a checkpoint emits nothing before its first barrier and
//! passes that one on at once.

use std::sync::Arc;
use std::time::Duration;

use datafusion::arrow::array::{Int64Array, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::error::Result;
use futures::stream;
use tokio::sync::{mpsc, watch};

use crate::checkpoint::SourceProgress;
use crate::generated::{GeneratedRows, now_nanos};
use crate::message::{Barrier, Message, StreamChunk};
use crate::operator::{BoxedMessageStream, Operator, OperatorInfo};
use crate::operators::table_source::ROW_ID_COLUMN;

/// Offsets generated per chunk (a chunk holds this stream's rows among
/// them).
const OFFSETS_PER_CHUNK: u64 = 4096;

/// The longest a paced source holds due rows back to fill a chunk.
const MAX_WAIT: Duration = Duration::from_millis(100);

pub struct GeneratedSourceOperator {
    info: OperatorInfo,
    generator: Generator,
}

struct Generator {
    rows: Arc<dyn GeneratedRows>,
    schema: Arc<Schema>,
    next: u64,
    barriers: mpsc::UnboundedReceiver<Barrier>,
    progress: SourceProgress,
    /// Emits nothing until the first barrier, which passes at once.
    paused: bool,
    /// Whether the source is paused by the user, as it changes.
    held: Option<watch::Receiver<bool>>,
    stopped: bool,
}

impl GeneratedSourceOperator {
    /// `rows` from offset `from` on, taking barriers from `barriers`.
    pub fn new(
        rows: Arc<dyn GeneratedRows>,
        from: u64,
        barriers: mpsc::UnboundedReceiver<Barrier>,
        identity: String,
    ) -> Self {
        let mut fields: Vec<_> = rows.schema().fields().iter().cloned().collect();
        let row_id = fields.len();
        fields.push(Arc::new(Field::new(ROW_ID_COLUMN, DataType::Int64, false)));
        let schema = Arc::new(Schema::new(fields));
        let info = OperatorInfo {
            identity,
            schema: Arc::clone(&schema),
            stream_key: vec![row_id],
            append_only: true,
        };
        Self {
            info,
            generator: Generator {
                rows,
                schema,
                next: from,
                barriers,
                progress: SourceProgress::default(),
                paused: false,
                held: None,
                stopped: false,
            },
        }
    }

    /// Publishes the next offset at each barrier to `progress`;
    /// with `resumed`, waits for the first barrier before generating.
    pub fn with_progress(mut self, progress: SourceProgress, resumed: bool) -> Self {
        progress.set(self.generator.next);
        self.generator.progress = progress;
        self.generator.paused = resumed;
        self
    }

    /// Generates only while `held` says the source is not paused.
    pub fn with_pause(mut self, held: watch::Receiver<bool>) -> Self {
        self.generator.held = Some(held);
        self
    }
}

enum NextChunk {
    /// Generate up to this offset now.
    Ready(u64),
    /// Nothing to generate before this has passed (or a barrier comes).
    Wait(Duration),
}

impl Generator {
    fn on_barrier(&mut self, barrier: Barrier) -> Message {
        self.paused = false;
        self.progress.set(self.next);
        self.stopped = barrier.is_stop();
        Message::Barrier(barrier)
    }

    fn exhausted(&self) -> bool {
        self.rows.end().is_some_and(|end| self.next >= end)
    }

    /// Where the next chunk ends, or for a paced stream with too few rows
    /// due or a growing one with none yet, how long to wait first.
    fn next_chunk(&self) -> Result<NextChunk> {
        let mut to = self.next + OFFSETS_PER_CHUNK;
        if let Some(end) = self.rows.end() {
            to = to.min(end);
        }
        let Some(pace) = self.rows.pace() else {
            let available = self.rows.available(self.next..to)?;
            return Ok(if available > self.next {
                NextChunk::Ready(available)
            } else {
                NextChunk::Wait(self.rows.recheck_after())
            });
        };
        let now = now_nanos();
        let due = pace.due_by(now);
        if due >= to {
            return Ok(NextChunk::Ready(to));
        }
        let first_due = pace.due_at(self.next);
        let max_wait = MAX_WAIT.as_nanos() as i64;
        if due > self.next && now.saturating_sub(first_due) >= max_wait {
            return Ok(NextChunk::Ready(due));
        }
        // Until the chunk is full, or its first row has waited enough.
        let until = pace.due_at(to - 1).min(first_due.saturating_add(max_wait));
        Ok(NextChunk::Wait(Duration::from_nanos(
            until.saturating_sub(now).max(1) as u64,
        )))
    }

    /// The next chunk's rows up to offset `to`, or `None` when this stream
    /// has none among them.
    fn generate(&mut self, to: u64) -> Result<Option<StreamChunk>> {
        let (batch, numbers) = self.rows.rows(self.next..to)?;
        self.next = to;
        if numbers.is_empty() {
            return Ok(None);
        }
        let mut columns = batch.columns().to_vec();
        columns.push(Arc::new(Int64Array::from_iter_values(
            numbers.into_iter().map(|n| n as i64),
        )));
        let data = RecordBatch::try_new(Arc::clone(&self.schema), columns)?;
        Ok(Some(StreamChunk::inserts(data)))
    }

    /// The next message, or `None` once stopped (or the injector is gone).
    async fn next(&mut self) -> Option<Result<Message>> {
        loop {
            if self.stopped {
                return None;
            }
            if let Ok(barrier) = self.barriers.try_recv() {
                return Some(Ok(self.on_barrier(barrier)));
            }
            if self.paused || self.exhausted() {
                let barrier = self.barriers.recv().await?;
                return Some(Ok(self.on_barrier(barrier)));
            }
            if let Some(held) = self.held.as_mut()
                && *held.borrow_and_update()
            {
                tokio::select! {
                    barrier = self.barriers.recv() => {
                        return Some(Ok(self.on_barrier(barrier?)));
                    }
                    changed = held.changed() => {
                        if changed.is_err() {
                            // The source is gone: nothing will resume it.
                            self.held = None;
                        }
                        continue;
                    }
                }
            }
            let to = match self.next_chunk() {
                Ok(NextChunk::Ready(to)) => to,
                Err(e) => {
                    self.stopped = true;
                    return Some(Err(e));
                }
                Ok(NextChunk::Wait(wait)) => {
                    tokio::select! {
                        barrier = self.barriers.recv() => {
                            return Some(Ok(self.on_barrier(barrier?)));
                        }
                        _ = tokio::time::sleep(wait) => continue,
                    }
                }
            };
            match self.generate(to) {
                Ok(Some(chunk)) => {
                    // Let the view's other tasks and the injector run.
                    tokio::task::yield_now().await;
                    return Some(Ok(Message::Chunk(chunk)));
                }
                Ok(None) => {}
                Err(e) => {
                    self.stopped = true;
                    return Some(Err(e));
                }
            }
        }
    }
}

impl Operator for GeneratedSourceOperator {
    fn info(&self) -> &OperatorInfo {
        &self.info
    }

    fn execute(self: Box<Self>) -> BoxedMessageStream {
        Box::pin(stream::unfold(self.generator, |mut generator| async move {
            let message = generator.next().await?;
            Some((message, generator))
        }))
    }
}

#[cfg(test)]
mod tests {
    use futures::StreamExt;

    use super::*;
    use crate::message::{BarrierKind, Epoch, Mutation};
    use crate::nexmark::{NexmarkConfig, NexmarkRows, Stream};

    fn barrier(epoch: u64) -> Barrier {
        Barrier::new(Epoch(epoch), BarrierKind::Checkpoint)
    }

    /// Row ids of the bids emitted, with the offsets published at each
    /// barrier. A barrier follows every chunk; a stop follows the barrier
    /// that finds the run exhausted.
    async fn run(from: u64, resumed: bool, max: u64) -> (Vec<i64>, Vec<u64>) {
        let config = NexmarkConfig {
            max_events: Some(max),
            ..NexmarkConfig::default()
        };
        let (sender, receiver) = mpsc::unbounded_channel();
        let progress = SourceProgress::default();
        let rows = Arc::new(NexmarkRows {
            config,
            stream: Stream::Bid,
        });
        let source = GeneratedSourceOperator::new(rows, from, receiver, "bid".into())
            .with_progress(progress.clone(), resumed);
        let mut epoch = 1;
        sender.send(barrier(epoch)).unwrap();
        let mut messages = Box::new(source).execute();
        let mut ids = Vec::new();
        let mut offsets = Vec::new();
        while let Some(message) = messages.next().await {
            match message.unwrap() {
                Message::Chunk(chunk) => {
                    let column = chunk.data().column(7).clone();
                    let rows = column.as_any().downcast_ref::<Int64Array>().unwrap();
                    ids.extend(rows.values().iter().copied());
                    epoch += 1;
                    sender.send(barrier(epoch)).unwrap();
                }
                Message::Barrier(b) => {
                    offsets.push(progress.get());
                    if progress.get() == max && !b.is_stop() {
                        epoch += 1;
                        sender
                            .send(barrier(epoch).with_mutation(Mutation::Stop))
                            .unwrap();
                    }
                }
                Message::Watermark(_) => {}
            }
        }
        (ids, offsets)
    }

    fn bids(events: std::ops::Range<u64>) -> Vec<i64> {
        events
            .filter(|n| Stream::Bid.holds(*n))
            .map(|n| n as i64)
            .collect()
    }

    #[tokio::test]
    async fn emits_every_bid_once_and_publishes_its_position() {
        let (ids, offsets) = run(0, false, 20_000).await;
        assert!(ids == bids(0..20_000), "{} bids emitted", ids.len());
        assert_eq!(offsets.last(), Some(&20_000));
        assert!(offsets.windows(2).all(|w| w[0] <= w[1]), "{offsets:?}");
    }

    #[tokio::test]
    async fn a_resumed_source_continues_where_its_checkpoint_was() {
        let (ids, offsets) = run(12_345, true, 20_000).await;
        assert_eq!(offsets[0], 12_345, "the first barrier passes at once");
        assert!(ids == bids(12_345..20_000), "{} bids emitted", ids.len());
    }

    #[tokio::test]
    async fn a_paced_source_emits_no_row_before_it_is_due() {
        use crate::generated::Pace;
        use crate::generated::datagen::{ColumnGenerator, Datagen};

        let schema = Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, false)]));
        let pace = Pace {
            start_nanos: now_nanos(),
            per_second: 2000,
        };
        let sequence = ColumnGenerator::Sequence {
            start: 0,
            end: None,
        };
        let rows = Datagen::new(schema, 1, vec![sequence], pace, Some(300)).unwrap();
        let (sender, receiver) = mpsc::unbounded_channel();
        let source = GeneratedSourceOperator::new(Arc::new(rows), 0, receiver, "n".into());
        let mut messages = Box::new(source).execute();
        let mut emitted = 0;
        while emitted < 300 {
            let Some(Ok(Message::Chunk(chunk))) = messages.next().await else {
                panic!("the source ended early");
            };
            let due = pace.due_by(now_nanos());
            let ids = chunk.data().column(1).clone();
            let ids = ids.as_any().downcast_ref::<Int64Array>().unwrap();
            assert_eq!(ids.value(0), emitted, "rows in order, none skipped");
            emitted += ids.len() as i64;
            assert!(emitted as u64 <= due, "{emitted} rows emitted, {due} due");
        }
        sender
            .send(barrier(1).with_mutation(Mutation::Stop))
            .unwrap();
        assert!(matches!(
            messages.next().await,
            Some(Ok(Message::Barrier(_)))
        ));
    }
}
