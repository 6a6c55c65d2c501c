//! [`TableStore`]: the durable tables of one database and their catalog.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak, mpsc};
use std::thread::JoinHandle;

use arrow::array::{ArrayRef, Int64Array};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;

use crate::codec::TableCodec;
use crate::commit::{self, Request};
use crate::keys::{self, LogBounds};
use crate::log_entry::LogEntry;
use crate::rocks::{Engine, EngineSnapshot};
use crate::{Error, LogOffset, Result};

/// Identifies a table for its whole life; never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TableId(pub u64);

/// How a table's rows are keyed in storage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TableKey {
    /// By these columns (indexes into the schema), which are unique.
    Primary(Vec<usize>),
    /// Append-only: by the log offset a row was written at.
    RowId,
}

/// What storage needs to know of a table to store its rows.
#[derive(Debug, Clone)]
pub struct TableLayout {
    pub id: TableId,
    pub name: String,
    pub schema: SchemaRef,
    pub key: TableKey,
}

/// The tables of one store at one point in time ([`TableStore::read_point`]).
#[derive(Clone)]
pub struct ReadPoint(Arc<EngineSnapshot>);

impl std::fmt::Debug for ReadPoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ReadPoint")
    }
}

/// What one statement does to one table, atomically: delete the rows with
/// these primary keys (missing ones are skipped), then insert these rows
/// (a key that exists after the deletions is a unique violation).
#[derive(Debug, Default)]
pub struct TableWrite {
    /// Key columns in primary-key order; empty for no deletions.
    pub delete_keys: Vec<ArrayRef>,
    /// Rows in the table's schema.
    pub inserts: Vec<RecordBatch>,
}

/// What a durable write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WriteOutcome {
    pub inserted: u64,
    pub deleted: u64,
    /// The table's log end after this write.
    pub log_end: LogOffset,
}

pub(crate) struct Shared {
    pub engine: Engine,
    pub tables: RwLock<HashMap<TableId, Arc<TableCodec>>>,
    /// Durable log bounds of every table touched since open.
    pub bounds: Mutex<HashMap<TableId, LogBounds>>,
    /// Log ends published to readers waiting for new entries.
    pub log_ends: Mutex<HashMap<TableId, tokio::sync::watch::Sender<LogOffset>>>,
    /// Where the live readers of each table's log are: truncation never
    /// passes one.
    pub readers: Mutex<HashMap<TableId, Vec<Weak<AtomicU64>>>>,
}

impl Shared {
    /// Drops every cached fact about tables: their store was replaced.
    pub fn forget_everything(&self) {
        if let Ok(mut tables) = self.tables.write() {
            tables.clear();
        }
        if let Ok(mut bounds) = self.bounds.lock() {
            bounds.clear();
        }
        if let Ok(mut log_ends) = self.log_ends.lock() {
            log_ends.clear();
        }
        if let Ok(mut readers) = self.readers.lock() {
            readers.clear();
        }
    }

    pub fn codec(&self, table: TableId) -> Result<Arc<TableCodec>> {
        let tables = self.tables.read().map_err(|_| poisoned())?;
        tables
            .get(&table)
            .cloned()
            .ok_or_else(|| Error::NoSuchTable(format!("table id {}", table.0)))
    }

    /// The lowest offset a live reader of `table` still needs.
    pub fn lowest_reader(&self, table: TableId) -> Option<LogOffset> {
        let mut readers = self.readers.lock().ok()?;
        let positions = readers.get_mut(&table)?;
        positions.retain(|p| p.strong_count() > 0);
        positions
            .iter()
            .filter_map(Weak::upgrade)
            .map(|p| LogOffset(p.load(Ordering::Acquire)))
            .min()
    }

    /// Bounds as durably stored.
    pub fn stored_bounds(&self, table: TableId) -> Result<LogBounds> {
        if let Some(bounds) = self.bounds.lock().map_err(|_| poisoned())?.get(&table) {
            return Ok(*bounds);
        }
        stored_bounds(table, self.engine.get(&keys::meta(table))?)
    }
}

