//! [`StateTable`]: rows of one operator's state, keyed, versioned by epoch.
//!
//! Writes go to a buffer for the current epoch; reads see the committed
//! state with that buffer on top; [`StateTable::commit`] is the only way an
//! epoch's writes reach the store. Keys and rows use Arrow's row format,
//! so key order is value order and rows decode a batch at a time.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use datafusion::arrow::array::{ArrayRef, RecordBatch};
use datafusion::arrow::compute::SortOptions;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::row::{RowConverter, SortField};
use datafusion::error::{DataFusionError, Result};
use weir_storage::StateStore;

use super::MAX_PARALLELISM;
use super::cache::HotKeys;
use crate::batch::storage_error;
use crate::message::{Epoch, StreamChunk};

/// Identifies a state table within its store; deterministic per operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StateTableId(pub u32);

/// Where the committed epoch is recorded: past every key group.
const META_GROUP: u16 = u16::MAX;

/// The key group of a memcomparable key: stable across versions and runs.
pub fn key_group(key: &[u8]) -> u16 {
    (twox_hash::XxHash64::oneshot(0, key) % u64::from(MAX_PARALLELISM)) as u16
}

/// The smallest key greater than every key starting with `prefix`.
fn successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut next = prefix.to_vec();
    while let Some(last) = next.pop() {
        if last < u8::MAX {
            next.push(last + 1);
            return Some(next);
        }
    }
    None
}

/// For each key looked up, the index of its row in `rows`, if found.
#[derive(Debug)]
pub struct Lookup {
    pub rows: RecordBatch,
    pub found: Vec<Option<usize>>,
}

pub struct StateTable {
    store: Arc<dyn StateStore>,
    id: StateTableId,
    schema: SchemaRef,
    key_columns: Vec<usize>,
    keys: RowConverter,
    /// The leading key columns that choose the key group; rows sharing
    /// them are contiguous and can be scanned as a prefix.
    distribution: RowConverter,
    distribution_len: usize,
    rows: RowConverter,
    /// This epoch's writes by full store key; `None` deletes.
    pending: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    /// Committed rows of recently used keys, so hot keys skip the store.
    hot: Mutex<HotKeys>,
}

/// Rows an epoch buffers per table before writing them to the store early.
pub(super) const MAX_PENDING: usize = 64 * 1024;

/// Keys per table whose committed rows stay in memory (up to twice this).
const HOT_KEYS: usize = 16 * 1024;

fn internal(message: String) -> DataFusionError {
    DataFusionError::Internal(message)
}

impl StateTable {
    /// A table of rows with `schema`, keyed (uniquely) by `key_columns`
    /// in ascending order, the whole key choosing the key group.
    pub fn new(
        store: Arc<dyn StateStore>,
        id: StateTableId,
        schema: SchemaRef,
        key_columns: Vec<usize>,
    ) -> Result<Self> {
        let order = vec![SortOptions::default(); key_columns.len()];
        let distribution_len = key_columns.len();
        Self::with_layout(store, id, schema, key_columns, order, distribution_len)
    }

    /// A table whose key columns sort by `order`, and whose first
    /// `distribution_len` key columns alone choose the key group.
    pub fn with_layout(
        store: Arc<dyn StateStore>,
        id: StateTableId,
        schema: SchemaRef,
        key_columns: Vec<usize>,
        order: Vec<SortOptions>,
        distribution_len: usize,
    ) -> Result<Self> {
        if order.len() != key_columns.len() || distribution_len > key_columns.len() {
            return Err(internal(format!("state table {}: bad key layout", id.0)));
        }
        let key_field = |(&i, &options): (&usize, &SortOptions)| {
            SortField::new_with_options(schema.field(i).data_type().clone(), options)
        };
        let keys = RowConverter::new(key_columns.iter().zip(&order).map(key_field).collect())?;
        let distribution = RowConverter::new(
            key_columns
                .iter()
                .zip(&order)
                .take(distribution_len)
                .map(key_field)
                .collect(),
        )?;
        let rows = RowConverter::new(
            schema
                .fields()
                .iter()
                .map(|f| SortField::new(f.data_type().clone()))
                .collect(),
        )?;
        Ok(Self {
            store,
            id,
            schema,
            key_columns,
            keys,
            distribution,
            distribution_len,
            rows,
            pending: BTreeMap::new(),
            hot: Mutex::new(HotKeys::new(HOT_KEYS)),
        })
    }

    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn prefix(&self, group: u16) -> Vec<u8> {
        let mut key = Vec::with_capacity(6);
        key.extend_from_slice(&self.id.0.to_be_bytes());
        key.extend_from_slice(&group.to_be_bytes());
        key
    }

    fn store_key(&self, group: u16, key: &[u8]) -> Vec<u8> {
        let mut full = self.prefix(group);
        full.extend_from_slice(key);
        full
    }

    fn epoch_key(&self) -> Vec<u8> {
        self.prefix(META_GROUP)
    }

