//! The checkpoint coordinator: one per database, so every view is
//! checkpointed at the same epoch (DESIGN §4).
//!
//! A task triggers checkpoints on `checkpoint_interval` and on `CHECKPOINT`
//! (honouring the minimum pause and the concurrency limit), injects their
//! barriers, collects each view's frozen state, uploads it in background
//! tasks, and completes a checkpoint by writing its `_metadata` once every
//! view running at the trigger has uploaded. Checkpoints that time out or
//! fail are counted; beyond `tolerable_checkpoint_failures` in a row the
//! database is told to restart its views from the last completed one.
//! Retention then deletes old checkpoints and shared files nothing uses.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::{AbortHandle, JoinSet};
use weir_storage::checkpoint::retention::{checkpoints_to_delete, log_floors, unreferenced};
use weir_storage::checkpoint::{
    CHECKPOINT_FORMAT, CheckpointMetadata, CheckpointStorage, ViewCheckpoint,
};
use weir_storage::savepoint::{
    SAVEPOINT_FORMAT, SavepointLocation, SavepointManifest, SavepointView,
};
use weir_storage::{LogOffset, TableStore};

use super::freeze::FrozenView;
use super::history::{CheckpointRecord, CheckpointStatus, CheckpointTrigger, History};
use super::savepoint::{write_tables, write_view};
use super::settings::{CheckpointSettings, CheckpointingMode, Retention};
use super::trigger::{TriggerState, next_trigger};
use super::upload::{UploadOptions, UploadedFiles, UploadedView, upload_view};
use crate::message::{BarrierKind, Epoch, ViewId};
use crate::runtime::{BarrierInjector, ViewRegistry};
use crate::state::MAX_PARALLELISM;

/// The answer to a `CHECKPOINT`: the completed checkpoint, or why it failed.
pub type CheckpointResult = Result<CheckpointRecord, String>;

/// The answer to a `CREATE SAVEPOINT`: its manifest once durable, or why
/// it failed.
pub type SavepointResult = Result<SavepointManifest, String>;

/// A savepoint being taken: a checkpoint barrier whose frozen state goes
/// to `location` in the canonical format instead of checkpoint storage.
struct SavepointJob {
    name: String,
    location: SavepointLocation,
    views: Vec<SavepointView>,
    reply: oneshot::Sender<SavepointResult>,
}

enum Command {
    Trigger(oneshot::Sender<CheckpointResult>),
    Savepoint(SavepointJob),
    Settings(CheckpointSettings, CheckpointStorage),
    /// A view was dropped: no checkpoint waits for it any more.
    Forget(ViewId),
    /// Views were restarted from this checkpoint (or refilled): what their
    /// new stores have in storage is what it lists.
    Restored(Option<CheckpointMetadata>),
    /// Stop; with `delete`, remove every checkpoint first.
    Shutdown {
        delete: bool,
        done: oneshot::Sender<()>,
    },
}

/// The handle the database holds.
#[derive(Debug)]
pub struct CheckpointCoordinator {
    commands: mpsc::UnboundedSender<Command>,
    reports: mpsc::UnboundedSender<FrozenView>,
    history: Arc<Mutex<History>>,
    settings: Mutex<CheckpointSettings>,
    /// Incremented each time failures exceed the tolerance.
    restarts: watch::Receiver<u64>,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Command")
    }
}

/// Where a database's checkpoints start from.
pub struct CoordinatorStart {
    pub settings: CheckpointSettings,
    pub storage: CheckpointStorage,
    pub injector: Arc<BarrierInjector>,
    pub registry: Arc<ViewRegistry>,
    /// The checkpoint the views were restored from, if any.
    pub restored: Option<CheckpointMetadata>,
    /// The tables, whose logs are truncated below what kept checkpoints
    /// need.
    pub tables: Arc<TableStore>,
    /// A file that remembers the last checkpoint id issued, so that ids
    /// never repeat, even when no checkpoint of them reached storage (they
    /// all failed) or storage moved.
    pub last_id_file: Option<PathBuf>,
}

