//! A generated stream as DataFusion reads it in batch: every row of a
//! bounded run, generated as the query pulls batches. The same rows a
//! streaming source emits, so a view's answer can be checked against a
//! batch query over the same input.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{Session, TableProvider};
use datafusion::datasource::TableType;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::PartitionStream;

use crate::generated::GeneratedRows;

/// Offsets generated per batch a scan yields.
const OFFSETS_PER_BATCH: u64 = 16_384;

#[derive(Debug)]
pub struct GeneratedTable {
    /// The relation's name, for errors.
    name: String,
    rows: Arc<dyn GeneratedRows>,
}

impl GeneratedTable {
    pub fn new(name: String, rows: Arc<dyn GeneratedRows>) -> Self {
        Self { name, rows }
    }
}

#[async_trait]
impl TableProvider for GeneratedTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(self.rows.schema())
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let Some(end) = self.rows.end() else {
            return Err(DataFusionError::NotImplemented(format!(
                "source \"{}\" is unbounded: read it through a materialized view",
                self.name
            )));
        };
        let scan = GeneratedScan {
            rows: Arc::clone(&self.rows),
            end,
        };
        super::partition_scan(scan, projection, limit)
    }
}

#[derive(Debug)]
struct GeneratedScan {
    rows: Arc<dyn GeneratedRows>,
    end: u64,
}

impl PartitionStream for GeneratedScan {
    fn schema(&self) -> &SchemaRef {
        self.rows.schema()
    }

    fn execute(&self, _ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let (rows, end) = (Arc::clone(&self.rows), self.end);
        let batches = futures::stream::unfold(0u64, move |from| {
            let rows = Arc::clone(&rows);
            async move {
                if from >= end {
                    return None;
                }
                let to = (from + OFFSETS_PER_BATCH).min(end);
                let batch = rows.rows(from..to).map(|(batch, _)| batch);
                Some((batch, to))
            }
        });
        Box::pin(RecordBatchStreamAdapter::new(
            Arc::clone(self.rows.schema()),
            batches,
        ))
    }
}
