//! `weir_catalog`: weir's own system tables, queryable with ordinary SQL.
//!
//! - `checkpoints`: one row per checkpoint the coordinator remembers.
//! - `checkpoint_operators`: one row per operator instance per checkpoint.
//! - `view_sources`: per running view, each table or source it reads and
//!   how far: the log offset (or next event number) at its last barrier.
//! - `savepoints`: one row per savepoint: name, epoch, when, size, where,
//!   and the weir version that wrote it.
//! - `sources`: one row per relation a source provides, and whether the
//!   source is paused.
//! - `watermarks`: per running view, each watermark filter and
//!   window-closing aggregate: its watermark, the late rows it dropped
//!   and, for aggregates, the groups still open, as of its last barrier.
//!
//! Each lookup builds the table from the coordinator's history and the
//! catalog as they are at that moment (they are small), so a query sees one
//! consistent copy.

use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use datafusion::arrow::array::{
    ArrayRef, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray,
    TimestampMillisecondArray, UInt32Array,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::arrow::util::display::array_value_to_string;
use datafusion::catalog::{MemTable, SchemaProvider, TableProvider};
use datafusion::common::ScalarValue;
use datafusion::error::Result;
use weir_executor::checkpoint::{CheckpointCoordinator, CheckpointRecord};
use weir_executor::runtime::ViewRegistry;
use weir_executor::watermark::WatermarkReport;

use crate::catalog::{Catalog, SourceStatus, ViewEntry};
use crate::savepoint_registry::{SavepointRecord, SavepointRegistry};

pub const SYSTEM_SCHEMA: &str = "weir_catalog";

const TABLES: [&str; 7] = [
    "checkpoints",
    "checkpoint_operators",
    "savepoints",
    "sources",
    "views",
    "view_sources",
    "watermarks",
];

/// What `SHOW CHECKPOINTS` runs.
pub const SHOW_CHECKPOINTS: &str = "SELECT id, status, trigger, triggered_at, duration_ms, \
     sync_ms, async_ms, full_bytes, incremental_bytes, alignment_ms, failure \
     FROM weir_catalog.checkpoints ORDER BY id";

/// What `SHOW SAVEPOINTS` runs.
pub const SHOW_SAVEPOINTS: &str = "SELECT name, epoch, created_at, size_bytes, location, \
     weir_version FROM weir_catalog.savepoints ORDER BY created_at, name";

#[derive(Debug)]
pub struct SystemSchema {
    pub checkpoints: Arc<OnceLock<CheckpointCoordinator>>,
    pub catalog: Arc<Catalog>,
    pub savepoints: Arc<SavepointRegistry>,
    /// Whether each view runs or failed.
    pub registry: Arc<ViewRegistry>,
}

fn ms(duration: std::time::Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

fn checkpoints_table(history: &[CheckpointRecord]) -> Result<(SchemaRef, RecordBatch)> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("epoch", DataType::Int64, false),
        Field::new("kind", DataType::Utf8, false),
        Field::new("status", DataType::Utf8, false),
        Field::new("trigger", DataType::Utf8, false),
        Field::new(
            "triggered_at",
            DataType::Timestamp(TimeUnit::Millisecond, None),
            false,
        ),
        Field::new("duration_ms", DataType::Float64, true),
        Field::new("sync_ms", DataType::Float64, false),
        Field::new("async_ms", DataType::Float64, false),
        Field::new("start_delay_ms", DataType::Float64, false),
        Field::new("alignment_ms", DataType::Float64, false),
        Field::new("full_bytes", DataType::Int64, false),
        Field::new("incremental_bytes", DataType::Int64, false),
        Field::new("operators", DataType::Int64, false),
        Field::new("failure", DataType::Utf8, true),
    ]));
    let column = |f: &dyn Fn(&CheckpointRecord) -> f64| -> ArrayRef {
        Arc::new(Float64Array::from_iter_values(history.iter().map(f)))
    };
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from_iter_values(
            history.iter().map(|r| r.id as i64),
        )),
        Arc::new(Int64Array::from_iter_values(
            history.iter().map(|r| r.epoch as i64),
        )),
        Arc::new(StringArray::from_iter_values(
            history.iter().map(|_| "checkpoint"),
        )),
        Arc::new(StringArray::from_iter_values(
            history.iter().map(|r| r.status.as_str()),
        )),
        Arc::new(StringArray::from_iter_values(
            history.iter().map(|r| r.trigger.as_str()),
        )),
        Arc::new(TimestampMillisecondArray::from_iter_values(
            history.iter().map(|r| r.triggered_at_ms),
        )),
        Arc::new(Float64Array::from_iter(
            history.iter().map(|r| r.duration.map(ms)),
        )),
        column(&|r| ms(r.sync)),
        column(&|r| ms(r.upload)),
        column(&|r| ms(r.start_delay)),
        column(&|r| ms(r.alignment)),
        Arc::new(Int64Array::from_iter_values(
            history.iter().map(|r| r.full_bytes as i64),
        )),
        Arc::new(Int64Array::from_iter_values(
            history.iter().map(|r| r.incremental_bytes as i64),
        )),
        Arc::new(Int64Array::from_iter_values(
            history.iter().map(|r| r.operators.len() as i64),
        )),
        Arc::new(StringArray::from_iter(
            history.iter().map(|r| r.failure.clone()),
        )),
    ];
    let batch = RecordBatch::try_new(Arc::clone(&schema), columns)?;
    Ok((schema, batch))
}

