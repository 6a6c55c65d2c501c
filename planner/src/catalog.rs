//! The catalog: every table's and view's definition, durable beside the data.
//!
//! The catalog is one small document (JSON) that the table store writes in
//! the same atomic batch as the DDL it describes, so a crash never leaves a
//! table without its definition or the reverse. Definitions are kept as the
//! SQL that created them and re-planned at start, so a restarted server
//! derives exactly the same schemas. [`PublicSchema`] shows the tables to
//! DataFusion (and so to SELECT and `pg_catalog`).

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{SchemaProvider, TableProvider};
use datafusion::error::{DataFusionError, Result as DataFusionResult};
use datafusion::sql::sqlparser::ast::Statement;
use serde::{Deserialize, Serialize};
use weir_executor::StoredTable;
use weir_executor::batch::ViewTable;
use weir_executor::message::ViewId;
use weir_executor::operator::OperatorInfo;
use weir_storage::{TableId, TableLayout, TableStore};

use crate::ddl::{TableSpec, table_spec};
use crate::parser::StatementParser;
use crate::{Error, Result};

const FORMAT_VERSION: u32 = 1;

#[derive(Debug, Serialize, Deserialize)]
struct Document {
    version: u32,
    next_id: u64,
    tables: Vec<TableRecord>,
    #[serde(default)]
    views: Vec<ViewRecord>,
    /// Database settings changed from their defaults, as text.
    #[serde(default)]
    settings: BTreeMap<String, String>,
}

/// A materialized view as stored: re-planned from its SQL at start.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ViewRecord {
    pub id: u64,
    pub name: String,
    /// The `CREATE MATERIALIZED VIEW` statement.
    pub sql: String,
    /// The tables and views it reads.
    pub depends_on: Vec<String>,
}

/// A running materialized view.
#[derive(Debug)]
pub struct ViewEntry {
    pub id: ViewId,
    /// The columns a query sees.
    pub schema: SchemaRef,
    /// What the view's materialize stores: the columns, then hidden keys.
    pub stored: OperatorInfo,
    pub provider: Arc<ViewTable>,
    pub record: ViewRecord,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct TableRecord {
    id: u64,
    name: String,
    /// The `CREATE TABLE` statement, without weir's extension clauses.
    sql: String,
    append_only: bool,
}

/// A table as the catalog knows it.
#[derive(Debug)]
pub struct TableEntry {
    pub layout: TableLayout,
    pub provider: Arc<StoredTable>,
    record: TableRecord,
}

#[derive(Debug, Default)]
struct State {
    next_id: u64,
    tables: BTreeMap<String, Arc<TableEntry>>,
    views: BTreeMap<String, Arc<ViewEntry>>,
    /// Views stored but not yet started (at load).
    stored_views: Vec<ViewRecord>,
    settings: BTreeMap<String, String>,
}

impl State {
    fn name_taken(&self, name: &str) -> Result<()> {
        if self.tables.contains_key(name) || self.views.contains_key(name) {
            return Err(Error::user(
                "42P07",
                format!("relation \"{name}\" already exists"),
            ));
        }
        Ok(())
    }
}

/// The durable catalog of one database.
#[derive(Debug)]
pub struct Catalog {
    store: Arc<TableStore>,
    state: RwLock<State>,
    /// Serialises DDL, so catalog documents are written in order.
    ddl: tokio::sync::Mutex<()>,
}

fn lock_error() -> Error {
    Error::Internal("catalog lock poisoned".into())
}

impl Catalog {
    /// Loads the catalog stored in `store` and attaches its tables.
    pub fn load(store: Arc<TableStore>, parser: &StatementParser) -> Result<Self> {
        let mut state = State::default();
        if let Some(bytes) = store.catalog()? {
            let document: Document = serde_json::from_slice(&bytes)
                .map_err(|e| Error::Internal(format!("stored catalog cannot be read: {e}")))?;
            if document.version != FORMAT_VERSION {
                return Err(Error::Internal(format!(
                    "stored catalog has format version {}, this weir reads {FORMAT_VERSION}",
                    document.version
                )));
            }
            state.next_id = document.next_id;
            state.settings = document.settings;
            let mut views = document.views;
            views.sort_by_key(|v| v.id);
            state.stored_views = views;
            for record in document.tables {
                let parsed = parser.parse(&record.sql)?;
                let spec = match parsed.first().map(|p| &p.statement) {
                    Some(Statement::CreateTable(create)) => table_spec(create, record.append_only)?,
                    _ => {
                        return Err(Error::Internal(format!(
                            "stored definition of {} is not CREATE TABLE",
                            record.name
                        )));
                    }
                };
                let entry = entry(&store, spec, record)?;
                store.attach_table(entry.layout.clone())?;
                state
                    .tables
                    .insert(entry.layout.name.clone(), Arc::new(entry));
            }
        }
        Ok(Self {
            store,
            state: RwLock::new(state),
            ddl: tokio::sync::Mutex::new(()),
        })
    }

