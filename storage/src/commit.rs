//! The commit thread: the single writer of the table store.
//!
//! Requests are validated one by one in arrival order against committed
//! state plus everything already accepted into the current group, so
//! constraint checks see a serial history. All requests queued while the
//! previous group was syncing form the next group, written as one batch
//! with one fsync; every request in it is answered only after that sync.

use std::collections::HashMap;
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;

use arrow::compute::concat_batches;
use arrow::record_batch::RecordBatch;
use tokio::sync::oneshot;

use crate::codec::TableCodec;
use crate::keys::{self, LogBounds};
use crate::log_entry::{ChangeOp, LogEntry};
use crate::rocks::Batch;
use crate::table_store::{Shared, publish_log_end};
use crate::{
    ConstraintViolation, Error, LogOffset, Result, TableId, TableKey, TableLayout, TableWrite,
    WriteOutcome,
};

/// Most requests merged into one synced write; bounds the latency a large
/// group adds to its first member.
const MAX_GROUP: usize = 1024;

pub(crate) type Reply = oneshot::Sender<Result<WriteOutcome>>;

pub(crate) enum Request {
    CreateTable {
        codec: Arc<TableCodec>,
        catalog: Vec<u8>,
        reply: Reply,
    },
    DropTable {
        table: TableId,
        catalog: Vec<u8>,
        reply: Reply,
    },
    Write {
        table: TableId,
        write: TableWrite,
        reply: Reply,
    },
    /// A transaction's changes to several tables: every one or none.
    Transaction {
        changes: Vec<(TableId, Changes)>,
        reply: Reply,
    },
    TruncateLog {
        table: TableId,
        below: LogOffset,
        reply: Reply,
    },
    /// DDL that touches no table's rows: views.
    Catalog { catalog: Vec<u8>, reply: Reply },
    /// Entries of a restored savepoint; `clear` first removes everything.
    Replace {
        entries: Vec<(Vec<u8>, Vec<u8>)>,
        clear: bool,
        reply: Reply,
    },
}

pub(crate) fn spawn(shared: Arc<Shared>) -> Result<(mpsc::Sender<Request>, JoinHandle<()>)> {
    let (sender, receiver) = mpsc::channel();
    let handle = std::thread::Builder::new()
        .name("weir-commit".into())
        .spawn(move || run(&shared, &receiver))
        .map_err(|e| Error::Internal(format!("cannot start commit thread: {e}")))?;
    Ok((sender, handle))
}

fn run(shared: &Shared, receiver: &mpsc::Receiver<Request>) {
    while let Ok(first) = receiver.recv() {
        let mut group = Group::new(shared);
        let mut accepted = Vec::new();
        let mut next = Some(first);
        while let Some(request) = next {
            let (reply, result) = group.apply(request);
            match result {
                Ok(outcome) => accepted.push((reply, outcome)),
                Err(e) => {
                    let _ = reply.send(Err(e));
                }
            }
            next = if accepted.len() < MAX_GROUP {
                receiver.try_recv().ok()
            } else {
                None
            };
        }
        match group.commit() {
            Ok(()) => {
                for (reply, outcome) in accepted {
                    let _ = reply.send(Ok(outcome));
                }
            }
            Err(e) => {
                tracing::error!("commit failed: {e}");
                let message = match &e {
                    Error::Storage(message) => message.clone(),
                    other => other.to_string(),
                };
                for (reply, _) in accepted {
                    let _ = reply.send(Err(Error::Storage(message.clone())));
                }
            }
        }
    }
}

/// Row changes by storage key: what a transaction's writes to one table
/// come to. Deleted keys that no longer exist are skipped.
#[derive(Debug, Default)]
pub(crate) struct Changes {
    pub deletes: Vec<Vec<u8>>,
    pub inserts: Vec<RecordBatch>,
}

/// A log entry: its key and its encoded changes.
type EncodedEntry = (Vec<u8>, Vec<u8>);

