//! What each statement may do inside a transaction block.
//!
//! Table writes are transactional: they are held until COMMIT. DDL of
//! tables and views commits as it runs, so it may run in a block only
//! before the block writes (and ROLLBACK does not undo it). What acts on
//! the whole database at once (sources, checkpoints, state savepoints,
//! database settings) cannot be part of a transaction and is refused.

use datafusion::logical_expr::{DmlStatement, LogicalPlan, WriteOp};

use super::Prepared;
use crate::SessionStatement;

/// How a statement relates to an open transaction block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InBlock {
    /// Reads, table writes and session statements: part of the block.
    Runs,
    /// Table and view DDL, named by its command tag: commits at once.
    CommitsAtOnce(&'static str),
    /// Cannot run inside a block; named by its command.
    Refused(&'static str),
}

impl Prepared {
    pub fn in_block(&self) -> InBlock {
        match self {
            Prepared::Plan(_)
            | Prepared::ExplainView(_)
            | Prepared::Flush
            | Prepared::CopyIn(_)
            | Prepared::Truncate(_)
            | Prepared::CopyOut { .. }
            | Prepared::ShowDatabase(_)
            | Prepared::ShowCreate { .. }
            | Prepared::Lock { .. } => InBlock::Runs,
            Prepared::Maintenance {
                command: "VACUUM", ..
            } => InBlock::Refused("VACUUM"),
            Prepared::Maintenance { .. } => InBlock::Runs,
            Prepared::Session(SessionStatement::Discard) => InBlock::Refused("DISCARD ALL"),
            Prepared::Session(_) => InBlock::Runs,
            Prepared::CreateTable { .. } => InBlock::CommitsAtOnce("CREATE TABLE"),
            Prepared::DropTable { .. } => InBlock::CommitsAtOnce("DROP TABLE"),
            Prepared::CreateView(_) => InBlock::CommitsAtOnce("CREATE MATERIALIZED VIEW"),
            Prepared::CreatePlainView(_) => InBlock::CommitsAtOnce("CREATE VIEW"),
            Prepared::DropPlainViews { .. } => InBlock::CommitsAtOnce("DROP VIEW"),
            Prepared::DropViews { .. } => InBlock::CommitsAtOnce("DROP MATERIALIZED VIEW"),
            Prepared::CreateSource { .. } => InBlock::Refused("CREATE SOURCE"),
            Prepared::DropSources { .. } => InBlock::Refused("DROP SOURCE"),
            Prepared::AlterSource { .. } => InBlock::Refused("ALTER SOURCE"),
            Prepared::ResumeView(_) => InBlock::Refused("ALTER MATERIALIZED VIEW ... RESUME"),
            Prepared::Checkpoint => InBlock::Refused("CHECKPOINT"),
            Prepared::CreateSavepoint { .. } => InBlock::Refused("CREATE SAVEPOINT"),
            Prepared::RestoreSavepoint(_) => InBlock::Refused("RESTORE SAVEPOINT"),
            Prepared::DropSavepoint { .. } => InBlock::Refused("DROP SAVEPOINT"),
            Prepared::SetDatabase { .. } => InBlock::Refused("SET of a database setting"),
            Prepared::Access { tag, .. } => InBlock::CommitsAtOnce(tag),
        }
    }
}

impl Prepared {
    /// The command, if the statement writes: what a `READ ONLY` block
    /// refuses (and a snapshot block, which only reads).
    pub fn writes(&self) -> Option<&'static str> {
        match self {
            Prepared::Plan(LogicalPlan::Dml(DmlStatement { op, .. })) => Some(match op {
                WriteOp::Insert(_) => "INSERT",
                WriteOp::Update => "UPDATE",
                WriteOp::Delete => "DELETE",
                _ => "a write",
            }),
            Prepared::CopyIn(_) => Some("COPY FROM"),
            Prepared::Truncate(_) => Some("TRUNCATE"),
            _ => match self.in_block() {
                InBlock::CommitsAtOnce(tag) => Some(tag),
                InBlock::Runs | InBlock::Refused(_) => None,
            },
        }
    }
}
