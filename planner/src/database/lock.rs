//! `LOCK TABLE`, which `pg_dump` sends for each table it dumps, inside its
//! `REPEATABLE READ` block. weir takes no table locks: writes never wait
//! for reads, and a snapshot block reads its tables as of its first read
//! whatever commits meanwhile. So the one mode that only keeps DDL away,
//! `ACCESS SHARE`, is accepted once the tables are found (it does not keep
//! another session's DROP away; `docs/sql.md` says so), and every other
//! mode, which would keep writers out, is refused with `0A000`.

use datafusion::sql::sqlparser::ast::{Lock, LockTableMode};

use super::{Database, Prepared};
use crate::ddl::table_name;
use crate::{Error, Result};

impl Database {
    pub(super) fn prepare_lock(&self, lock: &Lock) -> Result<Prepared> {
        let mode = lock
            .lock_mode
            .clone()
            .unwrap_or(LockTableMode::AccessExclusive);
        if mode != LockTableMode::AccessShare {
            return Err(Error::not_supported(format!(
                "LOCK TABLE ... IN {mode} MODE is not supported: weir takes no table locks; \
                 only ACCESS SHARE is accepted"
            )));
        }
        let mut tables = Vec::with_capacity(lock.tables.len());
        for target in &lock.tables {
            let name = table_name(&target.name)?;
            if !self.catalog.table_names().contains(&name) {
                return Err(Error::user(
                    "42P01",
                    format!("relation \"{name}\" does not exist"),
                ));
            }
            tables.push(name);
        }
        Ok(Prepared::Lock { tables })
    }
}