/// A live reader of a table's log: the log is not truncated above its
/// position while it exists. Readers move it forward as they read.
#[derive(Debug)]
pub struct LogReader(Arc<AtomicU64>);

impl LogReader {
    pub fn advance(&self, offset: LogOffset) {
        self.0.fetch_max(offset.0, Ordering::AcqRel);
    }

    pub fn position(&self) -> LogOffset {
        LogOffset(self.0.load(Ordering::Acquire))
    }
}

/// A table as of one point in time, for a reader that starts there.
pub struct TableSnapshot {
    /// The log offset the rows are as of.
    pub offset: LogOffset,
    pub rows: RowReceiver,
    /// Holds the log from `offset` on.
    pub reader: LogReader,
}

/// Batches of rows, as [`TableStore::scan`] and [`TableStore::snapshot`]
/// stream them.
pub type RowReceiver = tokio::sync::mpsc::Receiver<Result<RecordBatch>>;

/// `batch` with `ids` as a last column, `_row_id`.
fn with_row_ids(batch: RecordBatch, ids: Vec<i64>) -> Result<RecordBatch> {
    let mut fields: Vec<_> = batch.schema().fields().iter().cloned().collect();
    fields.push(Arc::new(Field::new("_row_id", DataType::Int64, false)));
    let mut columns = batch.columns().to_vec();
    columns.push(Arc::new(Int64Array::from(ids)));
    Ok(RecordBatch::try_new(
        Arc::new(Schema::new(fields)),
        columns,
    )?)
}

/// A table's bounds from its meta value (none: a new, empty log).
fn stored_bounds(table: TableId, meta: Option<Vec<u8>>) -> Result<LogBounds> {
    match meta {
        Some(bytes) => LogBounds::decode(&bytes)
            .ok_or_else(|| Error::Corrupt(format!("log bounds of table {}", table.0))),
        None => Ok(LogBounds::default()),
    }
}

fn poisoned() -> Error {
    Error::Internal("table store lock poisoned".into())
}

/// The durable tables of one database. Cheap to share behind an `Arc`;
/// dropping the last handle stops the commit thread and closes the engine.
pub struct TableStore {
    shared: Arc<Shared>,
    requests: Option<mpsc::Sender<Request>>,
    committer: Option<JoinHandle<()>>,
}