    pub fn table(&self, name: &str) -> Option<Arc<TableEntry>> {
        self.state.read().ok()?.tables.get(name).cloned()
    }

    pub fn table_names(&self) -> Vec<String> {
        self.state
            .read()
            .map(|s| s.tables.keys().chain(s.views.keys()).cloned().collect())
            .unwrap_or_default()
    }

    pub fn store(&self) -> &Arc<TableStore> {
        &self.store
    }

    pub fn view(&self, name: &str) -> Option<Arc<ViewEntry>> {
        self.state.read().ok()?.views.get(name).cloned()
    }

    pub fn views(&self) -> Vec<Arc<ViewEntry>> {
        self.state
            .read()
            .map(|s| s.views.values().cloned().collect())
            .unwrap_or_default()
    }

    /// The views stored at load, oldest first (each after what it reads);
    /// taken once, to start them.
    pub fn take_stored_views(&self) -> Vec<ViewRecord> {
        self.state
            .write()
            .map(|mut s| std::mem::take(&mut s.stored_views))
            .unwrap_or_default()
    }

    /// The views that read `name`.
    pub fn dependents(&self, name: &str) -> Vec<String> {
        self.state
            .read()
            .map(|s| {
                s.views
                    .values()
                    .filter(|v| v.record.depends_on.iter().any(|d| d == name))
                    .map(|v| v.record.name.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Forgets the running views without changing what is stored, and
    /// returns their records in creation order, to start them again.
    pub fn detach_views(&self) -> Result<Vec<ViewRecord>> {
        let mut state = self.state.write().map_err(|_| lock_error())?;
        let mut records: Vec<ViewRecord> = std::mem::take(&mut state.views)
            .into_values()
            .map(|v| v.record.clone())
            .collect();
        records.sort_by_key(|r| r.id);
        Ok(records)
    }

    /// Database settings changed from their defaults, as stored.
    pub fn settings(&self) -> BTreeMap<String, String> {
        self.state
            .read()
            .map(|state| state.settings.clone())
            .unwrap_or_default()
    }

    /// Stores a database setting (`None`: back to its default) durably.
    /// Call with the DDL lock held.
    pub async fn store_setting(&self, name: &str, value: Option<String>) -> Result<()> {
        let (settings, document) = {
            let state = self.state.read().map_err(|_| lock_error())?;
            let mut settings = state.settings.clone();
            match value {
                Some(value) => settings.insert(name.to_string(), value),
                None => settings.remove(name),
            };
            let tables = state.tables.values().map(|t| t.record.clone()).collect();
            let views = state.views.values().map(|v| v.record.clone()).collect();
            let document = encode(&settings, state.next_id, tables, views)?;
            (settings, document)
        };
        self.store.store_catalog(document).await?;
        self.state.write().map_err(|_| lock_error())?.settings = settings;
        Ok(())
    }

    /// Serialises DDL: hold it from checking a name to storing the change.
    pub async fn lock_ddl(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.ddl.lock().await
    }

    /// The id the next object gets; fails if `name` is taken.
    pub fn reserve(&self, name: &str) -> Result<u64> {
        let state = self.state.read().map_err(|_| lock_error())?;
        state.name_taken(name)?;
        Ok(state.next_id)
    }

    /// Adds a started view; with `store`, durably (a new view), otherwise
    /// it was loaded. Call with the DDL lock held.
    pub async fn add_view(&self, entry: ViewEntry, store: bool) -> Result<()> {
        let id = entry.record.id;
        if store {
            let document = {
                let state = self.state.read().map_err(|_| lock_error())?;
                state.name_taken(&entry.record.name)?;
                let mut views: Vec<ViewRecord> =
                    state.views.values().map(|v| v.record.clone()).collect();
                views.push(entry.record.clone());
                let tables = state.tables.values().map(|t| t.record.clone()).collect();
                encode(&state.settings, state.next_id.max(id + 1), tables, views)?
            };
            self.store.store_catalog(document).await?;
        }
        let mut state = self.state.write().map_err(|_| lock_error())?;
        state.next_id = state.next_id.max(id + 1);
        state
            .views
            .insert(entry.record.name.clone(), Arc::new(entry));
        Ok(())
    }

    /// Forgets views, durably. Call with the DDL lock held.
    pub async fn remove_views(&self, names: &[String]) -> Result<()> {
        let document = {
            let state = self.state.read().map_err(|_| lock_error())?;
            let views = state
                .views
                .values()
                .filter(|v| !names.contains(&v.record.name))
                .map(|v| v.record.clone())
                .collect();
            let tables = state.tables.values().map(|t| t.record.clone()).collect();
            encode(&state.settings, state.next_id, tables, views)?
        };
        self.store.store_catalog(document).await?;
        let mut state = self.state.write().map_err(|_| lock_error())?;
        for name in names {
            state.views.remove(name);
        }
        Ok(())
    }

    /// Creates a table durably. Returns `false` (and does nothing) when it
    /// exists and `if_not_exists` is set.
    pub async fn create_table(
        &self,
        spec: TableSpec,
        sql: String,
        append_only: bool,
        if_not_exists: bool,
    ) -> Result<bool> {
        let _ddl = self.ddl.lock().await;
        let (entry, document) = {
            let state = self.state.read().map_err(|_| lock_error())?;
            if let Err(taken) = state.name_taken(&spec.name) {
                if if_not_exists {
                    return Ok(false);
                }
                return Err(taken);
            }
            let record = TableRecord {
                id: state.next_id,
                name: spec.name.clone(),
                sql,
                append_only,
            };
            let entry = entry(&self.store, spec, record.clone())?;
            let mut records: Vec<TableRecord> =
                state.tables.values().map(|t| t.record.clone()).collect();
            records.push(record);
            let views = state.views.values().map(|v| v.record.clone()).collect();
            (
                entry,
                encode(&state.settings, state.next_id + 1, records, views)?,
            )
        };
        self.store
            .create_table(entry.layout.clone(), document)
            .await?;
        let mut state = self.state.write().map_err(|_| lock_error())?;
        state.next_id += 1;
        state
            .tables
            .insert(entry.layout.name.clone(), Arc::new(entry));
        Ok(true)
    }

    /// Drops a table and its data durably. Returns `false` when it does not
    /// exist and `if_exists` is set.
    pub async fn drop_table(&self, name: &str, if_exists: bool) -> Result<bool> {
        let _ddl = self.ddl.lock().await;
        let (id, document) = {
            let state = self.state.read().map_err(|_| lock_error())?;
            let Some(entry) = state.tables.get(name) else {
                if state.views.contains_key(name) {
                    return Err(Error::user(
                        "42809",
                        format!("\"{name}\" is not a table; use DROP MATERIALIZED VIEW"),
                    ));
                }
                if if_exists {
                    return Ok(false);
                }
                return Err(Error::user(
                    "42P01",
                    format!("table \"{name}\" does not exist"),
                ));
            };
            let dependents: Vec<&str> = state
                .views
                .values()
                .filter(|v| v.record.depends_on.iter().any(|d| d == name))
                .map(|v| v.record.name.as_str())
                .collect();
            if !dependents.is_empty() {
                return Err(Error::user(
                    "2BP01",
                    format!(
                        "cannot drop table \"{name}\" because materialized views depend on it: {}",
                        dependents.join(", ")
                    ),
                ));
            }
            let records = state
                .tables
                .values()
                .filter(|t| t.layout.name != name)
                .map(|t| t.record.clone())
                .collect();
            let views = state.views.values().map(|v| v.record.clone()).collect();
            (
                entry.layout.id,
                encode(&state.settings, state.next_id, records, views)?,
            )
        };
        self.store.drop_table(id, document).await?;
        self.state
            .write()
            .map_err(|_| lock_error())?
            .tables
            .remove(name);
        Ok(true)
    }
}

fn entry(store: &Arc<TableStore>, spec: TableSpec, record: TableRecord) -> Result<TableEntry> {
    let layout = TableLayout {
        id: TableId(record.id),
        name: spec.name,
        schema: spec.schema,
        key: spec.key,
    };
    let provider = Arc::new(StoredTable::new(Arc::clone(store), layout.clone())?);
    Ok(TableEntry {
        layout,
        provider,
        record,
    })
}

fn encode(
    settings: &BTreeMap<String, String>,
    next_id: u64,
    tables: Vec<TableRecord>,
    views: Vec<ViewRecord>,
) -> Result<Vec<u8>> {
    let document = Document {
        version: FORMAT_VERSION,
        next_id,
        tables,
        views,
        settings: settings.clone(),
    };
    serde_json::to_vec(&document).map_err(|e| Error::Internal(e.to_string()))
}

/// The `public` schema as DataFusion sees it.
#[derive(Debug)]
pub struct PublicSchema {
    pub catalog: Arc<Catalog>,
}

#[async_trait]
impl SchemaProvider for PublicSchema {
    fn table_names(&self) -> Vec<String> {
        self.catalog.table_names()
    }

    async fn table(
        &self,
        name: &str,
    ) -> DataFusionResult<Option<Arc<dyn TableProvider>>, DataFusionError> {
        if let Some(view) = self.catalog.view(name) {
            return Ok(Some(Arc::clone(&view.provider) as Arc<dyn TableProvider>));
        }
        Ok(self
            .catalog
            .table(name)
            .map(|t| Arc::clone(&t.provider) as Arc<dyn TableProvider>))
    }

    fn table_exist(&self, name: &str) -> bool {
        self.catalog.table(name).is_some() || self.catalog.view(name).is_some()
    }
}
