//! Key-value stores for the keyed state of streaming operators.
//!
//! A [`StateStore`] is a sorted map of bytes with atomic batch writes; the
//! executor's `StateTable` builds typed, epoch-versioned tables on top. Two
//! backends: [`RocksStateStore`] (the default: one RocksDB instance per
//! stateful operator instance, so state need not fit in memory) and
//! [`MemoryStateStore`](crate::MemoryStateStore). Writes are not fsynced: state is made durable by
//! checkpoints, not by its own write-ahead log.

use std::fmt::Debug;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::memory_state::MemorySnapshot;
use crate::rocks::{Batch, Engine, EngineSnapshot, SharedMemory};
use crate::{Error, Result};

/// Puts (`Some`) and deletes (`None`), applied together.
pub type StateChanges = Vec<(Vec<u8>, Option<Vec<u8>>)>;

/// Called with each key and value of a scan; returns whether to go on.
pub type ScanVisitor<'a> = dyn FnMut(&[u8], &[u8]) -> Result<bool> + 'a;

/// A sorted byte map.
///
/// # Errors
/// Every method fails with [`Error::Storage`] when the backend does; a
/// failed `write` applied none of its changes.
pub trait StateStore: Send + Sync + Debug {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>>;

    /// Visits `[from, to)` in key order until `visit` returns `false`.
    fn scan(&self, from: &[u8], to: &[u8], visit: &mut ScanVisitor<'_>) -> Result<()>;

    fn write(&self, changes: StateChanges) -> Result<()>;

    /// The store as it is now, read-only, unaffected by later writes.
    fn snapshot(&self) -> Result<Arc<dyn StateStore>>;

    /// The synchronous part of a checkpoint: freezes the store as it is now
    /// so that it can be uploaded while writes go on. `dir` must not exist;
    /// a backend that keeps files puts them there.
    fn checkpoint(&self, dir: &Path) -> Result<FrozenState>;
}

/// A store frozen for a checkpoint.
#[derive(Debug)]
pub enum FrozenState {
    /// Files in a local directory: RocksDB's SSTs (hard links) and manifest.
    Files(PathBuf),
    /// A read-only point in time of the store, for a savepoint to write
    /// out in its own format.
    Snapshot(Arc<dyn StateStore>),
    /// The memory backend's whole map, written out off the processing path
    /// by [`MemorySnapshot::write_entries`] (full snapshots only).
    Entries(MemorySnapshot),
}

pub(crate) fn read_only() -> Error {
    Error::Internal("a state snapshot is read-only".into())
}

/// State in a RocksDB instance of its own.
pub struct RocksStateStore {
    engine: Engine,
}

impl Debug for RocksStateStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RocksStateStore").finish_non_exhaustive()
    }
}

impl RocksStateStore {
    /// Opens (or creates) the instance in `dir`, its caches drawn from `memory`.
    pub fn open(dir: &Path, memory: &SharedMemory) -> Result<Self> {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::Storage(format!("{}: {e}", dir.display())))?;
        Ok(Self {
            engine: Engine::open_sharing(dir, memory)?,
        })
    }
}

/// A RocksDB snapshot of a [`RocksStateStore`] (or of the table store).
pub(crate) struct RocksSnapshot {
    pub(crate) snapshot: EngineSnapshot,
}

impl Debug for RocksSnapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RocksSnapshot").finish_non_exhaustive()
    }
}

impl StateStore for RocksSnapshot {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.snapshot.get(key)
    }

    fn scan(&self, from: &[u8], to: &[u8], visit: &mut ScanVisitor<'_>) -> Result<()> {
        if from >= to {
            return Ok(());
        }
        self.snapshot.scan(from, to, |key, value| visit(key, value))
    }

    fn write(&self, _: StateChanges) -> Result<()> {
        Err(read_only())
    }

    fn snapshot(&self) -> Result<Arc<dyn StateStore>> {
        Err(Error::Internal("snapshot of a snapshot".into()))
    }

    fn checkpoint(&self, _dir: &Path) -> Result<FrozenState> {
        Err(Error::Internal("checkpoint of a snapshot".into()))
    }
}