    /// Store keys of the key columns of `rows` (which have the table's schema).
    fn row_keys(&self, rows: &RecordBatch) -> Result<Vec<Vec<u8>>> {
        if self.key_columns.is_empty() {
            // A single-row table (a global aggregate's view).
            return Ok(vec![self.store_key(key_group(&[]), &[]); rows.num_rows()]);
        }
        let columns: Vec<ArrayRef> = self
            .key_columns
            .iter()
            .map(|&i| Arc::clone(rows.column(i)))
            .collect();
        self.keys_of(&columns)
    }

    fn keys_of(&self, key_columns: &[ArrayRef]) -> Result<Vec<Vec<u8>>> {
        let keys = self.keys.convert_columns(key_columns)?;
        if self.distribution_len == self.key_columns.len() {
            return Ok(keys
                .iter()
                .map(|k| self.store_key(key_group(k.as_ref()), k.as_ref()))
                .collect());
        }
        if self.distribution_len == 0 {
            let group = key_group(&[]);
            return Ok(keys
                .iter()
                .map(|k| self.store_key(group, k.as_ref()))
                .collect());
        }
        let groups = self
            .distribution
            .convert_columns(&key_columns[..self.distribution_len])?;
        Ok(keys
            .iter()
            .zip(groups.iter())
            .map(|(k, g)| self.store_key(key_group(g.as_ref()), k.as_ref()))
            .collect())
    }

    /// Inserts `rows`, replacing rows with the same key.
    pub fn insert(&mut self, rows: &RecordBatch) -> Result<()> {
        let keys = self.row_keys(rows)?;
        let encoded = self.rows.convert_columns(rows.columns())?;
        for (key, row) in keys.into_iter().zip(encoded.iter()) {
            self.pending.insert(key, Some(row.as_ref().to_vec()));
        }
        self.spill_if_full()
    }

    /// Applies a chunk's changes in order, so a delete and re-insert of a
    /// key in one chunk end right.
    pub fn apply_chunk(&mut self, chunk: &StreamChunk) -> Result<()> {
        let keys = self.row_keys(chunk.data())?;
        let encoded = self.rows.convert_columns(chunk.data().columns())?;
        for ((key, op), row) in keys.into_iter().zip(chunk.ops()).zip(encoded.iter()) {
            let value = op.is_insert().then(|| row.as_ref().to_vec());
            self.pending.insert(key, value);
        }
        self.spill_if_full()
    }

    /// Deletes the rows with the keys of `rows`.
    pub fn delete(&mut self, rows: &RecordBatch) -> Result<()> {
        for key in self.row_keys(rows)? {
            self.pending.insert(key, None);
        }
        self.spill_if_full()
    }

    /// Deletes the rows with these keys (columns in key order).
    pub fn delete_keys(&mut self, key_columns: &[ArrayRef]) -> Result<()> {
        for key in self.keys_of(key_columns)? {
            self.pending.insert(key, None);
        }
        self.spill_if_full()
    }

    /// The rows with these keys (columns in key order), as this epoch sees them.
    pub fn get(&self, key_columns: &[ArrayRef]) -> Result<Lookup> {
        let mut found_rows = Vec::new();
        let mut found = Vec::new();
        for key in self.keys_of(key_columns)? {
            let row = match self.pending.get(&key) {
                Some(row) => row.clone(),
                None => self.committed(key)?,
            };
            found.push(row.map(|row| {
                found_rows.push(row);
                found_rows.len() - 1
            }));
        }
        Ok(Lookup {
            rows: self.decode(&found_rows)?,
            found,
        })
    }

    fn hot_keys(&self) -> MutexGuard<'_, HotKeys> {
        // A panic elsewhere cannot leave the cache half-updated.
        self.hot
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The committed row of a store key: from the hot keys, else the store.
    fn committed(&self, key: Vec<u8>) -> Result<Option<Vec<u8>>> {
        let mut hot = self.hot_keys();
        if let Some(row) = hot.get(&key) {
            return Ok(row);
        }
        let row = self.store.get(&key).map_err(storage_error)?;
        hot.put(key, row.clone());
        Ok(row)
    }

    fn decode(&self, rows: &[Vec<u8>]) -> Result<RecordBatch> {
        let parser = self.rows.parser();
        let columns = self
            .rows
            .convert_rows(rows.iter().map(|r| parser.parse(r)))?;
        Ok(RecordBatch::try_new(Arc::clone(&self.schema), columns)?)
    }

    /// Every row of the table as this epoch sees it, `batch_rows` at a time,
    /// in key-group then key order, until `visit` returns `false`.
    pub fn scan(
        &self,
        batch_rows: usize,
        visit: impl FnMut(RecordBatch) -> Result<bool>,
    ) -> Result<()> {
        self.scan_range(
            self.prefix(0),
            self.prefix(MAX_PARALLELISM),
            batch_rows,
            visit,
        )
    }

