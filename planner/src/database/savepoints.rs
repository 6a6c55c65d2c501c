//! Savepoints of a [`Database`]: `CREATE SAVEPOINT`, `DROP SAVEPOINT`,
//! `RESTORE SAVEPOINT` and the restore a server starts with
//! (`weir --restore-savepoint URL`).
//!
//! A restore first copies the savepoint into the data directory
//! (`restore/`), checking every file, so a damaged savepoint is refused
//! before anything changes. The copy's manifest is the marker of a restore
//! in progress: a server that crashes before the restore has checkpointed
//! finds it at start and restores again. Then views stop, the table store
//! and catalog are replaced, every view's stores are filled in the
//! configured backend, the views start from the savepoint's source offsets,
//! the checkpoints of the abandoned timeline are deleted, and a checkpoint
//! of the restored state is taken before the copy is removed.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use weir_executor::checkpoint::{
    StateBackend, copy_savepoint, fill_store, restore_tables, store_dir,
};
use weir_storage::checkpoint::{
    CHECKPOINT_FORMAT, CheckpointMetadata, CheckpointStorage, StoreCheckpoint, ViewCheckpoint,
};
use weir_storage::savepoint::{SavepointLocation, SavepointManifest};
use weir_storage::{FrozenState, MemoryStateStore, RocksStateStore, StateStore};

use super::Database;
use crate::savepoint_registry::SavepointRecord;
use crate::views::state_root;
use crate::{Error, Result};

/// Where a savepoint being restored is copied to, under the data directory.
const STAGING_DIR: &str = "restore";
/// In the staging directory: the backend the restore fills, when the
/// command line chose one.
const BACKEND_FILE: &str = "state_backend";

fn savepoint_error(e: impl std::fmt::Display) -> Error {
    Error::io(e.to_string())
}

fn storage_error(e: weir_storage::Error) -> Error {
    match e {
        weir_storage::Error::Corrupt(message) => Error::user(
            "XX001",
            format!("savepoint is damaged, nothing was restored: {message}"),
        ),
        other => savepoint_error(other),
    }
}

/// Savepoint names become path segments: letters, digits, `_` and `-`.
fn check_name(name: &str) -> Result<()> {
    let valid = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if valid {
        Ok(())
    } else {
        Err(Error::user(
            "42602",
            format!("invalid savepoint name \"{name}\": use letters, digits, _ and -"),
        ))
    }
}

/// Opens a savepoint's location; 22023 for a URL object storage refuses.
fn open_location(url: &str) -> Result<SavepointLocation> {
    SavepointLocation::open(url)
        .map_err(|e| Error::user("22023", format!("invalid savepoint location: {e}")))
}

impl Database {
    fn staging_dir(&self) -> PathBuf {
        self.data_dir.join(STAGING_DIR)
    }

    /// The default parent of savepoints: `savepoints/` under checkpoint
    /// storage.
    fn default_savepoint_parent(&self) -> String {
        let url = self
            .checkpoint_settings()
            .storage
            .unwrap_or_else(|| CheckpointStorage::file_url(&self.data_dir.join("checkpoints")));
        SavepointLocation::child_url(&url, "savepoints")
    }

    /// Takes a savepoint named `name` in `parent` (a directory URL) or
    /// under checkpoint storage; returns once it is durable.
    pub(super) async fn create_savepoint(
        &self,
        name: &str,
        parent: Option<String>,
    ) -> Result<SavepointRecord> {
        check_name(name)?;
        let _ddl = self.catalog.lock_ddl().await;
        if self.savepoints.contains(name) {
            return Err(Error::user(
                "42710",
                format!("savepoint \"{name}\" already exists"),
            ));
        }
        if let Some(parent) = &parent {
            self.file_roots.check(parent)?;
        }
        let parent = parent.unwrap_or_else(|| self.default_savepoint_parent());
        let url = SavepointLocation::child_url(&parent, name);
        let location = open_location(&url)?;
        if location
            .read_manifest()
            .await
            .map_err(savepoint_error)?
            .is_some()
        {
            return Err(Error::user(
                "42710",
                format!("a savepoint already exists at {url}"),
            ));
        }
        if !location.is_empty().await.map_err(savepoint_error)? {
            return Err(Error::user(
                "55000",
                format!("{url} already holds files: a savepoint goes into a new or empty location"),
            ));
        }
        let started = std::time::Instant::now();
        let manifest = self
            .coordinator()?
            .savepoint(name, location)
            .await
            .map_err(savepoint_error)?;
        let record = SavepointRecord::new(&manifest, &url);
        self.savepoints.insert(record.clone())?;
        tracing::info!(
            savepoint = name,
            location = url,
            epoch = manifest.epoch,
            bytes = record.size,
            elapsed = ?started.elapsed(),
            "savepoint taken"
        );
        Ok(record)
    }

