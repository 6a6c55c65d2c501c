//! The lifecycle of a [`Database`]'s views: started at open (restored from
//! the newest usable checkpoint, or refilled from their inputs), restarted
//! by the restart strategy, started and forgotten one at a time by DDL.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use datafusion::error::DataFusionError;
use datafusion::execution::context::SessionContext;
use datafusion::sql::sqlparser::ast::Statement;
use weir_executor::checkpoint::{
    CheckpointCoordinator, CheckpointSettings, CoordinatorStart, restore_latest,
};
use weir_executor::message::{Epoch, ViewId};
use weir_storage::checkpoint::{CheckpointMetadata, CheckpointStorage};

use super::Database;
use crate::roles::session_role;
use crate::views::{ViewSpec, ViewStorage, build_view, state_dir, state_root, view_spec};
use crate::{Error, Result};

impl Database {
    /// Restores the newest usable checkpoint, starts the checkpoint
    /// coordinator, then every stored view: those in the checkpoint from
    /// its state and source offsets, together at one barrier; the others
    /// refilled from their inputs.
    pub async fn start_views(&self) -> Result<()> {
        // A restore that did not finish (or the command line's) goes first:
        // it replaces the catalog the settings come from.
        let staged = self.staged_savepoint().await?;
        let savepoint = match &staged {
            Some(manifest) => Some(self.apply_staged(manifest).await?),
            None => None,
        };
        let settings = self.stored_settings();
        let storage = match self.open_storage(&settings) {
            Ok(storage) => storage,
            Err(e) => {
                tracing::error!(error = %e, "stored checkpoint_storage unusable; using the default");
                self.open_storage(&CheckpointSettings::default())?
            }
        };
        self.runtime.set_barrier_interval(settings.barrier_interval);
        let records = self.catalog.take_stored_views();
        let restored = match savepoint {
            Some(savepoint) => Some(savepoint),
            None => self.restore_state(&storage, &records).await?,
        };
        if let Some(metadata) = &restored {
            self.runtime
                .injector()
                .continue_after(Epoch(metadata.epoch));
        }
        let coordinator = CheckpointCoordinator::start(CoordinatorStart {
            settings,
            storage,
            injector: Arc::clone(self.runtime.injector()),
            registry: Arc::clone(self.runtime.registry()),
            restored: restored.clone().filter(|_| staged.is_none()),
            tables: Arc::clone(self.catalog.store()),
            last_id_file: Some(self.data_dir.join("last_checkpoint_id")),
        })
        .await;
        let _ = self.checkpoints.set(coordinator);

        self.launch_views(records, restored.as_ref()).await?;
        match &staged {
            Some(manifest) => self.finish_restore(manifest).await,
            None => Ok(()),
        }
    }

    /// Starts stored views: those in `restored` from it, together at one
    /// barrier; the others refilled from their inputs, in creation order.
    pub(super) async fn launch_views(
        &self,
        records: Vec<crate::catalog::ViewRecord>,
        restored: Option<&CheckpointMetadata>,
    ) -> Result<()> {
        let ctx = self.session_context();
        let mut specs = Vec::new();
        for record in records {
            let parsed = self.parser.parse(&record.sql)?;
            let Some((Statement::CreateView(create), emit_on_window_close)) = parsed
                .first()
                .map(|p| (&p.statement, p.emit_on_window_close))
            else {
                return Err(Error::Internal(format!(
                    "stored definition of {} is not CREATE MATERIALIZED VIEW",
                    record.name
                )));
            };
            // Planned as it is started: a view's plan may read the views before it.
            specs.push((record, (create.clone(), emit_on_window_close)));
        }
        let restorable = restorable_views(restored, &specs);
        let started = std::time::Instant::now();
        let mut launches = Vec::new();
        for (record, (create, eowc)) in specs.iter().filter(|(r, _)| restorable.contains(&r.id)) {
            let spec = view_spec(&ctx.state(), create, record.sql.clone(), *eowc).await?;
            let checkpoint = restored.and_then(|m| m.view(record.id));
            let built = build_view(
                &self.catalog,
                &ctx.state(),
                &self.runtime,
                &spec,
                record.id,
                Some(self.view_storage(checkpoint)?),
            )?;
            launches.push(built.launch);
            self.catalog.add_view(built.entry, None).await?;
        }
        if !launches.is_empty() {
            let (_, failures) = self.runtime.launch_all(launches).await;
            for (view, failure) in failures {
                tracing::error!(view = view.0, %failure, "restored view failed");
            }
            tracing::info!(views = restorable.len(), elapsed = ?started.elapsed(), "views restored from checkpoint");
        }
        for (record, (create, eowc)) in specs.iter().filter(|(r, _)| !restorable.contains(&r.id)) {
            let spec = view_spec(&ctx.state(), create, record.sql.clone(), *eowc).await?;
            let started = std::time::Instant::now();
            self.start_view(&ctx, &spec, record.id, false).await?;
            tracing::info!(view = %record.name, elapsed = ?started.elapsed(), "materialized view started");
        }
        self.plan_plain_views(&ctx).await;
        Ok(())
    }