impl TableStore {
    /// Opens (or creates) the store in `dir`.
    pub fn open(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::Storage(format!("{}: {e}", dir.display())))?;
        let shared = Arc::new(Shared {
            engine: Engine::open(dir)?,
            tables: RwLock::new(HashMap::new()),
            bounds: Mutex::new(HashMap::new()),
            log_ends: Mutex::new(HashMap::new()),
            readers: Mutex::new(HashMap::new()),
        });
        let (requests, committer) = commit::spawn(Arc::clone(&shared))?;
        Ok(Self {
            shared,
            requests: Some(requests),
            committer: Some(committer),
        })
    }

    pub(crate) fn shared(&self) -> &Shared {
        &self.shared
    }

    /// The catalog document last stored with a DDL change.
    pub fn catalog(&self) -> Result<Option<Vec<u8>>> {
        self.shared.engine.get(&keys::catalog())
    }

    /// Makes an existing table's rows readable and writable (after a restart).
    pub fn attach_table(&self, layout: TableLayout) -> Result<()> {
        let codec = Arc::new(TableCodec::new(layout)?);
        let mut tables = self.shared.tables.write().map_err(|_| poisoned())?;
        tables.insert(codec.layout.id, codec);
        Ok(())
    }

    /// Creates an empty table and stores `catalog` with it, durably.
    pub async fn create_table(&self, layout: TableLayout, catalog: Vec<u8>) -> Result<()> {
        let codec = Arc::new(TableCodec::new(layout)?);
        self.submit(|reply| Request::CreateTable {
            codec,
            catalog,
            reply,
        })
        .await?;
        Ok(())
    }

    /// Deletes a table's rows and log and stores `catalog`, durably.
    pub async fn drop_table(&self, table: TableId, catalog: Vec<u8>) -> Result<()> {
        self.submit(|reply| Request::DropTable {
            table,
            catalog,
            reply,
        })
        .await?;
        Ok(())
    }

    /// Applies `write` to `table`; returns once it is durable.
    ///
    /// # Errors
    /// A constraint violation refuses the whole write; a storage error means
    /// nothing of it was acknowledged.
    pub async fn write(&self, table: TableId, write: TableWrite) -> Result<WriteOutcome> {
        self.submit(|reply| Request::Write {
            table,
            write,
            reply,
        })
        .await
    }

    /// Stores a new catalog document, durably.
    pub async fn store_catalog(&self, catalog: Vec<u8>) -> Result<()> {
        self.submit(|reply| Request::Catalog { catalog, reply })
            .await?;
        Ok(())
    }

    /// The whole store as it is now (catalog, rows and logs of every
    /// table), read-only: what a savepoint writes out.
    pub fn frozen(&self) -> Arc<dyn crate::StateStore> {
        Arc::new(crate::state_store::RocksSnapshot {
            snapshot: self.shared.engine.snapshot(),
        })
    }

    /// Replaces the whole store with entries a savepoint holds, in chunks:
    /// the first (`clear`) removes everything there was. Tables must be
    /// attached again afterwards; no reader of the old logs may remain.
    pub async fn replace(&self, entries: Vec<(Vec<u8>, Vec<u8>)>, clear: bool) -> Result<()> {
        self.submit(|reply| Request::Replace {
            entries,
            clear,
            reply,
        })
        .await?;
        Ok(())
    }

    /// Whether a key of the whole store (as [`TableStore::frozen`] gives
    /// it) belongs to `table`'s rows or its metadata.
    pub fn is_table_key(table: TableId, key: &[u8]) -> bool {
        let meta = keys::meta(table);
        let (from, to) = keys::row_range(table);
        key == meta.as_slice() || (from.as_slice() <= key && key < to.as_slice())
    }

    /// `table`'s rows as `saved` holds them (a copy of the whole store, as
    /// a savepoint has it), decoded with the table's layout now; `None`
    /// when the table did not exist in it.
    pub fn saved_rows(
        &self,
        table: TableId,
        saved: &dyn crate::StateStore,
    ) -> Result<Option<RecordBatch>> {
        if saved.get(&keys::meta(table))?.is_none() {
            return Ok(None);
        }
        let codec = self.shared.codec(table)?;
        let (from, to) = keys::row_range(table);
        let mut rows = Vec::new();
        saved.scan(&from, &to, &mut |_, value| {
            rows.push(value.to_vec());
            Ok(true)
        })?;
        codec.decode_rows(rows.iter().map(Vec::as_slice)).map(Some)
    }

    /// Every table's id.
    pub fn table_ids(&self) -> Result<Vec<TableId>> {
        let tables = self.shared.tables.read().map_err(|_| poisoned())?;
        Ok(tables.keys().copied().collect())
    }

    /// Forgets log entries that end at or below `below`, or below the
    /// lowest live reader if that is lower; rows are kept.
    pub async fn truncate_log(&self, table: TableId, below: LogOffset) -> Result<()> {
        self.submit(|reply| Request::TruncateLog {
            table,
            below,
            reply,
        })
        .await?;
        Ok(())
    }

    pub(crate) async fn submit(
        &self,
        request: impl FnOnce(commit::Reply) -> Request,
    ) -> Result<WriteOutcome> {
        let (reply, outcome) = tokio::sync::oneshot::channel();
        let requests = self.requests.as_ref().ok_or_else(closed)?;
        requests.send(request(reply)).map_err(|_| closed())?;
        outcome.await.map_err(|_| closed())?
    }

    /// The table's layout.
    pub fn layout(&self, table: TableId) -> Result<TableLayout> {
        Ok(self.shared.codec(table)?.layout.clone())
    }

    /// Streams every row of `table`, in key order, from one point in time,
    /// `batch_rows` rows per batch. Reading runs on a blocking thread and
    /// stops when the receiver is dropped.
    pub fn scan(&self, table: TableId, batch_rows: usize) -> Result<RowReceiver> {
        let snapshot = Arc::new(self.shared.engine.snapshot());
        self.stream_rows(snapshot, table, batch_rows, false)
    }

    /// Every table as it is now, to read from many times: what a snapshot
    /// transaction block reads.
    pub fn read_point(&self) -> ReadPoint {
        ReadPoint(Arc::new(self.shared.engine.snapshot()))
    }

    /// [`TableStore::scan`] as of `point`.
    pub fn scan_at(
        &self,
        point: &ReadPoint,
        table: TableId,
        batch_rows: usize,
    ) -> Result<RowReceiver> {
        self.stream_rows(Arc::clone(&point.0), table, batch_rows, false)
    }

    /// Registers a reader of `table`'s log at `from`: the log is kept
    /// from there on while the reader lives.
    pub fn register_reader(&self, table: TableId, from: LogOffset) -> Result<LogReader> {
        let position = Arc::new(AtomicU64::new(from.0));
        let mut readers = self.shared.readers.lock().map_err(|_| poisoned())?;
        readers
            .entry(table)
            .or_default()
            .push(Arc::downgrade(&position));
        Ok(LogReader(position))
    }

    /// The rows of `table` at one point in time and the log offset they
    /// are as of: applying the log from that offset on to them gives the
    /// table's later states. What a new reader starts from, so the log
    /// below can be truncated. Rows of an append-only table carry their
    /// row id as a last Int64 column.
    pub fn snapshot(&self, table: TableId, batch_rows: usize) -> Result<TableSnapshot> {
        // Registered before the snapshot is taken, so no truncation that
        // the snapshot does not see can pass it.
        let reader = self.register_reader(table, LogOffset(0))?;
        let snapshot = Arc::new(self.shared.engine.snapshot());
        let bounds = stored_bounds(table, snapshot.get(&keys::meta(table))?)?;
        let row_ids = matches!(self.shared.codec(table)?.layout.key, TableKey::RowId);
        let rows = self.stream_rows(snapshot, table, batch_rows, row_ids)?;
        reader.advance(bounds.end);
        Ok(TableSnapshot {
            offset: bounds.end,
            rows,
            reader,
        })
    }

    fn stream_rows(
        &self,
        snapshot: Arc<EngineSnapshot>,
        table: TableId,
        batch_rows: usize,
        row_ids: bool,
    ) -> Result<RowReceiver> {
        let codec = self.shared.codec(table)?;
        let (sender, receiver) = tokio::sync::mpsc::channel(2);
        let batch_rows = batch_rows.max(1);
        tokio::task::spawn_blocking(move || {
            let (from, to) = keys::row_range(table);
            let prefix = from.len();
            let mut rows: Vec<Vec<u8>> = Vec::with_capacity(batch_rows);
            let mut ids: Vec<i64> = Vec::new();
            let mut open = true;
            let flush = |rows: &mut Vec<Vec<u8>>, ids: &mut Vec<i64>| {
                let mut batch = codec.decode_rows(rows.iter().map(Vec::as_slice));
                if row_ids {
                    batch = batch.and_then(|b| with_row_ids(b, std::mem::take(ids)));
                }
                rows.clear();
                sender.blocking_send(batch).is_ok()
            };
            let scanned = snapshot.scan(&from, &to, |key, value| {
                rows.push(value.to_vec());
                if row_ids {
                    let id: [u8; 8] = key
                        .get(prefix..)
                        .and_then(|k| k.try_into().ok())
                        .ok_or_else(|| Error::Corrupt("row id key".into()))?;
                    ids.push(u64::from_be_bytes(id) as i64);
                }
                if rows.len() >= batch_rows {
                    open = flush(&mut rows, &mut ids);
                }
                Ok(open)
            });
            match scanned {
                Ok(()) if open && !rows.is_empty() => {
                    flush(&mut rows, &mut ids);
                }
                Ok(()) => {}
                Err(e) => {
                    let _ = sender.blocking_send(Err(e));
                }
            }
        });
        Ok(receiver)
    }

    /// The rows whose primary keys are given (columns in key order); missing
    /// keys are skipped.
    pub fn get_rows(&self, table: TableId, key_columns: &[ArrayRef]) -> Result<RecordBatch> {
        self.get_rows_at(None, table, key_columns)
    }

    /// [`TableStore::get_rows`] as of `point`, or as of now for `None`.
    pub fn get_rows_at(
        &self,
        point: Option<&ReadPoint>,
        table: TableId,
        key_columns: &[ArrayRef],
    ) -> Result<RecordBatch> {
        let codec = self.shared.codec(table)?;
        let keys = codec.encode_key_columns(key_columns)?;
        let mut found = Vec::new();
        for key in keys.iter() {
            let key = keys::row(table, key.as_ref());
            let row = match point {
                Some(point) => point.0.get(&key)?,
                None => self.shared.engine.get(&key)?,
            };
            if let Some(row) = row {
                found.push(row);
            }
        }
        codec.decode_rows(found.iter().map(Vec::as_slice))
    }

    /// The offsets of `table`'s log: `start` (first readable) and `end`
    /// (the next row's offset).
    pub fn log_bounds(&self, table: TableId) -> Result<(LogOffset, LogOffset)> {
        let bounds = self.shared.stored_bounds(table)?;
        Ok((bounds.start, bounds.end))
    }

    /// The end of `table`'s durable log, updated after every commit that
    /// extends it: what a reader of the log waits on for new entries.
    pub fn subscribe_log_end(
        &self,
        table: TableId,
    ) -> Result<tokio::sync::watch::Receiver<LogOffset>> {
        let end = self.shared.stored_bounds(table)?.end;
        let mut log_ends = self.shared.log_ends.lock().map_err(|_| poisoned())?;
        let sender = log_ends
            .entry(table)
            .or_insert_with(|| tokio::sync::watch::Sender::new(end));
        // A commit may have landed between reading `end` and taking the lock.
        publish_log_end(sender, end);
        Ok(sender.subscribe())
    }

    /// Log entries of `table` from offset `from` on (the first entry is cut
    /// to start exactly there), until at least `max_rows` rows are read or
    /// the log ends. Offsets below the log start are gone and are skipped.
    pub fn read_log(
        &self,
        table: TableId,
        from: LogOffset,
        max_rows: usize,
    ) -> Result<Vec<LogEntry>> {
        let (range_from, range_to) = keys::log_range(table);
        let seek = match self
            .shared
            .engine
            .last_in(&range_from, &keys::log(table, from))?
        {
            Some((key, _)) => key,
            None => range_from,
        };
        let mut entries = Vec::new();
        let mut rows = 0;
        self.shared.engine.scan(&seek, &range_to, |key, value| {
            let first = keys::log_offset(key).ok_or_else(|| Error::Corrupt("log key".into()))?;
            let mut entry = LogEntry::decode(first, value)?;
            if entry.end() <= from {
                return Ok(true);
            }
            if entry.first < from {
                let skip = (from.0 - entry.first.0) as usize;
                entry.chunk = entry.chunk.slice(skip, entry.chunk.num_rows() - skip);
                entry.first = from;
            }
            rows += entry.chunk.num_rows();
            entries.push(entry);
            Ok(rows < max_rows)
        })?;
        Ok(entries)
    }
}

/// Moves a published log end forward (never back) and wakes its readers.
pub(crate) fn publish_log_end(sender: &tokio::sync::watch::Sender<LogOffset>, end: LogOffset) {
    sender.send_if_modified(|published| {
        let newer = end > *published;
        if newer {
            *published = end;
        }
        newer
    });
}

fn closed() -> Error {
    Error::Storage("table store is closed".into())
}

impl std::fmt::Debug for TableStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TableStore").finish_non_exhaustive()
    }
}

impl Drop for TableStore {
    fn drop(&mut self) {
        self.requests.take();
        if let Some(committer) = self.committer.take() {
            let _ = committer.join();
        }
    }
}