    /// The rows whose leading distribution columns equal `prefix` (one
    /// row of those columns), in key order, until `visit` returns `false`.
    pub fn scan_prefix(
        &self,
        prefix: &[ArrayRef],
        batch_rows: usize,
        visit: impl FnMut(RecordBatch) -> Result<bool>,
    ) -> Result<()> {
        let from = if prefix.is_empty() {
            self.store_key(key_group(&[]), &[])
        } else {
            let encoded = self.distribution.convert_columns(prefix)?;
            let prefix = encoded.row(0);
            self.store_key(key_group(prefix.as_ref()), prefix.as_ref())
        };
        let to = successor(&from).unwrap_or_else(|| self.prefix(MAX_PARALLELISM));
        self.scan_range(from, to, batch_rows, visit)
    }

    fn scan_range(
        &self,
        from: Vec<u8>,
        to: Vec<u8>,
        batch_rows: usize,
        mut visit: impl FnMut(RecordBatch) -> Result<bool>,
    ) -> Result<()> {
        let mut pending = self.pending.range(from.clone()..to.clone()).peekable();
        let mut buffer: Vec<Vec<u8>> = Vec::with_capacity(batch_rows);
        let mut open = true;
        let mut flush = |buffer: &mut Vec<Vec<u8>>, open: &mut bool| -> Result<()> {
            if !buffer.is_empty() && *open {
                *open = visit(self.decode(buffer)?)?;
            }
            buffer.clear();
            Ok(())
        };
        let mut emit = |row: &[u8], buffer: &mut Vec<Vec<u8>>, open: &mut bool| -> Result<()> {
            buffer.push(row.to_vec());
            if buffer.len() >= batch_rows.max(1) {
                flush(buffer, open)?;
            }
            Ok(())
        };
        let mut failed = None;
        self.store
            .scan(&from, &to, &mut |key, value| {
                let step = (|| {
                    // Pending writes that sort before this key come first.
                    while let Some((_, row)) = pending.next_if(|(k, _)| k.as_slice() < key) {
                        if let Some(row) = row {
                            emit(row, &mut buffer, &mut open)?;
                        }
                    }
                    match pending.next_if(|(k, _)| k.as_slice() == key) {
                        Some((_, Some(row))) => emit(row, &mut buffer, &mut open)?,
                        Some((_, None)) => {}
                        None => emit(value, &mut buffer, &mut open)?,
                    }
                    Ok::<_, DataFusionError>(())
                })();
                match step {
                    Ok(()) => Ok(open),
                    Err(e) => {
                        failed = Some(e);
                        Ok(false)
                    }
                }
            })
            .map_err(storage_error)?;
        if let Some(e) = failed {
            return Err(e);
        }
        for (_, row) in pending {
            if let Some(row) = row {
                emit(row, &mut buffer, &mut open)?;
            }
        }
        flush(&mut buffer, &mut open)
    }

    /// Makes this epoch's writes durable in the store, with `epoch` as the
    /// table's committed epoch. Epochs must increase.
    pub fn commit(&mut self, epoch: Epoch) -> Result<()> {
        if let Some(committed) = self.committed_epoch()?
            && epoch <= committed
        {
            return Err(internal(format!(
                "state table {} commits {epoch} after {committed}",
                self.id.0
            )));
        }
        self.write_pending(Some(epoch))
    }

    /// Writes a large epoch's buffer to the store early, so an epoch never
    /// holds more than [`MAX_PENDING`] rows in memory. Safe because state is
    /// only ever read as of a barrier: through this table, which sees its
    /// own writes either way, or through a store snapshot taken at one.
    fn spill_if_full(&mut self) -> Result<()> {
        if self.pending.len() < MAX_PENDING {
            return Ok(());
        }
        self.write_pending(None)
    }

    /// Moves the buffered writes to the store, with `epoch` as the
    /// table's committed epoch if given.
    fn write_pending(&mut self, epoch: Option<Epoch>) -> Result<()> {
        let mut changes: Vec<(Vec<u8>, Option<Vec<u8>>)> =
            std::mem::take(&mut self.pending).into_iter().collect();
        {
            let mut hot = self.hot_keys();
            for (key, row) in &changes {
                hot.put(key.clone(), row.clone());
            }
        }
        if let Some(epoch) = epoch {
            changes.push((self.epoch_key(), Some(epoch.0.to_be_bytes().to_vec())));
        }
        let written = self.store.write(changes).map_err(storage_error);
        if written.is_err() {
            // The cache may now claim rows the store never took.
            self.hot_keys().clear();
        }
        written
    }

    /// The last epoch committed, if any.
    pub fn committed_epoch(&self) -> Result<Option<Epoch>> {
        let Some(bytes) = self.store.get(&self.epoch_key()).map_err(storage_error)? else {
            return Ok(None);
        };
        let bytes: [u8; 8] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| internal(format!("state table {}: bad committed epoch", self.id.0)))?;
        Ok(Some(Epoch(u64::from_be_bytes(bytes))))
    }

    /// Whether writes are waiting for the next commit.
    pub fn is_dirty(&self) -> bool {
        !self.pending.is_empty()
    }
}
