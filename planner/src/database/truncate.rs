//! `TRUNCATE [TABLE] a, b, ...`: every row of each table deleted, all
//! tables in one commit (`pgbench -i` truncates its four tables in one
//! statement). Each table's DELETE goes through the table store as any
//! DELETE does, so views retract the rows and the privilege is DELETE's.
//! Inside a transaction block the deletes join the block; outside one they
//! are staged in a block of their own, committed when the last is staged.
//!
//! A table without a primary key keeps no key to delete its rows by; an
//! empty one (`pgbench -i` truncates the tables it has just created)
//! truncates to what it was, one with rows is refused with 0A000.
//!
//! weir has neither foreign keys nor sequences, so `CASCADE` and
//! `RESTART IDENTITY` change nothing and are accepted.

use datafusion::execution::context::SessionContext;
use datafusion::logical_expr::LogicalPlan;
use datafusion::sql::sqlparser::ast::{Statement, Truncate};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::Parser;
use weir_executor::Transaction;
use weir_storage::TableKey;

use super::{Database, Outcome, Prepared};
use crate::ddl::table_name;
use crate::{Error, Result};

impl Database {
    pub(super) async fn prepare_truncate(
        &self,
        ctx: &SessionContext,
        truncate: &Truncate,
    ) -> Result<Prepared> {
        if truncate.partitions.is_some() || truncate.on_cluster.is_some() {
            return Err(Error::not_supported(
                "TRUNCATE ... PARTITION and ON CLUSTER are not supported",
            ));
        }
        let mut targets = Vec::with_capacity(truncate.table_names.len());
        for target in &truncate.table_names {
            let name = table_name(&target.name)?;
            let keyless = self
                .catalog
                .table(&name)
                .is_some_and(|table| matches!(table.layout.key, TableKey::RowId));
            targets.push(if keyless {
                let probe = format!("SELECT 1 FROM {} LIMIT 1", target.name);
                TruncateTarget::MustBeEmpty {
                    probe: self.plan(ctx, parse(&probe)?).await?,
                    name,
                }
            } else {
                let delete = format!("DELETE FROM {}", target.name);
                TruncateTarget::Delete(self.plan(ctx, parse(&delete)?).await?)
            });
        }
        Ok(Prepared::Truncate(targets))
    }

    pub(super) async fn execute_truncate(
        &self,
        ctx: &SessionContext,
        targets: Vec<TruncateTarget>,
    ) -> Result<Outcome> {
        let mut deletes = Vec::with_capacity(targets.len());
        for target in targets {
            match target {
                TruncateTarget::Delete(delete) => deletes.push(delete),
                TruncateTarget::MustBeEmpty { probe, name } => {
                    let rows = ctx.execute_logical_plan(probe).await?.count().await?;
                    if rows > 0 {
                        return Err(Error::not_supported(format!(
                            "TRUNCATE of table \"{name}\", which has rows and no primary key, \
                             is not supported"
                        )));
                    }
                }
            }
        }
        let transaction = ctx
            .state()
            .config()
            .get_extension::<Transaction>()
            .ok_or_else(|| Error::Internal("the session has no transaction".into()))?;
        let own_block = transaction.begin();
        for delete in deletes {
            let deleted = Box::pin(self.execute(ctx, Prepared::Plan(delete), None)).await;
            if let Err(error) = deleted {
                if own_block {
                    drop(transaction.end());
                }
                return Err(error);
            }
        }
        if own_block && let Some(committing) = transaction.end() {
            committing.commit().await?;
        }
        Ok(Outcome::Command("TRUNCATE TABLE".into()))
    }
}

/// What TRUNCATE does to one table.
#[derive(Debug, Clone)]
pub enum TruncateTarget {
    /// A DELETE of every row.
    Delete(LogicalPlan),
    /// A query for any one row of a table without a key, which must find
    /// none.
    MustBeEmpty { probe: LogicalPlan, name: String },
}

impl TruncateTarget {
    /// The plan run for the table, which privileges check.
    pub fn plan(&self) -> &LogicalPlan {
        match self {
            TruncateTarget::Delete(plan) | TruncateTarget::MustBeEmpty { probe: plan, .. } => plan,
        }
    }
}

/// The one statement of `sql`, which weir wrote.
fn parse(sql: &str) -> Result<Statement> {
    Parser::parse_sql(&PostgreSqlDialect {}, sql)
        .ok()
        .and_then(|mut statements| statements.pop())
        .ok_or_else(|| Error::Internal(format!("{sql} does not parse")))
}
