//! Materialize: keeps a view's rows, keyed by its stream key.
//!
//! State: one table, the view's rows keyed by the input's stream key. An
//! insert (or update-insert) writes its row, replacing any row with the
//! same key; a delete (or update-delete) removes the row with its key. The
//! epoch's writes are committed at each barrier, before the barrier is
//! forwarded; then a snapshot of the store is published for SELECT.
//!
//! Views reading this view subscribe through a barrier: they are sent the
//! rows as of that barrier (unless restored with them), then the barrier,
//! then every later chunk and barrier. Chunks are also forwarded
//! downstream unchanged.
//!
//! At a checkpoint barrier the whole view is at that epoch (its graph is
//! one task, paused upstream), so the materialize freezes the state of
//! every operator of the view for the checkpoint before going on.

use std::sync::Arc;

use datafusion::error::{DataFusionError, Result};
use futures::{StreamExt, stream};
use tokio::sync::mpsc;
use weir_storage::StateStore;

use crate::checkpoint::ViewCheckpointer;
use crate::message::{Barrier, BarrierKind, Message, StreamChunk, ViewId};
use crate::operator::{BoxedMessageStream, BoxedOperator, Operator, OperatorInfo};
use crate::runtime::ViewRegistry;
use crate::state::{StateTable, StateTableId};

/// Where a view's snapshots go.
pub struct Publication {
    pub view: ViewId,
    pub registry: Arc<ViewRegistry>,
    /// Freezes the view's state at checkpoint barriers.
    pub checkpointer: Option<ViewCheckpointer>,
}

pub struct MaterializeOperator {
    info: OperatorInfo,
    input: BoxedOperator,
    table: StateTable,
    store: Arc<dyn StateStore>,
    table_id: StateTableId,
    publication: Option<Publication>,
}

impl MaterializeOperator {
    /// Keeps the input's rows in table `table_id` of `store`, keyed by the
    /// input's stream key.
    pub fn new(
        input: BoxedOperator,
        store: Arc<dyn StateStore>,
        table_id: StateTableId,
        publication: Option<Publication>,
        identity: String,
    ) -> Result<Self> {
        let info = OperatorInfo {
            identity,
            ..input.info().clone()
        };
        let table = view_table(Arc::clone(&store), table_id, &info)?;
        Ok(Self {
            info,
            input,
            table,
            store,
            table_id,
            publication,
        })
    }
}

/// The table of a view's rows, over `store` (or a snapshot of it).
pub fn view_table(
    store: Arc<dyn StateStore>,
    id: StateTableId,
    info: &OperatorInfo,
) -> Result<StateTable> {
    StateTable::new(store, id, Arc::clone(&info.schema), info.stream_key.clone())
}

struct Materializer {
    info: OperatorInfo,
    table: StateTable,
    store: Arc<dyn StateStore>,
    table_id: StateTableId,
    publication: Option<Publication>,
    subscribers: Vec<mpsc::Sender<Message>>,
}

impl Materializer {
    async fn send_all(&mut self, message: &Message) {
        let mut open = Vec::with_capacity(self.subscribers.len());
        for subscriber in self.subscribers.drain(..) {
            if subscriber.send(message.clone()).await.is_ok() {
                open.push(subscriber);
            }
        }
        self.subscribers = open;
    }

    async fn barrier(&mut self, barrier: &Barrier) -> Result<()> {
        self.table.commit(barrier.epoch)?;
        let snapshot = self.store.snapshot().map_err(crate::batch::storage_error)?;
        if let Some(publication) = &self.publication {
            if barrier.is_checkpoint()
                && let Some(checkpointer) = &publication.checkpointer
            {
                checkpointer.freeze(barrier.epoch, barrier.kind == BarrierKind::Savepoint);
            }
            publication
                .registry
                .publish(publication.view, barrier.epoch, Arc::clone(&snapshot));
            let new: Vec<(mpsc::Sender<Message>, bool)> = barrier
                .subscriptions_to(publication.view)
                .map(|s| (s.sender.clone(), s.backfill))
                .collect();
            for (subscriber, backfill) in new {
                if !backfill || self.backfill(&snapshot, &subscriber).await.is_ok() {
                    self.subscribers.push(subscriber);
                }
            }
        }
        self.send_all(&Message::Barrier(barrier.clone())).await;
        Ok(())
    }

