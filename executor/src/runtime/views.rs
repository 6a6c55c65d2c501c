//! Which epoch every running view has reached, and the snapshots SELECT
//! reads them at.
//!
//! A view's materialize publishes a read-only snapshot of its state at
//! every barrier. The visible epoch is the latest epoch every view has
//! published; a [`ReadPin`] holds each view's snapshot at that epoch, so
//! one SELECT sees all views at one point of the stream. Snapshots older
//! than any pin could want are released.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use datafusion::error::DataFusionError;
use tokio::sync::watch;
use weir_storage::StateStore;

use crate::message::{Epoch, ViewId};

#[derive(Debug, Default)]
struct Progress {
    snapshots: VecDeque<(Epoch, Arc<dyn StateStore>)>,
    failure: Option<ViewFailure>,
}

/// Why a view stopped: the error its graph ended with, kept whole so that
/// whoever reports it can classify it (a division by zero stays one).
#[derive(Debug, Clone, thiserror::Error)]
#[error("materialized view \"{view}\" failed: {error}")]
pub struct ViewFailure {
    pub view: String,
    pub error: Arc<DataFusionError>,
}

/// The progress of every view of a database.
#[derive(Debug)]
pub struct ViewRegistry {
    views: Mutex<BTreeMap<ViewId, Progress>>,
    changed: watch::Sender<u64>,
    /// Counts view failures, for whoever restarts failed views.
    failures: watch::Sender<u64>,
}

/// Every view's state at one epoch, for one SELECT.
#[derive(Debug, Default, Clone)]
pub struct ReadPin {
    pub epoch: Option<Epoch>,
    snapshots: HashMap<ViewId, Arc<dyn StateStore>>,
    failures: HashMap<ViewId, ViewFailure>,
}

impl ReadPin {
    /// The view's state at the pinned epoch, or why it cannot be read.
    pub fn snapshot(&self, view: ViewId) -> Result<Arc<dyn StateStore>, DataFusionError> {
        if let Some(failure) = self.failures.get(&view) {
            return Err(DataFusionError::External(Box::new(failure.clone())));
        }
        self.snapshots.get(&view).cloned().ok_or_else(|| {
            DataFusionError::Execution("the view has not been filled yet".to_string())
        })
    }
}

impl Default for ViewRegistry {
    fn default() -> Self {
        Self {
            views: Mutex::new(BTreeMap::new()),
            changed: watch::channel(0).0,
            failures: watch::channel(0).0,
        }
    }
}

fn latest(progress: &Progress) -> Option<Epoch> {
    progress.snapshots.back().map(|(epoch, _)| *epoch)
}

impl ViewRegistry {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<ViewId, Progress>> {
        self.views
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn notify(&self) {
        self.changed.send_modify(|n| *n += 1);
    }

    pub fn register(&self, view: ViewId) {
        self.lock().insert(view, Progress::default());
        self.notify();
    }

    pub fn remove(&self, view: ViewId) {
        self.lock().remove(&view);
        self.notify();
    }

    /// The view's state as of `epoch`.
    pub fn publish(&self, view: ViewId, epoch: Epoch, snapshot: Arc<dyn StateStore>) {
        let mut views = self.lock();
        if let Some(progress) = views.get_mut(&view) {
            progress.snapshots.push_back((epoch, snapshot));
        }
        if let Some(visible) = visible(&views) {
            for progress in views.values_mut() {
                // Keep the newest snapshot at or below the visible epoch, and all after.
                while progress.snapshots.len() > 1 && progress.snapshots[1].0 <= visible {
                    progress.snapshots.pop_front();
                }
            }
        }
        drop(views);
        self.notify();
    }

    /// The view stopped with an error; it is no longer waited for.
    pub fn fail(&self, view: ViewId, error: ViewFailure) {
        if let Some(progress) = self.lock().get_mut(&view) {
            progress.failure = Some(error);
            progress.snapshots.clear();
        }
        self.notify();
        self.failures.send_modify(|n| *n += 1);
    }

