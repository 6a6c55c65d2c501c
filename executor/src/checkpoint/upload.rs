//! The asynchronous part of a checkpoint: one view's frozen stores go to
//! checkpoint storage while the view keeps processing.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use weir_storage::FrozenState;
use weir_storage::checkpoint::retention::{is_shareable, plan_upload};
use weir_storage::checkpoint::{CheckpointStorage, StoreCheckpoint, StoredFile, ViewCheckpoint};

use super::freeze::{FrozenStore, FrozenView};
use super::history::OperatorRecord;

/// Files uploaded for one store, by local file name.
pub type UploadedFiles = HashMap<String, StoredFile>;

/// A view's part of a checkpoint, uploaded.
#[derive(Debug)]
pub struct UploadedView {
    pub checkpoint: ViewCheckpoint,
    pub operators: Vec<OperatorRecord>,
    /// The files each store (by operator number) has in storage now.
    pub files: HashMap<u32, UploadedFiles>,
    pub sync: Duration,
    pub upload: Duration,
}

/// How a checkpoint stores files.
#[derive(Debug, Clone)]
pub struct UploadOptions {
    pub checkpoint: u64,
    pub incremental: bool,
    pub compress: bool,
}

/// Uploads a frozen view. `previous` holds what earlier checkpoints
/// uploaded for its stores, so shared files go up only once.
pub async fn upload_view(
    storage: &CheckpointStorage,
    frozen: FrozenView,
    previous: HashMap<u32, UploadedFiles>,
    options: &UploadOptions,
) -> Result<UploadedView, String> {
    let started = Instant::now();
    let stores = frozen
        .stores
        .map_err(|e| format!("freezing state failed: {e}"))?;
    let mut uploaded = UploadedView {
        checkpoint: ViewCheckpoint {
            view: frozen.view.0,
            name: frozen.name.clone(),
            stores: Vec::new(),
            sources: frozen.sources,
        },
        operators: Vec::new(),
        files: HashMap::new(),
        sync: stores.iter().map(|s| s.sync).sum(),
        upload: Duration::ZERO,
    };
    let result = async {
        for store in stores {
            let position = store.position;
            let known = previous.get(&position).cloned().unwrap_or_default();
            let (checkpoint, record, files) = upload_store(
                storage,
                &frozen.name,
                frozen.view.0,
                frozen.incarnation,
                store,
                &frozen.dir,
                &known,
                options,
            )
            .await?;
            uploaded.checkpoint.stores.push(checkpoint);
            uploaded.operators.push(record);
            uploaded.files.insert(position, files);
        }
        Ok::<_, String>(())
    }
    .await;
    let dir = frozen.dir.clone();
    let _ = tokio::task::spawn_blocking(move || std::fs::remove_dir_all(dir)).await;
    result?;
    uploaded.upload = started.elapsed();
    add_alignments(&mut uploaded.operators, &frozen.name, frozen.alignments);
    Ok(uploaded)
}

/// Puts each multi-input operator's alignment time on its record; an
/// operator without state (a union) gets a record of its own.
fn add_alignments(
    operators: &mut Vec<OperatorRecord>,
    view_name: &str,
    alignments: Vec<(String, Duration)>,
) {
    for (identity, alignment) in alignments {
        match operators.iter_mut().find(|o| o.operator == identity) {
            Some(record) => record.alignment = alignment,
            None => operators.push(OperatorRecord {
                view: view_name.to_string(),
                operator: identity,
                instance: 0,
                state_bytes: 0,
                uploaded_bytes: 0,
                sync: Duration::ZERO,
                upload: Duration::ZERO,
                alignment,
            }),
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn upload_store(
    storage: &CheckpointStorage,
    view_name: &str,
    view: u64,
    incarnation: u64,
    store: FrozenStore,
    dir: &std::path::Path,
    known: &UploadedFiles,
    options: &UploadOptions,
) -> Result<(StoreCheckpoint, OperatorRecord, UploadedFiles), String> {
    let started = Instant::now();
    let local = dir.join(store.position.to_string());
    if let FrozenState::Entries(copy) = &store.state {
        let (copy, target) = (copy.clone(), local.clone());
        tokio::task::spawn_blocking(move || copy.write_entries(&target))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
    }
    let mut names = Vec::new();
    let mut entries = tokio::fs::read_dir(&local)
        .await
        .map_err(|e| format!("{}: {e}", local.display()))?;
    while let Some(entry) = entries.next_entry().await.map_err(|e| e.to_string())? {
        names.push(entry.file_name().to_string_lossy().into_owned());
    }
    names.sort();
    let plan = plan_upload(&names, known, options.incremental);
    let mut files = plan.reused;
    let mut uploaded_bytes = 0;
    for name in plan.upload {
        let shared = options.incremental && is_shareable(&name);
        let key = if shared {
            CheckpointStorage::file_key(
                None,
                view,
                store.position,
                &format!("{incarnation:016x}-{name}"),
            )
        } else {
            CheckpointStorage::file_key(Some(options.checkpoint), view, store.position, &name)
        };
        let file = storage
            .upload(&local.join(&name), key, options.compress, shared)
            .await
            .map_err(|e| e.to_string())?;
        uploaded_bytes += file.stored_size;
        files.push(file);
    }
    files.sort_by(|a, b| a.name.cmp(&b.name));
    let record = OperatorRecord {
        view: view_name.to_string(),
        operator: store.identity.clone(),
        instance: 0,
        state_bytes: files.iter().map(|f| f.stored_size).sum(),
        uploaded_bytes,
        sync: store.sync,
        upload: started.elapsed(),
        alignment: Duration::ZERO,
    };
    let shared: UploadedFiles = files
        .iter()
        .filter(|f| f.shared)
        .map(|f| (f.name.clone(), f.clone()))
        .collect();
    Ok((
        StoreCheckpoint {
            position: store.position,
            identity: store.identity,
            files,
        },
        record,
        shared,
    ))
}
