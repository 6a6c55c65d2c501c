//! Materialized views: create, start, drop, explain.
//!
//! A view's query is planned by DataFusion, turned into an operator graph
//! ([`crate::stream`]) and started on the database's streaming runtime,
//! which returns once the view holds every row of its inputs. The
//! catalog stores the view's SQL; at start every stored view is planned
//! again, in creation order, and either restored from the last checkpoint
//! or refilled from its inputs (state is kept under
//! `state/<view id>/<operator>/`, one RocksDB per stateful operator).

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use datafusion::arrow::datatypes::{Field, Schema};
use datafusion::execution::SessionState;
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::logical_expr::LogicalPlan;
use datafusion::sql::parser::Statement as DFStatement;
use datafusion::sql::sqlparser::ast::{CreateTableOptions, CreateView, Statement};
use tokio::sync::mpsc::UnboundedSender;
use weir_executor::batch::{VIEW_ROWS_TABLE, ViewTable};
use weir_executor::checkpoint::parse_duration;
use weir_executor::checkpoint::{
    CheckpointedStore, FrozenView, SourceProgress, StateBackend, ViewCheckpointer, new_incarnation,
    store_dir,
};
use weir_executor::message::ViewId;
use weir_executor::operator::Operator;
use weir_executor::operators::{MaterializeOperator, Publication};
use weir_executor::runtime::{StreamingRuntime, ViewLaunch};
use weir_storage::checkpoint::ViewCheckpoint;
use weir_storage::{ENTRIES_FILE, MemoryStateStore, RocksStateStore, SharedMemory, StateStore};

use crate::catalog::{Catalog, ViewEntry, ViewRecord};
use crate::ddl::table_name;
use crate::options::WithOptions;
use crate::stream::{ExplainNode, GraphBuilder, describe_key};
use crate::{Error, Result};

/// What `CREATE MATERIALIZED VIEW` declares.
#[derive(Debug, Clone)]
pub struct ViewSpec {
    pub name: String,
    pub sql: String,
    pub plan: LogicalPlan,
    pub if_not_exists: bool,
    /// `EMIT ON WINDOW CLOSE`: aggregates emit each window once, final.
    pub emit_on_window_close: bool,
    /// `WITH (state_ttl = '1 hour')`: aggregates expire groups unchanged
    /// for that long.
    pub state_ttl: Option<Duration>,
}

/// Checks a `CREATE [MATERIALIZED] VIEW` and plans its query.
pub async fn view_spec(
    state: &SessionState,
    create: &CreateView,
    sql: String,
    emit_on_window_close: bool,
) -> Result<ViewSpec> {
    if !create.materialized {
        return Err(Error::not_supported(
            "only materialized views are supported: CREATE MATERIALIZED VIEW",
        ));
    }
    if create.or_replace || create.or_alter {
        return Err(Error::not_supported(
            "CREATE OR REPLACE MATERIALIZED VIEW is not supported",
        ));
    }
    if !create.columns.is_empty() {
        return Err(Error::not_supported(
            "column names after the view name are not supported; alias the query's columns",
        ));
    }
    let name = table_name(&create.name)?;
    let state_ttl = state_ttl(&create.options)?;
    let query = Statement::Query(create.query.clone());
    let plan = state
        .statement_to_plan(DFStatement::Statement(Box::new(query)))
        .await?;
    // Streaming joins are inner and outer joins: keep DataFusion from
    // turning an inner join with a distinct side into a semi join.
    let plan = without_rules(state, &["eliminate_join"]).optimize(&plan)?;
    let mut seen = std::collections::HashSet::new();
    for field in plan.schema().fields() {
        if !seen.insert(field.name()) {
            return Err(Error::user(
                "42701",
                format!("column \"{}\" specified more than once", field.name()),
            ));
        }
    }
    Ok(ViewSpec {
        name,
        sql,
        plan,
        if_not_exists: create.if_not_exists,
        emit_on_window_close,
        state_ttl,
    })
}