    /// Deletes a savepoint's files and forgets it.
    pub(super) async fn drop_savepoint(&self, name: &str, if_exists: bool) -> Result<()> {
        let _ddl = self.catalog.lock_ddl().await;
        let record = match self.savepoints.get(name) {
            Ok(record) => record,
            Err(_) if if_exists => return Ok(()),
            Err(e) => return Err(e),
        };
        open_location(&record.location)?
            .delete()
            .await
            .map_err(savepoint_error)?;
        self.savepoints.remove(name)
    }

    /// `RESTORE SAVEPOINT name`: rewinds every view, table and source.
    pub(super) async fn restore_savepoint(&self, name: &str) -> Result<()> {
        let _ddl = self.catalog.lock_ddl().await;
        let record = self.savepoints.get(name)?;
        let manifest = self.stage_savepoint(&record.location, None).await?;
        self.runtime.stop_all().await;
        self.catalog.detach_views()?;
        let restored = self.apply_staged(&manifest).await?;
        let coordinator = self.coordinator()?;
        let settings = self.stored_settings();
        self.runtime.set_barrier_interval(settings.barrier_interval);
        coordinator.update(settings.clone(), self.open_storage(&settings)?);
        coordinator.restored(None);
        let records = self.catalog.take_stored_views();
        self.launch_views(records, Some(&restored)).await?;
        self.finish_restore(&manifest).await
    }

    /// Copies the savepoint at `url` into the staging directory, checking
    /// every file; `state_backend` overrides the backend it restores into.
    /// Nothing else changes: a damaged savepoint is refused here (XX001).
    pub async fn stage_savepoint(
        &self,
        url: &str,
        state_backend: Option<&str>,
    ) -> Result<SavepointManifest> {
        let location = open_location(url)?;
        let manifest = location
            .read_manifest()
            .await
            .map_err(storage_error)?
            .ok_or_else(|| Error::user("42704", format!("no savepoint at {url}")))?;
        let dir = self.staging_dir();
        remove_dir(&dir)?;
        let staged = open_location(&CheckpointStorage::file_url(&dir))?;
        if let Some(backend) = state_backend {
            let mut settings = weir_executor::checkpoint::CheckpointSettings::default();
            settings
                .set("state_backend", Some(backend))
                .map_err(super::setting_error)?;
            let backend = settings
                .show("state_backend")
                .map_err(super::setting_error)?;
            std::fs::write(dir.join(BACKEND_FILE), backend)
                .map_err(|e| Error::Internal(format!("{}: {e}", dir.display())))?;
        }
        let copied = copy_savepoint(&location, &manifest, &staged).await;
        if let Err(e) = copied {
            remove_dir(&dir)?;
            return Err(storage_error(e));
        }
        if !self.savepoints.contains(&manifest.name) {
            self.savepoints
                .insert(SavepointRecord::new(&manifest, url))?;
        }
        Ok(manifest)
    }

    /// The savepoint staged for a restore that has not finished, if any;
    /// a partial copy is removed.
    pub(super) async fn staged_savepoint(&self) -> Result<Option<SavepointManifest>> {
        let dir = self.staging_dir();
        if !dir.exists() {
            return Ok(None);
        }
        let staged = open_location(&CheckpointStorage::file_url(&dir))?;
        match staged.read_manifest().await {
            Ok(Some(manifest)) => Ok(Some(manifest)),
            _ => {
                remove_dir(&dir)?;
                Ok(None)
            }
        }
    }

