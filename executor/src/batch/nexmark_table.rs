//! A Nexmark stream as DataFusion reads it in batch: every event of a
//! bounded run (`max_events`), generated as the query pulls batches. The
//! same events a streaming source emits, so a view's answer can be checked
//! against a batch query over the same input.

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

use crate::nexmark::{NexmarkConfig, Stream};

/// Events generated per batch a scan yields.
const EVENTS_PER_BATCH: u64 = 16_384;

#[derive(Debug)]
pub struct NexmarkTable {
    /// The relation's name, for errors.
    name: String,
    config: NexmarkConfig,
    stream: Stream,
}

impl NexmarkTable {
    pub fn new(name: String, config: NexmarkConfig, stream: Stream) -> Self {
        Self {
            name,
            config,
            stream,
        }
    }
}

#[async_trait]
impl TableProvider for NexmarkTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(self.stream.schema())
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
        let Some(events) = self.config.max_events else {
            return Err(DataFusionError::NotImplemented(format!(
                "source \"{}\" is unbounded (no max_events): read it through a materialized view",
                self.name
            )));
        };
        let scan = NexmarkScan {
            config: self.config,
            stream: self.stream,
            events,
        };
        super::partition_scan(scan, projection, limit)
    }
}

#[derive(Debug)]
struct NexmarkScan {
    config: NexmarkConfig,
    stream: Stream,
    events: u64,
}

impl PartitionStream for NexmarkScan {
    fn schema(&self) -> &SchemaRef {
        self.stream.schema()
    }

    fn execute(&self, _ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let (config, stream, events) = (self.config, self.stream, self.events);
        let batches = futures::stream::unfold(0u64, move |from| async move {
            if from >= events {
                return None;
            }
            let to = (from + EVENTS_PER_BATCH).min(events);
            let batch = stream.batch(&config, from..to).map(|(batch, _)| batch);
            Some((batch, to))
        });
        Box::pin(RecordBatchStreamAdapter::new(
            Arc::clone(stream.schema()),
            batches,
        ))
    }
}
