//! Database-wide checkpoint settings (DESIGN §6): their names, defaults,
//! how their values are written and checked.
//!
//! Values are kept as typed fields; [`CheckpointSettings::show`] gives the
//! canonical text, which is also what the catalog stores.

use std::time::Duration;

/// Whether multi-input operators align barriers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckpointingMode {
    /// Inputs that delivered the barrier wait for the others: each
    /// checkpoint holds exactly the rows before its barrier.
    ExactlyOnce,
    /// No input waits; rows after a barrier may be in its checkpoint and be
    /// replayed after recovery.
    AtLeastOnce,
}

/// What happens to checkpoints when a view is dropped or the server stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retention {
    RetainOnCancellation,
    DeleteOnCancellation,
}

/// Where stateful operators keep their state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateBackend {
    /// One RocksDB instance per operator: state larger than memory,
    /// incremental checkpoints.
    RocksDb,
    /// A map in memory: faster for small state, full checkpoints only.
    Memory,
}

/// How views restart after too many checkpoints failed in a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartStrategy {
    /// `restart_attempts` tries, `restart_delay` apart.
    FixedDelay,
    /// `restart_attempts` tries, the delay doubling after each.
    ExponentialDelay,
    /// Views keep running as they are (with an error logged).
    NoRestart,
}

impl RestartStrategy {
    /// How long to wait before restart `attempt` (from 1).
    pub fn delay(self, base: Duration, attempt: u32) -> Duration {
        match self {
            RestartStrategy::ExponentialDelay => {
                base.saturating_mul(1 << attempt.saturating_sub(1).min(16))
            }
            RestartStrategy::FixedDelay | RestartStrategy::NoRestart => base,
        }
    }
}

const MODES: &[(&str, CheckpointingMode)] = &[
    ("exactly_once", CheckpointingMode::ExactlyOnce),
    ("at_least_once", CheckpointingMode::AtLeastOnce),
];

const BACKENDS: &[(&str, StateBackend)] = &[
    ("rocksdb", StateBackend::RocksDb),
    ("memory", StateBackend::Memory),
];

const RETENTIONS: &[(&str, Retention)] = &[
    ("retain_on_cancellation", Retention::RetainOnCancellation),
    ("delete_on_cancellation", Retention::DeleteOnCancellation),
];

const RESTART_STRATEGIES: &[(&str, RestartStrategy)] = &[
    ("fixed_delay", RestartStrategy::FixedDelay),
    ("exponential_delay", RestartStrategy::ExponentialDelay),
    ("none", RestartStrategy::NoRestart),
];

/// The option `text` names, as the value of setting `name`.
fn choose<T: Copy>(name: &str, text: &str, options: &[(&str, T)]) -> Result<T, SettingError> {
    let wanted = text.trim().to_ascii_lowercase();
    if let Some((_, value)) = options.iter().find(|(option, _)| *option == wanted) {
        return Ok(*value);
    }
    let names: Vec<&str> = options.iter().map(|(option, _)| *option).collect();
    let expected = match names.split_last() {
        Some((last, [])) => format!("expected {last}"),
        Some((last, rest)) => format!("expected {} or {last}", rest.join(", ")),
        None => "no value is accepted".into(),
    };
    Err(SettingError::Invalid {
        name: name.to_string(),
        reason: format!("\"{text}\": {expected}"),
    })
}

/// The name of `value` among `options`.
fn name_of<T: PartialEq>(options: &[(&str, T)], value: &T) -> String {
    options
        .iter()
        .find(|(_, v)| v == value)
        .map(|(name, _)| name.to_string())
        .unwrap_or_default()
}

#[derive(Debug, Clone, PartialEq)]
pub struct CheckpointSettings {
    /// `None`: only `CHECKPOINT` triggers one.
    pub interval: Option<Duration>,
    pub mode: CheckpointingMode,
    pub min_pause: Duration,
    pub timeout: Duration,
    pub max_concurrent: usize,
    pub tolerable_failures: u32,
    /// An object_store URL; `None`: `file://` under the data directory.
    pub storage: Option<String>,
    pub compression: bool,
    /// Chosen before views exist: their state stays where it was made.
    pub backend: StateBackend,
    pub incremental: bool,
    pub retained: usize,
    pub retention: Retention,
    pub restart_strategy: RestartStrategy,
    pub restart_attempts: u32,
    pub restart_delay: Duration,
    /// How often views become visible to SELECT.
    pub barrier_interval: Duration,
}