    /// Sends a new subscriber the view's rows as of the snapshot.
    async fn backfill(
        &self,
        snapshot: &Arc<dyn StateStore>,
        subscriber: &mpsc::Sender<Message>,
    ) -> Result<()> {
        let table = view_table(Arc::clone(snapshot), self.table_id, &self.info)?;
        let sender = subscriber.clone();
        let scan = tokio::task::spawn_blocking(move || {
            table.scan(4096, |rows| {
                Ok(sender
                    .blocking_send(Message::Chunk(StreamChunk::inserts(rows)))
                    .is_ok())
            })
        });
        scan.await
            .map_err(|e| DataFusionError::Internal(format!("backfill failed: {e}")))??;
        if subscriber.is_closed() {
            return Err(DataFusionError::Internal("subscriber went away".into()));
        }
        Ok(())
    }
}

impl Operator for MaterializeOperator {
    fn info(&self) -> &OperatorInfo {
        &self.info
    }

    fn execute(self: Box<Self>) -> BoxedMessageStream {
        let Self {
            info,
            input,
            table,
            store,
            table_id,
            publication,
        } = *self;
        let materializer = Materializer {
            info,
            table,
            store,
            table_id,
            publication,
            subscribers: Vec::new(),
        };
        Box::pin(stream::unfold(
            Some((input.execute(), materializer)),
            |state| async move {
                let (mut input, mut materializer) = state?;
                let message = match input.next().await? {
                    Ok(message) => message,
                    Err(e) => return Some((Err(e), None)),
                };
                let step = match &message {
                    Message::Chunk(chunk) => {
                        let applied = materializer.table.apply_chunk(chunk);
                        if applied.is_ok() {
                            materializer.send_all(&message).await;
                        }
                        applied
                    }
                    Message::Barrier(barrier) => materializer.barrier(barrier).await,
                    Message::Watermark(_) => Ok(()),
                };
                match step {
                    Ok(()) => Some((Ok(message), Some((input, materializer)))),
                    Err(e) => Some((Err(e), None)),
                }
            },
        ))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use weir_storage::{MemoryStateStore, StateStore};

    use super::*;
    use crate::message::Epoch;
    use crate::operators::testing::{barrier, chunk, collect, lines, messages, pretty, stop};

    fn view_rows(table: &StateTable) -> Vec<String> {
        let mut rows = Vec::new();
        table
            .scan(100, |batch| {
                rows.extend(pretty(&StreamChunk::inserts(batch)));
                Ok(true)
            })
            .unwrap();
        rows.sort();
        rows
    }

    #[tokio::test]
    async fn keeps_the_latest_row_per_key_and_commits_at_barriers() {
        let store: Arc<dyn StateStore> = Arc::new(MemoryStateStore::default());
        let types = "I T";
        let input = messages(
            types,
            vec![
                Message::Chunk(chunk(types, "+ 1 a\n+ 2 b\n+ 3 c")),
                barrier(1),
                Message::Chunk(chunk(types, "- 2 b\nU- 1 a\nU+ 1 z\n- 3 c\n+ 3 again")),
                stop(2),
            ],
        );
        let schema = Arc::clone(&input.info().schema);
        let materialize = MaterializeOperator::new(
            input,
            Arc::clone(&store),
            StateTableId(1),
            None,
            "view".into(),
        )
        .unwrap();
        let output = collect(Box::new(materialize)).await;
        assert_eq!(output.len(), 4, "chunks and barriers are forwarded");

        let reader = StateTable::new(store, StateTableId(1), schema, vec![0]).unwrap();
        assert_eq!(reader.committed_epoch().unwrap(), Some(Epoch(2)));
        assert_eq!(view_rows(&reader), lines("+ 1 z\n+ 3 again"));
    }
}
