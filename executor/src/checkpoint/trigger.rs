//! When the next checkpoint may start: the coordinator's timing rules as
//! one pure function.

use std::time::{Duration, Instant};

/// What the coordinator knows when deciding.
#[derive(Debug, Clone, Copy)]
pub struct TriggerState {
    pub interval: Option<Duration>,
    pub min_pause: Duration,
    pub max_concurrent: usize,
    pub in_progress: usize,
    /// When the last checkpoint was triggered.
    pub last_trigger: Option<Instant>,
    /// When the last checkpoint ended (completed or failed).
    pub last_end: Option<Instant>,
    /// A `CHECKPOINT` statement is waiting.
    pub requested: bool,
}

/// The earliest instant the next checkpoint may be triggered, or `None`
/// while none may start (all slots taken, or nothing to trigger one).
///
/// The interval counts from the last trigger; the minimum pause from the
/// last end. A requested checkpoint waits only for a free slot.
pub fn next_trigger(state: &TriggerState, now: Instant) -> Option<Instant> {
    if state.in_progress >= state.max_concurrent.max(1) {
        return None;
    }
    if state.requested {
        return Some(now);
    }
    let interval = state.interval?;
    let by_interval = state.last_trigger.map_or(now, |t| t + interval);
    let by_pause = state.last_end.map_or(now, |t| t + state.min_pause);
    Some(by_interval.max(by_pause))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> TriggerState {
        TriggerState {
            interval: Some(Duration::from_secs(10)),
            min_pause: Duration::ZERO,
            max_concurrent: 1,
            in_progress: 0,
            last_trigger: None,
            last_end: None,
            requested: false,
        }
    }

    #[test]
    fn the_interval_counts_from_the_last_trigger() {
        let now = Instant::now();
        assert_eq!(
            next_trigger(&state(), now),
            Some(now),
            "the first one at once"
        );
        let s = TriggerState {
            last_trigger: Some(now),
            last_end: Some(now + Duration::from_secs(2)),
            ..state()
        };
        assert_eq!(next_trigger(&s, now), Some(now + Duration::from_secs(10)));
    }

    #[test]
    fn the_pause_counts_from_the_last_end() {
        let now = Instant::now();
        let s = TriggerState {
            min_pause: Duration::from_secs(5),
            last_trigger: Some(now),
            last_end: Some(now + Duration::from_secs(8)),
            ..state()
        };
        assert_eq!(next_trigger(&s, now), Some(now + Duration::from_secs(13)));
    }

    #[test]
    fn no_trigger_while_every_slot_is_taken_or_when_off() {
        let now = Instant::now();
        let busy = TriggerState {
            in_progress: 1,
            requested: true,
            ..state()
        };
        assert_eq!(next_trigger(&busy, now), None);
        let two = TriggerState {
            max_concurrent: 2,
            ..busy
        };
        assert_eq!(next_trigger(&two, now), Some(now));
        let off = TriggerState {
            interval: None,
            ..state()
        };
        assert_eq!(next_trigger(&off, now), None);
        let requested = TriggerState {
            requested: true,
            min_pause: Duration::from_secs(60),
            last_end: Some(now),
            ..off
        };
        assert_eq!(
            next_trigger(&requested, now),
            Some(now),
            "CHECKPOINT skips the pause"
        );
    }
}