fn operators_table(history: &[CheckpointRecord]) -> Result<(SchemaRef, RecordBatch)> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("checkpoint_id", DataType::Int64, false),
        Field::new("view", DataType::Utf8, false),
        Field::new("operator", DataType::Utf8, false),
        Field::new("instance", DataType::UInt32, false),
        Field::new("state_bytes", DataType::Int64, false),
        Field::new("uploaded_bytes", DataType::Int64, false),
        Field::new("sync_ms", DataType::Float64, false),
        Field::new("async_ms", DataType::Float64, false),
        Field::new("alignment_ms", DataType::Float64, false),
    ]));
    let rows: Vec<_> = history
        .iter()
        .flat_map(|r| r.operators.iter().map(move |o| (r.id, o)))
        .collect();
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from_iter_values(
            rows.iter().map(|(id, _)| *id as i64),
        )),
        Arc::new(StringArray::from_iter_values(
            rows.iter().map(|(_, o)| o.view.as_str()),
        )),
        Arc::new(StringArray::from_iter_values(
            rows.iter().map(|(_, o)| o.operator.as_str()),
        )),
        Arc::new(UInt32Array::from_iter_values(
            rows.iter().map(|(_, o)| o.instance),
        )),
        Arc::new(Int64Array::from_iter_values(
            rows.iter().map(|(_, o)| o.state_bytes as i64),
        )),
        Arc::new(Int64Array::from_iter_values(
            rows.iter().map(|(_, o)| o.uploaded_bytes as i64),
        )),
        Arc::new(Float64Array::from_iter_values(
            rows.iter().map(|(_, o)| ms(o.sync)),
        )),
        Arc::new(Float64Array::from_iter_values(
            rows.iter().map(|(_, o)| ms(o.upload)),
        )),
        Arc::new(Float64Array::from_iter_values(
            rows.iter().map(|(_, o)| ms(o.alignment)),
        )),
    ];
    let batch = RecordBatch::try_new(Arc::clone(&schema), columns)?;
    Ok((schema, batch))
}

/// Every materialized view: `running`, or `failed` with why (it restarts
/// under the restart strategy, or with `ALTER MATERIALIZED VIEW ... RESUME`).
fn views_table(
    views: &[Arc<ViewEntry>],
    registry: &ViewRegistry,
) -> Result<(SchemaRef, RecordBatch)> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("name", DataType::Utf8, false),
        Field::new("status", DataType::Utf8, false),
        Field::new("failure", DataType::Utf8, true),
    ]));
    let failures: Vec<Option<String>> = views
        .iter()
        .map(|v| registry.failure(v.id).map(|f| f.to_string()))
        .collect();
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(
            views.iter().map(|v| v.record.name.as_str()),
        )),
        Arc::new(StringArray::from_iter_values(
            failures
                .iter()
                .map(|f| if f.is_some() { "failed" } else { "running" }),
        )),
        Arc::new(StringArray::from_iter(failures)),
    ];
    let batch = RecordBatch::try_new(Arc::clone(&schema), columns)?;
    Ok((schema, batch))
}

fn view_sources_table(views: &[Arc<ViewEntry>]) -> Result<(SchemaRef, RecordBatch)> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("view", DataType::Utf8, false),
        Field::new("source", DataType::Utf8, false),
        Field::new("offset", DataType::Int64, false),
    ]));
    let rows: Vec<(&str, &str, i64)> = views
        .iter()
        .flat_map(|view| {
            view.sources.iter().map(|(source, progress)| {
                (
                    view.record.name.as_str(),
                    source.as_str(),
                    i64::try_from(progress.get()).unwrap_or(i64::MAX),
                )
            })
        })
        .collect();
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.0))),
        Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.1))),
        Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.2))),
    ];
    let batch = RecordBatch::try_new(Arc::clone(&schema), columns)?;
    Ok((schema, batch))
}

