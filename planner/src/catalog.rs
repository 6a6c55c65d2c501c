//! The catalog: every table's definition, durable beside the data.
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
use datafusion::catalog::{SchemaProvider, TableProvider};
use datafusion::error::{DataFusionError, Result as DataFusionResult};
use datafusion::sql::sqlparser::ast::Statement;
use serde::{Deserialize, Serialize};
use weir_executor::StoredTable;
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
            .map(|s| s.tables.keys().cloned().collect())
            .unwrap_or_default()
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
            if state.tables.contains_key(&spec.name) {
                if if_not_exists {
                    return Ok(false);
                }
                return Err(Error::user(
                    "42P07",
                    format!("relation \"{}\" already exists", spec.name),
                ));
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
            (entry, encode(state.next_id + 1, records)?)
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
                if if_exists {
                    return Ok(false);
                }
                return Err(Error::user(
                    "42P01",
                    format!("table \"{name}\" does not exist"),
                ));
            };
            let records = state
                .tables
                .values()
                .filter(|t| t.layout.name != name)
                .map(|t| t.record.clone())
                .collect();
            (entry.layout.id, encode(state.next_id, records)?)
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

fn encode(next_id: u64, tables: Vec<TableRecord>) -> Result<Vec<u8>> {
    let document = Document {
        version: FORMAT_VERSION,
        next_id,
        tables,
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
        Ok(self
            .catalog
            .table(name)
            .map(|t| Arc::clone(&t.provider) as Arc<dyn TableProvider>))
    }

    fn table_exist(&self, name: &str) -> bool {
        self.catalog.table(name).is_some()
    }
}
