//! Applies a statement's rows to a stored table as one durable write, or
//! stages them in the session's open transaction block. Rows of typed text
//! columns (uuid, json) are checked first ([`super::typed_text`]).

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::ArrayRef;
use datafusion::arrow::compute::concat;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::datasource::sink::DataSink;
use datafusion::error::Result;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_plan::{DisplayAs, DisplayFormatType};
use futures::TryStreamExt;
use weir_storage::{TableId, TableStore, TableWrite};

use super::storage_error;
use super::transaction::Transaction;
use super::typed_text::checked_rows;

/// What the incoming rows mean.
#[derive(Debug, Clone, Copy)]
pub(crate) enum WriteKind {
    /// Rows to insert, in the table's schema.
    Insert,
    /// Primary keys of rows to delete.
    Delete,
    /// The old primary key (`key_len` columns) followed by the new row.
    Update { key_len: usize },
}

#[derive(Debug)]
pub(crate) struct TableSink {
    pub store: Arc<TableStore>,
    pub table: TableId,
    pub table_name: String,
    pub kind: WriteKind,
    /// Schema of the rows this sink consumes.
    pub schema: SchemaRef,
    /// The table's own schema, whose typed text columns are checked.
    pub table_schema: SchemaRef,
}

impl DisplayAs for TableSink {
    fn fmt_as(&self, _: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        let verb = match self.kind {
            WriteKind::Insert => "insert into",
            WriteKind::Delete => "delete from",
            WriteKind::Update { .. } => "update",
        };
        write!(f, "TableSink: {verb} {}", self.table_name)
    }
}

/// Column `index` of every batch, as one array.
fn column(batches: &[RecordBatch], index: usize) -> Result<ArrayRef> {
    let parts: Vec<&dyn datafusion::arrow::array::Array> =
        batches.iter().map(|b| b.column(index).as_ref()).collect();
    Ok(concat(&parts)?)
}

#[async_trait]
impl DataSink for TableSink {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    async fn write_all(
        &self,
        data: SendableRecordBatchStream,
        ctx: &Arc<TaskContext>,
    ) -> Result<u64> {
        let batches: Vec<RecordBatch> = data.try_collect().await?;
        let batches: Vec<RecordBatch> = batches.into_iter().filter(|b| b.num_rows() > 0).collect();
        if batches.is_empty() {
            return Ok(0);
        }
        let checked = |rows: Vec<RecordBatch>| -> Result<Vec<RecordBatch>> {
            rows.into_iter()
                .map(|b| checked_rows(&self.table_schema, b))
                .collect()
        };
        let write = match self.kind {
            WriteKind::Insert => TableWrite {
                delete_keys: vec![],
                inserts: checked(batches)?,
            },
            WriteKind::Delete => TableWrite {
                delete_keys: (0..self.schema.fields().len())
                    .map(|i| column(&batches, i))
                    .collect::<Result<_>>()?,
                inserts: vec![],
            },
            WriteKind::Update { key_len } => {
                let row_columns: Vec<usize> = (key_len..self.schema.fields().len()).collect();
                TableWrite {
                    delete_keys: (0..key_len)
                        .map(|i| column(&batches, i))
                        .collect::<Result<_>>()?,
                    inserts: checked(
                        batches
                            .iter()
                            .map(|b| b.project(&row_columns))
                            .collect::<Result<_, _>>()?,
                    )?,
                }
            }
        };
        let transaction = ctx
            .session_config()
            .get_extension::<Transaction>()
            .filter(|t| t.is_open());
        let outcome = match transaction {
            Some(transaction) => transaction.stage(&self.store, self.table, write),
            None => self.store.write(self.table, write).await,
        }
        .map_err(storage_error)?;
        Ok(match self.kind {
            WriteKind::Insert | WriteKind::Update { .. } => outcome.inserted,
            WriteKind::Delete => outcome.deleted,
        })
    }
}
