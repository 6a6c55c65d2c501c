//! Plain views (`CREATE VIEW`): a named query, planned again each time
//! the server starts and expanded into every query that reads it. Nothing
//! is stored but the statement, so a plain view always shows what its
//! inputs hold now. Like a materialized view, it keeps what it reads from
//! being dropped (2BP01).

use std::sync::Arc;

use datafusion::catalog::TableProvider;
use serde::{Deserialize, Serialize};

use super::{Catalog, encode, lock_error};
use crate::{Error, Result};

/// A plain view as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PlainViewRecord {
    pub id: u64,
    pub name: String,
    /// The `CREATE VIEW` statement.
    pub sql: String,
    /// The relations its query names.
    pub depends_on: Vec<String>,
}

/// A plain view as the catalog holds it: planned once the relations it
/// reads exist (at start, after the materialized views).
#[derive(Debug, Clone)]
pub(super) struct PlainView {
    pub record: PlainViewRecord,
    pub provider: Option<Arc<dyn TableProvider>>,
}

impl Catalog {
    /// The provider of the plain view `name`, once planned.
    pub fn plain_view(&self, name: &str) -> Option<Arc<dyn TableProvider>> {
        self.state
            .read()
            .ok()?
            .plain_views
            .get(name)
            .and_then(|v| v.provider.clone())
    }

    /// Every plain view, oldest first (each after the views it reads).
    pub fn plain_view_records(&self) -> Vec<PlainViewRecord> {
        let mut records: Vec<PlainViewRecord> = self
            .state
            .read()
            .map(|s| s.plain_views.values().map(|v| v.record.clone()).collect())
            .unwrap_or_default();
        records.sort_by_key(|r| r.id);
        records
    }

    /// Gives a stored plain view its plan, at start.
    pub fn attach_plain_view(&self, name: &str, provider: Arc<dyn TableProvider>) {
        if let Ok(mut state) = self.state.write()
            && let Some(view) = state.plain_views.get_mut(name)
        {
            view.provider = Some(provider);
        }
    }

    /// Creates a plain view durably, which `owner` owns; with `replace`, an
    /// existing one of that name is replaced (its grants stay).
    pub async fn create_plain_view(
        &self,
        name: &str,
        sql: String,
        depends_on: Vec<String>,
        provider: Arc<dyn TableProvider>,
        owner: &str,
        replace: bool,
    ) -> Result<()> {
        let _ddl = self.ddl.lock().await;
        let (view, document) = {
            let state = self.state.read().map_err(|_| lock_error())?;
            let existing = state.plain_views.get(name).map(|v| v.record.id);
            if existing.is_none() || !replace {
                state.name_taken(name)?;
            }
            let record = PlainViewRecord {
                id: existing.unwrap_or(state.next_id),
                name: name.to_string(),
                sql,
                depends_on,
            };
            let mut document = state.document();
            document.plain_views.retain(|v| v.name != name);
            document.plain_views.push(record.clone());
            if existing.is_none() {
                document.next_id += 1;
                document.access.created(name, owner);
            }
            let view = PlainView {
                record,
                provider: Some(provider),
            };
            (view, encode(&document)?)
        };
        self.store.store_catalog(document).await?;
        let mut state = self.state.write().map_err(|_| lock_error())?;
        if !state.plain_views.contains_key(name) {
            state.next_id += 1;
            state.access_mut().created(name, owner);
        }
        state.plain_views.insert(name.to_string(), view);
        Ok(())
    }

    /// Drops a plain view durably; `false` when there is none and
    /// `if_exists` is set.
    pub async fn drop_plain_view(&self, name: &str, if_exists: bool) -> Result<bool> {
        let _ddl = self.ddl.lock().await;
        let document = {
            let state = self.state.read().map_err(|_| lock_error())?;
            if !state.plain_views.contains_key(name) {
                if state.views.contains_key(name) {
                    return Err(Error::user(
                        "42809",
                        format!("\"{name}\" is a materialized view; use DROP MATERIALIZED VIEW"),
                    ));
                }
                if if_exists {
                    return Ok(false);
                }
                return Err(Error::user(
                    "42P01",
                    format!("view \"{name}\" does not exist"),
                ));
            }
            state.no_view_reads(&[name.to_string()], &format!("view \"{name}\""))?;
            let mut document = state.document();
            document.plain_views.retain(|v| v.name != name);
            document.access.dropped(name);
            encode(&document)?
        };
        self.store.store_catalog(document).await?;
        let mut state = self.state.write().map_err(|_| lock_error())?;
        state.plain_views.remove(name);
        state.access_mut().dropped(name);
        Ok(true)
    }
}
