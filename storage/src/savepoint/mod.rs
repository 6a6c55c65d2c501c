//! Savepoints: checkpoints the user owns (DESIGN §5).
//!
//! A savepoint is self-contained and independent of the state backend: a
//! [`SavepointManifest`] (JSON, written last) naming every file with its
//! size and checksum, and files of sorted key-value entries in Arrow IPC
//! ([`entries`]). Each view's operator stores are split by key-group range,
//! so a restore at another parallelism reads only the ranges an instance
//! owns; the table store (catalog, table rows and logs) is one more set of
//! entries. Layout under the savepoint's own location:
//!
//! ```text
//! tables/<n>.arrow                       the table store, with the catalog
//! views/<view>/<operator>/<range>.arrow  one operator store's key-group range
//! _manifest                              written last: without it there is no savepoint
//! ```

pub mod entries;
mod location;
pub mod manifest;

pub use location::SavepointLocation;
pub use manifest::{
    EntryFile, MANIFEST, SAVEPOINT_FORMAT, SavepointManifest, SavepointStore, SavepointView,
};