/// The last id recorded in `file`, if any.
fn recorded_id(file: Option<&Path>) -> u64 {
    file.and_then(|f| std::fs::read_to_string(f).ok())
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(0)
}

/// Records `id` as the last issued, replacing the file whole.
fn record_id(file: &Path, id: u64) {
    let partial = file.with_extension("partial");
    let written =
        std::fs::write(&partial, id.to_string()).and_then(|()| std::fs::rename(&partial, file));
    if let Err(e) = written {
        tracing::warn!(error = %e, file = %file.display(), "cannot record the last checkpoint id");
    }
}

impl CheckpointCoordinator {
    /// Starts the coordinator task. Needs a tokio runtime.
    pub async fn start(start: CoordinatorStart) -> Self {
        let (commands, command_rx) = mpsc::unbounded_channel();
        let (reports, report_rx) = mpsc::unbounded_channel();
        let (restart_tx, restarts) = watch::channel(0);
        let history = Arc::new(Mutex::new(History::default()));
        if let Err(e) = start.storage.delete_incomplete().await {
            tracing::warn!(error = %e, "cannot clean up incomplete checkpoints");
        }
        let stored = match start.storage.highest_id().await {
            Ok(id) => id.unwrap_or(0),
            Err(e) => {
                tracing::warn!(error = %e, "cannot list checkpoints");
                0
            }
        };
        let restored_id = start.restored.as_ref().map_or(0, |m| m.id);
        let next_id = stored
            .max(restored_id)
            .max(recorded_id(start.last_id_file.as_deref()))
            + 1;
        let uploaded = start
            .restored
            .as_ref()
            .map(shared_files)
            .unwrap_or_default();
        let mut kept = BTreeMap::new();
        if let Some(metadata) = &start.restored {
            lock(&history).put(restored_record(metadata));
            kept.insert(metadata.id, metadata.clone());
        }
        let coordinator = Coordinator {
            injector: start.injector,
            registry: start.registry,
            history: Arc::clone(&history),
            settings: start.settings.clone(),
            storage: start.storage,
            next_id,
            last_id_file: start.last_id_file,
            pending: BTreeMap::new(),
            requested: Vec::new(),
            // The first interval counts from the start: views start first.
            last_trigger: Some(Instant::now()),
            last_end: None,
            failures: 0,
            uploaded,
            kept,
            uploads: JoinSet::new(),
            savepoint_writes: JoinSet::new(),
            restarts: restart_tx,
            tables: start.tables,
        };
        tokio::spawn(coordinator.run(command_rx, report_rx));
        Self {
            commands,
            reports,
            history,
            settings: Mutex::new(start.settings),
            restarts,
        }
    }

    /// Where views send their frozen state.
    pub fn reporter(&self) -> mpsc::UnboundedSender<FrozenView> {
        self.reports.clone()
    }

