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
use tokio::sync::watch;
use weir_executor::StoredTable;
use weir_executor::batch::{GeneratedTable, ViewTable};
use weir_executor::checkpoint::SourceProgress;
use weir_executor::generated::GeneratedRows;
use weir_executor::message::ViewId;
use weir_executor::operator::OperatorInfo;
use weir_executor::watermark::WatermarkProgress;
use weir_storage::{TableId, TableLayout, TableStore};

use crate::as_of_savepoint::{saved_relation, split_as_of};
use crate::ddl::{TableSpec, table_spec};
use crate::parser::StatementParser;
use crate::savepoint_registry::SavepointRegistry;
use crate::sources::{SourceSpec, source_spec};
use crate::watermarks::WatermarkDecl;
use crate::{Error, Result};

mod access;
mod plain_views;

pub use access::{Access, AccessChange, PrivilegeChange};
use plain_views::PlainView;
pub use plain_views::PlainViewRecord;

const FORMAT_VERSION: u32 = 1;

#[derive(Debug, Serialize, Deserialize)]
struct Document {
    version: u32,
    next_id: u64,
    tables: Vec<TableRecord>,
    #[serde(default)]
    views: Vec<ViewRecord>,
    #[serde(default)]
    sources: Vec<SourceRecord>,
    /// Database settings changed from their defaults, as text.
    #[serde(default)]
    settings: BTreeMap<String, String>,
    /// Roles, owners and grants; a catalog stored before roles existed
    /// reads as the bootstrap superuser owning everything.
    #[serde(default)]
    access: Access,
    #[serde(default)]
    plain_views: Vec<PlainViewRecord>,
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
    /// How far each of its table and source readers is: the offset at the
    /// last barrier.
    pub sources: Vec<(String, SourceProgress)>,
    /// The watermark and late rows of each operator that keeps one, by
    /// operator identity.
    pub watermarks: Vec<(String, WatermarkProgress)>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct TableRecord {
    id: u64,
    name: String,
    /// The `CREATE TABLE` statement, without weir's extension clauses.
    sql: String,
    append_only: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    watermark: Option<WatermarkDecl>,
}

/// A source as stored: re-read from its SQL at start.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct SourceRecord {
    id: u64,
    name: String,
    /// The `CREATE SOURCE` statement, in its `CREATE TABLE` form.
    sql: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    watermark: Option<WatermarkDecl>,
    /// `ALTER SOURCE ... PAUSE`: no rows until resumed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    paused: bool,
}

/// A source and the relations it provides.
#[derive(Debug)]
struct SourceEntry {
    record: SourceRecord,
    relations: Vec<String>,
    /// Tells every running reader whether the source is paused.
    paused: watch::Sender<bool>,
}

/// One source as `weir_catalog.sources` lists it.
#[derive(Debug, Clone)]
pub struct SourceStatus {
    pub name: String,
    pub relations: Vec<String>,
    pub paused: bool,
}

/// One stream of a source, as views and queries read it.
#[derive(Debug)]
pub struct SourceRelation {
    /// The source's id: what checkpoints record its offsets under.
    pub source: u64,
    pub rows: Arc<dyn GeneratedRows>,
    pub provider: Arc<GeneratedTable>,
    pub watermark: Option<WatermarkDecl>,
    /// Whether the source is paused, as it changes.
    pub paused: watch::Receiver<bool>,
}

/// A table as the catalog knows it.
#[derive(Debug)]
pub struct TableEntry {
    pub layout: TableLayout,
    pub provider: Arc<StoredTable>,
    record: TableRecord,
}

impl TableEntry {
    /// Its `WATERMARK FOR`, if it declared one.
    pub fn watermark(&self) -> Option<&WatermarkDecl> {
        self.record.watermark.as_ref()
    }
}