impl Default for CheckpointSettings {
    fn default() -> Self {
        Self {
            interval: Some(Duration::from_secs(10)),
            mode: CheckpointingMode::ExactlyOnce,
            min_pause: Duration::ZERO,
            timeout: Duration::from_secs(600),
            max_concurrent: 1,
            tolerable_failures: 3,
            storage: None,
            compression: false,
            backend: StateBackend::RocksDb,
            incremental: true,
            retained: 3,
            retention: Retention::RetainOnCancellation,
            restart_strategy: RestartStrategy::FixedDelay,
            restart_attempts: 3,
            restart_delay: Duration::from_secs(1),
            barrier_interval: Duration::from_secs(1),
        }
    }
}

/// Every setting, with what it means.
pub const SETTINGS: &[(&str, &str)] = &[
    (
        "checkpoint_interval",
        "Time between checkpoint triggers; 0 or off: only CHECKPOINT takes one.",
    ),
    (
        "checkpointing_mode",
        "exactly_once (barriers aligned) or at_least_once (no input waits).",
    ),
    (
        "min_pause_between_checkpoints",
        "Least time from the end of one checkpoint to the start of the next.",
    ),
    (
        "checkpoint_timeout",
        "A checkpoint taking longer is aborted and counts as failed.",
    ),
    (
        "max_concurrent_checkpoints",
        "Checkpoints in progress at once.",
    ),
    (
        "tolerable_checkpoint_failures",
        "Consecutive failed checkpoints before views restart from the last completed one.",
    ),
    (
        "checkpoint_storage",
        "Where checkpoints go: a file://, s3:// or memory:// URL; default: file:// under the data directory.",
    ),
    (
        "checkpoint_compression",
        "Compress checkpoint files with zstd.",
    ),
    (
        "state_backend",
        "rocksdb or memory: where operators keep their state; set before views exist.",
    ),
    (
        "incremental_checkpoints",
        "Upload each state file once and share it between checkpoints (rocksdb only).",
    ),
    ("checkpoints_retained", "Completed checkpoints kept."),
    (
        "checkpoint_retention",
        "retain_on_cancellation, or delete_on_cancellation: checkpoints are deleted at shutdown.",
    ),
    (
        "restart_strategy",
        "fixed_delay, exponential_delay (the delay doubles each attempt) or none.",
    ),
    (
        "restart_attempts",
        "Restarts from the last checkpoint tried before views are stopped.",
    ),
    ("restart_delay", "Wait before each restart."),
    (
        "barrier_interval",
        "How often views become visible to SELECT: the time between visibility barriers.",
    ),
];

/// Why a setting was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SettingError {
    Unknown(String),
    Invalid { name: String, reason: String },
}

impl std::fmt::Display for SettingError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SettingError::Unknown(name) => {
                write!(f, "unrecognized configuration parameter \"{name}\"")
            }
            SettingError::Invalid { name, reason } => {
                write!(f, "invalid value for parameter \"{name}\": {reason}")
            }
        }
    }
}

pub fn is_setting(name: &str) -> bool {
    SETTINGS.iter().any(|(n, _)| *n == name)
}

/// Parses `5s`, `1500ms`, `2min`, `1h`, `10 seconds`; a bare number is seconds.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim().to_ascii_lowercase();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    let seconds = match unit.trim() {
        "" | "s" | "sec" | "secs" | "second" | "seconds" => 1.0,
        "ms" | "millisecond" | "milliseconds" => 0.001,
        "min" | "mins" | "minute" | "minutes" => 60.0,
        "h" | "hour" | "hours" => 3600.0,
        _ => return None,
    };
    let total = number * seconds;
    (0.0..1e9)
        .contains(&total)
        .then(|| Duration::from_secs_f64(total))
}

/// A duration as settings show it: the largest whole unit.
pub fn show_duration(duration: Duration) -> String {
    let ms = duration.as_millis();
    if ms == 0 {
        "0".into()
    } else if ms.is_multiple_of(3_600_000) {
        format!("{}h", ms / 3_600_000)
    } else if ms.is_multiple_of(60_000) {
        format!("{}min", ms / 60_000)
    } else if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

fn parse_bool(text: &str) -> Option<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "on" | "true" | "yes" | "1" => Some(true),
        "off" | "false" | "no" | "0" => Some(false),
        _ => None,
    }
}

