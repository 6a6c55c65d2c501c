//! What a savepoint's `_manifest` records, as JSON.

use serde::{Deserialize, Serialize};

use crate::checkpoint::SourceOffset;

/// The `_manifest` format this weir writes and reads.
pub const SAVEPOINT_FORMAT: u32 = 1;

/// The manifest's object key under the savepoint's location.
pub const MANIFEST: &str = "_manifest";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavepointManifest {
    pub format: u32,
    pub name: String,
    /// Every view's state is as of the end of this epoch.
    pub epoch: u64,
    /// When the savepoint was taken, in milliseconds since the Unix epoch.
    pub created_at_ms: i64,
    /// The weir version that wrote it.
    pub weir_version: String,
    /// Key groups per state table when it was written.
    pub max_parallelism: u16,
    /// The table store: catalog, table rows and table logs.
    pub tables: Vec<EntryFile>,
    pub views: Vec<SavepointView>,
}

/// One view's state and how far its sources had read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavepointView {
    pub view: u64,
    pub name: String,
    pub stores: Vec<SavepointStore>,
    pub sources: Vec<SourceOffset>,
}

/// One stateful operator's store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavepointStore {
    /// The operator's number within its view (deterministic per SQL).
    pub position: u32,
    pub identity: String,
    pub files: Vec<EntryFile>,
}

/// A file of key-value entries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryFile {
    /// Its object key, relative to the savepoint's location.
    pub key: String,
    /// The key groups `[first, end)` its entries belong to; `None` for
    /// entries outside every key group (table store, operator metadata).
    pub key_groups: Option<(u16, u16)>,
    pub entries: u64,
    pub size: u64,
    /// XXH64 of its contents.
    pub checksum: u64,
}

impl SavepointManifest {
    /// Every file, tables first.
    pub fn files(&self) -> impl Iterator<Item = &EntryFile> {
        self.tables.iter().chain(
            self.views
                .iter()
                .flat_map(|v| &v.stores)
                .flat_map(|s| &s.files),
        )
    }

    /// Bytes of every file.
    pub fn size(&self) -> u64 {
        self.files().map(|f| f.size).sum()
    }

    pub fn view(&self, view: u64) -> Option<&SavepointView> {
        self.views.iter().find(|v| v.view == view)
    }
}
