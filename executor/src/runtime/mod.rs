//! The streaming runtime of one database: running views, barriers,
//! `FLUSH`, and the snapshots SELECT reads.
//!
//! Each view's operator graph runs as one tokio task, pulled from its
//! materialize (stateless operators are fused into their consumers by
//! construction). The task ends when its sources end; an error stops the
//! view, is logged and is reported to anyone reading or flushing it.

mod injector;
mod views;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::mpsc::UnboundedSender;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use injector::BarrierInjector;
pub use views::{ReadPin, ViewFailure, ViewRegistry};

use crate::message::{Barrier, BarrierKind, Epoch, Subscription, ViewId};
use crate::operator::BoxedOperator;

/// A view's graph, ready to start.
pub struct ViewLaunch {
    pub view: ViewId,
    pub name: String,
    /// The graph's root: the view's materialize.
    pub root: BoxedOperator,
    /// Barrier channels of the graph's table sources.
    pub sources: Vec<UnboundedSender<Barrier>>,
    /// Subscriptions of the graph's view sources.
    pub subscriptions: Vec<Subscription>,
}

/// The streaming side of a database.
#[derive(Debug)]
pub struct StreamingRuntime {
    injector: Arc<BarrierInjector>,
    views: Arc<ViewRegistry>,
    tasks: Mutex<HashMap<ViewId, JoinHandle<()>>>,
    ticker: JoinHandle<()>,
    barrier_interval: watch::Sender<Duration>,
}

impl StreamingRuntime {
    /// Starts the runtime; a barrier is injected every `barrier_interval`.
    /// Must be called within a tokio runtime.
    pub fn start(barrier_interval: Duration) -> Self {
        let injector = Arc::new(BarrierInjector::default());
        let (interval_sender, mut intervals) = watch::channel(barrier_interval);
        let ticking = Arc::clone(&injector);
        let ticker = tokio::spawn(async move {
            loop {
                let period = *intervals.borrow_and_update();
                let first = tokio::time::Instant::now() + period;
                let mut interval = tokio::time::interval_at(first, period);
                interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tokio::select! {
                        _ = interval.tick() => {
                            ticking.inject(BarrierKind::Visibility);
                        }
                        changed = intervals.changed() => {
                            if changed.is_err() {
                                return;
                            }
                            break;
                        }
                    }
                }
            }
        });
        Self {
            injector,
            views: Arc::new(ViewRegistry::default()),
            tasks: Mutex::new(HashMap::new()),
            ticker,
            barrier_interval: interval_sender,
        }
    }

    /// Injects visibility barriers every `interval` from now on; the same
    /// interval again leaves the ticker's rhythm alone.
    pub fn set_barrier_interval(&self, interval: Duration) {
        self.barrier_interval.send_if_modified(|current| {
            let changed = *current != interval;
            *current = interval;
            changed
        });
    }

    pub fn registry(&self) -> &Arc<ViewRegistry> {
        &self.views
    }

    pub fn injector(&self) -> &Arc<BarrierInjector> {
        &self.injector
    }

    /// Starts a view and returns once it holds its first epoch, every row
    /// of its inputs as of that barrier included.
    ///
    /// # Errors
    /// The view's error, if it failed before getting there.
    pub async fn launch(&self, launch: ViewLaunch) -> Result<Epoch, ViewFailure> {
        let (epoch, mut failures) = self.launch_all(vec![launch]).await;
        match failures.pop() {
            Some((_, failure)) => Err(failure),
            None => Ok(epoch),
        }
    }

    /// Starts views together: their sources all join at one barrier, which
    /// carries every subscription. Returns that epoch once all hold it,
    /// with the views that failed before it.
    pub async fn launch_all(
        &self,
        launches: Vec<ViewLaunch>,
    ) -> (Epoch, Vec<(ViewId, ViewFailure)>) {
        let mut all_sources = Vec::new();
        let mut all_subscriptions = Vec::new();
        let mut views = Vec::new();
        for launch in launches {
            let ViewLaunch {
                view,
                name,
                root,
                sources,
                subscriptions,
            } = launch;
            self.views.register(view);
            self.spawn(view, name, root);
            all_sources.push((view, sources));
            all_subscriptions.extend(subscriptions);
            views.push(view);
        }
        let epoch = self.injector.inject_starting_all(
            BarrierKind::Visibility,
            all_sources,
            all_subscriptions,
        );
        (epoch, self.views.wait_for(epoch, &views).await)
    }

    fn spawn(&self, view: ViewId, name: String, root: BoxedOperator) {
        let registry = Arc::clone(&self.views);
        let task = tokio::spawn(async move {
            let mut messages = root.execute();
            while let Some(message) = messages.next().await {
                if let Err(e) = message {
                    tracing::error!(view = %name, error = %e.strip_backtrace(), "materialized view stopped");
                    registry.fail(
                        view,
                        ViewFailure {
                            view: name,
                            error: Arc::new(e),
                        },
                    );
                    return;
                }
            }
        });
        self.tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(view, task);
    }

    /// Injects a barrier and returns once every view has processed it:
    /// then every view reflects every write acknowledged before the call.
    pub async fn flush(&self) -> Epoch {
        let epoch = self.injector.inject(BarrierKind::Visibility);
        self.views.wait_for(epoch, &[]).await;
        epoch
    }

    /// Stops a view; returns once its graph has ended and released its state.
    pub async fn stop(&self, view: ViewId) {
        self.injector.remove(view);
        let task = self
            .tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&view);
        if let Some(task) = task {
            task.abort();
            let _ = task.await;
        }
        self.views.remove(view);
    }

    /// Stops every view.
    pub async fn stop_all(&self) {
        let views: Vec<ViewId> = self
            .tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .keys()
            .copied()
            .collect();
        for view in views {
            self.stop(view).await;
        }
    }

    pub fn pin(&self) -> ReadPin {
        self.views.pin()
    }
}

impl Drop for StreamingRuntime {
    fn drop(&mut self) {
        self.ticker.abort();
        for task in self
            .tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
        {
            task.abort();
        }
    }
}