fn show_bool(value: bool) -> String {
    if value { "on" } else { "off" }.into()
}

impl CheckpointSettings {
    /// Sets `name` to `value` (`None`: its default).
    ///
    /// # Errors
    /// [`SettingError::Unknown`] for a name that is not a checkpoint
    /// setting, [`SettingError::Invalid`] for a value it cannot take.
    pub fn set(&mut self, name: &str, value: Option<&str>) -> Result<(), SettingError> {
        if !is_setting(name) {
            return Err(SettingError::Unknown(name.to_string()));
        }
        let Some(text) = value else {
            let default = Self::default().show(name)?;
            return self.set(name, Some(&default));
        };
        let invalid = |reason: &str| SettingError::Invalid {
            name: name.to_string(),
            reason: format!("\"{text}\": {reason}"),
        };
        let duration = || {
            parse_duration(text)
                .ok_or_else(|| invalid("expected a duration like 5s, 500ms or 2min"))
        };
        let boolean = || parse_bool(text).ok_or_else(|| invalid("expected on or off"));
        let count = |min: u64| {
            text.trim()
                .parse::<u64>()
                .ok()
                .filter(|n| *n >= min)
                .ok_or_else(|| invalid(&format!("expected a whole number of at least {min}")))
        };
        match name {
            "checkpoint_interval" => {
                let interval = match text.trim().to_ascii_lowercase().as_str() {
                    "off" => None,
                    _ => Some(duration()?).filter(|d| !d.is_zero()),
                };
                if interval.is_some_and(|d| d < Duration::from_millis(10)) {
                    return Err(invalid("the shortest interval is 10ms"));
                }
                self.interval = interval;
            }
            "checkpointing_mode" => self.mode = choose(name, text, MODES)?,
            "min_pause_between_checkpoints" => self.min_pause = duration()?,
            "checkpoint_timeout" => {
                let timeout = duration()?;
                if timeout < Duration::from_millis(10) {
                    return Err(invalid("the shortest timeout is 10ms"));
                }
                self.timeout = timeout;
            }
            "max_concurrent_checkpoints" => self.max_concurrent = count(1)? as usize,
            "tolerable_checkpoint_failures" => self.tolerable_failures = count(0)? as u32,
            "checkpoint_storage" => {
                let url = text.trim();
                self.storage = (!url.is_empty() && url != "default").then(|| url.to_string());
            }
            "checkpoint_compression" => self.compression = boolean()?,
            "state_backend" => self.backend = choose(name, text, BACKENDS)?,
            "incremental_checkpoints" => self.incremental = boolean()?,
            "checkpoints_retained" => self.retained = count(1)? as usize,
            "checkpoint_retention" => self.retention = choose(name, text, RETENTIONS)?,
            "restart_strategy" => self.restart_strategy = choose(name, text, RESTART_STRATEGIES)?,
            "restart_attempts" => self.restart_attempts = count(0)? as u32,
            "restart_delay" => self.restart_delay = duration()?,
            "barrier_interval" => {
                let interval = duration()?;
                if interval < Duration::from_millis(10) {
                    return Err(invalid("the shortest interval is 10ms"));
                }
                self.barrier_interval = interval;
            }
            _ => return Err(SettingError::Unknown(name.to_string())),
        }
        Ok(())
    }

    /// The value of `name` as text.
    pub fn show(&self, name: &str) -> Result<String, SettingError> {
        Ok(match name {
            "checkpoint_interval" => self.interval.map_or("off".into(), show_duration),
            "checkpointing_mode" => name_of(MODES, &self.mode),
            "min_pause_between_checkpoints" => show_duration(self.min_pause),
            "checkpoint_timeout" => show_duration(self.timeout),
            "max_concurrent_checkpoints" => self.max_concurrent.to_string(),
            "tolerable_checkpoint_failures" => self.tolerable_failures.to_string(),
            "checkpoint_storage" => self.storage.clone().unwrap_or_else(|| "default".into()),
            "checkpoint_compression" => show_bool(self.compression),
            "state_backend" => name_of(BACKENDS, &self.backend),
            "incremental_checkpoints" => show_bool(self.incremental),
            "checkpoints_retained" => self.retained.to_string(),
            "checkpoint_retention" => name_of(RETENTIONS, &self.retention),
            "restart_strategy" => name_of(RESTART_STRATEGIES, &self.restart_strategy),
            "restart_attempts" => self.restart_attempts.to_string(),
            "restart_delay" => show_duration(self.restart_delay),
            "barrier_interval" => show_duration(self.barrier_interval),
            _ => return Err(SettingError::Unknown(name.to_string())),
        })
    }

