//! A materialized view as DataFusion reads it: the view's rows at the
//! epoch the query pinned.
//!
//! The first view a query scans pins every view's snapshot at the visible
//! epoch ([`QueryPin`], kept in the query's session config); every other
//! view it scans reads the same pin, so a SELECT over several views sees
//! them all at one epoch. Rows stream out of the snapshot a batch at a
//! time; hidden key columns are not shown.

use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{Session, TableProvider};
use datafusion::datasource::TableType;
use datafusion::error::Result;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::PartitionStream;
use tokio::sync::mpsc;
use weir_storage::StateStore;

use crate::message::ViewId;
use crate::operator::OperatorInfo;
use crate::operators::view_table;
use crate::runtime::{ReadPin, ViewRegistry};
use crate::state::StateTableId;

/// The table id of a view's rows in its materialize's store.
pub const VIEW_ROWS_TABLE: StateTableId = StateTableId(1);

/// The snapshots one query reads, pinned by its first view scan.
#[derive(Debug, Default)]
pub struct QueryPin {
    pin: OnceLock<ReadPin>,
}

impl QueryPin {
    pub fn get(&self, registry: &ViewRegistry) -> &ReadPin {
        self.pin.get_or_init(|| registry.pin())
    }
}

/// Where a [`ViewTable`] reads its rows.
#[derive(Debug)]
enum Rows {
    /// The running view, at the query's pinned epoch.
    Live(Arc<ViewRegistry>),
    /// A fixed copy of its state: a view as a savepoint holds it.
    Saved(Arc<dyn StateStore>),
}

#[derive(Debug)]
pub struct ViewTable {
    view: ViewId,
    /// The columns the query sees: the leading columns of `stored`.
    schema: SchemaRef,
    stored: OperatorInfo,
    rows: Rows,
}

impl ViewTable {
    pub fn new(
        view: ViewId,
        schema: SchemaRef,
        stored: OperatorInfo,
        registry: Arc<ViewRegistry>,
    ) -> Self {
        Self {
            view,
            schema,
            stored,
            rows: Rows::Live(registry),
        }
    }

    /// The view as `state` (a copy of its materialize's store) holds it.
    pub fn saved(
        view: ViewId,
        schema: SchemaRef,
        stored: OperatorInfo,
        state: Arc<dyn StateStore>,
    ) -> Self {
        Self {
            view,
            schema,
            stored,
            rows: Rows::Saved(state),
        }
    }
}

#[async_trait]
impl TableProvider for ViewTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let snapshot = match &self.rows {
            Rows::Saved(state) => Arc::clone(state),
            Rows::Live(registry) => match state.config().get_extension::<QueryPin>() {
                Some(pin) => pin.get(registry).snapshot(self.view),
                None => registry.pin().snapshot(self.view),
            }?,
        };
        let scan = ViewScan {
            snapshot,
            schema: Arc::clone(&self.schema),
            stored: self.stored.clone(),
        };
        super::partition_scan(scan, projection, limit)
    }
}

#[derive(Debug)]
struct ViewScan {
    snapshot: Arc<dyn StateStore>,
    schema: SchemaRef,
    stored: OperatorInfo,
}

impl PartitionStream for ViewScan {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let (sender, receiver) = mpsc::channel::<Result<RecordBatch>>(2);
        let batch_rows = ctx.session_config().batch_size();
        let table = view_table(Arc::clone(&self.snapshot), VIEW_ROWS_TABLE, &self.stored);
        let schema = Arc::clone(&self.schema);
        tokio::task::spawn_blocking(move || {
            let scanned = table.and_then(|table| {
                table.scan(batch_rows, |rows| {
                    let visible = rows.columns()[..schema.fields().len()].to_vec();
                    let batch = RecordBatch::try_new(Arc::clone(&schema), visible)?;
                    Ok(sender.blocking_send(Ok(batch)).is_ok())
                })
            });
            if let Err(e) = scanned {
                let _ = sender.blocking_send(Err(e));
            }
        });
        let batches = futures::stream::unfold(receiver, |mut receiver| async move {
            let batch = receiver.recv().await?;
            Some((batch, receiver))
        });
        Box::pin(RecordBatchStreamAdapter::new(
            Arc::clone(&self.schema),
            batches,
        ))
    }
}
