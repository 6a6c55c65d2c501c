//! What a checkpoint's `_metadata` records, as JSON.

use serde::{Deserialize, Serialize};

/// The `_metadata` format this weir writes and reads.
pub const CHECKPOINT_FORMAT: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckpointMetadata {
    pub format: u32,
    pub id: u64,
    /// Every view's state is as of the end of this epoch.
    pub epoch: u64,
    /// When the checkpoint was triggered, in milliseconds since the Unix epoch.
    pub triggered_at_ms: i64,
    pub views: Vec<ViewCheckpoint>,
}

/// One view's part of a checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ViewCheckpoint {
    pub view: u64,
    pub name: String,
    pub stores: Vec<StoreCheckpoint>,
    pub sources: Vec<SourceOffset>,
}

/// The state store of one stateful operator instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoreCheckpoint {
    /// The operator's number within its view (deterministic per SQL).
    pub position: u32,
    pub identity: String,
    pub files: Vec<StoredFile>,
}

/// A file of a store's snapshot and where it was uploaded.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct StoredFile {
    /// The file's name in the store's directory.
    pub name: String,
    /// Its object key, relative to the storage root.
    pub key: String,
    /// Its size on local disk.
    pub size: u64,
    /// Its size in checkpoint storage (smaller when compressed).
    pub stored_size: u64,
    /// XXH64 of its local contents.
    pub checksum: u64,
    /// Stored zstd-compressed.
    pub compressed: bool,
    /// Uploaded once and shared with other checkpoints.
    pub shared: bool,
}

/// How far a view's source had read at the checkpoint's barrier: a table's
/// log offset, or a generated source's next event number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceOffset {
    pub position: u32,
    /// The table's (or source's) catalog id.
    pub table: u64,
    pub offset: u64,
}

impl CheckpointMetadata {
    pub fn view(&self, view: u64) -> Option<&ViewCheckpoint> {
        self.views.iter().find(|v| v.view == view)
    }

    /// Every object key the checkpoint uses.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.views
            .iter()
            .flat_map(|v| &v.stores)
            .flat_map(|s| &s.files)
            .map(|f| f.key.as_str())
    }
}

impl ViewCheckpoint {
    pub fn store(&self, position: u32) -> Option<&StoreCheckpoint> {
        self.stores.iter().find(|s| s.position == position)
    }

    pub fn source(&self, position: u32) -> Option<&SourceOffset> {
        self.sources.iter().find(|s| s.position == position)
    }
}
