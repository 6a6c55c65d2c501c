//! Recovery: the newest checkpoint whose files are all there and intact,
//! downloaded into the views' state directories.

use std::collections::HashSet;
use std::path::Path;

use weir_storage::checkpoint::{CheckpointMetadata, CheckpointStorage};

/// The state directory of a view's operator.
pub fn store_dir(state_root: &Path, view: u64, position: u32) -> std::path::PathBuf {
    state_root.join(view.to_string()).join(position.to_string())
}

/// Downloads the state of `views` from the newest usable checkpoint into
/// `state_root`, trying older ones when a file is missing or damaged.
/// Returns that checkpoint, or `None` when there is none usable (with a
/// warning when there were some).
pub async fn restore_latest(
    storage: &CheckpointStorage,
    state_root: &Path,
    views: &HashSet<u64>,
) -> Option<CheckpointMetadata> {
    let ids = match storage.completed().await {
        Ok(ids) => ids,
        Err(e) => {
            tracing::error!(storage = storage.url(), error = %e, "cannot list checkpoints");
            return None;
        }
    };
    for id in ids.iter().rev() {
        match restore(storage, state_root, views, *id).await {
            Ok(metadata) => return Some(metadata),
            Err(e) => {
                tracing::warn!(checkpoint = id, error = %e, "checkpoint unusable; trying the one before");
                for view in views {
                    let _ = std::fs::remove_dir_all(state_root.join(view.to_string()));
                }
            }
        }
    }
    if !ids.is_empty() {
        tracing::error!(
            storage = storage.url(),
            "no checkpoint is usable: views are rebuilt from their tables' logs"
        );
    }
    None
}

async fn restore(
    storage: &CheckpointStorage,
    state_root: &Path,
    views: &HashSet<u64>,
    id: u64,
) -> Result<CheckpointMetadata, String> {
    let metadata = storage.read_metadata(id).await.map_err(|e| e.to_string())?;
    for view in metadata.views.iter().filter(|v| views.contains(&v.view)) {
        for store in &view.stores {
            let dir = store_dir(state_root, view.view, store.position);
            if dir.exists() {
                std::fs::remove_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            }
            std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            for file in &store.files {
                storage
                    .download(file, &dir)
                    .await
                    .map_err(|e| e.to_string())?;
            }
        }
    }
    tracing::info!(
        checkpoint = id,
        epoch = metadata.epoch,
        "restoring from checkpoint"
    );
    Ok(metadata)
}