    /// Replaces the tables and catalog with the staged savepoint's and
    /// fills every view's stores; returns what the views start from.
    /// Views must be stopped.
    pub(super) async fn apply_staged(
        &self,
        manifest: &SavepointManifest,
    ) -> Result<CheckpointMetadata> {
        let started = std::time::Instant::now();
        let dir = self.staging_dir();
        let staged = open_location(&CheckpointStorage::file_url(&dir))?;
        restore_tables(&staged, manifest, self.catalog.store())
            .await
            .map_err(storage_error)?;
        self.catalog.reload(&self.parser)?;
        if let Ok(backend) = std::fs::read_to_string(dir.join(BACKEND_FILE)) {
            self.catalog
                .store_setting("state_backend", Some(backend.trim().to_string()))
                .await?;
        }
        let backend = self.stored_settings().backend;
        let root = state_root(&self.data_dir);
        remove_dir(&root)?;
        let mut views = Vec::new();
        for view in &manifest.views {
            let mut stores = Vec::new();
            for store in &view.stores {
                let dir = store_dir(&root, view.view, store.position);
                fill(&staged, store, &dir, backend, &self.memory).await?;
                stores.push(StoreCheckpoint {
                    position: store.position,
                    identity: store.identity.clone(),
                    files: Vec::new(),
                });
            }
            views.push(ViewCheckpoint {
                view: view.view,
                name: view.name.clone(),
                stores,
                sources: view.sources.clone(),
            });
        }
        self.delete_checkpoints().await;
        self.runtime
            .injector()
            .continue_after(weir_executor::message::Epoch(manifest.epoch));
        tracing::info!(
            savepoint = manifest.name,
            epoch = manifest.epoch,
            bytes = manifest.size(),
            elapsed = ?started.elapsed(),
            "savepoint state restored"
        );
        Ok(CheckpointMetadata {
            format: CHECKPOINT_FORMAT,
            id: 0,
            epoch: manifest.epoch,
            triggered_at_ms: manifest.created_at_ms,
            views,
        })
    }

    /// Deletes every checkpoint: after a restore they belong to a timeline
    /// that no longer exists.
    async fn delete_checkpoints(&self) {
        let Ok(storage) = self.open_storage(&self.stored_settings()) else {
            return;
        };
        if let Ok(ids) = storage.completed().await {
            for id in ids {
                if let Err(e) = storage.delete_checkpoint(id).await {
                    tracing::warn!(checkpoint = id, error = %e, "cannot delete checkpoint");
                }
            }
        }
    }

    /// Takes a checkpoint of the restored state, so that recovery starts
    /// from it, then removes the staged copy.
    pub(super) async fn finish_restore(&self, manifest: &SavepointManifest) -> Result<()> {
        self.coordinator()?
            .checkpoint()
            .await
            .map_err(|e| Error::io(format!("restored, but the checkpoint after failed: {e}")))?;
        remove_dir(&self.staging_dir())?;
        tracing::info!(savepoint = manifest.name, "savepoint restored");
        Ok(())
    }
}

/// Fills a new store in `dir` with a savepoint store's entries, in
/// `backend`'s own format.
async fn fill(
    staged: &SavepointLocation,
    store: &weir_storage::savepoint::SavepointStore,
    dir: &Path,
    backend: StateBackend,
    memory: &weir_storage::SharedMemory,
) -> Result<()> {
    let internal = |e: weir_storage::Error| Error::Internal(format!("{}: {e}", dir.display()));
    match backend {
        StateBackend::RocksDb => {
            let target: Arc<dyn StateStore> =
                Arc::new(RocksStateStore::open(dir, memory).map_err(internal)?);
            fill_store(staged, store, target.as_ref())
                .await
                .map_err(storage_error)?;
        }
        StateBackend::Memory => {
            let target = MemoryStateStore::default();
            fill_store(staged, store, &target)
                .await
                .map_err(storage_error)?;
            if let FrozenState::Entries(entries) = target.checkpoint(dir).map_err(internal)? {
                entries.write_entries(dir).map_err(internal)?;
            }
        }
    }
    Ok(())
}

fn remove_dir(dir: &Path) -> Result<()> {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::Internal(format!("{}: {e}", dir.display()))),
    }
}