#[derive(Debug, Default)]
struct State {
    next_id: u64,
    tables: BTreeMap<String, Arc<TableEntry>>,
    views: BTreeMap<String, Arc<ViewEntry>>,
    /// Views stored but not yet started (at load).
    stored_views: Vec<ViewRecord>,
    sources: BTreeMap<String, SourceEntry>,
    /// The streams of every source, by relation name.
    relations: BTreeMap<String, Arc<SourceRelation>>,
    settings: BTreeMap<String, String>,
    /// Shared with the statements being authorized, which take it for
    /// the price of a reference count.
    access: Arc<Access>,
    plain_views: BTreeMap<String, PlainView>,
}

impl State {
    fn access_mut(&mut self) -> &mut Access {
        Arc::make_mut(&mut self.access)
    }

    fn name_taken(&self, name: &str) -> Result<()> {
        if self.tables.contains_key(name)
            || self.views.contains_key(name)
            || self.relations.contains_key(name)
            || self.sources.contains_key(name)
            || self.plain_views.contains_key(name)
        {
            return Err(Error::user(
                "42P07",
                format!("relation \"{name}\" already exists"),
            ));
        }
        Ok(())
    }

    /// The source named `name`: 42809 for a table or view, 42P01 for
    /// nothing at all.
    fn source(&self, name: &str) -> Result<&SourceEntry> {
        if let Some(source) = self.sources.get(name) {
            return Ok(source);
        }
        if self.tables.contains_key(name) || self.views.contains_key(name) {
            return Err(Error::user("42809", format!("\"{name}\" is not a source")));
        }
        Err(Error::user(
            "42P01",
            format!("source \"{name}\" does not exist"),
        ))
    }

    /// Refuses (2BP01) to drop `what` while a view reads one of `names`.
    fn no_view_reads(&self, names: &[String], what: &str) -> Result<()> {
        let reads = |depends_on: &[String]| depends_on.iter().any(|d| names.contains(d));
        let materialized: Vec<&str> = self
            .views
            .values()
            .filter(|v| reads(&v.record.depends_on))
            .map(|v| v.record.name.as_str())
            .collect();
        let plain: Vec<&str> = self
            .plain_views
            .values()
            .filter(|v| reads(&v.record.depends_on) && !names.contains(&v.record.name))
            .map(|v| v.record.name.as_str())
            .collect();
        let (kind, dependents) = match (materialized.is_empty(), plain.is_empty()) {
            (true, true) => return Ok(()),
            (false, _) => ("materialized views", materialized),
            (true, false) => ("views", plain),
        };
        Err(Error::user(
            "2BP01",
            format!(
                "cannot drop {what} because {kind} depend on it: {}",
                dependents.join(", ")
            ),
        ))
    }

    /// What is stored now, to change and store again.
    fn document(&self) -> Document {
        Document {
            version: FORMAT_VERSION,
            next_id: self.next_id,
            tables: self.tables.values().map(|t| t.record.clone()).collect(),
            // Views loaded but not started yet are still stored.
            views: self
                .views
                .values()
                .map(|v| v.record.clone())
                .chain(self.stored_views.iter().cloned())
                .collect(),
            sources: self.sources.values().map(|s| s.record.clone()).collect(),
            settings: self.settings.clone(),
            access: Access::clone(&self.access),
            plain_views: self
                .plain_views
                .values()
                .map(|v| v.record.clone())
                .collect(),
        }
    }

    fn add_source(&mut self, spec: SourceSpec, record: SourceRecord) {
        let (paused, _) = watch::channel(record.paused);
        let mut relations = Vec::new();
        for (name, rows) in spec.streams {
            let provider = Arc::new(GeneratedTable::new(name.clone(), Arc::clone(&rows)));
            let watermark = record
                .watermark
                .clone()
                .filter(|w| rows.schema().index_of(&w.column).is_ok());
            let relation = SourceRelation {
                source: record.id,
                rows,
                provider,
                watermark,
                paused: paused.subscribe(),
            };
            self.relations.insert(name.clone(), Arc::new(relation));
            relations.push(name);
        }
        let entry = SourceEntry {
            record,
            relations,
            paused,
        };
        self.sources.insert(entry.record.name.clone(), entry);
    }
}