/// The view's `WITH (...)` options: `state_ttl` is the one there is.
fn state_ttl(options: &CreateTableOptions) -> Result<Option<Duration>> {
    let mut options = WithOptions::parse(options, "view")?;
    let ttl = options
        .take("state_ttl")
        .map(|text| {
            parse_duration(&text)
                .filter(|d| !d.is_zero())
                .ok_or_else(|| {
                    Error::user(
                        "22023",
                        format!(
                            "state_ttl: \"{text}\" is not a positive duration such as '1 hour'"
                        ),
                    )
                })
        })
        .transpose()?;
    options.finish("a materialized view")?;
    Ok(ttl)
}

/// `state` without the optimizer rules named.
pub(crate) fn without_rules(state: &SessionState, names: &[&str]) -> SessionState {
    let rules = state
        .optimizers()
        .iter()
        .filter(|rule| !names.contains(&rule.name()))
        .cloned()
        .collect();
    SessionStateBuilder::new_from_existing(state.clone())
        .with_optimizer_rules(rules)
        .build()
}

/// Where every view's state lives.
pub fn state_root(data_dir: &Path) -> PathBuf {
    data_dir.join("state")
}

/// Where a view's state lives.
pub fn state_dir(data_dir: &Path, view: ViewId) -> PathBuf {
    state_root(data_dir).join(view.0.to_string())
}

/// Where a view being started keeps its state.
pub struct ViewStorage<'a> {
    pub data_dir: &'a Path,
    pub memory: &'a SharedMemory,
    pub backend: StateBackend,
    /// Where its checkpointer reports frozen state.
    pub reports: UnboundedSender<FrozenView>,
    /// The checkpoint its state was restored from, if any.
    pub restore: Option<&'a ViewCheckpoint>,
}

/// The operator graph of a view, ready to start, and its catalog entry.
pub struct BuiltView {
    pub launch: ViewLaunch,
    pub entry: ViewEntry,
    pub explain: ExplainNode,
}

/// Opens the state store of a view's operator in the configured backend,
/// with what a restored checkpoint put in its directory.
fn open_store(storage: &ViewStorage<'_>, view: u64, position: u32) -> Result<Arc<dyn StateStore>> {
    let dir = store_dir(&state_root(storage.data_dir), view, position);
    Ok(match storage.backend {
        StateBackend::RocksDb => Arc::new(RocksStateStore::open(&dir, storage.memory)?),
        StateBackend::Memory if dir.join(ENTRIES_FILE).exists() => {
            Arc::new(MemoryStateStore::load(&dir)?)
        }
        StateBackend::Memory => Arc::new(MemoryStateStore::default()),
    })
}

