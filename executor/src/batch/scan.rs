//! Streams a stored table into DataFusion, as a full scan or key lookups.

use std::sync::Arc;

use datafusion::arrow::array::ArrayRef;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::PartitionStream;
use futures::{StreamExt, stream};
use weir_storage::{TableId, TableStore};

use super::storage_error;

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
        if let Some(keys) = &self.keys {
            let rows = self
                .store
                .get_rows(self.table, std::slice::from_ref(keys))
                .map_err(storage_error);
            return Box::pin(RecordBatchStreamAdapter::new(schema, stream::iter([rows])));
        }
        let batches = match self
            .store
            .scan(self.table, ctx.session_config().batch_size())
        {
            Ok(receiver) => stream::unfold(receiver, |mut receiver| async move {
                let batch = receiver.recv().await?;
                Some((batch.map_err(storage_error), receiver))
            })
            .left_stream(),
            Err(e) => stream::iter([Err(storage_error(e))]).right_stream(),
        };
        Box::pin(RecordBatchStreamAdapter::new(schema, batches))
    }
}