fn savepoints_table(savepoints: &[SavepointRecord]) -> Result<(SchemaRef, RecordBatch)> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("name", DataType::Utf8, false),
        Field::new("epoch", DataType::Int64, false),
        Field::new(
            "created_at",
            DataType::Timestamp(TimeUnit::Millisecond, None),
            false,
        ),
        Field::new("size_bytes", DataType::Int64, false),
        Field::new("location", DataType::Utf8, false),
        Field::new("weir_version", DataType::Utf8, false),
    ]));
    let text = |f: fn(&SavepointRecord) -> &str| -> ArrayRef {
        Arc::new(StringArray::from_iter_values(savepoints.iter().map(f)))
    };
    let columns: Vec<ArrayRef> = vec![
        text(|s| &s.name),
        Arc::new(Int64Array::from_iter_values(
            savepoints.iter().map(|s| s.epoch as i64),
        )),
        Arc::new(TimestampMillisecondArray::from_iter_values(
            savepoints.iter().map(|s| s.created_at_ms),
        )),
        Arc::new(Int64Array::from_iter_values(
            savepoints.iter().map(|s| s.size as i64),
        )),
        text(|s| &s.location),
        text(|s| &s.weir_version),
    ];
    Ok((Arc::clone(&schema), RecordBatch::try_new(schema, columns)?))
}

fn sources_table(sources: &[SourceStatus]) -> Result<(SchemaRef, RecordBatch)> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("source", DataType::Utf8, false),
        Field::new("relation", DataType::Utf8, false),
        Field::new("paused", DataType::Boolean, false),
    ]));
    let rows: Vec<(&SourceStatus, &str)> = sources
        .iter()
        .flat_map(|s| s.relations.iter().map(move |r| (s, r.as_str())))
        .collect();
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(
            rows.iter().map(|r| r.0.name.as_str()),
        )),
        Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.1))),
        Arc::new(BooleanArray::from_iter(
            rows.iter().map(|r| Some(r.0.paused)),
        )),
    ];
    let batch = RecordBatch::try_new(Arc::clone(&schema), columns)?;
    Ok((schema, batch))
}

/// A value as text the way query results show it: timestamps as dates.
fn shown(value: &ScalarValue) -> Result<String> {
    Ok(array_value_to_string(&value.to_array()?, 0)?)
}

fn watermarks_table(views: &[Arc<ViewEntry>]) -> Result<(SchemaRef, RecordBatch)> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("view", DataType::Utf8, false),
        Field::new("operator", DataType::Utf8, false),
        Field::new("watermark", DataType::Utf8, true),
        Field::new("late_rows", DataType::Int64, false),
        Field::new("open_groups", DataType::Int64, true),
    ]));
    let rows: Vec<(&str, &str, WatermarkReport)> = views
        .iter()
        .flat_map(|view| {
            view.watermarks.iter().map(|(operator, progress)| {
                (view.record.name.as_str(), operator.as_str(), progress.get())
            })
        })
        .collect();
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.0))),
        Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.1))),
        Arc::new(StringArray::from_iter(
            rows.iter()
                .map(|r| r.2.value.as_ref().map(shown).transpose())
                .collect::<Result<Vec<_>>>()?,
        )),
        Arc::new(Int64Array::from_iter_values(
            rows.iter()
                .map(|r| i64::try_from(r.2.late_rows).unwrap_or(i64::MAX)),
        )),
        Arc::new(Int64Array::from_iter(rows.iter().map(|r| {
            r.2.open_groups
                .map(|n| i64::try_from(n).unwrap_or(i64::MAX))
        }))),
    ];
    let batch = RecordBatch::try_new(Arc::clone(&schema), columns)?;
    Ok((schema, batch))
}

#[async_trait]
impl SchemaProvider for SystemSchema {
    fn table_names(&self) -> Vec<String> {
        TABLES.iter().map(ToString::to_string).collect()
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        let history = self
            .checkpoints
            .get()
            .map(CheckpointCoordinator::history)
            .unwrap_or_default();
        let (schema, batch) = match name {
            "checkpoints" => checkpoints_table(&history)?,
            "checkpoint_operators" => operators_table(&history)?,
            "sources" => sources_table(&self.catalog.sources())?,
            "savepoints" => savepoints_table(&self.savepoints.list())?,
            "views" => views_table(&self.catalog.views(), &self.registry)?,
            "view_sources" => view_sources_table(&self.catalog.views())?,
            "watermarks" => watermarks_table(&self.catalog.views())?,
            _ => return Ok(None),
        };
        Ok(Some(Arc::new(MemTable::try_new(
            schema,
            vec![vec![batch]],
        )?)))
    }

    fn table_exist(&self, name: &str) -> bool {
        TABLES.contains(&name)
    }
}