    /// Every setting as (name, value, description).
    pub fn all(&self) -> Vec<(&'static str, String, &'static str)> {
        SETTINGS
            .iter()
            .map(|(name, description)| (*name, self.show(name).unwrap_or_default(), *description))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_and_show_in_their_units() {
        assert_eq!(parse_duration("5s"), Some(Duration::from_secs(5)));
        assert_eq!(
            parse_duration(" 1500 ms"),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(parse_duration("2min"), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("10 seconds"), Some(Duration::from_secs(10)));
        assert_eq!(parse_duration("3"), Some(Duration::from_secs(3)));
        assert_eq!(parse_duration("-1s"), None);
        assert_eq!(parse_duration("5 fortnights"), None);
        assert_eq!(show_duration(Duration::from_secs(120)), "2min");
        assert_eq!(show_duration(Duration::from_millis(1500)), "1500ms");
    }

    #[test]
    fn every_setting_round_trips_its_default() {
        let defaults = CheckpointSettings::default();
        let mut settings = CheckpointSettings::default();
        for (name, value, _) in defaults.all() {
            settings.set(name, Some(&value)).unwrap();
        }
        assert_eq!(settings, defaults);
    }

    #[test]
    fn bad_names_and_values_are_refused() {
        let mut settings = CheckpointSettings::default();
        assert_eq!(
            settings.set("checkpoint_intervl", Some("5s")),
            Err(SettingError::Unknown("checkpoint_intervl".into()))
        );
        for (name, value) in [
            ("checkpoint_interval", "soon"),
            ("checkpoint_interval", "1ms"),
            ("checkpointing_mode", "twice"),
            ("max_concurrent_checkpoints", "0"),
            ("checkpoints_retained", "-1"),
            ("checkpoint_compression", "maybe"),
            ("restart_strategy", "sometimes"),
            ("barrier_interval", "5ms"),
        ] {
            assert!(
                matches!(
                    settings.set(name, Some(value)),
                    Err(SettingError::Invalid { .. })
                ),
                "{name} = {value}"
            );
        }
        assert_eq!(
            settings,
            CheckpointSettings::default(),
            "refused values change nothing"
        );
        settings.set("checkpoint_interval", Some("off")).unwrap();
        assert_eq!(settings.interval, None);
        settings.set("checkpoint_interval", None).unwrap();
        assert_eq!(settings.interval, Some(Duration::from_secs(10)));
        settings.set("checkpoint_interval", Some("0")).unwrap();
        assert_eq!(settings.show("checkpoint_interval").unwrap(), "off");
    }

    #[test]
    fn choices_name_what_they_accept() {
        let mut settings = CheckpointSettings::default();
        let refused = settings.set("state_backend", Some("heap")).unwrap_err();
        assert_eq!(
            refused.to_string(),
            "invalid value for parameter \"state_backend\": \"heap\": expected rocksdb or memory"
        );
        settings
            .set("restart_strategy", Some(" Exponential_Delay "))
            .unwrap();
        assert_eq!(
            settings.show("restart_strategy").unwrap(),
            "exponential_delay"
        );
    }

    #[test]
    fn restart_delays_by_strategy() {
        let base = Duration::from_millis(100);
        let delays = |strategy: RestartStrategy| -> Vec<u128> {
            (1..=4)
                .map(|attempt| strategy.delay(base, attempt).as_millis())
                .collect()
        };
        assert_eq!(delays(RestartStrategy::FixedDelay), [100, 100, 100, 100]);
        assert_eq!(
            delays(RestartStrategy::ExponentialDelay),
            [100, 200, 400, 800]
        );
        assert_eq!(
            RestartStrategy::ExponentialDelay.delay(base, u32::MAX),
            base * (1 << 16),
            "the doubling stops"
        );
    }
}
