//! A session's transaction block: BEGIN, COMMIT, ROLLBACK and SQL
//! savepoints, over the executor's [`Transaction`] that holds the block's
//! table writes, and what may run inside a block.
//!
//! As in PostgreSQL, an error inside a block fails it: every later
//! statement is refused (25P02) until ROLLBACK, or ROLLBACK TO a savepoint
//! made before the error; COMMIT of a failed block rolls it back.

use std::sync::{Arc, Mutex, MutexGuard};

use weir_executor::Transaction;
use weir_planner::{
    Error, InBlock, IsolationLevel, Prepared, SessionStatement, TransactionModes, TransactionStatus,
};
use weir_storage::PendingWrites;

/// A notice for the client: SQLSTATE and message, sent as a WARNING.
pub(crate) type Notice = (&'static str, String);

pub(crate) struct TransactionBlock {
    transaction: Arc<Transaction>,
    state: Mutex<BlockState>,
}

#[derive(Default)]
struct BlockState {
    failed: bool,
    /// SQL savepoints, oldest first: the block's writes when each was made.
    savepoints: Vec<(String, PendingWrites)>,
    /// DDL run inside the block: it committed at once.
    committed_ddl: Vec<&'static str>,
    notice: Option<Notice>,
    /// The open block's characteristics.
    isolation: Option<IsolationLevel>,
    read_only: bool,
}

/// What a transaction statement answers, by pgwire's kinds of tag.
pub(crate) enum BlockReply {
    Begin,
    End(&'static str),
    Done(&'static str),
}

impl TransactionBlock {
    pub fn new(transaction: Arc<Transaction>) -> Self {
        Self {
            transaction,
            state: Mutex::default(),
        }
    }

    fn state(&self) -> MutexGuard<'_, BlockState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Refuses what may not run now: anything but the end of a failed
    /// block, and inside a block what cannot be part of one.
    pub fn check(&self, prepared: &Prepared) -> Result<(), Error> {
        if !self.transaction.is_open() {
            return match prepared {
                Prepared::Lock { .. } => Err(outside_block("LOCK TABLE")),
                _ => Ok(()),
            };
        }
        let ends_block = matches!(
            prepared,
            Prepared::Session(
                SessionStatement::Commit
                    | SessionStatement::Rollback
                    | SessionStatement::RollbackTo { .. }
            )
        );
        if self.state().failed && !ends_block {
            return Err(Error::user(
                "25P02",
                "current transaction is aborted, commands ignored until end of transaction block",
            ));
        }
        if let Some(what) = prepared.writes() {
            let state = self.state();
            if state.read_only {
                return Err(Error::user(
                    "25006",
                    format!("cannot execute {what} in a read-only transaction"),
                ));
            }
            if let Some(level) = state.isolation.filter(|l| l.reads_snapshot()) {
                return Err(Error::user(
                    "0A000",
                    format!(
                        "cannot execute {what} in a {} transaction: weir's snapshot \
                         transactions only read; write in a READ COMMITTED block",
                        level.name().to_uppercase()
                    ),
                ));
            }
        }
        match prepared.in_block() {
            InBlock::Runs => Ok(()),
            InBlock::Refused(what) => Err(Error::user(
                "25001",
                format!("{what} cannot run inside a transaction block"),
            )),
            InBlock::CommitsAtOnce(what) if self.transaction.has_writes() => Err(Error::user(
                "25001",
                format!(
                    "{what} cannot run in a transaction block that has written rows: \
                     it commits at once; COMMIT or ROLLBACK first"
                ),
            )),
            InBlock::CommitsAtOnce(_) => Ok(()),
        }
    }

    /// Notes that `prepared` ran inside the open block.
    pub fn ran(&self, prepared: &Prepared) {
        if let InBlock::CommitsAtOnce(what) = prepared.in_block()
            && self.transaction.is_open()
        {
            self.state().committed_ddl.push(what);
        }
    }

    /// Whether a block is open.
    pub fn is_open(&self) -> bool {
        self.transaction.is_open()
    }

    /// Where the block stands, for `pg_stat_activity`.
    pub fn status(&self) -> TransactionStatus {
        match (self.transaction.is_open(), self.state().failed) {
            (false, _) => TransactionStatus::Idle,
            (true, false) => TransactionStatus::InBlock,
            (true, true) => TransactionStatus::Failed,
        }
    }

    /// A statement inside the open block failed: the block fails with it.
    pub fn failed(&self) {
        if self.transaction.is_open() {
            self.state().failed = true;
        }
    }

    /// The warning the last statement left, if any.
    pub fn take_notice(&self) -> Option<Notice> {
        self.state().notice.take()
    }

    /// The open block's isolation level and whether it is read-only;
    /// `None` outside a block.
    pub fn characteristics(&self) -> Option<(IsolationLevel, bool)> {
        if !self.transaction.is_open() {
            return None;
        }
        let state = self.state();
        Some((
            state.isolation.unwrap_or(IsolationLevel::ReadCommitted),
            state.read_only,
        ))
    }

    /// Carries out a transaction statement; `None` for other statements.
    /// A block begun takes what `modes` leave out from `defaults`.
    pub async fn run(
        &self,
        statement: &SessionStatement,
        defaults: TransactionModes,
    ) -> Option<Result<BlockReply, Error>> {
        Some(match statement {
            SessionStatement::Begin(modes) => Ok(self.begin(*modes, defaults)),
            SessionStatement::SetTransaction(modes) => self.set_transaction(*modes),
            SessionStatement::Commit => self.commit().await,
            SessionStatement::Rollback => Ok(self.rollback()),
            SessionStatement::Savepoint { name } => self.savepoint(name),
            SessionStatement::RollbackTo { name } => self.rollback_to(name),
            SessionStatement::Release { name } => self.release(name),
            _ => return None,
        })
    }

    fn begin(&self, modes: TransactionModes, defaults: TransactionModes) -> BlockReply {
        if !self.transaction.begin() {
            self.state().notice =
                Some(("25001", "there is already a transaction in progress".into()));
            return BlockReply::Begin;
        }
        self.apply(TransactionModes {
            isolation: modes.isolation.or(defaults.isolation),
            read_only: modes.read_only.or(defaults.read_only),
        });
        BlockReply::Begin
    }

    /// `SET TRANSACTION`: outside a block a warning, as in PostgreSQL; the
    /// isolation level only before the block's first read.
    fn set_transaction(&self, modes: TransactionModes) -> Result<BlockReply, Error> {
        if !self.transaction.is_open() {
            self.state().notice = Some((
                "25P01",
                "SET TRANSACTION can only be used in transaction blocks".into(),
            ));
            return Ok(BlockReply::Done("SET"));
        }
        if modes.isolation.is_some() && self.transaction.has_read() {
            return Err(Error::user(
                "25001",
                "SET TRANSACTION ISOLATION LEVEL must be called before any query",
            ));
        }
        self.apply(modes);
        Ok(BlockReply::Done("SET"))
    }

    fn apply(&self, modes: TransactionModes) {
        let mut state = self.state();
        if let Some(level) = modes.isolation {
            state.isolation = Some(level);
            self.transaction.read_snapshot(level.reads_snapshot());
        }
        if let Some(read_only) = modes.read_only {
            state.read_only = read_only;
        }
    }

    async fn commit(&self) -> Result<BlockReply, Error> {
        let Some(committing) = self.transaction.end() else {
            self.state().notice = Some(("25P01", "there is no transaction in progress".into()));
            return Ok(BlockReply::End("COMMIT"));
        };
        let failed = std::mem::take(&mut *self.state()).failed;
        if failed {
            return Ok(BlockReply::End("ROLLBACK"));
        }
        committing.commit().await?;
        Ok(BlockReply::End("COMMIT"))
    }

    fn rollback(&self) -> BlockReply {
        let open = self.transaction.end().is_some();
        let mut state = self.state();
        let ddl = std::mem::take(&mut *state).committed_ddl;
        state.notice = if !open {
            Some(("25P01", "there is no transaction in progress".into()))
        } else if !ddl.is_empty() {
            Some((
                "01000",
                format!(
                    "ROLLBACK kept {}: DDL commits as it runs, also inside a transaction block",
                    ddl.join(", ")
                ),
            ))
        } else {
            None
        };
        BlockReply::End("ROLLBACK")
    }

    fn savepoint(&self, name: &str) -> Result<BlockReply, Error> {
        let mark = self
            .transaction
            .mark()
            .ok_or_else(|| outside_block("SAVEPOINT"))?;
        self.state().savepoints.push((name.to_string(), mark));
        Ok(BlockReply::Done("SAVEPOINT"))
    }

    /// Undoes the writes since savepoint `name`, which stays; a failed
    /// block works again.
    fn rollback_to(&self, name: &str) -> Result<BlockReply, Error> {
        if !self.transaction.is_open() {
            return Err(outside_block("ROLLBACK TO SAVEPOINT"));
        }
        let mut state = self.state();
        let Some(at) = state.savepoints.iter().rposition(|(n, _)| n == name) else {
            state.failed = true;
            return Err(no_savepoint(name));
        };
        state.savepoints.truncate(at + 1);
        self.transaction.rewind(state.savepoints[at].1.clone());
        state.failed = false;
        Ok(BlockReply::Done("ROLLBACK"))
    }

    /// Forgets savepoint `name` and those made after it; their writes stay.
    fn release(&self, name: &str) -> Result<BlockReply, Error> {
        if !self.transaction.is_open() {
            return Err(outside_block("RELEASE SAVEPOINT"));
        }
        let mut state = self.state();
        let Some(at) = state.savepoints.iter().rposition(|(n, _)| n == name) else {
            state.failed = true;
            return Err(no_savepoint(name));
        };
        state.savepoints.truncate(at);
        Ok(BlockReply::Done("RELEASE"))
    }
}

fn outside_block(what: &str) -> Error {
    Error::user(
        "25P01",
        format!("{what} can only be used in transaction blocks"),
    )
}

fn no_savepoint(name: &str) -> Error {
    Error::user("3B001", format!("savepoint \"{name}\" does not exist"))
}
