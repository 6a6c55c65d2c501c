//! Checkpoints (DESIGN §4, §5): the coordinator that triggers them, the
//! synchronous freeze each view does at a checkpoint barrier, the
//! asynchronous upload, the history `SHOW CHECKPOINTS` reports, and
//! recovery from the newest usable checkpoint.

mod coordinator;
mod freeze;
mod history;
mod restore;
mod savepoint;
pub mod settings;
mod trigger;
mod upload;

pub use coordinator::{CheckpointCoordinator, CheckpointResult, CoordinatorStart, SavepointResult};
pub use freeze::{
    CheckpointedAligner, CheckpointedSource, CheckpointedStore, FrozenView, SourceProgress,
    ViewCheckpointer, new_incarnation,
};
pub use history::{CheckpointRecord, CheckpointStatus, CheckpointTrigger, OperatorRecord};
pub use restore::{restore_latest, store_dir};
pub use savepoint::{copy_savepoint, fill_store, fill_tables, restore_tables};
pub use settings::{
    CheckpointSettings, RestartStrategy, SettingError, StateBackend, parse_duration,
};