/// Builds a view's graph. With `storage` its state goes to RocksDB under
/// the data directory and is checkpointed; without, to throwaway memory
/// stores (for EXPLAIN).
pub fn build_view(
    catalog: &Catalog,
    state: &SessionState,
    runtime: &StreamingRuntime,
    spec: &ViewSpec,
    id: u64,
    storage: Option<ViewStorage<'_>>,
) -> Result<BuiltView> {
    let view = ViewId(id);
    let opened: RefCell<Vec<(u32, Arc<dyn StateStore>)>> = RefCell::default();
    let mut opener = |position: u32| -> Result<Arc<dyn StateStore>> {
        let store: Arc<dyn StateStore> = match &storage {
            Some(storage) => open_store(storage, id, position)?,
            None => Arc::new(MemoryStateStore::default()),
        };
        opened.borrow_mut().push((position, Arc::clone(&store)));
        Ok(store)
    };
    let mut builder = GraphBuilder::new(
        catalog,
        Arc::clone(catalog.store()),
        state,
        spec.name.clone(),
        &mut opener,
    );
    builder.restore = storage.as_ref().and_then(|s| s.restore);
    builder.emit_on_window_close = spec.emit_on_window_close;
    builder.state_ttl = spec.state_ttl;
    let built = builder.build(&spec.plan)?;
    let closes_windows = builder.watermark_reports.iter().any(|(identity, _)| {
        identity.ends_with("HashAggregate") || identity.ends_with("GroupTopN")
    });
    if spec.emit_on_window_close && !closes_windows {
        return Err(Error::not_supported(
            "EMIT ON WINDOW CLOSE needs an aggregate grouped by a window or a ROW_NUMBER() partitioned \
             by one: GROUP BY window_start \
             of TUMBLE or HOP over a table or source that declares WATERMARK FOR",
        ));
    }
    let (position, identity) = builder.next_identity("Materialize");
    let GraphBuilder {
        sources,
        subscriptions,
        depends_on,
        stores,
        identities,
        table_sources,
        aligners,
        watermark_reports,
        ..
    } = builder;
    let store = stores(position)?;
    let stored = built.operator.info().clone();
    let source_progress: Vec<(String, SourceProgress)> = table_sources
        .iter()
        .map(|s| (s.name.clone(), s.progress.clone()))
        .collect();
    let checkpointer = storage.map(|storage| ViewCheckpointer {
        view,
        name: spec.name.clone(),
        stores: opened
            .take()
            .into_iter()
            .map(|(position, store)| CheckpointedStore {
                position,
                identity: identities.get(&position).cloned().unwrap_or_default(),
                store,
            })
            .collect(),
        aligners,
        sources: table_sources,
        dir: state_dir(storage.data_dir, view).join("frozen"),
        incarnation: new_incarnation(),
        reports: storage.reports,
    });
    let publication = Publication {
        view,
        registry: Arc::clone(runtime.registry()),
        checkpointer,
    };
    let root = MaterializeOperator::new(
        built.operator,
        store,
        VIEW_ROWS_TABLE,
        Some(publication),
        identity,
    )?;
    let explain = ExplainNode {
        line: format!(
            "{} {} key={} state=operator {position}",
            root.info().identity,
            spec.name,
            describe_key(&stored)
        ),
        children: vec![built.explain],
    };
    let fields: Vec<Field> = spec
        .plan
        .schema()
        .fields()
        .iter()
        .map(|f| f.as_ref().clone().with_nullable(true))
        .collect();
    let schema = Arc::new(Schema::new(fields));
    let provider = Arc::new(ViewTable::new(
        view,
        Arc::clone(&schema),
        stored.clone(),
        Arc::clone(runtime.registry()),
    ));
    let entry = ViewEntry {
        id: view,
        schema,
        stored,
        provider,
        record: ViewRecord {
            id,
            name: spec.name.clone(),
            sql: spec.sql.clone(),
            depends_on: depends_on.into_iter().collect(),
        },
        sources: source_progress,
        watermarks: watermark_reports,
    };
    Ok(BuiltView {
        launch: ViewLaunch {
            view,
            name: spec.name.clone(),
            root: Box::new(root),
            sources,
            subscriptions,
        },
        entry,
        explain,
    })
}

/// The views to drop for `DROP MATERIALIZED VIEW names [CASCADE]`,
/// dependents first.
pub fn views_to_drop(catalog: &Catalog, names: &[String], cascade: bool) -> Result<Vec<String>> {
    let mut dropping: Vec<String> = Vec::new();
    let mut pending: Vec<String> = names.to_vec();
    while let Some(name) = pending.pop() {
        if dropping.contains(&name) {
            continue;
        }
        dropping.push(name.clone());
        for dependent in catalog.dependents(&name) {
            if cascade {
                pending.push(dependent);
            } else if !names.contains(&dependent) {
                return Err(Error::user(
                    "2BP01",
                    format!(
                        "cannot drop materialized view \"{name}\" because materialized view \"{dependent}\" depends on it; use DROP ... CASCADE to drop it too"
                    ),
                ));
            }
        }
    }
    let id = |name: &String| catalog.view(name).map(|v| v.id).unwrap_or(ViewId(0));
    dropping.sort_by_key(|name| std::cmp::Reverse(id(name)));
    Ok(dropping)
}