    /// Changes each time a view fails.
    pub fn failures(&self) -> watch::Receiver<u64> {
        self.failures.subscribe()
    }

    /// Views that have published a snapshot and not failed: they receive
    /// every barrier injected from now on.
    pub fn running(&self) -> Vec<ViewId> {
        self.lock()
            .iter()
            .filter(|(_, p)| p.failure.is_none() && latest(p).is_some())
            .map(|(view, _)| *view)
            .collect()
    }

    /// `None` once the view is gone; its failure if it failed.
    pub fn health(&self, view: ViewId) -> Option<Result<(), ViewFailure>> {
        self.lock()
            .get(&view)
            .map(|p| p.failure.clone().map_or(Ok(()), Err))
    }

    pub fn failure(&self, view: ViewId) -> Option<ViewFailure> {
        self.lock().get(&view).and_then(|p| p.failure.clone())
    }

    /// Pins every view's state at the visible epoch.
    pub fn pin(&self) -> ReadPin {
        let views = self.lock();
        let epoch = visible(&views);
        let mut pin = ReadPin {
            epoch,
            ..ReadPin::default()
        };
        for (view, progress) in views.iter() {
            if let Some(failure) = &progress.failure {
                pin.failures.insert(*view, failure.clone());
            }
            let at = progress
                .snapshots
                .iter()
                .rev()
                .find(|(e, _)| epoch.is_none_or(|visible| *e <= visible));
            if let Some((_, snapshot)) = at {
                pin.snapshots.insert(*view, Arc::clone(snapshot));
            }
        }
        pin
    }

    /// Waits until every view registered (and not failed) has reached
    /// `epoch`; then returns the views among `watched` that failed.
    pub async fn wait_for(&self, epoch: Epoch, watched: &[ViewId]) -> Vec<(ViewId, ViewFailure)> {
        let mut changed = self.changed.subscribe();
        loop {
            {
                let views = self.lock();
                let reached = views
                    .values()
                    .all(|p| p.failure.is_some() || latest(p).is_some_and(|e| e >= epoch));
                if reached {
                    return watched
                        .iter()
                        .filter_map(|v| {
                            views
                                .get(v)
                                .and_then(|p| p.failure.clone())
                                .map(|f| (*v, f))
                        })
                        .collect();
                }
            }
            if changed.changed().await.is_err() {
                return Vec::new();
            }
        }
    }
}

/// The latest epoch every healthy view with a snapshot has reached.
fn visible(views: &BTreeMap<ViewId, Progress>) -> Option<Epoch> {
    views
        .values()
        .filter(|p| p.failure.is_none())
        .filter_map(latest)
        .min()
}

#[cfg(test)]
mod tests {
    use weir_storage::MemoryStateStore;

    use super::*;

    fn store() -> Arc<dyn StateStore> {
        Arc::new(MemoryStateStore::default())
    }

    #[tokio::test]
    async fn pins_the_epoch_every_view_has_reached() {
        let registry = ViewRegistry::default();
        let (a, b) = (ViewId(1), ViewId(2));
        registry.register(a);
        registry.register(b);
        registry.publish(a, Epoch(1), store());
        registry.publish(b, Epoch(1), store());
        registry.publish(a, Epoch(2), store());
        let pin = registry.pin();
        assert_eq!(pin.epoch, Some(Epoch(1)));
        assert!(pin.snapshot(a).is_ok() && pin.snapshot(b).is_ok());

        let watched = [b];
        let waiting = registry.wait_for(Epoch(2), &watched);
        registry.fail(
            b,
            ViewFailure {
                view: "b".into(),
                error: Arc::new(DataFusionError::Execution("boom".into())),
            },
        );
        let failed = waiting.await;
        assert_eq!(failed.len(), 1);
        assert_eq!(failed[0].0, b);
        assert_eq!(
            failed[0].1.to_string(),
            "materialized view \"b\" failed: Execution error: boom"
        );
        assert_eq!(registry.pin().epoch, Some(Epoch(2)));
        assert!(registry.pin().snapshot(b).is_err());
    }
}
