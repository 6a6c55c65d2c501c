//! The batch read and write path over stored tables.
//!
//! Reads stream rows out of storage a batch at a time (never loading a
//! table whole); a filter `key = literal` or `key IN (...)` on a single-column
//! primary key becomes point lookups. Writes run as DataFusion
//! `DataSinkExec`s, so expressions are evaluated by DataFusion and the
//! statement's changes reach storage as one atomic, durable write, unless
//! the session's [`Transaction`] block holds them until COMMIT.

mod generated_table;
mod key_lookup;
mod scan;
mod sink;
mod stored_table;
mod transaction;
pub mod typed_text;
mod view_table;

pub use generated_table::GeneratedTable;
pub use stored_table::StoredTable;
pub use transaction::{Committing, Transaction};
pub use view_table::{QueryPin, VIEW_ROWS_TABLE, ViewTable};

use std::sync::Arc;

use datafusion::error::{DataFusionError, Result};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::streaming::{PartitionStream, StreamingTableExec};

/// Wraps a storage error so the server can still find it (and its SQLSTATE)
/// inside DataFusion's error.
pub(crate) fn storage_error(e: weir_storage::Error) -> DataFusionError {
    DataFusionError::External(Box::new(e))
}

/// A scan as one bounded, unordered partition, with the projection and
/// limit DataFusion asked for.
pub(crate) fn partition_scan(
    partition: impl PartitionStream + 'static,
    projection: Option<&Vec<usize>>,
    limit: Option<usize>,
) -> Result<Arc<dyn ExecutionPlan>> {
    let schema = Arc::clone(partition.schema());
    let exec = StreamingTableExec::try_new(
        schema,
        vec![Arc::new(partition)],
        projection,
        [],
        false,
        limit,
    )?;
    Ok(Arc::new(exec))
}
