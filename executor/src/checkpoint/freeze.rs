//! The synchronous part of a checkpoint, for one view.
//!
//! A view's graph runs in one task pulled from its materialize, so when the
//! materialize holds a checkpoint barrier every operator upstream has
//! committed that epoch and is paused at it. The materialize then freezes
//! every store of the view (RocksDB: flush and hard-link its files) and
//! reads how far each table source had read; the upload of what was frozen
//! (the asynchronous part) is the coordinator's, while the view goes on.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::mpsc::UnboundedSender;
use weir_storage::checkpoint::SourceOffset;
use weir_storage::{FrozenState, StateStore};

use crate::align::AlignmentMeter;
use crate::message::{Epoch, ViewId};

/// How far a table source has read when it passes a barrier: the log
/// offset of the first row after it. Shared between the source and its
/// view's checkpointer.
#[derive(Debug, Clone, Default)]
pub struct SourceProgress(Arc<AtomicU64>);

impl SourceProgress {
    pub fn set(&self, offset: u64) {
        self.0.store(offset, Ordering::Release);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Acquire)
    }
}

/// A stateful operator's store, as a checkpoint knows it.
#[derive(Debug)]
pub struct CheckpointedStore {
    pub position: u32,
    pub identity: String,
    pub store: Arc<dyn StateStore>,
}

/// A multi-input operator (join, union), as a checkpoint knows it: how
/// long its inputs waited for each other's barriers.
#[derive(Debug)]
pub struct CheckpointedAligner {
    pub identity: String,
    pub meter: AlignmentMeter,
}

/// A table source, as a checkpoint knows it.
#[derive(Debug)]
pub struct CheckpointedSource {
    pub position: u32,
    /// The table or source relation it reads.
    pub name: String,
    pub table: u64,
    pub progress: SourceProgress,
}

/// One store, frozen.
#[derive(Debug)]
pub struct FrozenStore {
    pub position: u32,
    pub identity: String,
    pub state: FrozenState,
    pub sync: Duration,
}

/// A view's part of a checkpoint, frozen and ready to upload.
#[derive(Debug)]
pub struct FrozenView {
    pub view: ViewId,
    pub name: String,
    pub epoch: Epoch,
    /// Distinguishes this opening of the view's stores from any other, so
    /// that files with the same name from different openings never share
    /// an object key.
    pub incarnation: u64,
    /// The frozen stores, or why freezing failed.
    pub stores: Result<Vec<FrozenStore>, String>,
    /// Alignment time since the previous checkpoint, by operator identity.
    pub alignments: Vec<(String, Duration)>,
    pub sources: Vec<SourceOffset>,
    /// Local directory holding the frozen files; removed after upload.
    pub dir: PathBuf,
}

/// Freezes a view's stores at checkpoint barriers; owned by its materialize.
#[derive(Debug)]
pub struct ViewCheckpointer {
    pub view: ViewId,
    pub name: String,
    pub stores: Vec<CheckpointedStore>,
    pub aligners: Vec<CheckpointedAligner>,
    pub sources: Vec<CheckpointedSource>,
    /// Where frozen files go: `<dir>/<epoch>/<operator>`.
    pub dir: PathBuf,
    pub incarnation: u64,
    pub reports: UnboundedSender<FrozenView>,
}

/// A number unlikely to repeat across openings and processes.
pub fn new_incarnation() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default(),
    );
    hasher.finish()
}

impl ViewCheckpointer {
    /// Freezes every store at `epoch` and hands the result to the
    /// coordinator: files for a checkpoint, a read-only snapshot for a
    /// `savepoint`. Failures are reported, not raised: a failed checkpoint
    /// does not stop the view.
    pub fn freeze(&self, epoch: Epoch, savepoint: bool) {
        let dir = self.dir.join(epoch.0.to_string());
        let stores = self
            .stores
            .iter()
            .map(|s| {
                let started = Instant::now();
                let state = if savepoint {
                    s.store.snapshot().map(FrozenState::Snapshot)
                } else {
                    s.store.checkpoint(&dir.join(s.position.to_string()))
                }
                .map_err(|e| format!("{}: {e}", s.identity))?;
                Ok(FrozenStore {
                    position: s.position,
                    identity: s.identity.clone(),
                    state,
                    sync: started.elapsed(),
                })
            })
            .collect();
        let alignments = self
            .aligners
            .iter()
            .map(|a| (a.identity.clone(), a.meter.take()))
            .collect();
        let sources = self
            .sources
            .iter()
            .map(|s| SourceOffset {
                position: s.position,
                table: s.table,
                offset: s.progress.get(),
            })
            .collect();
        let _ = self.reports.send(FrozenView {
            view: self.view,
            name: self.name.clone(),
            epoch,
            incarnation: self.incarnation,
            stores,
            alignments,
            sources,
            dir,
        });
    }
}
