//! Checkpoints in object storage.
//!
//! A checkpoint is the state of every view at one epoch plus the log
//! offset each of their sources had reached, so recovery can restore the
//! state and replay the rest. Layout under the storage root (DESIGN §5):
//!
//! ```text
//! shared/<view>/<operator>/<file>   SST files, uploaded once, shared by checkpoints
//! chk-<id>/<view>/<operator>/<file> files private to one checkpoint
//! chk-<id>/_metadata                written last: without it the checkpoint does not exist
//! ```
//!
//! [`CheckpointStorage`] moves files and metadata; [`metadata`] is what a
//! checkpoint records; [`retention`] holds the pure decisions (what to
//! upload, what to keep, what to delete).

pub mod metadata;
pub mod retention;
mod storage;

pub use metadata::{
    CHECKPOINT_FORMAT, CheckpointMetadata, SourceOffset, StoreCheckpoint, StoredFile,
    ViewCheckpoint,
};
pub use storage::CheckpointStorage;
