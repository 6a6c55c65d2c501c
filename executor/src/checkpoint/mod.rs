//! Checkpoints (DESIGN §4, §5): the coordinator that triggers them, the
//! synchronous freeze each view does at a checkpoint barrier, the
//! asynchronous upload, the history `SHOW CHECKPOINTS` reports, and
//! recovery from the newest usable checkpoint.

mod coordinator;
mod freeze;
mod history;
mod restore;
pub mod settings;
mod trigger;
mod upload;

pub use coordinator::{CheckpointCoordinator, CheckpointResult, CoordinatorStart};
pub use freeze::{
    CheckpointedAligner, CheckpointedSource, CheckpointedStore, FrozenView, SourceProgress,
    ViewCheckpointer, new_incarnation,
};
pub use history::{CheckpointRecord, CheckpointStatus, CheckpointTrigger, OperatorRecord};
pub use restore::{restore_latest, store_dir};
pub use settings::{
    CheckpointSettings, RestartStrategy, SettingError, StateBackend, parse_duration,
};