    pub(super) fn view_storage<'a>(
        &'a self,
        restore: Option<&'a weir_storage::checkpoint::ViewCheckpoint>,
    ) -> Result<ViewStorage<'a>> {
        Ok(ViewStorage {
            data_dir: &self.data_dir,
            memory: &self.memory,
            backend: self.checkpoint_settings().backend,
            reports: self.coordinator()?.reporter(),
            restore,
        })
    }

    /// Replaces the local state of `views` with the newest usable
    /// checkpoint's. Local state is whatever a crash left: only checkpoints
    /// are trusted.
    pub(super) async fn restore_state(
        &self,
        storage: &CheckpointStorage,
        views: &[crate::catalog::ViewRecord],
    ) -> Result<Option<CheckpointMetadata>> {
        let state_root = state_root(&self.data_dir);
        if state_root.exists() {
            std::fs::remove_dir_all(&state_root)
                .map_err(|e| Error::Internal(format!("{}: {e}", state_root.display())))?;
        }
        let ids: HashSet<u64> = views.iter().map(|r| r.id).collect();
        Ok(restore_latest(storage, &state_root, &ids).await)
    }

    /// Restarts every view from the newest usable checkpoint (the restart
    /// strategy, after too many failed checkpoints).
    pub async fn restart_views(&self) -> Result<()> {
        let _ddl = self.catalog.lock_ddl().await;
        let coordinator = self.coordinator()?;
        let storage = self.open_storage(&coordinator.settings())?;
        self.runtime.stop_all().await;
        let records = self.catalog.detach_views()?;
        let restored = self.restore_state(&storage, &records).await?;
        coordinator.restored(restored.clone());
        self.launch_views(records, restored.as_ref()).await
    }

    /// Changes each time a view fails (its query or its state hit an
    /// error): the restart strategy restarts the views then too.
    pub fn view_failures(&self) -> tokio::sync::watch::Receiver<u64> {
        self.runtime.registry().failures()
    }

    /// Restarts counted against `restart_attempts` so far.
    pub fn restarts_used(&self) -> u32 {
        self.restarts_used.load(Ordering::SeqCst)
    }

    /// Counts one restart against `restart_attempts`.
    pub fn count_restart(&self) {
        self.restarts_used.fetch_add(1, Ordering::SeqCst);
    }

    /// `ALTER MATERIALIZED VIEW name RESUME`: once what made views fail is
    /// fixed, restarts every view from the newest usable checkpoint, and
    /// `restart_attempts` counts from zero again.
    pub async fn resume_views(&self, name: &str) -> Result<()> {
        if self.catalog.view(name).is_none() {
            return Err(Error::user(
                "42P01",
                format!("materialized view \"{name}\" does not exist"),
            ));
        }
        self.restarts_used.store(0, Ordering::SeqCst);
        self.restart_views().await
    }

    /// Changes each time checkpoints failed more often in a row than
    /// `tolerable_checkpoint_failures`.
    pub fn checkpoint_restarts(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        self.checkpoints.get().map(CheckpointCoordinator::restarts)
    }

    /// Stops every view's graph (at shutdown); their inputs are released
    /// when this returns.
    pub async fn stop_views(&self) {
        if let Some(coordinator) = self.checkpoints.get() {
            coordinator.shutdown().await;
        }
        self.runtime.stop_all().await;
    }

    /// Builds, starts and registers a view (`store`: durably, as new).
    pub(super) async fn start_view(
        &self,
        ctx: &SessionContext,
        spec: &ViewSpec,
        id: u64,
        store: bool,
    ) -> Result<()> {
        let built = build_view(
            &self.catalog,
            &ctx.state(),
            &self.runtime,
            spec,
            id,
            Some(self.view_storage(None)?),
        )?;
        let view = built.launch.view;
        let started = match self.runtime.launch(built.launch).await {
            Ok(_) => {
                let owner = store.then(|| session_role(ctx));
                self.catalog.add_view(built.entry, owner.as_deref()).await
            }
            Err(failure) => Err(Error::DataFusion(DataFusionError::External(Box::new(
                failure,
            )))),
        };
        if started.is_err() {
            self.forget_view(view).await;
        }
        started
    }

    /// Stops a view's graph and deletes its state.
    pub(super) async fn forget_view(&self, view: ViewId) {
        if let Some(coordinator) = self.checkpoints.get() {
            coordinator.forget(view);
        }
        self.runtime.stop(view).await;
        let dir = state_dir(&self.data_dir, view);
        if dir.exists()
            && let Err(e) = std::fs::remove_dir_all(&dir)
        {
            tracing::warn!("cannot delete {}: {e}", dir.display());
        }
    }
}

/// The views of a checkpoint that can resume from it: those in it whose
/// views read are all resumed too (in creation order).
fn restorable_views<T>(
    restored: Option<&CheckpointMetadata>,
    specs: &[(crate::catalog::ViewRecord, T)],
) -> HashSet<u64> {
    let mut restorable = HashSet::new();
    let Some(metadata) = restored else {
        return restorable;
    };
    let views: HashMap<&str, u64> = specs.iter().map(|(r, _)| (r.name.as_str(), r.id)).collect();
    for (record, _) in specs {
        let inputs_resumed = record.depends_on.iter().all(|input| {
            views
                .get(input.as_str())
                .is_none_or(|id| restorable.contains(id))
        });
        if metadata.view(record.id).is_some() && inputs_resumed {
            restorable.insert(record.id);
        }
    }
    restorable
}