    /// Takes a checkpoint now (once a slot is free); returns when it is
    /// durable, or failed.
    pub async fn checkpoint(&self) -> CheckpointResult {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::Trigger(reply))
            .map_err(|_| "the checkpoint coordinator has stopped".to_string())?;
        answer
            .await
            .map_err(|_| "the checkpoint coordinator has stopped".to_string())?
    }

    /// Takes a savepoint now: every view's state at one barrier, then the
    /// tables, written to `location`; returns once its manifest is durable.
    /// Processing goes on meanwhile.
    pub async fn savepoint(&self, name: &str, location: SavepointLocation) -> SavepointResult {
        let stopped = || "the checkpoint coordinator has stopped".to_string();
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::Savepoint(SavepointJob {
                name: name.to_string(),
                location,
                views: Vec::new(),
                reply,
            }))
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }

    pub fn settings(&self) -> CheckpointSettings {
        lock(&self.settings).clone()
    }

    /// Applies new settings (and storage) to the running coordinator.
    pub fn update(&self, settings: CheckpointSettings, storage: CheckpointStorage) {
        *lock(&self.settings) = settings.clone();
        let _ = self.commands.send(Command::Settings(settings, storage));
    }

    pub fn forget(&self, view: ViewId) {
        let _ = self.commands.send(Command::Forget(view));
    }

    /// Views were restarted from `checkpoint` (`None`: refilled).
    pub fn restored(&self, checkpoint: Option<CheckpointMetadata>) {
        let _ = self.commands.send(Command::Restored(checkpoint));
    }

    pub fn history(&self) -> Vec<CheckpointRecord> {
        lock(&self.history).records()
    }

    /// Changes each time consecutive failures exceed the tolerance.
    pub fn restarts(&self) -> watch::Receiver<u64> {
        self.restarts.clone()
    }

    /// Stops the coordinator; with `delete_on_cancellation` its checkpoints
    /// are deleted first.
    pub async fn shutdown(&self) {
        let delete = self.settings().retention == Retention::DeleteOnCancellation;
        let (done, finished) = oneshot::channel();
        if self
            .commands
            .send(Command::Shutdown { delete, done })
            .is_ok()
        {
            let _ = finished.await;
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

/// The shared files of every store of a checkpoint, by store.
fn shared_files(metadata: &CheckpointMetadata) -> HashMap<(ViewId, u32), UploadedFiles> {
    let mut uploaded = HashMap::new();
    for view in &metadata.views {
        for store in &view.stores {
            let files: UploadedFiles = store
                .files
                .iter()
                .filter(|f| f.shared)
                .map(|f| (f.name.clone(), f.clone()))
                .collect();
            uploaded.insert((ViewId(view.view), store.position), files);
        }
    }
    uploaded
}

/// A checkpoint found in storage at start, as history shows it.
fn restored_record(metadata: &CheckpointMetadata) -> CheckpointRecord {
    let full_bytes = metadata
        .views
        .iter()
        .flat_map(|v| &v.stores)
        .flat_map(|s| &s.files)
        .map(|f| f.stored_size)
        .sum();
    CheckpointRecord {
        id: metadata.id,
        epoch: metadata.epoch,
        status: CheckpointStatus::Completed,
        trigger: CheckpointTrigger::Restored,
        triggered_at_ms: metadata.triggered_at_ms,
        duration: None,
        sync: Duration::ZERO,
        upload: Duration::ZERO,
        start_delay: Duration::ZERO,
        alignment: Duration::ZERO,
        full_bytes,
        incremental_bytes: 0,
        failure: None,
        operators: Vec::new(),
    }
}

/// A checkpoint in progress.
struct Pending {
    record: CheckpointRecord,
    started: Instant,
    deadline: Instant,
    /// Views whose upload is still to come.
    awaiting: BTreeSet<ViewId>,
    views: Vec<ViewCheckpoint>,
    files: Vec<((ViewId, u32), UploadedFiles)>,
    uploads: Vec<AbortHandle>,
    waiters: Vec<oneshot::Sender<CheckpointResult>>,
    first_frozen: Option<Instant>,
    names: HashMap<ViewId, String>,
    savepoint: Option<SavepointJob>,
}

type UploadDone = (u64, ViewId, Result<UploadedView, String>);
type SavepointWritten = (u64, ViewId, Result<SavepointView, String>);

struct Coordinator {
    injector: Arc<BarrierInjector>,
    registry: Arc<ViewRegistry>,
    history: Arc<Mutex<History>>,
    settings: CheckpointSettings,
    storage: CheckpointStorage,
    next_id: u64,
    last_id_file: Option<PathBuf>,
    pending: BTreeMap<u64, Pending>,
    /// `CHECKPOINT`s waiting for a slot.
    requested: Vec<oneshot::Sender<CheckpointResult>>,
    last_trigger: Option<Instant>,
    last_end: Option<Instant>,
    /// Failed checkpoints since the last completed one.
    failures: u32,
    /// What each live store has in storage, so its files go up once.
    uploaded: HashMap<(ViewId, u32), UploadedFiles>,
    /// Completed checkpoints retention keeps.
    kept: BTreeMap<u64, CheckpointMetadata>,
    uploads: JoinSet<UploadDone>,
    savepoint_writes: JoinSet<SavepointWritten>,
    restarts: watch::Sender<u64>,
    tables: Arc<TableStore>,
}

/// How often views are checked for having failed or gone while a
/// checkpoint waits for them.
const HEALTH_CHECK: Duration = Duration::from_millis(200);

impl Coordinator {
    async fn run(
        mut self,
        mut commands: mpsc::UnboundedReceiver<Command>,
        mut reports: mpsc::UnboundedReceiver<FrozenView>,
    ) {
        loop {
            let now = Instant::now();
            let mut wake = now + Duration::from_secs(3600);
            if let Some(at) = next_trigger(&self.trigger_state(), now) {
                wake = wake.min(at);
            }
            if !self.pending.is_empty() {
                wake = wake.min(now + HEALTH_CHECK);
            }
            // A checkpoint times out when its timeout expires, not at the
            // next health check.
            if let Some(deadline) = self.pending.values().map(|p| p.deadline).min() {
                wake = wake.min(deadline);
            }
            tokio::select! {
                command = commands.recv() => match command {
                    None => return,
                    Some(Command::Shutdown { delete, done }) => {
                        self.shutdown(delete).await;
                        let _ = done.send(());
                        return;
                    }
                    Some(command) => self.command(command),
                },
                Some(frozen) = reports.recv() => self.frozen(frozen),
                Some(done) = self.uploads.join_next(), if !self.uploads.is_empty() => {
                    if let Ok((id, view, result)) = done {
                        self.uploaded(id, view, result).await;
                    }
                }
                Some(done) = self.savepoint_writes.join_next(), if !self.savepoint_writes.is_empty() => {
                    if let Ok((id, view, result)) = done {
                        self.savepoint_written(id, view, result);
                    }
                }
                () = tokio::time::sleep_until(wake.into()) => {
                    self.check_pending();
                    if next_trigger(&self.trigger_state(), Instant::now())
                        .is_some_and(|at| at <= Instant::now())
                    {
                        self.trigger().await;
                    }
                }
            }
        }
    }

    fn trigger_state(&self) -> TriggerState {
        TriggerState {
            interval: self.settings.interval,
            min_pause: self.settings.min_pause,
            max_concurrent: self.settings.max_concurrent,
            in_progress: self.pending.len(),
            last_trigger: self.last_trigger,
            last_end: self.last_end,
            requested: !self.requested.is_empty(),
        }
    }

    fn command(&mut self, command: Command) {
        match command {
            Command::Trigger(reply) => self.requested.push(reply),
            Command::Savepoint(job) => {
                self.start(None, Some(job));
            }
            Command::Settings(settings, storage) => {
                if storage.url() != self.storage.url() {
                    // Nothing is in the new place yet: the next checkpoint is full.
                    self.uploaded.clear();
                    self.kept.clear();
                }
                self.settings = settings;
                self.storage = storage;
            }
            Command::Forget(view) => {
                self.uploaded.retain(|(v, _), _| *v != view);
                for pending in self.pending.values_mut() {
                    pending.awaiting.remove(&view);
                }
            }
            Command::Restored(checkpoint) => {
                // Checkpoints in progress wait for stores that are gone.
                let ids: Vec<u64> = self.pending.keys().copied().collect();
                for id in ids {
                    self.abandon(id, "views restarted".into());
                }
                self.failures = 0;
                self.uploaded = checkpoint.as_ref().map(shared_files).unwrap_or_default();
                if let Some(metadata) = &checkpoint {
                    lock(&self.history).put(restored_record(metadata));
                }
            }
            Command::Shutdown { .. } => {}
        }
    }

    async fn trigger(&mut self) {
        let manual = !self.requested.is_empty();
        let waiters = std::mem::take(&mut self.requested);
        let trigger = if manual {
            CheckpointTrigger::Manual
        } else {
            CheckpointTrigger::Interval
        };
        let id = self.start(Some((trigger, waiters)), None);
        self.complete_if_done(id).await;
    }

    /// Injects the barrier of a checkpoint (`checkpoint`: what triggered it
    /// and who waits) or of a savepoint, and waits for the views running
    /// now. A savepoint is always aligned and kept out of the history.
    fn start(
        &mut self,
        checkpoint: Option<(CheckpointTrigger, Vec<oneshot::Sender<CheckpointResult>>)>,
        savepoint: Option<SavepointJob>,
    ) -> u64 {
        let (trigger, waiters) = checkpoint.unwrap_or((CheckpointTrigger::Manual, Vec::new()));
        let id = self.next_id;
        self.next_id += 1;
        if let Some(file) = &self.last_id_file {
            record_id(file, id);
        }
        let now = Instant::now();
        // Views running before the barrier is injected all receive it.
        let running = self.registry.running();
        let epoch = if savepoint.is_some() {
            self.injector.inject_aligned(BarrierKind::Savepoint, true)
        } else {
            self.last_trigger = Some(now);
            let aligned = self.settings.mode == CheckpointingMode::ExactlyOnce;
            self.injector
                .inject_aligned(BarrierKind::Checkpoint, aligned)
        };
        let record = CheckpointRecord {
            id,
            epoch: epoch.0,
            status: CheckpointStatus::InProgress,
            trigger,
            triggered_at_ms: now_ms(),
            duration: None,
            sync: Duration::ZERO,
            upload: Duration::ZERO,
            start_delay: Duration::ZERO,
            alignment: Duration::ZERO,
            full_bytes: 0,
            incremental_bytes: 0,
            failure: None,
            operators: Vec::new(),
        };
        if savepoint.is_none() {
            lock(&self.history).put(record.clone());
        }
        let pending = Pending {
            record,
            started: now,
            deadline: now + self.settings.timeout,
            awaiting: running.into_iter().collect(),
            views: Vec::new(),
            files: Vec::new(),
            uploads: Vec::new(),
            waiters,
            first_frozen: None,
            names: HashMap::new(),
            savepoint,
        };
        if pending.savepoint.is_some() && pending.awaiting.is_empty() {
            self.complete_savepoint(pending);
        } else {
            self.pending.insert(id, pending);
        }
        id
    }

    /// A view froze its state: upload it in the background.
    fn frozen(&mut self, frozen: FrozenView) {
        let epoch = frozen.epoch;
        let Some((&id, pending)) = self
            .pending
            .iter_mut()
            .find(|(_, p)| Epoch(p.record.epoch) == epoch)
        else {
            discard(frozen);
            return;
        };
        if !pending.awaiting.contains(&frozen.view) {
            discard(frozen);
            return;
        }
        pending.first_frozen.get_or_insert_with(Instant::now);
        pending.names.insert(frozen.view, frozen.name.clone());
        let view = frozen.view;
        if let Some(job) = &pending.savepoint {
            let location = job.location.clone();
            let handle = self.savepoint_writes.spawn(async move {
                let result = write_view(&location, frozen).await;
                (id, view, result)
            });
            pending.uploads.push(handle);
            return;
        }
        let previous: HashMap<u32, UploadedFiles> = self
            .uploaded
            .iter()
            .filter(|((v, _), _)| *v == view)
            .map(|((_, position), files)| (*position, files.clone()))
            .collect();
        let storage = self.storage.clone();
        let options = UploadOptions {
            checkpoint: id,
            incremental: self.settings.incremental,
            compress: self.settings.compression,
        };
        let handle = self.uploads.spawn(async move {
            let result = upload_view(&storage, frozen, previous, &options).await;
            (id, view, result)
        });
        pending.uploads.push(handle);
    }

    async fn uploaded(&mut self, id: u64, view: ViewId, result: Result<UploadedView, String>) {
        let Some(pending) = self.pending.get_mut(&id) else {
            return;
        };
        match result {
            Err(e) => self.view_failed(id, view, &e),
            Ok(uploaded) => {
                pending.awaiting.remove(&view);
                let record = &mut pending.record;
                record.sync = record.sync.max(uploaded.sync);
                record.upload = record.upload.max(uploaded.upload);
                record.operators.extend(uploaded.operators);
                for (position, files) in uploaded.files {
                    pending.files.push(((view, position), files));
                }
                pending.views.push(uploaded.checkpoint);
                self.complete_if_done(id).await;
            }
        }
    }

    /// A view's upload (or savepoint write) failed: so does its checkpoint.
    fn view_failed(&mut self, id: u64, view: ViewId, error: &str) {
        let name = self
            .pending
            .get(&id)
            .and_then(|p| p.names.get(&view).cloned())
            .unwrap_or_default();
        self.fail(id, format!("{name}: {error}"));
    }

    fn savepoint_written(&mut self, id: u64, view: ViewId, result: Result<SavepointView, String>) {
        let Some(pending) = self.pending.get_mut(&id) else {
            return;
        };
        match result {
            Err(e) => self.view_failed(id, view, &e),
            Ok(written) => {
                pending.awaiting.remove(&view);
                if let Some(job) = &mut pending.savepoint {
                    job.views.push(written);
                }
                if pending.awaiting.is_empty()
                    && let Some(pending) = self.pending.remove(&id)
                {
                    self.complete_savepoint(pending);
                }
            }
        }
    }

    /// Every view of a savepoint is written: the tables are frozen now (no
    /// log is truncated while a savepoint is pending, so they still hold
    /// every entry its views' offsets resume from) and written, then the
    /// manifest, in the background.
    fn complete_savepoint(&mut self, pending: Pending) {
        let Some(mut job) = pending.savepoint else {
            return;
        };
        let tables = self.tables.frozen();
        self.last_end = Some(Instant::now());
        let epoch = pending.record.epoch;
        let created_at_ms = pending.record.triggered_at_ms;
        tokio::spawn(async move {
            let written = async {
                let tables = write_tables(&job.location, tables)
                    .await
                    .map_err(|e| format!("tables: {e}"))?;
                job.views.sort_by_key(|v| v.view);
                let manifest = SavepointManifest {
                    format: SAVEPOINT_FORMAT,
                    name: job.name.clone(),
                    epoch,
                    created_at_ms,
                    weir_version: env!("CARGO_PKG_VERSION").to_string(),
                    max_parallelism: MAX_PARALLELISM,
                    tables,
                    views: std::mem::take(&mut job.views),
                };
                job.location
                    .write_manifest(&manifest)
                    .await
                    .map_err(|e| format!("writing _manifest: {e}"))?;
                Ok::<_, String>(manifest)
            }
            .await;
            if written.is_err() {
                let _ = job.location.delete().await;
            }
            let _ = job.reply.send(written);
        });
    }

    /// Fails checkpoints past their timeout or waiting for failed views;
    /// stops waiting for views that are gone.
    fn check_pending(&mut self) {
        let now = Instant::now();
        let ids: Vec<u64> = self.pending.keys().copied().collect();
        for id in ids {
            let Some(pending) = self.pending.get_mut(&id) else {
                continue;
            };
            if now >= pending.deadline {
                let timeout = self.settings.timeout;
                self.fail(id, format!("timed out after {timeout:?}"));
                continue;
            }
            let mut failed = None;
            pending
                .awaiting
                .retain(|view| match self.registry.health(*view) {
                    None => false,
                    Some(Err(e)) => {
                        failed = Some(e);
                        true
                    }
                    Some(Ok(())) => true,
                });
            if let Some(e) = failed {
                self.fail(id, e.to_string());
            }
        }
    }

    async fn complete_if_done(&mut self, id: u64) {
        let done = self.pending.get(&id).is_some_and(|p| p.awaiting.is_empty());
        if !done {
            return;
        }
        let Some(mut pending) = self.pending.remove(&id) else {
            return;
        };
        pending.views.sort_by_key(|v| v.view);
        let metadata = CheckpointMetadata {
            format: CHECKPOINT_FORMAT,
            id,
            epoch: pending.record.epoch,
            triggered_at_ms: pending.record.triggered_at_ms,
            views: std::mem::take(&mut pending.views),
        };
        if let Err(e) = self.storage.write_metadata(&metadata).await {
            self.pending.insert(id, pending);
            self.fail(id, format!("writing _metadata: {e}"));
            return;
        }
        let record = &mut pending.record;
        record.status = CheckpointStatus::Completed;
        record.duration = Some(pending.started.elapsed());
        record.start_delay = pending
            .first_frozen
            .map(|t| t.duration_since(pending.started))
            .unwrap_or_default();
        record.alignment = record
            .operators
            .iter()
            .map(|o| o.alignment)
            .max()
            .unwrap_or_default();
        record.full_bytes = record.operators.iter().map(|o| o.state_bytes).sum();
        record.incremental_bytes = record.operators.iter().map(|o| o.uploaded_bytes).sum();
        record
            .operators
            .sort_by(|a, b| (&a.view, &a.operator).cmp(&(&b.view, &b.operator)));
        let record = record.clone();
        lock(&self.history).put(record.clone());
        for (store, files) in pending.files {
            self.uploaded.insert(store, files);
        }
        self.failures = 0;
        self.last_end = Some(Instant::now());
        tracing::debug!(
            checkpoint = id,
            epoch = record.epoch,
            duration = ?record.duration,
            full_bytes = record.full_bytes,
            incremental_bytes = record.incremental_bytes,
            "checkpoint completed"
        );
        for waiter in pending.waiters {
            let _ = waiter.send(Ok(record.clone()));
        }
        self.kept.insert(id, metadata);
        self.retain().await;
    }

    /// Fails a checkpoint and counts the failure; too many in a row ask
    /// for the views to restart from the last completed checkpoint.
    fn fail(&mut self, id: u64, reason: String) {
        let savepoint = self.pending.get(&id).is_some_and(|p| p.savepoint.is_some());
        if !self.abandon(id, reason) || savepoint {
            return;
        }
        self.failures += 1;
        if self.failures > self.settings.tolerable_failures {
            tracing::error!(
                failures = self.failures,
                tolerable = self.settings.tolerable_failures,
                "too many checkpoints failed in a row: restarting views from the last completed checkpoint"
            );
            self.failures = 0;
            self.restarts.send_modify(|n| *n += 1);
        }
    }

    /// Ends a checkpoint as failed without counting it; `false` if it was
    /// not in progress.
    fn abandon(&mut self, id: u64, reason: String) -> bool {
        let Some(pending) = self.pending.remove(&id) else {
            return false;
        };
        for upload in &pending.uploads {
            upload.abort();
        }
        if let Some(job) = pending.savepoint {
            tracing::warn!(savepoint = job.name, reason = %reason, "savepoint failed");
            let _ = job
                .reply
                .send(Err(format!("savepoint {} failed: {reason}", job.name)));
            tokio::spawn(async move {
                let _ = job.location.delete().await;
            });
            self.last_end = Some(Instant::now());
            return true;
        }
        let mut record = pending.record;
        record.status = CheckpointStatus::Failed;
        record.duration = Some(pending.started.elapsed());
        record.failure = Some(reason.clone());
        tracing::warn!(checkpoint = id, reason = %reason, "checkpoint failed");
        lock(&self.history).put(record);
        for waiter in pending.waiters {
            let _ = waiter.send(Err(format!("checkpoint {id} failed: {reason}")));
        }
        let storage = self.storage.clone();
        tokio::spawn(async move {
            let _ = storage.delete_checkpoint(id).await;
        });
        self.last_end = Some(Instant::now());
        true
    }

    /// Deletes checkpoints beyond `checkpoints_retained`, then shared files
    /// no kept checkpoint and no live store uses. The sweep waits while a
    /// checkpoint is uploading: its new files are referenced nowhere yet.
    async fn retain(&mut self) {
        let completed = match self.storage.completed().await {
            Ok(ids) => ids,
            Err(e) => {
                tracing::warn!(error = %e, "retention: cannot list checkpoints");
                return;
            }
        };
        let deleted = checkpoints_to_delete(&completed, self.settings.retained);
        for id in &deleted {
            if let Err(e) = self.storage.delete_checkpoint(*id).await {
                tracing::warn!(checkpoint = id, error = %e, "retention: cannot delete");
            }
        }
        let remaining: HashSet<u64> = completed
            .into_iter()
            .filter(|id| !deleted.contains(id))
            .collect();
        self.kept.retain(|id, _| remaining.contains(id));
        if !self.pending.is_empty() {
            return;
        }
        for id in remaining {
            if self.kept.contains_key(&id) {
                continue;
            }
            match self.storage.read_metadata(id).await {
                Ok(metadata) => {
                    self.kept.insert(id, metadata);
                }
                // Without every kept checkpoint's references nothing is safe to delete.
                Err(_) => return,
            }
        }
        let live: HashSet<String> = self
            .uploaded
            .values()
            .flat_map(|files| files.values().map(|f| f.key.clone()))
            .collect();
        let shared = match self.storage.shared_keys().await {
            Ok(keys) => keys,
            Err(e) => {
                tracing::warn!(error = %e, "retention: cannot list shared files");
                return;
            }
        };
        let kept: Vec<CheckpointMetadata> = self.kept.values().cloned().collect();
        self.truncate_logs(&kept).await;
        for key in unreferenced(shared.iter().map(String::as_str), &kept, &live) {
            if let Err(e) = self.storage.delete(&key).await {
                tracing::warn!(key, error = %e, "retention: cannot delete");
            }
        }
    }

    /// Truncates every table's log below what the kept checkpoints resume
    /// from; a table none of them reads keeps nothing below its end. Live
    /// readers hold the log from their position on (the table store
    /// clamps), so views started since are safe.
    async fn truncate_logs(&self, kept: &[CheckpointMetadata]) {
        let floors = log_floors(kept);
        let tables = match self.tables.table_ids() {
            Ok(tables) => tables,
            Err(e) => {
                tracing::warn!(error = %e, "log truncation: cannot list tables");
                return;
            }
        };
        for table in tables {
            let below = match floors.get(&table.0) {
                Some(&floor) => LogOffset(floor),
                None => match self.tables.log_bounds(table) {
                    Ok((_, end)) => end,
                    Err(_) => continue,
                },
            };
            if let Err(e) = self.tables.truncate_log(table, below).await {
                tracing::warn!(table = table.0, error = %e, "log truncation failed");
            }
        }
    }

    async fn shutdown(&mut self, delete: bool) {
        for pending in self.pending.values() {
            for upload in &pending.uploads {
                upload.abort();
            }
        }
        if !delete {
            return;
        }
        if let Ok(ids) = self.storage.completed().await {
            for id in ids {
                let _ = self.storage.delete_checkpoint(id).await;
            }
        }
        // Checkpoints still in progress left some files but no `_metadata`.
        if let Err(e) = self.storage.delete_incomplete().await {
            tracing::warn!(error = %e, "cannot delete the checkpoints in progress");
        }
        if let Ok(keys) = self.storage.shared_keys().await {
            for key in keys {
                let _ = self.storage.delete(&key).await;
            }
        }
    }
}

/// A frozen view no checkpoint waits for: its files are removed.
fn discard(frozen: FrozenView) {
    let dir = frozen.dir;
    tokio::task::spawn_blocking(move || std::fs::remove_dir_all(dir));
}
