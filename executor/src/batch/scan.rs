//! Streams a stored table into DataFusion, as a full scan or key lookups,
//! with the session's uncommitted writes on top, as of a snapshot block's
//! point when one is open.

use std::sync::Arc;

use datafusion::arrow::array::ArrayRef;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::error::Result;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::PartitionStream;
use futures::StreamExt;
use futures::stream::{self, BoxStream};
use weir_storage::{ReadPoint, TableId, TableStore};

use super::storage_error;
use super::transaction::Transaction;

/// One partition reading one table at the time it starts.
#[derive(Debug)]
pub(crate) struct TableScan {
    pub store: Arc<TableStore>,
    pub table: TableId,
    pub schema: SchemaRef,
    /// Read only these primary keys instead of the whole table.
    pub keys: Option<ArrayRef>,
}

impl PartitionStream for TableScan {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let schema = Arc::clone(&self.schema);
        let transaction = ctx.session_config().get_extension::<Transaction>();
        let point = transaction
            .as_ref()
            .and_then(|transaction| transaction.read_point(&self.store));
        let committed = self.committed(point.as_ref(), ctx.session_config().batch_size());
        let pending = transaction.and_then(|transaction| transaction.pending(self.table));
        let Some(pending) = pending else {
            return Box::pin(RecordBatchStreamAdapter::new(schema, committed));
        };
        // The session's own uncommitted writes, over the committed rows.
        let store = Arc::clone(&self.store);
        let table = self.table;
        let hidden = Arc::clone(&pending);
        let visible = committed.map(move |batch| {
            batch.and_then(|b| store.hide_pending(table, &hidden, b).map_err(storage_error))
        });
        let added = match self.store.pending_rows(table, &pending) {
            Ok(rows) => rows.into_iter().map(Ok).collect(),
            Err(e) => vec![Err(storage_error(e))],
        };
        let rows = visible.chain(stream::iter(added));
        Box::pin(RecordBatchStreamAdapter::new(schema, rows))
    }
}

impl TableScan {
    /// The committed rows this scan reads: as of `point`, a snapshot
    /// block's, or as they are now.
    fn committed(
        &self,
        point: Option<&ReadPoint>,
        batch_rows: usize,
    ) -> BoxStream<'static, Result<RecordBatch>> {
        if let Some(keys) = &self.keys {
            let rows = self
                .store
                .get_rows_at(point, self.table, std::slice::from_ref(keys))
                .map_err(storage_error);
            return stream::iter([rows]).boxed();
        }
        let scanned = match point {
            Some(point) => self.store.scan_at(point, self.table, batch_rows),
            None => self.store.scan(self.table, batch_rows),
        };
        match scanned {
            Ok(receiver) => stream::unfold(receiver, |mut receiver| async move {
                let batch = receiver.recv().await?;
                Some((batch.map_err(storage_error), receiver))
            })
            .boxed(),
            Err(e) => stream::iter([Err(storage_error(e))]).boxed(),
        }
    }
}
