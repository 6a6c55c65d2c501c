//! Nexmark source: one Nexmark stream's events, generated from an event
//! number on.
//!
//! No state of its own: events are a pure function of (seed, event
//! number), so its position is the next event number, published at each
//! barrier for checkpoints, and a restored source regenerates exactly what
//! followed. Rows are inserts keyed by a hidden `_row_id`: their event
//! number. Events come as fast as they are pulled; a bounded run
//! (`max_events`) then only passes barriers on.
//!
//! A barrier is taken between chunks. As with table sources, a source
//! resumed from a checkpoint emits nothing before its first barrier and
//! passes that one on at once.

use std::sync::Arc;

use datafusion::arrow::array::{Int64Array, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::error::Result;
use futures::stream;
use tokio::sync::mpsc;

use crate::checkpoint::SourceProgress;
use crate::message::{Barrier, Message, StreamChunk};
use crate::nexmark::{NexmarkConfig, Stream};
use crate::operator::{BoxedMessageStream, Operator, OperatorInfo};
use crate::operators::table_source::ROW_ID_COLUMN;

/// Events generated per chunk (a chunk holds this stream's share of them).
const EVENTS_PER_CHUNK: u64 = 4096;

pub struct NexmarkSourceOperator {
    info: OperatorInfo,
    generator: Generator,
}

struct Generator {
    config: NexmarkConfig,
    stream: Stream,
    schema: Arc<Schema>,
    next: u64,
    barriers: mpsc::UnboundedReceiver<Barrier>,
    progress: SourceProgress,
    /// Emits nothing until the first barrier, which passes at once.
    paused: bool,
    stopped: bool,
}

impl NexmarkSourceOperator {
    /// `stream`'s events from event number `from` on, taking barriers from
    /// `barriers`.
    pub fn new(
        config: NexmarkConfig,
        stream: Stream,
        from: u64,
        barriers: mpsc::UnboundedReceiver<Barrier>,
        identity: String,
    ) -> Self {
        let mut fields: Vec<_> = stream.schema().fields().iter().cloned().collect();
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
                config,
                stream,
                schema,
                next: from,
                barriers,
                progress: SourceProgress::default(),
                paused: false,
                stopped: false,
            },
        }
    }

    /// Publishes the next event number at each barrier to `progress`;
    /// with `resumed`, waits for the first barrier before generating.
    pub fn with_progress(mut self, progress: SourceProgress, resumed: bool) -> Self {
        progress.set(self.generator.next);
        self.generator.progress = progress;
        self.generator.paused = resumed;
        self
    }
}

impl Generator {
    fn on_barrier(&mut self, barrier: Barrier) -> Message {
        self.paused = false;
        self.progress.set(self.next);
        self.stopped = barrier.is_stop();
        Message::Barrier(barrier)
    }

    fn exhausted(&self) -> bool {
        self.config.max_events.is_some_and(|max| self.next >= max)
    }

    /// The next chunk's rows, or `None` when this stream has none among
    /// the events generated.
    fn generate(&mut self) -> Result<Option<StreamChunk>> {
        let mut to = self.next + EVENTS_PER_CHUNK;
        if let Some(max) = self.config.max_events {
            to = to.min(max);
        }
        let (batch, numbers) = self.stream.batch(&self.config, self.next..to)?;
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
            match self.generate() {
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

impl Operator for NexmarkSourceOperator {
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
        let source = NexmarkSourceOperator::new(config, Stream::Bid, from, receiver, "bid".into())
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
}
