//! Durable state of weir.
//!
//! A table is two things kept in one atomic write: an append-only change log
//! (insert and delete records at increasing [`LogOffset`]s, which streaming
//! sources read and checkpoints record) and its current contents keyed by
//! primary key (or by row id for append-only tables). The catalog is stored
//! beside them, so DDL and data commit in the same write-ahead log.
//!
//! Writers hand their changes to one commit thread ([`TableStore::write`]),
//! which validates them in arrival order, merges everything queued into one
//! batch and makes it durable with a single synced write: group commit. A
//! write is acknowledged only after that sync.
//!
//! Streaming operators keep their keyed state in a [`StateStore`]: RocksDB
//! (one instance per stateful operator instance) or memory.
//!
//! RocksDB types never leave [`rocks`]; the rest of weir sees Arrow
//! `RecordBatch`es, bytes and plain offsets.

pub mod checkpoint;
mod codec;
mod commit;
mod error;
mod keys;
mod log_entry;
mod memory_state;
mod object_url;
mod pending;
mod rocks;
pub mod savepoint;
mod state_store;
mod table_store;

pub use error::{ConstraintViolation, Error, Result};
pub use log_entry::{CHANGE_OP_COLUMN, ChangeOp, LogEntry};
pub use memory_state::{ENTRIES_FILE, MemorySnapshot, MemoryStateStore};
pub use object_url::open_object_store;
pub use pending::{PendingTable, PendingWrites};
pub use rocks::SharedMemory;
pub use state_store::{FrozenState, RocksStateStore, ScanVisitor, StateChanges, StateStore};
pub use table_store::{
    LogReader, ReadPoint, RowReceiver, TableId, TableKey, TableLayout, TableSnapshot, TableStore,
    TableWrite, WriteOutcome,
};

/// Position in a table's change log: every row written gets the next offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct LogOffset(pub u64);

#[cfg(test)]
mod tests;
