//! File sources: rows of CSV, JSON-lines or Parquet files under an object
//! storage URL (`file://`, `s3://`, `memory://`), as a replayable stream.
//!
//! Like a generated stream, a file source is addressed by offset: offset
//! `n` is the `n`th row of its files taken in path order ([`listing`]). A
//! checkpoint records one number, and a restored source lists and counts
//! the files again and goes on from that row. Files must not change once
//! written, and new ones must sort after those already read; either
//! mistake is refused rather than read twice or skipped.
//!
//! A directory is listed again every `discovery` interval once its known
//! rows are all read, so new files are picked up; without one, the source
//! is the files present at its first listing, a bounded run that batch
//! queries can also read.
//!
//! Object storage is asynchronous and [`GeneratedRows`] is not: file I/O
//! runs on a small runtime of its own, which callers wait on.

pub mod format;
mod listing;

use std::fmt;
use std::future::Future;
use std::ops::Range;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::compute::concat_batches;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::error::{DataFusionError, Result};
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};

pub use format::FileFormat;
use listing::Listing;

use crate::generated::GeneratedRows;

/// Where a file source reads: one file, or every file under a directory.
#[derive(Clone)]
pub struct FileLocation {
    /// As the user wrote it, for messages.
    pub url: String,
    /// The directory's store (for one file, its parent's).
    pub store: Arc<dyn ObjectStore>,
    /// The one file to read, when the URL names a file.
    pub file: Option<Path>,
}

impl fmt::Debug for FileLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.url)
    }
}

/// The rows of a file source.
pub struct FileRows {
    location: FileLocation,
    format: FileFormat,
    schema: SchemaRef,
    /// How often a directory is listed again; `None`: listed once.
    discovery: Option<Duration>,
    state: Mutex<FilesState>,
}

#[derive(Default)]
struct FilesState {
    listing: Listing,
    listed_at: Option<Instant>,
    /// The last file decoded, by index: rows are asked for in order.
    decoded: Option<(usize, RecordBatch)>,
}

impl fmt::Debug for FileRows {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileRows")
            .field("location", &self.location)
            .field("format", &self.format)
            .field("discovery", &self.discovery)
            .finish()
    }
}

/// The runtime file I/O runs on, whichever runtime (if any) waits for it.
fn io_runtime() -> &'static tokio::runtime::Runtime {
    static IO: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    IO.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("weir-file-io")
            .enable_all()
            .build()
            .expect("cannot start the file I/O runtime")
    })
}

/// Runs `io` on the file I/O runtime and waits for it.
///
/// The answer comes back on a plain channel, not by polling the task's
/// `JoinHandle`: called from a tokio worker (a batch scan is planned on
/// one), a `JoinHandle` draws on that worker's cooperative budget, and once
/// a long scan has spent it the handle answers "pending" and defers its
/// wake-up until the worker's current task yields, which a thread blocked
/// here never does.
fn wait_for_io<T: Send + 'static>(
    io: impl Future<Output = object_store::Result<T>> + Send + 'static,
) -> object_store::Result<T> {
    let (done, answer) = std::sync::mpsc::sync_channel(1);
    io_runtime().spawn(async move {
        let _ = done.send(io.await);
    });
    answer.recv().unwrap_or_else(|_| {
        Err(object_store::Error::Generic {
            store: "file source",
            source: "the file I/O task ended without an answer".into(),
        })
    })
}

impl FileRows {
    pub fn new(
        location: FileLocation,
        format: FileFormat,
        schema: SchemaRef,
        discovery: Option<Duration>,
    ) -> Self {
        Self {
            location,
            format,
            schema,
            discovery,
            state: Mutex::default(),
        }
    }

    fn error(&self, message: impl fmt::Display) -> DataFusionError {
        DataFusionError::Execution(format!("file source {}: {message}", self.location.url))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, FilesState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Lists the location and adds the files that are new.
    fn list(&self, state: &mut FilesState) -> Result<usize> {
        let store = Arc::clone(&self.location.store);
        let listed = match self.location.file.clone() {
            Some(file) => wait_for_io(async move { Ok(vec![store.head(&file).await?]) }),
            None => wait_for_io(async move { store.list(None).try_collect::<Vec<_>>().await }),
        }
        .map_err(|e| self.error(e))?;
        state.listed_at = Some(Instant::now());
        state.listing.merge(listed).map_err(|e| self.error(e))
    }

    /// Decodes file `index` (or takes it from the cache), counting its rows.
    fn decode(&self, state: &mut FilesState, index: usize) -> Result<RecordBatch> {
        if let Some((cached, batch)) = &state.decoded
            && *cached == index
        {
            return Ok(batch.clone());
        }
        let path = state.listing.files[index].path.clone();
        let store = Arc::clone(&self.location.store);
        let get = path.clone();
        let contents = wait_for_io(async move { store.get(&get).await?.bytes().await })
            .map_err(|e| self.error(e))?;
        let batch = self
            .format
            .decode(contents, &self.schema)
            .map_err(|e| self.error(format!("{path}: {e}")))?;
        state.listing.files[index].rows = Some(batch.num_rows() as u64);
        state.decoded = Some((index, batch.clone()));
        Ok(batch)
    }

    /// Counts files until `wanted` rows are known or every listed file is
    /// counted, listing again when discovery is due; returns the first
    /// offset not yet known to exist.
    fn count_through(&self, state: &mut FilesState, wanted: u64) -> Result<u64> {
        loop {
            let (counted, next) = state.listing.counted();
            if counted >= wanted {
                return Ok(counted);
            }
            if next < state.listing.files.len() {
                self.decode(state, next)?;
                continue;
            }
            let due = match (state.listed_at, self.discovery) {
                (None, _) => true,
                (Some(at), Some(every)) => at.elapsed() >= every,
                (Some(_), None) => false,
            };
            if !due || self.list(state)? == 0 {
                return Ok(counted);
            }
        }
    }
}

impl GeneratedRows for FileRows {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn rows(&self, offsets: Range<u64>) -> Result<(RecordBatch, Vec<u64>)> {
        let mut state = self.lock();
        let to = self
            .count_through(&mut state, offsets.end)?
            .min(offsets.end);
        let from = offsets.start.min(to);
        let mut slices = Vec::new();
        for (index, first) in state.listing.covering(from, to) {
            let batch = self.decode(&mut state, index)?;
            let start = from.max(first) - first;
            let end = to.min(first + batch.num_rows() as u64) - first;
            slices.push(batch.slice(start as usize, (end - start) as usize));
        }
        let batch = concat_batches(&self.schema, &slices)?;
        Ok((batch, (from..to).collect()))
    }

    fn available(&self, wanted: Range<u64>) -> Result<u64> {
        let mut state = self.lock();
        let known = self.count_through(&mut state, wanted.end)?;
        Ok(known.clamp(wanted.start, wanted.end))
    }

    fn recheck_after(&self) -> Duration {
        self.discovery.unwrap_or(Duration::from_secs(1))
    }

    fn end(&self) -> Option<u64> {
        if self.discovery.is_some() {
            return None;
        }
        let mut state = self.lock();
        // A file that cannot be read leaves the end unknown: reading on
        // reaches it and reports why.
        self.count_through(&mut state, u64::MAX).ok()
    }

    fn operator_name(&self) -> &'static str {
        "FileSource"
    }
}

#[cfg(test)]
mod tests;