/// One table's validated changes, ready to join the group.
struct Staged {
    table: TableId,
    /// The log entry and the table's bounds after it.
    log: Option<(EncodedEntry, LogBounds)>,
    rows: HashMap<Vec<u8>, Option<Vec<u8>>>,
    outcome: WriteOutcome,
}

/// Requests accepted since the last sync, not yet durable.
struct Group<'a> {
    shared: &'a Shared,
    batch: Batch,
    /// Row keys written by the group: `None` is a deletion.
    rows: HashMap<Vec<u8>, Option<Vec<u8>>>,
    bounds: HashMap<TableId, LogBounds>,
    created: Vec<Arc<TableCodec>>,
    dropped: Vec<TableId>,
    /// Everything stored before was removed (a savepoint restore).
    cleared: bool,
}

impl<'a> Group<'a> {
    fn new(shared: &'a Shared) -> Self {
        Self {
            shared,
            batch: Batch::default(),
            rows: HashMap::new(),
            bounds: HashMap::new(),
            created: Vec::new(),
            dropped: Vec::new(),
            cleared: false,
        }
    }

    fn apply(&mut self, request: Request) -> (Reply, Result<WriteOutcome>) {
        match request {
            Request::CreateTable {
                codec,
                catalog,
                reply,
            } => {
                let table = codec.layout.id;
                self.batch.put(&keys::catalog(), &catalog);
                self.set_bounds(table, LogBounds::default());
                if let Ok(mut tables) = self.shared.tables.write() {
                    tables.insert(table, Arc::clone(&codec));
                }
                self.created.push(codec);
                (reply, Ok(WriteOutcome::default()))
            }
            Request::DropTable {
                table,
                catalog,
                reply,
            } => {
                let (log_from, log_to) = keys::log_range(table);
                self.batch.delete_range(&log_from, &log_to);
                let (from, to) = keys::row_range(table);
                self.batch.delete_range(&from, &to);
                self.batch.delete(&keys::meta(table));
                self.batch.put(&keys::catalog(), &catalog);
                self.rows.retain(|key, _| {
                    !(from.as_slice() <= key.as_slice() && key.as_slice() < to.as_slice())
                });
                self.bounds.remove(&table);
                self.dropped.push(table);
                (reply, Ok(WriteOutcome::default()))
            }
            Request::Write {
                table,
                write,
                reply,
            } => (reply, self.write(table, write)),
            Request::Transaction { changes, reply } => (reply, self.transaction(changes)),
            Request::TruncateLog {
                table,
                below,
                reply,
            } => (reply, self.truncate(table, below)),
            Request::Catalog { catalog, reply } => {
                self.batch.put(&keys::catalog(), &catalog);
                (reply, Ok(WriteOutcome::default()))
            }
            Request::Replace {
                entries,
                clear,
                reply,
            } => {
                if clear {
                    let (from, to) = keys::all();
                    self.batch.delete_range(&from, &to);
                    self.rows.clear();
                    self.bounds.clear();
                    self.cleared = true;
                }
                for (key, value) in &entries {
                    self.batch.put(key, value);
                }
                (reply, Ok(WriteOutcome::default()))
            }
        }
    }

    fn bounds(&self, table: TableId) -> Result<LogBounds> {
        match self.bounds.get(&table) {
            Some(bounds) => Ok(*bounds),
            None => self.shared.stored_bounds(table),
        }
    }

    fn set_bounds(&mut self, table: TableId, bounds: LogBounds) {
        self.batch.put(&keys::meta(table), &bounds.encode());
        self.bounds.insert(table, bounds);
    }

    /// The row stored under `key` as this group sees it, with `staged`
    /// (the current table's own changes) on top.
    fn row(
        &self,
        staged: &HashMap<Vec<u8>, Option<Vec<u8>>>,
        key: &[u8],
    ) -> Result<Option<Vec<u8>>> {
        if let Some(row) = staged.get(key).or_else(|| self.rows.get(key)) {
            return Ok(row.clone());
        }
        self.shared.engine.get(key)
    }

