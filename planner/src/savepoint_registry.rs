//! The savepoints a database knows: name, where it is, what it holds.
//!
//! Kept in its own file in the data directory, not in the catalog, so that
//! restoring a savepoint (which rewinds the catalog) forgets no savepoint.
//! Each change is written to a temporary file, synced and renamed over the
//! old one: a crash leaves the old list or the new one.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use weir_storage::savepoint::SavepointManifest;

use crate::{Error, Result};

const REGISTRY_FILE: &str = "savepoints.json";

/// One savepoint as `SHOW SAVEPOINTS` lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavepointRecord {
    pub name: String,
    /// Its location: the URL of its directory.
    pub location: String,
    pub epoch: u64,
    pub created_at_ms: i64,
    pub size: u64,
    pub weir_version: String,
}

impl SavepointRecord {
    pub fn new(manifest: &SavepointManifest, location: &str) -> Self {
        Self {
            name: manifest.name.clone(),
            location: location.to_string(),
            epoch: manifest.epoch,
            created_at_ms: manifest.created_at_ms,
            size: manifest.size(),
            weir_version: manifest.weir_version.clone(),
        }
    }
}

#[derive(Debug)]
pub struct SavepointRegistry {
    path: PathBuf,
    records: Mutex<BTreeMap<String, SavepointRecord>>,
}

fn io_error(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Internal(format!("{}: {e}", path.display()))
}

impl SavepointRegistry {
    /// The registry of the database in `data_dir`.
    pub fn open(data_dir: &Path) -> Result<Self> {
        let path = data_dir.join(REGISTRY_FILE);
        let records = match std::fs::read(&path) {
            Ok(bytes) => {
                let list: Vec<SavepointRecord> =
                    serde_json::from_slice(&bytes).map_err(|e| io_error(&path, e))?;
                list.into_iter().map(|r| (r.name.clone(), r)).collect()
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => return Err(io_error(&path, e)),
        };
        Ok(Self {
            path,
            records: Mutex::new(records),
        })
    }

    fn records(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, SavepointRecord>> {
        self.records.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every savepoint, by name.
    pub fn list(&self) -> Vec<SavepointRecord> {
        self.records().values().cloned().collect()
    }

    /// The savepoint `name`: 42704 when there is none.
    pub fn get(&self, name: &str) -> Result<SavepointRecord> {
        self.records()
            .get(name)
            .cloned()
            .ok_or_else(|| Error::user("42704", format!("savepoint \"{name}\" does not exist")))
    }

    pub fn contains(&self, name: &str) -> bool {
        self.records().contains_key(name)
    }

    /// Adds (or replaces) a savepoint, durably.
    pub fn insert(&self, record: SavepointRecord) -> Result<()> {
        let mut records = self.records();
        let mut changed = records.clone();
        changed.insert(record.name.clone(), record);
        self.store(&changed)?;
        *records = changed;
        Ok(())
    }

    /// Forgets a savepoint, durably.
    pub fn remove(&self, name: &str) -> Result<()> {
        let mut records = self.records();
        let mut changed = records.clone();
        changed.remove(name);
        self.store(&changed)?;
        *records = changed;
        Ok(())
    }

    fn store(&self, records: &BTreeMap<String, SavepointRecord>) -> Result<()> {
        let list: Vec<&SavepointRecord> = records.values().collect();
        let bytes = serde_json::to_vec_pretty(&list).map_err(|e| io_error(&self.path, e))?;
        let temporary = self.path.with_extension("json.tmp");
        let mut file = std::fs::File::create(&temporary).map_err(|e| io_error(&temporary, e))?;
        file.write_all(&bytes)
            .and_then(|()| file.sync_all())
            .map_err(|e| io_error(&temporary, e))?;
        std::fs::rename(&temporary, &self.path).map_err(|e| io_error(&self.path, e))?;
        if let Some(dir) = self.path.parent()
            && let Ok(dir) = std::fs::File::open(dir)
        {
            let _ = dir.sync_all();
        }
        Ok(())
    }
}
