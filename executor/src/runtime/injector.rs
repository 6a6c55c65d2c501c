//! The barrier injector: one per database, so every view's epochs are the
//! same epochs.
//!
//! Every table source of every view has a barrier channel here. A barrier
//! is sent to all of them at once, under one lock, with the next epoch:
//! periodically (`barrier_interval`), and on demand for `FLUSH` and for a
//! new view, whose sources join exactly at the barrier that starts it.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc::UnboundedSender;

use crate::message::{Barrier, BarrierKind, Epoch, Mutation, Subscription, ViewId};

#[derive(Debug, Default)]
struct Sources {
    epoch: Epoch,
    senders: BTreeMap<ViewId, Vec<UnboundedSender<Barrier>>>,
}

impl Sources {
    fn send(&mut self, barrier: &Barrier) {
        for senders in self.senders.values_mut() {
            senders.retain(|sender| sender.send(barrier.clone()).is_ok());
        }
        self.senders.retain(|_, senders| !senders.is_empty());
    }
}

#[derive(Debug, Default)]
pub struct BarrierInjector {
    sources: Mutex<Sources>,
}

impl BarrierInjector {
    fn lock(&self) -> std::sync::MutexGuard<'_, Sources> {
        self.sources
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Sends the next barrier to every source.
    pub fn inject(&self, kind: BarrierKind) -> Epoch {
        self.inject_starting(kind, ViewId(u64::MAX), Vec::new(), Vec::new())
    }

    /// Sends the next barrier to every source; unaligned barriers let
    /// multi-input operators read on (at-least-once checkpoints).
    pub fn inject_aligned(&self, kind: BarrierKind, aligned: bool) -> Epoch {
        let mut state = self.lock();
        state.epoch = state.epoch.next();
        let mut barrier = Barrier::new(state.epoch, kind);
        barrier.aligned = aligned;
        state.send(&barrier);
        state.epoch
    }

    /// Epochs continue after `epoch` (the epoch state was restored at).
    pub fn continue_after(&self, epoch: Epoch) {
        let mut state = self.lock();
        state.epoch = state.epoch.max(epoch);
    }

    /// Adds `view`'s sources and sends the next barrier to every source,
    /// theirs included, carrying `subscriptions` to the views they read.
    pub fn inject_starting(
        &self,
        kind: BarrierKind,
        view: ViewId,
        sources: Vec<UnboundedSender<Barrier>>,
        subscriptions: Vec<Subscription>,
    ) -> Epoch {
        self.inject_starting_all(kind, vec![(view, sources)], subscriptions)
    }

    /// [`Self::inject_starting`] for several views at one barrier.
    pub fn inject_starting_all(
        &self,
        kind: BarrierKind,
        views: Vec<(ViewId, Vec<UnboundedSender<Barrier>>)>,
        subscriptions: Vec<Subscription>,
    ) -> Epoch {
        let mut state = self.lock();
        for (view, sources) in views {
            if !sources.is_empty() {
                state.senders.entry(view).or_default().extend(sources);
            }
        }
        state.epoch = state.epoch.next();
        let mut barrier = Barrier::new(state.epoch, kind);
        if !subscriptions.is_empty() {
            barrier.mutation = Some(Arc::new(Mutation::Subscribe(subscriptions)));
        }
        state.send(&barrier);
        state.epoch
    }

    /// Stops sending barriers to `view`'s sources, which then end.
    pub fn remove(&self, view: ViewId) {
        self.lock().senders.remove(&view);
    }

    /// The last epoch injected.
    pub fn epoch(&self) -> Epoch {
        self.lock().epoch
    }
}

#[cfg(test)]
mod tests {
    use tokio::sync::mpsc::unbounded_channel;

    use super::*;

    #[test]
    fn sources_join_at_the_barrier_that_starts_them() {
        let injector = BarrierInjector::default();
        let (first, mut first_rx) = unbounded_channel();
        assert_eq!(
            injector.inject_starting(BarrierKind::Visibility, ViewId(1), vec![first], vec![]),
            Epoch(1)
        );
        let (second, mut second_rx) = unbounded_channel();
        injector.inject_starting(BarrierKind::Visibility, ViewId(2), vec![second], vec![]);
        injector.remove(ViewId(1));
        injector.inject(BarrierKind::Visibility);
        let epochs = |rx: &mut tokio::sync::mpsc::UnboundedReceiver<Barrier>| {
            std::iter::from_fn(|| rx.try_recv().ok().map(|b| b.epoch.0)).collect::<Vec<_>>()
        };
        assert_eq!(epochs(&mut first_rx), vec![1, 2]);
        assert_eq!(epochs(&mut second_rx), vec![2, 3]);
    }
}