    fn write(&mut self, table: TableId, write: TableWrite) -> Result<WriteOutcome> {
        let codec = self.codec(table)?;
        let deletes = if write.delete_keys.is_empty() {
            Vec::new()
        } else {
            let keys = codec.encode_key_columns(&write.delete_keys)?;
            keys.iter().map(|k| keys::row(table, k.as_ref())).collect()
        };
        let changes = Changes {
            deletes,
            inserts: write.inserts,
        };
        let staged = self.stage(table, &codec, changes)?;
        Ok(self.apply_staged(staged))
    }

    /// Checks every table's changes before applying any, so a violation in
    /// one leaves the group as it was.
    fn transaction(&mut self, changes: Vec<(TableId, Changes)>) -> Result<WriteOutcome> {
        let staged = changes
            .into_iter()
            .map(|(table, changes)| {
                let codec = self.codec(table)?;
                self.stage(table, &codec, changes)
            })
            .collect::<Result<Vec<_>>>()?;
        let mut total = WriteOutcome::default();
        for staged in staged {
            let outcome = self.apply_staged(staged);
            total.inserted += outcome.inserted;
            total.deleted += outcome.deleted;
        }
        Ok(total)
    }

    fn codec(&self, table: TableId) -> Result<Arc<TableCodec>> {
        if self.dropped.contains(&table) {
            return Err(Error::NoSuchTable(format!("table id {}", table.0)));
        }
        self.shared.codec(table)
    }

    /// Validates `changes` against committed state and the group so far,
    /// and prepares their rows and log entry without applying them.
    fn stage(&self, table: TableId, codec: &TableCodec, changes: Changes) -> Result<Staged> {
        let layout = &codec.layout;
        let mut bounds = self.bounds(table)?;
        let mut rows: HashMap<Vec<u8>, Option<Vec<u8>>> = HashMap::new();

        let mut deleted = Vec::new();
        for key in changes.deletes {
            if let Some(old) = self.row(&rows, &key)? {
                deleted.push(old);
                rows.insert(key, None);
            }
        }

        let mut next_offset = bounds.end.0 + deleted.len() as u64;
        let mut inserted = 0u64;
        let inserts = changes
            .inserts
            .iter()
            .map(|batch| conform(layout, batch))
            .collect::<Result<Vec<_>>>()?;
        for batch in &inserts {
            let encoded = codec.encode_rows(batch)?;
            let keys = codec.encode_keys(batch)?;
            for i in 0..batch.num_rows() {
                let key = match (&layout.key, &keys) {
                    (TableKey::Primary(_), Some(keys)) => keys::row(table, keys.row(i).as_ref()),
                    _ => keys::row(table, &(next_offset + i as u64).to_be_bytes()),
                };
                if self.row(&rows, &key)?.is_some() {
                    return Err(ConstraintViolation::UniqueKey {
                        table: layout.name.clone(),
                    }
                    .into());
                }
                rows.insert(key, Some(encoded.row(i).as_ref().to_vec()));
            }
            next_offset += batch.num_rows() as u64;
            inserted += batch.num_rows() as u64;
        }

        let mut chunks = Vec::new();
        if !deleted.is_empty() {
            let rows = codec.decode_rows(deleted.iter().map(Vec::as_slice))?;
            chunks.push(LogEntry::chunk_of(ChangeOp::Delete, &rows)?);
        }
        for batch in inserts.iter().filter(|b| b.num_rows() > 0) {
            chunks.push(LogEntry::chunk_of(ChangeOp::Insert, batch)?);
        }
        let log = match chunks.first() {
            Some(first) => {
                let chunk: RecordBatch = concat_batches(&first.schema(), &chunks)?;
                let entry = (
                    keys::log(table, bounds.end),
                    LogEntry::encode_chunk(&chunk)?,
                );
                bounds.end = LogOffset(next_offset);
                Some((entry, bounds))
            }
            None => None,
        };
        Ok(Staged {
            table,
            log,
            rows,
            outcome: WriteOutcome {
                inserted,
                deleted: deleted.len() as u64,
                log_end: bounds.end,
            },
        })
    }

