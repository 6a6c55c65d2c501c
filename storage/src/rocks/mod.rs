//! The RocksDB engine behind the storage layer: the only module that names
//! RocksDB types. It offers byte keys and values, atomic batches and ordered
//! range scans; everything above it deals in layouts and Arrow data.

use std::path::Path;
use std::sync::Arc;

use rocksdb::{
    BlockBasedOptions, Cache, DB, Direction, IteratorMode, Options, ReadOptions,
    SnapshotWithThreadMode, WriteBufferManager, WriteOptions,
};

use crate::{Error, Result};

/// One RocksDB instance.
pub(crate) struct Engine {
    db: Arc<DB>,
}

/// Memory that many RocksDB instances share: one block cache and one
/// budget for write buffers, however many operators hold state.
#[derive(Clone)]
pub struct SharedMemory {
    cache: Cache,
    write_buffers: WriteBufferManager,
}

impl SharedMemory {
    pub fn new(block_cache_bytes: usize, write_buffer_bytes: usize) -> Self {
        Self {
            cache: Cache::new_lru_cache(block_cache_bytes),
            write_buffers: WriteBufferManager::new_write_buffer_manager(write_buffer_bytes, false),
        }
    }
}

impl std::fmt::Debug for SharedMemory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedMemory").finish_non_exhaustive()
    }
}

type DbSnapshot<'a> = SnapshotWithThreadMode<'a, DB>;

self_cell::self_cell!(
    /// A RocksDB snapshot that keeps its instance open.
    struct OwnedSnapshot {
        owner: Arc<DB>,
        #[covariant]
        dependent: DbSnapshot,
    }
);

/// A consistent, read-only point in time of an [`Engine`].
pub(crate) struct EngineSnapshot {
    inner: OwnedSnapshot,
}

impl EngineSnapshot {
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.inner
            .borrow_dependent()
            .get(key)
            .map_err(storage_error)
    }

    pub fn scan(
        &self,
        from: &[u8],
        to: &[u8],
        visit: impl FnMut(&[u8], &[u8]) -> Result<bool>,
    ) -> Result<()> {
        let (mode, options) = forward(from, to);
        visit_entries(
            self.inner.borrow_dependent().iterator_opt(mode, options),
            visit,
        )
    }
}

/// Writes that become visible and durable together.
#[derive(Default)]
pub(crate) struct Batch {
    inner: rocksdb::WriteBatch,
}

impl Batch {
    pub fn put(&mut self, key: &[u8], value: &[u8]) {
        self.inner.put(key, value);
    }

    pub fn delete(&mut self, key: &[u8]) {
        self.inner.delete(key);
    }

    /// Deletes every key in `[from, to)`.
    pub fn delete_range(&mut self, from: &[u8], to: &[u8]) {
        self.inner.delete_range(from, to);
    }

    pub fn is_empty(&self) -> bool {
        self.inner.is_empty()
    }
}

fn storage_error(e: rocksdb::Error) -> Error {
    Error::Storage(e.into_string())
}

/// How to iterate `[from, to)` forward.
fn forward<'a>(from: &'a [u8], to: &[u8]) -> (IteratorMode<'a>, ReadOptions) {
    let mut options = ReadOptions::default();
    options.set_iterate_upper_bound(to.to_vec());
    (IteratorMode::From(from, Direction::Forward), options)
}

/// Feeds entries to `visit` until it returns `false`.
fn visit_entries(
    entries: impl Iterator<Item = std::result::Result<(Box<[u8]>, Box<[u8]>), rocksdb::Error>>,
    mut visit: impl FnMut(&[u8], &[u8]) -> Result<bool>,
) -> Result<()> {
    for entry in entries {
        let (key, value) = entry.map_err(storage_error)?;
        if !visit(&key, &value)? {
            break;
        }
    }
    Ok(())
}

impl Engine {
    pub fn open(path: &Path) -> Result<Self> {
        let mut options = Options::default();
        options.create_if_missing(true);
        options.set_compression_type(rocksdb::DBCompressionType::Lz4);
        let db = DB::open(&options, path).map_err(storage_error)?;
        Ok(Self { db: Arc::new(db) })
    }

    /// Opens an instance whose caches come out of `memory`.
    pub fn open_sharing(path: &Path, memory: &SharedMemory) -> Result<Self> {
        let mut options = Options::default();
        options.create_if_missing(true);
        options.set_compression_type(rocksdb::DBCompressionType::Lz4);
        // Fewer, larger L0 -> base merges: less rewritten, so less uploaded
        // by incremental checkpoints. Bloom filters keep point reads from
        // paying for the longer L0.
        options.set_level_zero_file_num_compaction_trigger(8);
        options.set_level_zero_slowdown_writes_trigger(24);
        options.set_level_zero_stop_writes_trigger(40);
        let mut table = BlockBasedOptions::default();
        table.set_bloom_filter(10.0, false);
        table.set_block_cache(&memory.cache);
        options.set_block_based_table_factory(&table);
        options.set_write_buffer_manager(&memory.write_buffers);
        let db = DB::open(&options, path).map_err(storage_error)?;
        Ok(Self { db: Arc::new(db) })
    }

    /// A consistent copy of the instance in `dir` (which must not exist):
    /// memtables are flushed, then SST files are hard-linked, the rest copied.
    pub fn checkpoint(&self, dir: &Path) -> Result<()> {
        rocksdb::checkpoint::Checkpoint::new(&self.db)
            .and_then(|checkpoint| checkpoint.create_checkpoint(dir))
            .map_err(storage_error)
    }

    pub fn snapshot(&self) -> EngineSnapshot {
        EngineSnapshot {
            inner: OwnedSnapshot::new(Arc::clone(&self.db), |db| db.snapshot()),
        }
    }

    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.db.get(key).map_err(storage_error)
    }

    /// Applies `batch` atomically; with `sync` the write-ahead log is fsynced
    /// before this returns.
    pub fn write(&self, batch: Batch, sync: bool) -> Result<()> {
        let mut options = WriteOptions::default();
        options.set_sync(sync);
        self.db
            .write_opt(batch.inner, &options)
            .map_err(storage_error)
    }

    /// Visits `[from, to)` in key order from one consistent point in time
    /// until `visit` returns `false`.
    pub fn scan(
        &self,
        from: &[u8],
        to: &[u8],
        visit: impl FnMut(&[u8], &[u8]) -> Result<bool>,
    ) -> Result<()> {
        let (mode, options) = forward(from, to);
        visit_entries(self.db.iterator_opt(mode, options), visit)
    }

    /// The last entry in `[from, to]`, if any.
    pub fn last_in(&self, from: &[u8], to: &[u8]) -> Result<Option<(Vec<u8>, Vec<u8>)>> {
        let mut options = ReadOptions::default();
        options.set_iterate_lower_bound(from.to_vec());
        let mut iter = self
            .db
            .iterator_opt(IteratorMode::From(to, Direction::Reverse), options);
        match iter.next() {
            Some(item) => {
                let (key, value) = item.map_err(storage_error)?;
                Ok(Some((key.to_vec(), value.to_vec())))
            }
            None => Ok(None),
        }
    }
}
