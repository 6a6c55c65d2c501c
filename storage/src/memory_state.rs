//! The memory state backend: state in a persistent B-tree map, for small
//! state and tests (Flink's HashMap backend).
//!
//! The map shares structure between versions, so freezing it for a
//! checkpoint is O(1) on the processing path; the full copy is written out
//! afterwards, off the path, by [`MemorySnapshot::write_entries`]. Its
//! checkpoints are always full: there are no files to share between them.

use std::ops::Bound;
use std::path::Path;
use std::sync::{Arc, RwLock};

use imbl::OrdMap;

use crate::state_store::{FrozenState, ScanVisitor, StateChanges, StateStore};
use crate::{Error, Result};

/// The file [`MemorySnapshot::write_entries`] writes and
/// [`MemoryStateStore::load`] reads.
pub const ENTRIES_FILE: &str = "entries";

type Entries = OrdMap<Vec<u8>, Vec<u8>>;

/// State in memory.
#[derive(Debug, Default)]
pub struct MemoryStateStore {
    map: RwLock<Entries>,
}

fn poisoned() -> Error {
    Error::Internal("state store lock poisoned".into())
}

impl MemoryStateStore {
    fn frozen(&self) -> Result<MemorySnapshot> {
        let map = self.map.read().map_err(|_| poisoned())?.clone();
        Ok(MemorySnapshot { map })
    }

    /// A store holding what [`MemorySnapshot::write_entries`] wrote to `dir`.
    pub fn load(dir: &Path) -> Result<Self> {
        let path = dir.join(ENTRIES_FILE);
        let bytes =
            std::fs::read(&path).map_err(|e| Error::Storage(format!("{}: {e}", path.display())))?;
        let corrupt = || Error::Corrupt(format!("{}: truncated entry", path.display()));
        let mut map = Entries::new();
        let mut rest = bytes.as_slice();
        let take = |rest: &mut &[u8]| -> Result<Vec<u8>> {
            let (len, tail) = rest.split_first_chunk::<4>().ok_or_else(corrupt)?;
            let len = u32::from_le_bytes(*len) as usize;
            let (part, tail) = tail.split_at_checked(len).ok_or_else(corrupt)?;
            *rest = tail;
            Ok(part.to_vec())
        };
        while !rest.is_empty() {
            let key = take(&mut rest)?;
            let value = take(&mut rest)?;
            map.insert(key, value);
        }
        Ok(Self {
            map: RwLock::new(map),
        })
    }
}

impl StateStore for MemoryStateStore {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.map.read().map_err(|_| poisoned())?.get(key).cloned())
    }

    fn scan(&self, from: &[u8], to: &[u8], visit: &mut ScanVisitor<'_>) -> Result<()> {
        let map = self.map.read().map_err(|_| poisoned())?;
        scan_map(&map, from, to, visit)
    }

    fn write(&self, changes: StateChanges) -> Result<()> {
        let mut map = self.map.write().map_err(|_| poisoned())?;
        for (key, value) in changes {
            match value {
                Some(value) => map.insert(key, value),
                None => map.remove(&key),
            };
        }
        Ok(())
    }

    fn snapshot(&self) -> Result<Arc<dyn StateStore>> {
        Ok(Arc::new(self.frozen()?))
    }

    fn checkpoint(&self, _dir: &Path) -> Result<FrozenState> {
        self.frozen().map(FrozenState::Entries)
    }
}

/// Visits `[from, to)` of a map until `visit` returns `false`.
fn scan_map(map: &Entries, from: &[u8], to: &[u8], visit: &mut ScanVisitor<'_>) -> Result<()> {
    if from >= to {
        return Ok(());
    }
    let range: (Bound<&[u8]>, Bound<&[u8]>) = (Bound::Included(from), Bound::Excluded(to));
    for (key, value) in map.range::<_, [u8]>(range) {
        if !visit(key, value)? {
            break;
        }
    }
    Ok(())
}

/// A [`MemoryStateStore`] as it was: shares the map's unchanged parts.
#[derive(Debug, Clone)]
pub struct MemorySnapshot {
    map: Entries,
}

impl MemorySnapshot {
    /// Writes every entry to `dir/entries`: length-prefixed keys and
    /// values, in key order.
    pub fn write_entries(&self, dir: &Path) -> Result<()> {
        let mut out = Vec::new();
        for (key, value) in &self.map {
            for part in [key, value] {
                out.extend_from_slice(&(part.len() as u32).to_le_bytes());
                out.extend_from_slice(part);
            }
        }
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::Storage(format!("{}: {e}", dir.display())))?;
        let path = dir.join(ENTRIES_FILE);
        std::fs::write(&path, out).map_err(|e| Error::Storage(format!("{}: {e}", path.display())))
    }
}

impl StateStore for MemorySnapshot {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.map.get(key).cloned())
    }

    fn scan(&self, from: &[u8], to: &[u8], visit: &mut ScanVisitor<'_>) -> Result<()> {
        scan_map(&self.map, from, to, visit)
    }

    fn write(&self, _: StateChanges) -> Result<()> {
        Err(crate::state_store::read_only())
    }

    fn snapshot(&self) -> Result<Arc<dyn StateStore>> {
        Ok(Arc::new(self.clone()))
    }

    fn checkpoint(&self, _dir: &Path) -> Result<FrozenState> {
        Ok(FrozenState::Entries(self.clone()))
    }
}
