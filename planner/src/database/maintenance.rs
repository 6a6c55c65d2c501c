//! `VACUUM` and `ANALYZE`, which `pgbench -i` and maintenance scripts
//! send. weir's tables live in RocksDB, which reclaims the space of
//! deleted and overwritten rows by compacting in the background, and its
//! planner keeps no statistics to refresh; so both check that their tables
//! exist (`42P01` otherwise) and return, as `docs/sql.md` says. `VACUUM`,
//! as in PostgreSQL, cannot run inside a transaction block.

use super::{Database, Prepared};
use crate::{Error, Result};

impl Database {
    pub(super) fn prepare_maintenance(
        &self,
        command: &'static str,
        tables: Vec<String>,
    ) -> Result<Prepared> {
        let known = self.catalog.table_names();
        if let Some(missing) = tables.iter().find(|t| !known.contains(*t)) {
            return Err(Error::user(
                "42P01",
                format!("relation \"{missing}\" does not exist"),
            ));
        }
        Ok(Prepared::Maintenance { command, tables })
    }
}