    fn apply_staged(&mut self, staged: Staged) -> WriteOutcome {
        if let Some(((key, entry), bounds)) = staged.log {
            self.batch.put(&key, &entry);
            self.set_bounds(staged.table, bounds);
        }
        for (key, row) in staged.rows {
            match &row {
                Some(row) => self.batch.put(&key, row),
                None => self.batch.delete(&key),
            }
            self.rows.insert(key, row);
        }
        staged.outcome
    }

    fn truncate(&mut self, table: TableId, below: LogOffset) -> Result<WriteOutcome> {
        let mut bounds = self.bounds(table)?;
        let below = below
            .min(bounds.end)
            .min(self.shared.lowest_reader(table).unwrap_or(below));
        if below <= bounds.start {
            return Ok(WriteOutcome {
                log_end: bounds.end,
                ..Default::default()
            });
        }
        let (from, _) = keys::log_range(table);
        // The entry holding `below` may start earlier; keep it unless it ends there.
        let keep_from = match self
            .shared
            .engine
            .last_in(&from, &keys::log(table, below))?
        {
            Some((key, value)) => {
                let first =
                    keys::log_offset(&key).ok_or_else(|| Error::Corrupt("log key".into()))?;
                if LogEntry::decode(first, &value)?.end() <= below {
                    below
                } else {
                    first
                }
            }
            None => below,
        };
        self.batch.delete_range(&from, &keys::log(table, keep_from));
        bounds.start = below;
        self.set_bounds(table, bounds);
        Ok(WriteOutcome {
            log_end: bounds.end,
            ..Default::default()
        })
    }

    fn commit(self) -> Result<()> {
        if !self.batch.is_empty()
            && let Err(e) = self.shared.engine.write(self.batch, true)
        {
            if let Ok(mut tables) = self.shared.tables.write() {
                for codec in &self.created {
                    tables.remove(&codec.layout.id);
                }
            }
            return Err(e);
        }
        if self.cleared {
            self.shared.forget_everything();
        }
        let mut bounds = self
            .shared
            .bounds
            .lock()
            .map_err(|_| Error::Internal("lock poisoned".into()))?;
        bounds.extend(self.bounds.iter());
        for table in &self.dropped {
            bounds.remove(table);
        }
        drop(bounds);
        if let Ok(mut log_ends) = self.shared.log_ends.lock() {
            for (table, end) in self.bounds.iter().map(|(t, b)| (t, b.end)) {
                if let Some(sender) = log_ends.get(table) {
                    publish_log_end(sender, end);
                }
            }
            for table in &self.dropped {
                log_ends.remove(table);
            }
        }
        if let Ok(mut tables) = self.shared.tables.write() {
            for table in &self.dropped {
                tables.remove(table);
            }
        }
        Ok(())
    }
}

/// `batch` with the table's own schema, after checking NOT NULL columns.
pub(crate) fn conform(layout: &TableLayout, batch: &RecordBatch) -> Result<RecordBatch> {
    let fields = layout.schema.fields();
    if batch.num_columns() != fields.len() {
        return Err(Error::Internal(format!(
            "write to {} has {} columns, the table has {}",
            layout.name,
            batch.num_columns(),
            fields.len()
        )));
    }
    for (field, column) in fields.iter().zip(batch.columns()) {
        if !field.is_nullable() && column.null_count() > 0 {
            return Err(ConstraintViolation::NotNull {
                table: layout.name.clone(),
                column: field.name().clone(),
            }
            .into());
        }
    }
    Ok(RecordBatch::try_new(
        Arc::clone(&layout.schema),
        batch.columns().to_vec(),
    )?)
}
