//! [`Transaction`]: a session's open transaction block, as its stored
//! tables see it.
//!
//! The session puts one in its DataFusion config. While a block is open,
//! writes to stored tables are staged in it instead of committed, and scans
//! of those tables show the staged rows over the committed ones; COMMIT
//! writes them all at once. With no block open, each statement commits on
//! its own.

use std::sync::{Arc, Mutex, MutexGuard};

use weir_storage::{
    PendingTable, PendingWrites, ReadPoint, TableId, TableStore, TableWrite, WriteOutcome,
};

use super::QueryPin;

#[derive(Debug, Default)]
pub struct Transaction {
    block: Mutex<Option<OpenBlock>>,
}

#[derive(Debug, Default)]
struct OpenBlock {
    /// The store the block wrote to, once it wrote.
    store: Option<Arc<TableStore>>,
    pending: PendingWrites,
    /// Whether the block reads one snapshot (REPEATABLE READ): the
    /// tables and views as its first read of each found them.
    snapshot: bool,
    /// The tables' point, once the block read a table.
    tables: Option<(Arc<TableStore>, ReadPoint)>,
    /// The views' pin, once the block read a view.
    views: Option<Arc<QueryPin>>,
}

/// What COMMIT has to write.
pub struct Committing {
    store: Option<Arc<TableStore>>,
    pending: PendingWrites,
}

impl Committing {
    /// Writes the block's rows durably, every table or none.
    ///
    /// # Errors
    /// A unique violation against rows committed since the block wrote
    /// them, or a storage error: nothing was written.
    pub async fn commit(self) -> weir_storage::Result<WriteOutcome> {
        match self.store {
            Some(store) => store.commit_pending(self.pending).await,
            None => Ok(WriteOutcome::default()),
        }
    }
}

impl Transaction {
    fn lock(&self) -> MutexGuard<'_, Option<OpenBlock>> {
        // A panic while holding the lock leaves data no worse than a
        // half-run statement, which staging never leaves.
        self.block.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Opens a block; `false` if one was open already.
    pub fn begin(&self) -> bool {
        let mut block = self.lock();
        if block.is_some() {
            return false;
        }
        *block = Some(OpenBlock::default());
        true
    }

    pub fn is_open(&self) -> bool {
        self.lock().is_some()
    }

    /// Makes the open block read one snapshot (or, with `false`, what is
    /// committed as each statement starts). Call before the block reads.
    pub fn read_snapshot(&self, snapshot: bool) {
        if let Some(block) = self.lock().as_mut() {
            block.snapshot = snapshot;
        }
    }

    /// Whether the open block has read through its snapshot already.
    pub fn has_read(&self) -> bool {
        self.lock()
            .as_ref()
            .is_some_and(|block| block.tables.is_some() || block.views.is_some())
    }

    /// The point a snapshot block reads `store`'s tables at, taken at its
    /// first read; `None` when no snapshot block is open (or it reads
    /// another store, a savepoint's).
    pub(crate) fn read_point(&self, store: &Arc<TableStore>) -> Option<ReadPoint> {
        let mut guard = self.lock();
        let block = guard.as_mut().filter(|block| block.snapshot)?;
        let (held, point) = block
            .tables
            .get_or_insert_with(|| (Arc::clone(store), store.read_point()));
        Arc::ptr_eq(held, store).then(|| point.clone())
    }

    /// The pin a snapshot block reads every view with, from its first
    /// read of one; `None` when no snapshot block is open.
    pub fn view_pin(&self) -> Option<Arc<QueryPin>> {
        let mut guard = self.lock();
        let block = guard.as_mut().filter(|block| block.snapshot)?;
        Some(Arc::clone(block.views.get_or_insert_with(Default::default)))
    }

    /// Whether the open block has staged any write.
    pub fn has_writes(&self) -> bool {
        self.lock()
            .as_ref()
            .is_some_and(|block| !block.pending.is_empty())
    }

    /// Closes the block, handing back what it wrote; `None` if none was open.
    pub fn end(&self) -> Option<Committing> {
        self.lock().take().map(|block| Committing {
            store: block.store,
            pending: block.pending,
        })
    }

    /// The block's writes as they are now, for a SQL savepoint.
    pub fn mark(&self) -> Option<PendingWrites> {
        self.lock().as_ref().map(|block| block.pending.clone())
    }

    /// Puts back the writes [`Transaction::mark`] returned.
    pub fn rewind(&self, to: PendingWrites) {
        if let Some(block) = self.lock().as_mut() {
            block.pending = to;
        }
    }

    /// Stages `write` in the open block.
    pub(crate) fn stage(
        &self,
        store: &Arc<TableStore>,
        table: TableId,
        write: TableWrite,
    ) -> weir_storage::Result<WriteOutcome> {
        let mut guard = self.lock();
        let internal = |m: &str| weir_storage::Error::Internal(m.into());
        let block = guard
            .as_mut()
            .ok_or_else(|| internal("no transaction block is open"))?;
        if let Some(held) = &block.store
            && !Arc::ptr_eq(held, store)
        {
            return Err(internal("a transaction writes to one table store"));
        }
        let outcome = store.stage(&mut block.pending, table, write)?;
        block.store.get_or_insert_with(|| Arc::clone(store));
        Ok(outcome)
    }

    /// What the open block wrote to `table`, if anything.
    pub(crate) fn pending(&self, table: TableId) -> Option<Arc<PendingTable>> {
        self.lock().as_ref()?.pending.table(table)
    }
}
