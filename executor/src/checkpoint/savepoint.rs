//! Savepoints on the executor's side: a view's frozen stores and the table
//! store written out in the canonical format of
//! [`weir_storage::savepoint`], and stores filled back from it, whichever
//! backend they are.

use std::sync::Arc;

use weir_storage::savepoint::entries::{EncodedFile, decode_entries, encode_store};
use weir_storage::savepoint::{
    EntryFile, SavepointLocation, SavepointManifest, SavepointStore, SavepointView,
};
use weir_storage::{Error, FrozenState, StateChanges, StateStore, TableStore};

use super::freeze::FrozenView;
use crate::state::MAX_PARALLELISM;

/// Entries written to a store at a time while filling it.
const FILL_BATCH: usize = 16 * 1024;

/// The directory of a view's operator store within a savepoint.
fn store_dir(view: u64, position: u32) -> String {
    format!("views/{view}/{position}")
}

/// The directory of the table store within a savepoint.
const TABLES_DIR: &str = "tables";

/// Writes every entry of `store` under `dir`, split by key-group range
/// when `max_parallelism` is given. The scan runs on a blocking thread;
/// each file is stored as soon as it is complete.
async fn write_store(
    location: &SavepointLocation,
    dir: &str,
    store: Arc<dyn StateStore>,
    max_parallelism: Option<u16>,
) -> Result<Vec<EntryFile>, Error> {
    let (sender, mut receiver) = tokio::sync::mpsc::channel::<EncodedFile>(1);
    let scan = tokio::task::spawn_blocking(move || {
        encode_store(store.as_ref(), max_parallelism, &mut |file| {
            sender
                .blocking_send(file)
                .map_err(|_| Error::Internal("savepoint writer stopped".into()))
        })
    });
    let mut files = Vec::new();
    while let Some(file) = receiver.recv().await {
        files.push(location.put(dir, file).await?);
    }
    scan.await
        .map_err(|e| Error::Internal(format!("savepoint scan: {e}")))??;
    Ok(files)
}

/// Writes a view's stores, frozen at a savepoint barrier.
pub async fn write_view(
    location: &SavepointLocation,
    frozen: FrozenView,
) -> Result<SavepointView, String> {
    let stores = frozen
        .stores
        .map_err(|e| format!("freezing state failed: {e}"))?;
    let mut view = SavepointView {
        view: frozen.view.0,
        name: frozen.name,
        stores: Vec::new(),
        sources: frozen.sources,
    };
    for store in stores {
        let FrozenState::Snapshot(snapshot) = store.state else {
            return Err(format!("{}: not frozen for a savepoint", store.identity));
        };
        let dir = store_dir(view.view, store.position);
        let files = write_store(location, &dir, snapshot, Some(MAX_PARALLELISM))
            .await
            .map_err(|e| format!("{}: {e}", store.identity))?;
        view.stores.push(SavepointStore {
            position: store.position,
            identity: store.identity,
            files,
        });
    }
    Ok(view)
}

/// Writes the table store (catalog, rows, logs) as frozen.
pub async fn write_tables(
    location: &SavepointLocation,
    tables: Arc<dyn StateStore>,
) -> Result<Vec<EntryFile>, Error> {
    write_store(location, TABLES_DIR, tables, None).await
}

/// Copies a savepoint, checking every file against its manifest, and
/// writes the manifest last: a copy without it is incomplete.
///
/// # Errors
/// `Error::Corrupt` for a missing or damaged file.
pub async fn copy_savepoint(
    from: &SavepointLocation,
    manifest: &SavepointManifest,
    to: &SavepointLocation,
) -> Result<(), Error> {
    for file in manifest.files() {
        let bytes = from.read(file).await?;
        let (dir, name) = file.key.rsplit_once('/').unwrap_or(("", &file.key));
        to.put(
            dir,
            EncodedFile {
                name: name.to_string(),
                key_groups: file.key_groups,
                entries: file.entries,
                bytes,
            },
        )
        .await?;
    }
    to.write_manifest(manifest).await
}

/// Visits every entry of `files` in batches of changes.
async fn read_entries(
    location: &SavepointLocation,
    files: &[EntryFile],
    apply: &mut (dyn FnMut(StateChanges) -> Result<(), Error> + Send),
) -> Result<u64, Error> {
    let mut count = 0;
    for file in files {
        let bytes = location.read(file).await?;
        let mut batch: StateChanges = Vec::new();
        decode_entries(bytes, &mut |key, value| {
            batch.push((key.to_vec(), Some(value.to_vec())));
            count += 1;
            if batch.len() >= FILL_BATCH {
                apply(std::mem::take(&mut batch))?;
            }
            Ok(())
        })?;
        if !batch.is_empty() {
            apply(batch)?;
        }
    }
    Ok(count)
}

/// Fills `store` (empty, of any backend) with a savepoint store's entries.
pub async fn fill_store(
    location: &SavepointLocation,
    store: &SavepointStore,
    target: &dyn StateStore,
) -> Result<u64, Error> {
    read_entries(location, &store.files, &mut |changes| target.write(changes)).await
}

/// Fills `target` with the entries of the savepoint's table store that
/// `keep` accepts.
pub async fn fill_tables(
    location: &SavepointLocation,
    manifest: &SavepointManifest,
    target: &dyn StateStore,
    keep: &(dyn Fn(&[u8]) -> bool + Sync),
) -> Result<u64, Error> {
    read_entries(location, &manifest.tables, &mut |mut changes| {
        changes.retain(|(key, _)| keep(key));
        target.write(changes)
    })
    .await
}

/// Replaces everything in the table store with the savepoint's tables.
/// The caller re-attaches tables afterwards.
pub async fn restore_tables(
    location: &SavepointLocation,
    manifest: &SavepointManifest,
    tables: &TableStore,
) -> Result<(), Error> {
    tables.replace(Vec::new(), true).await?;
    for file in &manifest.tables {
        let bytes = location.read(file).await?;
        let mut chunk = Vec::new();
        let mut chunks = Vec::new();
        decode_entries(bytes, &mut |key, value| {
            chunk.push((key.to_vec(), value.to_vec()));
            if chunk.len() >= FILL_BATCH {
                chunks.push(std::mem::take(&mut chunk));
            }
            Ok(())
        })?;
        chunks.push(chunk);
        for chunk in chunks {
            tables.replace(chunk, false).await?;
        }
    }
    Ok(())
}