impl StateStore for RocksStateStore {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.engine.get(key)
    }

    fn scan(&self, from: &[u8], to: &[u8], visit: &mut ScanVisitor<'_>) -> Result<()> {
        if from >= to {
            return Ok(());
        }
        self.engine.scan(from, to, |key, value| visit(key, value))
    }

    fn write(&self, changes: StateChanges) -> Result<()> {
        let mut batch = Batch::default();
        for (key, value) in &changes {
            match value {
                Some(value) => batch.put(key, value),
                None => batch.delete(key),
            }
        }
        self.engine.write(batch, false)
    }

    fn snapshot(&self) -> Result<Arc<dyn StateStore>> {
        Ok(Arc::new(RocksSnapshot {
            snapshot: self.engine.snapshot(),
        }))
    }

    fn checkpoint(&self, dir: &Path) -> Result<FrozenState> {
        if let Some(parent) = dir.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| Error::Storage(format!("{}: {e}", parent.display())))?;
        }
        self.engine.checkpoint(dir)?;
        Ok(FrozenState::Files(dir.to_path_buf()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemoryStateStore;

    fn behaves_as_a_sorted_map(store: &dyn StateStore) {
        store
            .write(vec![(b"z".to_vec(), Some(b"0".to_vec()))])
            .unwrap();
        let before = store.snapshot().unwrap();
        store.write(vec![(b"z".to_vec(), None)]).unwrap();
        assert_eq!(before.get(b"z").unwrap().as_deref(), Some(&b"0"[..]));
        assert!(before.write(vec![]).is_err(), "snapshots are read-only");
        store
            .write(vec![
                (b"b".to_vec(), Some(b"2".to_vec())),
                (b"a".to_vec(), Some(b"1".to_vec())),
                (b"c".to_vec(), Some(b"3".to_vec())),
            ])
            .unwrap();
        store
            .write(vec![
                (b"c".to_vec(), None),
                (b"a".to_vec(), Some(b"one".to_vec())),
            ])
            .unwrap();
        assert_eq!(store.get(b"a").unwrap().as_deref(), Some(&b"one"[..]));
        assert_eq!(store.get(b"c").unwrap(), None);
        let mut seen = Vec::new();
        store
            .scan(b"a", b"z", &mut |k, v| {
                seen.push((k.to_vec(), v.to_vec()));
                Ok(true)
            })
            .unwrap();
        assert_eq!(
            seen,
            vec![
                (b"a".to_vec(), b"one".to_vec()),
                (b"b".to_vec(), b"2".to_vec())
            ]
        );
        let mut first = Vec::new();
        store
            .scan(b"a", b"z", &mut |k, _| {
                first.push(k.to_vec());
                Ok(false)
            })
            .unwrap();
        assert_eq!(first, vec![b"a".to_vec()]);
        let mut none = 0;
        store
            .scan(b"b", b"b", &mut |_, _| {
                none += 1;
                Ok(true)
            })
            .unwrap();
        assert_eq!(none, 0);
    }

    #[test]
    fn memory_backend() {
        behaves_as_a_sorted_map(&MemoryStateStore::default());
    }

    #[test]
    fn rocksdb_backend() {
        let dir = tempfile::tempdir().unwrap();
        let memory = SharedMemory::new(1 << 20, 1 << 20);
        behaves_as_a_sorted_map(&RocksStateStore::open(dir.path(), &memory).unwrap());
    }

    fn entries(store: &dyn StateStore) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut seen = Vec::new();
        store
            .scan(&[], &[u8::MAX; 16], &mut |k, v| {
                seen.push((k.to_vec(), v.to_vec()));
                Ok(true)
            })
            .unwrap();
        seen
    }

    /// A checkpoint keeps the state as it was, and reopens as a store.
    fn checkpoint_reopens(store: &dyn StateStore, reopen: impl Fn(&Path) -> Arc<dyn StateStore>) {
        let dir = tempfile::tempdir().unwrap();
        store
            .write(vec![
                (b"a".to_vec(), Some(b"1".to_vec())),
                (b"\xff".to_vec(), Some(vec![])),
            ])
            .unwrap();
        let frozen = store.checkpoint(&dir.path().join("chk")).unwrap();
        store.write(vec![(b"a".to_vec(), None)]).unwrap();
        let files = match frozen {
            FrozenState::Files(files) => files,
            FrozenState::Entries(copy) => {
                copy.write_entries(&dir.path().join("chk")).unwrap();
                dir.path().join("chk")
            }
            FrozenState::Snapshot(_) => unreachable!("checkpoints freeze files or entries"),
        };
        let restored = reopen(&files);
        assert_eq!(
            entries(restored.as_ref()),
            vec![(b"a".to_vec(), b"1".to_vec()), (b"\xff".to_vec(), vec![])]
        );
    }

    #[test]
    fn checkpoints_of_both_backends_restore() {
        checkpoint_reopens(&MemoryStateStore::default(), |dir| {
            Arc::new(MemoryStateStore::load(dir).unwrap())
        });
        let dir = tempfile::tempdir().unwrap();
        let memory = SharedMemory::new(1 << 20, 1 << 20);
        let store = RocksStateStore::open(dir.path(), &memory).unwrap();
        checkpoint_reopens(&store, |dir| {
            Arc::new(RocksStateStore::open(dir, &memory).unwrap())
        });
    }
}
