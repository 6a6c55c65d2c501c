//! Materialize: keeps a view's rows, keyed by its stream key.
//!
//! State: one table, the view's rows keyed by the input's stream key. An
//! insert (or update-insert) writes its row, replacing any row with the
//! same key; a delete (or update-delete) removes the row with its key. The
//! epoch's writes are committed at each barrier, before the barrier is
//! forwarded. Chunks are forwarded unchanged, so views can read views.

use datafusion::arrow::array::BooleanArray;
use datafusion::arrow::compute::filter_record_batch;
use datafusion::error::Result;
use futures::StreamExt;

use crate::message::{Message, StreamChunk};
use crate::operator::{BoxedMessageStream, BoxedOperator, Operator, OperatorInfo};
use crate::state::StateTable;

pub struct MaterializeOperator {
    info: OperatorInfo,
    input: BoxedOperator,
    table: StateTable,
}

impl MaterializeOperator {
    /// `table` must have the input's schema, keyed by its stream key.
    pub fn new(input: BoxedOperator, table: StateTable, identity: String) -> Self {
        let info = OperatorInfo {
            identity,
            ..input.info().clone()
        };
        Self { info, input, table }
    }
}

/// Applies a chunk's changes in order: each run of inserts or deletes as
/// one batch, so a delete and re-insert of a key in one chunk end right.
fn apply(table: &mut StateTable, chunk: &StreamChunk) -> Result<()> {
    let ops = chunk.ops();
    let mut start = 0;
    while start < ops.len() {
        let inserting = ops[start].is_insert();
        let end = ops[start..]
            .iter()
            .position(|op| op.is_insert() != inserting)
            .map_or(ops.len(), |n| start + n);
        let run = BooleanArray::from_iter((0..ops.len()).map(|i| Some(start <= i && i < end)));
        let rows = filter_record_batch(chunk.data(), &run)?;
        if inserting {
            table.insert(&rows)?;
        } else {
            table.delete(&rows)?;
        }
        start = end;
    }
    Ok(())
}

impl Operator for MaterializeOperator {
    fn info(&self) -> &OperatorInfo {
        &self.info
    }

    fn execute(self: Box<Self>) -> BoxedMessageStream {
        let Self {
            input, mut table, ..
        } = *self;
        Box::pin(input.execute().map(move |message| {
            let message = message?;
            match &message {
                Message::Chunk(chunk) => apply(&mut table, chunk)?,
                Message::Barrier(barrier) => table.commit(barrier.epoch)?,
                Message::Watermark(_) => {}
            }
            Ok(message)
        }))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use weir_storage::{MemoryStateStore, StateStore};

    use super::*;
    use crate::message::Epoch;
    use crate::operators::testing::{barrier, chunk, collect, lines, messages, pretty, stop};
    use crate::state::StateTableId;

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
        let table = StateTable::new(
            Arc::clone(&store),
            StateTableId(1),
            Arc::clone(&schema),
            vec![0],
        )
        .unwrap();
        let output = collect(Box::new(MaterializeOperator::new(
            input,
            table,
            "view".into(),
        )))
        .await;
        assert_eq!(output.len(), 4, "chunks and barriers are forwarded");

        let reader = StateTable::new(store, StateTableId(1), schema, vec![0]).unwrap();
        assert_eq!(reader.committed_epoch().unwrap(), Some(Epoch(2)));
        assert_eq!(view_rows(&reader), lines("+ 1 z\n+ 3 again"));
    }
}