/// The catalog stored in `store`, with its tables attached.
fn read_state(store: &Arc<TableStore>, parser: &StatementParser) -> Result<State> {
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
        state.access = Arc::new(document.access);
        for record in document.plain_views {
            let view = PlainView {
                record,
                provider: None,
            };
            state.plain_views.insert(view.record.name.clone(), view);
        }
        for record in document.sources {
            let parsed = parser.parse(&record.sql)?;
            let spec = match parsed.first().map(|p| &p.statement) {
                Some(Statement::CreateTable(create)) => source_spec(create)?,
                _ => {
                    return Err(Error::Internal(format!(
                        "stored definition of source {} is not CREATE SOURCE",
                        record.name
                    )));
                }
            };
            state.add_source(spec, record);
        }
        let mut views = document.views;
        views.sort_by_key(|v| v.id);
        state.stored_views = views;
        for record in document.tables {
            let parsed = parser.parse(&record.sql)?;
            let mut spec = match parsed.first().map(|p| &p.statement) {
                Some(Statement::CreateTable(create)) => table_spec(create, record.append_only)?,
                _ => {
                    return Err(Error::Internal(format!(
                        "stored definition of {} is not CREATE TABLE",
                        record.name
                    )));
                }
            };
            spec.watermark = record.watermark.clone();
            let entry = entry(store, spec, record)?;
            store.attach_table(entry.layout.clone())?;
            state
                .tables
                .insert(entry.layout.name.clone(), Arc::new(entry));
        }
    }
    state.access_mut().bootstrap();
    Ok(state)
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
        let state = read_state(&store, parser)?;
        Ok(Self {
            store,
            state: RwLock::new(state),
            ddl: tokio::sync::Mutex::new(()),
        })
    }

    /// Reads the catalog again after its store was replaced (a savepoint
    /// restore): what was running is forgotten; stored views are to be
    /// started. Call with the DDL lock held and no view running.
    pub fn reload(&self, parser: &StatementParser) -> Result<()> {
        let state = read_state(&self.store, parser)?;
        *self.state.write().map_err(|_| lock_error())? = state;
        Ok(())
    }

    pub fn table(&self, name: &str) -> Option<Arc<TableEntry>> {
        self.state.read().ok()?.tables.get(name).cloned()
    }

    /// Every stored table.
    pub fn tables(&self) -> Vec<Arc<TableEntry>> {
        self.state
            .read()
            .map(|s| s.tables.values().cloned().collect())
            .unwrap_or_default()
    }

    pub fn table_names(&self) -> Vec<String> {
        self.state
            .read()
            .map(|s| {
                s.tables
                    .keys()
                    .chain(s.views.keys())
                    .chain(s.relations.keys())
                    .chain(s.plain_views.keys())
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The statement that made the relation `name`, as `SHOW CREATE`
    /// shows it.
    pub fn definition(&self, name: &str) -> Option<String> {
        let state = self.state.read().ok()?;
        if let Some(table) = state.tables.get(name) {
            let append_only = if table.record.append_only {
                " APPEND ONLY"
            } else {
                ""
            };
            return Some(format!("{}{append_only}", table.record.sql));
        }
        if let Some(view) = state.views.get(name) {
            return Some(view.record.sql.clone());
        }
        if let Some(view) = state.plain_views.get(name) {
            return Some(view.record.sql.clone());
        }
        let source = state.sources.get(name).or_else(|| {
            state
                .sources
                .values()
                .find(|s| s.relations.iter().any(|r| r == name))
        })?;
        // Stored in its CREATE TABLE form.
        Some(
            source
                .record
                .sql
                .replacen("CREATE TABLE", "CREATE SOURCE", 1),
        )
    }

    /// A stream of a source, by its relation name.
    pub fn source_relation(&self, name: &str) -> Option<Arc<SourceRelation>> {
        self.state.read().ok()?.relations.get(name).cloned()
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
            let mut document = state.document();
            match value {
                Some(value) => document.settings.insert(name.to_string(), value),
                None => document.settings.remove(name),
            };
            (document.settings.clone(), encode(&document)?)
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

    /// Adds a started view; with an `owner`, durably (a new view, which
    /// `owner` owns), otherwise it was loaded. Call with the DDL lock held.
    pub async fn add_view(&self, entry: ViewEntry, owner: Option<&str>) -> Result<()> {
        let id = entry.record.id;
        if let Some(owner) = owner {
            let document = {
                let state = self.state.read().map_err(|_| lock_error())?;
                state.name_taken(&entry.record.name)?;
                let mut document = state.document();
                document.views.push(entry.record.clone());
                document.next_id = document.next_id.max(id + 1);
                document.access.created(&entry.record.name, owner);
                encode(&document)?
            };
            self.store.store_catalog(document).await?;
        }
        let mut state = self.state.write().map_err(|_| lock_error())?;
        state.next_id = state.next_id.max(id + 1);
        if let Some(owner) = owner {
            state.access_mut().created(&entry.record.name, owner);
        }
        state
            .views
            .insert(entry.record.name.clone(), Arc::new(entry));
        Ok(())
    }

    /// Forgets views, durably. Call with the DDL lock held.
    pub async fn remove_views(&self, names: &[String]) -> Result<()> {
        let document = {
            let state = self.state.read().map_err(|_| lock_error())?;
            let plain: Vec<&str> = state
                .plain_views
                .values()
                .filter(|v| v.record.depends_on.iter().any(|d| names.contains(d)))
                .map(|v| v.record.name.as_str())
                .collect();
            if !plain.is_empty() {
                return Err(Error::user(
                    "2BP01",
                    format!(
                        "cannot drop materialized view {} because views depend on it: {}",
                        names.join(", "),
                        plain.join(", ")
                    ),
                ));
            }
            let mut document = state.document();
            document.views.retain(|v| !names.contains(&v.name));
            for name in names {
                document.access.dropped(name);
            }
            encode(&document)?
        };
        self.store.store_catalog(document).await?;
        let mut state = self.state.write().map_err(|_| lock_error())?;
        for name in names {
            state.views.remove(name);
            state.access_mut().dropped(name);
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
        owner: &str,
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
                watermark: spec.watermark.clone(),
            };
            let entry = entry(&self.store, spec, record.clone())?;
            let mut document = state.document();
            document.tables.push(record);
            document.next_id += 1;
            document.access.created(&entry.layout.name, owner);
            (entry, encode(&document)?)
        };
        self.store
            .create_table(entry.layout.clone(), document)
            .await?;
        let mut state = self.state.write().map_err(|_| lock_error())?;
        state.next_id += 1;
        state.access_mut().created(&entry.layout.name, owner);
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
            state.no_view_reads(&[name.to_string()], &format!("table \"{name}\""))?;
            let mut document = state.document();
            document.tables.retain(|t| t.name != name);
            document.access.dropped(name);
            (entry.layout.id, encode(&document)?)
        };
        self.store.drop_table(id, document).await?;
        let mut state = self.state.write().map_err(|_| lock_error())?;
        state.tables.remove(name);
        state.access_mut().dropped(name);
        Ok(true)
    }

    /// Creates a source durably. Returns `false` (and does nothing) when
    /// its name or one of its relations' names is taken and
    /// `if_not_exists` is set.
    pub async fn create_source(
        &self,
        spec: SourceSpec,
        sql: String,
        if_not_exists: bool,
        owner: &str,
    ) -> Result<bool> {
        let _ddl = self.ddl.lock().await;
        let owned: Vec<String> = std::iter::once(spec.name.clone())
            .chain(spec.streams.iter().map(|(n, _)| n.clone()))
            .collect();
        let (record, document) = {
            let state = self.state.read().map_err(|_| lock_error())?;
            let names = std::iter::once(&spec.name).chain(spec.streams.iter().map(|(n, _)| n));
            for name in names {
                if let Err(taken) = state.name_taken(name) {
                    if if_not_exists {
                        return Ok(false);
                    }
                    return Err(taken);
                }
            }
            let record = SourceRecord {
                id: state.next_id,
                name: spec.name.clone(),
                sql,
                watermark: spec.watermark.clone(),
                paused: false,
            };
            let mut document = state.document();
            document.sources.push(record.clone());
            document.next_id += 1;
            for name in &owned {
                document.access.created(name, owner);
            }
            (record, encode(&document)?)
        };
        self.store.store_catalog(document).await?;
        let mut state = self.state.write().map_err(|_| lock_error())?;
        state.next_id += 1;
        state.add_source(spec, record);
        for name in &owned {
            state.access_mut().created(name, owner);
        }
        Ok(true)
    }

    /// Pauses or resumes a source durably, and every view reading it at
    /// once.
    pub async fn set_source_paused(&self, name: &str, paused: bool) -> Result<()> {
        let _ddl = self.ddl.lock().await;
        let document = {
            let state = self.state.read().map_err(|_| lock_error())?;
            state.source(name)?;
            let mut document = state.document();
            for record in &mut document.sources {
                if record.name == name {
                    record.paused = paused;
                }
            }
            encode(&document)?
        };
        self.store.store_catalog(document).await?;
        let mut state = self.state.write().map_err(|_| lock_error())?;
        if let Some(source) = state.sources.get_mut(name) {
            source.record.paused = paused;
            source.paused.send_replace(paused);
        }
        Ok(())
    }

    /// Every source, by name.
    pub fn sources(&self) -> Vec<SourceStatus> {
        let Ok(state) = self.state.read() else {
            return Vec::new();
        };
        state
            .sources
            .values()
            .map(|s| SourceStatus {
                name: s.record.name.clone(),
                relations: s.relations.clone(),
                paused: s.record.paused,
            })
            .collect()
    }

    /// Drops a source durably. Returns `false` when it does not exist and
    /// `if_exists` is set.
    pub async fn drop_source(&self, name: &str, if_exists: bool) -> Result<bool> {
        let _ddl = self.ddl.lock().await;
        let document = {
            let state = self.state.read().map_err(|_| lock_error())?;
            let source = match state.source(name) {
                Ok(source) => source,
                Err(Error::User { code: "42P01", .. }) if if_exists => return Ok(false),
                Err(e) => return Err(e),
            };
            state.no_view_reads(&source.relations, &format!("source \"{name}\""))?;
            let mut document = state.document();
            document.sources.retain(|s| s.name != name);
            document.access.dropped(name);
            for relation in &source.relations {
                document.access.dropped(relation);
            }
            encode(&document)?
        };
        self.store.store_catalog(document).await?;
        let mut state = self.state.write().map_err(|_| lock_error())?;
        if let Some(source) = state.sources.remove(name) {
            for relation in source.relations {
                state.relations.remove(&relation);
                state.access_mut().dropped(&relation);
            }
        }
        state.access_mut().dropped(name);
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

fn encode(document: &Document) -> Result<Vec<u8>> {
    serde_json::to_vec(document).map_err(|e| Error::Internal(e.to_string()))
}

/// The `public` schema as DataFusion sees it.
#[derive(Debug)]
pub struct PublicSchema {
    pub catalog: Arc<Catalog>,
    /// For relations read `AS OF SAVEPOINT`.
    pub savepoints: Arc<SavepointRegistry>,
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
        if let Some((relation, savepoint)) = split_as_of(name) {
            return saved_relation(&self.catalog, &self.savepoints, relation, savepoint)
                .await
                .map(Some)
                .map_err(|e| DataFusionError::External(Box::new(e)));
        }
        if let Some(view) = self.catalog.view(name) {
            return Ok(Some(Arc::clone(&view.provider) as Arc<dyn TableProvider>));
        }
        if let Some(view) = self.catalog.plain_view(name) {
            return Ok(Some(view));
        }
        if let Some(relation) = self.catalog.source_relation(name) {
            return Ok(Some(
                Arc::clone(&relation.provider) as Arc<dyn TableProvider>
            ));
        }
        Ok(self
            .catalog
            .table(name)
            .map(|t| Arc::clone(&t.provider) as Arc<dyn TableProvider>))
    }

    fn table_exist(&self, name: &str) -> bool {
        self.catalog.table(name).is_some()
            || self.catalog.view(name).is_some()
            || self.catalog.source_relation(name).is_some()
            || self.catalog.plain_view(name).is_some()
    }
}
