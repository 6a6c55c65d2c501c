//! [`Database`]: one weir database — its storage, catalog and the
//! DataFusion context every session's queries are planned in.

use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU32;
use std::sync::{Arc, OnceLock};

use datafusion::arrow::array::{Array, UInt64Array};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::ParamValues;
use datafusion::dataframe::DataFrame;
use datafusion::execution::context::{SQLOptions, SessionConfig, SessionContext};
use datafusion::execution::memory_pool::{FairSpillPool, TrackConsumersPool};
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::execution::{FunctionRegistry, SendableRecordBatchStream};
use datafusion::logical_expr::{DmlStatement, LogicalPlan, WriteOp};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::sql::parser::Statement as DFStatement;
use datafusion::sql::sqlparser::ast::{
    Expr, ObjectType, ShowCreateObject, Statement, visit_expressions,
};
use datafusion_pg_catalog::setup_pg_catalog;
use weir_executor::Transaction;
use weir_executor::checkpoint::settings::is_setting;
use weir_executor::checkpoint::{CheckpointCoordinator, CheckpointSettings, SettingError};
use weir_executor::generated::now_nanos;
use weir_executor::runtime::StreamingRuntime;
use weir_storage::checkpoint::CheckpointStorage;
use weir_storage::{SharedMemory, TableStore};

use crate::array_literals::{ArrayLiteralComparisons, ArrayLiteralRewrite};
use crate::backends::Backends;
use crate::catalog::{AccessChange, Catalog, PublicSchema};
use crate::column_names::{
    is_duplicate_name_error, pg_column_names, rename_columns, with_planning_aliases,
};
use crate::commands::Command;
use crate::ddl::{DATABASE_NAME, PUBLIC_SCHEMA, table_name, table_spec};
use crate::file_roots::{FileRoots, source_reads_storage};
use crate::function_signatures::type_list_function;
use crate::functions::weir_functions;
use crate::json_operators::JsonOperators;
use crate::name_subscripts::NameSubscripts;
use crate::oid_columns::described_schema;
use crate::parser::{ParsedStatement, StatementParser};
use crate::pg_casts::PgCastRewrite;
use crate::pg_catalog_schema::{CatalogRoles, PgCatalogSchema};
use crate::pg_functions::pg_functions;
use crate::roles::{RoleAttributes, RoleRecord, ScramSecret, session_role};
use crate::row_subqueries::RowSubqueryPlanner;
use crate::savepoint_registry::SavepointRegistry;
use crate::session_windows::session_functions;
use crate::sources::{pin_creation_time, source_spec, source_watermark};
use crate::statement::{SessionStatement, session_statement};
use crate::typed_text_functions::typed_text_functions;

use crate::system_tables::{SHOW_CHECKPOINTS, SHOW_SAVEPOINTS, SYSTEM_SCHEMA, SystemSchema};
use crate::views::{build_view, view_spec, views_to_drop, without_rules};
use crate::{Error, Result};

mod copy;
mod copy_binary;
mod in_block;
mod lock;
mod maintenance;
mod plain_views;
mod prepared;
mod privileges;
mod roles;

pub use copy::{CopyFormat, CopyIn};
mod savepoints;
mod truncate;
mod view_lifecycle;

pub use in_block::InBlock;
pub use prepared::{Outcome, Prepared};
use prepared::{plan_lines, query_plan, setting_schema, show_create_schema, text_rows};

/// The runtime every query runs in: one memory pool for all sessions,
/// whose errors name the largest consumers.
fn query_runtime(memory_limit: usize) -> Result<Arc<RuntimeEnv>> {
    let pool = TrackConsumersPool::new(
        FairSpillPool::new(memory_limit),
        NonZeroUsize::new(3).unwrap_or(NonZeroUsize::MIN),
    );
    Ok(RuntimeEnvBuilder::new()
        .with_memory_pool(Arc::new(pool))
        .build_arc()?)
}

fn setting_error(e: SettingError) -> Error {
    match e {
        SettingError::Unknown(_) => Error::user("42704", e.to_string()),
        SettingError::Invalid { .. } => Error::user("22023", e.to_string()),
    }
}

/// One database: what every session of a server shares.
pub struct Database {
    catalog: Arc<Catalog>,
    parser: StatementParser,
    base: SessionContext,
    data_dir: PathBuf,
    runtime: StreamingRuntime,
    memory: SharedMemory,
    /// Started with the views, by [`Database::start_views`].
    checkpoints: Arc<OnceLock<CheckpointCoordinator>>,
    savepoints: Arc<SavepointRegistry>,
    /// Where SQL may name `file://` locations.
    file_roots: FileRoots,
    backends: Arc<Backends>,
    /// Restarts of the views counted against `restart_attempts`.
    restarts_used: AtomicU32,
}

impl Database {
    /// Opens the database kept under `data_dir`, creating it if needed;
    /// the queries of all sessions together may hold `query_memory_limit`
    /// bytes (sorts spill to disk past their share, other operators fail
    /// with 53200). Views start with [`Database::start_views`]. Needs a
    /// tokio runtime.
    pub fn open(data_dir: &Path, query_memory_limit: usize) -> Result<Self> {
        let store = Arc::new(TableStore::open(&data_dir.join("tables"))?);
        let parser = StatementParser::default();
        let catalog = Arc::new(Catalog::load(store, &parser)?);
        let mut config = SessionConfig::new()
            .with_default_catalog_and_schema(DATABASE_NAME, PUBLIC_SCHEMA)
            .with_information_schema(true);
        // `1.5` is numeric, as in PostgreSQL: exact, never through a float.
        config.options_mut().sql_parser.parse_float_as_decimal = true;
        // `TIMESTAMPTZ` in a cast is zoned, in the zone weir keeps them in.
        config.options_mut().execution.time_zone = Some(crate::types::UTC.into());
        let mut state = SessionStateBuilder::new()
            .with_config(config)
            .with_runtime_env(query_runtime(query_memory_limit)?)
            .with_default_features();
        if let Some(planners) = state.expr_planners() {
            planners.insert(0, Arc::new(NameSubscripts));
        }
        let mut base = SessionContext::new_with_state(RowSubqueryPlanner::install(state).build());
        base.register_function_rewrite(Arc::new(PgCastRewrite::default()))?;
        base.register_function_rewrite(Arc::new(ArrayLiteralRewrite))?;
        base.register_expr_planner(Arc::new(JsonOperators::default()))?;
        base.register_expr_planner(Arc::new(ArrayLiteralComparisons))?;
        for function in typed_text_functions() {
            base.register_udf(function);
        }
        for function in weir_functions() {
            base.register_udf(function);
        }
        for function in session_functions() {
            base.register_udwf(function);
        }
        let savepoints = Arc::new(SavepointRegistry::open(data_dir)?);
        let schema = Arc::new(PublicSchema {
            catalog: Arc::clone(&catalog),
            savepoints: Arc::clone(&savepoints),
        });
        base.catalog(DATABASE_NAME)
            .ok_or_else(|| Error::Internal("default catalog missing".into()))?
            .register_schema(PUBLIC_SCHEMA, schema)?;
        let checkpoints = Arc::new(OnceLock::new());
        let runtime = StreamingRuntime::start(CheckpointSettings::default().barrier_interval);
        base.catalog(DATABASE_NAME)
            .ok_or_else(|| Error::Internal("default catalog missing".into()))?
            .register_schema(
                SYSTEM_SCHEMA,
                Arc::new(SystemSchema {
                    checkpoints: Arc::clone(&checkpoints),
                    catalog: Arc::clone(&catalog),
                    savepoints: Arc::clone(&savepoints),
                    registry: Arc::clone(runtime.registry()),
                }),
            )?;
        let backends = Arc::new(Backends::default());
        setup_pg_catalog(&base, DATABASE_NAME, CatalogRoles(Arc::clone(&catalog)))
            .map_err(|e| Error::DataFusion(*e))?;
        let databases = base
            .catalog(DATABASE_NAME)
            .ok_or_else(|| Error::Internal("default catalog missing".into()))?;
        if let Some(inner) = databases.schema("pg_catalog") {
            databases.register_schema(
                "pg_catalog",
                Arc::new(PgCatalogSchema {
                    inner,
                    catalog: Arc::clone(&catalog),
                    database: DATABASE_NAME.to_string(),
                    backends: Arc::clone(&backends),
                }),
            )?;
        }
        // After pg_catalog's own, which these replace.
        for function in pg_functions() {
            base.register_udf(function);
        }
        if let Ok(format_type) = base.udf("format_type") {
            base.register_udf(crate::format_type::format_type_over(format_type));
        }
        base.register_udf(type_list_function());
        for function in crate::pg_keys::key_functions(Arc::clone(&catalog))
            .into_iter()
            .chain(crate::catalog_texts::catalog_text_functions(Arc::clone(
                &catalog,
            )))
        {
            base.register_udf(function);
        }
        let data_dir = std::fs::canonicalize(data_dir)
            .map_err(|e| Error::Internal(format!("{}: {e}", data_dir.display())))?;
        let file_roots = FileRoots::new([data_dir.as_path()]);
        Ok(Self {
            catalog,
            parser,
            base,
            file_roots,
            data_dir,
            runtime,
            restarts_used: AtomicU32::new(0),
            memory: SharedMemory::new(256 << 20, 256 << 20),
            checkpoints,
            savepoints,
            backends,
        })
    }

    /// The role `name`, as the catalog has it now.
    pub fn role(&self, name: &str) -> Option<RoleRecord> {
        self.catalog.role(name)
    }

    /// Gives `role` the password `password` if it has none yet (the
    /// superuser's, from `WEIR_PASSWORD` at start); whether it did.
    pub async fn set_first_password(&self, role: &str, password: &str) -> Result<bool> {
        if self.role(role).is_none_or(|r| r.password.is_some()) {
            return Ok(false);
        }
        let attributes = RoleAttributes {
            password: Some(Some(ScramSecret::new(password)?)),
            ..RoleAttributes::default()
        };
        self.catalog
            .change_access(AccessChange::AlterRole {
                name: role.to_string(),
                attributes,
            })
            .await?;
        Ok(true)
    }

    /// The sessions connected to this database, for `pg_stat_activity`.
    pub fn backends(&self) -> &Arc<Backends> {
        &self.backends
    }

    /// The checkpoint settings as stored; a stored value this weir refuses
    /// is logged and left at its default.
    fn stored_settings(&self) -> CheckpointSettings {
        let mut settings = CheckpointSettings::default();
        for (name, value) in self.catalog.settings() {
            if let Err(e) = settings.set(&name, Some(&value)) {
                tracing::error!(error = %e, "stored setting ignored");
            }
        }
        settings
    }

    /// The checkpoint storage `settings` name.
    fn open_storage(&self, settings: &CheckpointSettings) -> Result<CheckpointStorage> {
        let url = settings
            .storage
            .clone()
            .unwrap_or_else(|| CheckpointStorage::file_url(&self.data_dir.join("checkpoints")));
        CheckpointStorage::open(&url).map_err(|e| {
            Error::user(
                "22023",
                format!("invalid value for parameter \"checkpoint_storage\": {e}"),
            )
        })
    }

    fn coordinator(&self) -> Result<&CheckpointCoordinator> {
        self.checkpoints
            .get()
            .ok_or_else(|| Error::user("55000", "checkpoints have not started yet"))
    }

    /// The checkpoint settings in force.
    pub fn checkpoint_settings(&self) -> CheckpointSettings {
        self.checkpoints
            .get()
            .map(CheckpointCoordinator::settings)
            .unwrap_or_else(|| self.stored_settings())
    }

    /// Every database setting as (name, value, description), for `SHOW ALL`.
    pub fn settings(&self) -> Vec<(&'static str, String, &'static str)> {
        self.checkpoint_settings().all()
    }

    /// Changes a database setting durably and applies it at once.
    async fn set_setting(&self, name: &str, value: Option<String>) -> Result<()> {
        if let (true, Some(url)) = (name == "checkpoint_storage", &value) {
            self.file_roots.check(url)?;
        }
        let _ddl = self.catalog.lock_ddl().await;
        let coordinator = self.coordinator()?;
        let mut settings = coordinator.settings();
        let backend = settings.backend;
        settings
            .set(name, value.as_deref())
            .map_err(setting_error)?;
        if settings.backend != backend && !self.catalog.views().is_empty() {
            return Err(Error::user(
                "55000",
                "state_backend cannot change while materialized views exist: \
                 their state stays in the backend it was made in; drop them first",
            ));
        }
        let storage = self.open_storage(&settings)?;
        let stored = match value {
            Some(_) => Some(settings.show(name).map_err(setting_error)?),
            None => None,
        };
        self.catalog.store_setting(name, stored).await?;
        self.runtime.set_barrier_interval(settings.barrier_interval);
        coordinator.update(settings, storage);
        Ok(())
    }

    /// Lets SQL name `file://` locations under `dirs` too, besides the
    /// data directory.
    pub fn allow_file_roots<'a>(&mut self, dirs: impl IntoIterator<Item = &'a Path>) {
        self.file_roots.extend(FileRoots::new(dirs));
    }

    /// A fresh planning context for one session; all share the catalog.
    pub fn session_context(&self) -> SessionContext {
        SessionContext::new_with_state(self.base.state())
    }

    pub fn parse(&self, sql: &str) -> Result<Vec<ParsedStatement>> {
        self.parser.parse(sql)
    }

    /// Checks and plans one statement without running it.
    pub async fn prepare(&self, ctx: &SessionContext, parsed: ParsedStatement) -> Result<Prepared> {
        let ParsedStatement {
            statement,
            append_only,
            command,
            alter_system,
            source,
            watermark,
            emit_on_window_close,
        } = parsed;
        match command {
            Some(Command::Checkpoint) => return Ok(Prepared::Checkpoint),
            Some(Command::AlterSource { name, paused }) => {
                return Ok(Prepared::AlterSource { name, paused });
            }
            Some(Command::ResumeView { name }) => return Ok(Prepared::ResumeView(name)),
            Some(Command::CreateSavepoint { name, location }) => {
                return Ok(Prepared::CreateSavepoint { name, location });
            }
            Some(Command::RestoreSavepoint { name }) => {
                return Ok(Prepared::RestoreSavepoint(name));
            }
            Some(Command::DropSavepoint { name, if_exists }) => {
                return Ok(Prepared::DropSavepoint { name, if_exists });
            }
            Some(Command::Maintenance { command, tables }) => {
                return self.prepare_maintenance(command, tables);
            }
            None => {}
        }
        if let Some(session) = session_statement(&statement) {
            return self.prepare_session(ctx, session?, alter_system).await;
        }
        let mut statement = statement;
        if let (true, Statement::CreateTable(create)) = (source, &mut statement) {
            pin_creation_time(create, now_nanos());
        }
        match &statement {
            Statement::CreateTable(create) if source => {
                self.file_roots.check_source(create)?;
                let reads_storage = source_reads_storage(create)?;
                let mut spec = source_spec(create)?;
                spec.watermark = source_watermark(&ctx.state(), &spec, watermark)?;
                Ok(Prepared::CreateSource {
                    spec,
                    sql: statement.to_string(),
                    if_not_exists: create.if_not_exists,
                    reads_storage,
                })
            }
            statement if roles::is_access_statement(statement) => {
                self.prepare_access(ctx, statement)
            }
            Statement::Drop {
                object_type: ObjectType::Table,
                if_exists,
                names,
                ..
            } if source => Ok(Prepared::DropSources {
                names: names.iter().map(table_name).collect::<Result<_>>()?,
                if_exists: *if_exists,
            }),
            Statement::CreateTable(create) => {
                let mut spec = table_spec(create, append_only)?;
                if let Some(watermark) = watermark {
                    if !append_only {
                        return Err(Error::not_supported(
                            "WATERMARK FOR is only allowed on APPEND ONLY tables and sources",
                        ));
                    }
                    watermark.plan(&ctx.state(), &spec.schema)?;
                    spec.watermark = Some(watermark);
                }
                Ok(Prepared::CreateTable {
                    spec,
                    sql: statement.to_string(),
                    append_only,
                    if_not_exists: create.if_not_exists,
                })
            }
            Statement::Drop {
                object_type: ObjectType::Table,
                if_exists,
                names,
                ..
            } => Ok(Prepared::DropTable {
                names: names.iter().map(table_name).collect::<Result<_>>()?,
                if_exists: *if_exists,
            }),
            Statement::Drop {
                object_type: ObjectType::MaterializedView,
                if_exists,
                names,
                cascade,
                ..
            } => Ok(Prepared::DropViews {
                names: names.iter().map(table_name).collect::<Result<_>>()?,
                if_exists: *if_exists,
                cascade: *cascade,
            }),
            Statement::Drop {
                object_type: ObjectType::View,
                if_exists,
                names,
                ..
            } => Ok(Prepared::DropPlainViews {
                names: names.iter().map(table_name).collect::<Result<_>>()?,
                if_exists: *if_exists,
            }),
            Statement::CreateView(create) if !create.materialized => {
                self.prepare_plain_view(ctx, create, &statement).await
            }
            Statement::Drop { object_type, .. } => Err(Error::not_supported(format!(
                "DROP {object_type} is not supported"
            ))),
            Statement::CreateView(create) => {
                self.no_plain_views_read(&statement)?;
                Ok(Prepared::CreateView(Box::new(
                    view_spec(
                        &ctx.state(),
                        create,
                        view_sql(&statement, emit_on_window_close),
                        emit_on_window_close,
                    )
                    .await?,
                )))
            }
            Statement::Explain {
                statement: inner,
                analyze: false,
                ..
            } if matches!(inner.as_ref(), Statement::CreateView(_)) => {
                let Statement::CreateView(create) = inner.as_ref() else {
                    unreachable!("matched above")
                };
                let spec = view_spec(
                    &ctx.state(),
                    create,
                    view_sql(inner, emit_on_window_close),
                    emit_on_window_close,
                )
                .await?;
                let built = build_view(&self.catalog, &ctx.state(), &self.runtime, &spec, 0, None)?;
                Ok(Prepared::ExplainView(built.explain.lines()))
            }
            Statement::Flush { .. } => Ok(Prepared::Flush),
            Statement::Lock(lock) => self.prepare_lock(lock),
            Statement::ShowCreate {
                obj_type: ShowCreateObject::Table | ShowCreateObject::View,
                obj_name,
            } => {
                let name = table_name(obj_name)?;
                let definition = self.catalog.definition(&name).ok_or_else(|| {
                    Error::user("42P01", format!("relation \"{name}\" does not exist"))
                })?;
                Ok(Prepared::ShowCreate { name, definition })
            }
            Statement::Copy { .. } => self.prepare_copy(ctx, &statement).await,
            Statement::Truncate(truncate) => self.prepare_truncate(ctx, truncate).await,
            _ => {
                let names = pg_column_names(&statement);
                let plan = match self.plan(ctx, statement.clone()).await {
                    Err(e) if names.is_some() && is_duplicate_name_error(&e) => {
                        self.plan(ctx, with_planning_aliases(statement)).await?
                    }
                    planned => planned?,
                };
                Ok(Prepared::Plan(match names {
                    Some(names) => rename_columns(plan, &names)?,
                    None => plan,
                }))
            }
        }
    }

    /// Database settings and `SHOW CHECKPOINTS` are the database's; the
    /// rest of the session statements are the server's.
    async fn prepare_session(
        &self,
        ctx: &SessionContext,
        session: SessionStatement,
        alter_system: bool,
    ) -> Result<Prepared> {
        let database_setting = match &session {
            SessionStatement::Set { name, .. } | SessionStatement::Show { name } => {
                is_setting(name)
            }
            SessionStatement::Reset { name: Some(name) } => is_setting(name),
            _ => false,
        };
        if alter_system && !database_setting {
            return Err(Error::user(
                "55P02",
                "ALTER SYSTEM changes database settings only (checkpoint_interval, ...); use SET for session parameters",
            ));
        }
        match session {
            SessionStatement::Show { name } if name == "checkpoints" || name == "savepoints" => {
                let query = if name == "checkpoints" {
                    SHOW_CHECKPOINTS
                } else {
                    SHOW_SAVEPOINTS
                };
                let statement = self
                    .parser
                    .parse(query)?
                    .into_iter()
                    .next()
                    .ok_or_else(|| Error::Internal(format!("SHOW {name} query is empty")))?
                    .statement;
                Ok(Prepared::Plan(self.plan(ctx, statement).await?))
            }
            SessionStatement::Set { name, value } if database_setting => {
                Ok(Prepared::SetDatabase { name, value })
            }
            SessionStatement::Reset { name: Some(name) } if database_setting => {
                Ok(Prepared::SetDatabase { name, value: None })
            }
            SessionStatement::Show { name } if database_setting => Ok(Prepared::ShowDatabase(name)),
            session => Ok(Prepared::Session(session)),
        }
    }

    async fn plan(&self, ctx: &SessionContext, statement: Statement) -> Result<LogicalPlan> {
        check_write_shape(&statement)?;
        let plan = ctx
            .state()
            .statement_to_plan(DFStatement::Statement(Box::new(statement)))
            .await?;
        let only_queries_and_writes = SQLOptions::new()
            .with_allow_ddl(false)
            .with_allow_dml(true)
            .with_allow_statements(false);
        only_queries_and_writes
            .verify_plan(&plan)
            .map_err(|e| Error::not_supported(e.strip_backtrace()))?;
        Ok(plan)
    }

    /// Runs a prepared statement with its parameter values, if it has any.
    pub async fn execute(
        &self,
        ctx: &SessionContext,
        prepared: Prepared,
        params: Option<ParamValues>,
    ) -> Result<Outcome> {
        self.authorize(ctx, &prepared)?;
        match prepared {
            Prepared::Session(statement) => Ok(Outcome::Session(statement)),
            Prepared::Access { tag, changes } => {
                for change in changes {
                    self.catalog.change_access(change).await?;
                }
                Ok(Outcome::Command(tag.into()))
            }
            Prepared::CreateTable {
                spec,
                sql,
                append_only,
                if_not_exists,
            } => {
                self.catalog
                    .create_table(spec, sql, append_only, if_not_exists, &session_role(ctx))
                    .await?;
                Ok(Outcome::Command("CREATE TABLE".into()))
            }
            Prepared::DropTable { names, if_exists } => {
                for name in names {
                    self.catalog.drop_table(&name, if_exists).await?;
                }
                Ok(Outcome::Command("DROP TABLE".into()))
            }
            Prepared::CreateSource {
                spec,
                sql,
                if_not_exists,
                ..
            } => {
                self.catalog
                    .create_source(spec, sql, if_not_exists, &session_role(ctx))
                    .await?;
                Ok(Outcome::Command("CREATE SOURCE".into()))
            }
            Prepared::AlterSource { name, paused } => {
                self.catalog.set_source_paused(&name, paused).await?;
                Ok(Outcome::Command("ALTER SOURCE".into()))
            }
            Prepared::CopyIn(copy) => Ok(Outcome::CopyIn(copy)),
            Prepared::Truncate(deletes) => self.execute_truncate(ctx, deletes).await,
            Prepared::CopyOut { plan, format } => {
                match Box::pin(self.execute(ctx, Prepared::Plan(plan), None)).await? {
                    Outcome::Rows(rows) => Ok(Outcome::CopyOut { rows, format }),
                    _ => Err(Error::not_supported(
                        "COPY TO of a statement that returns no rows",
                    )),
                }
            }
            Prepared::ResumeView(name) => {
                self.resume_views(&name).await?;
                Ok(Outcome::Command("ALTER MATERIALIZED VIEW".into()))
            }
            Prepared::DropSources { names, if_exists } => {
                for name in names {
                    self.catalog.drop_source(&name, if_exists).await?;
                }
                Ok(Outcome::Command("DROP SOURCE".into()))
            }
            Prepared::CreateView(spec) => {
                let _ddl = self.catalog.lock_ddl().await;
                if spec.if_not_exists && self.catalog.view(&spec.name).is_some() {
                    return Ok(Outcome::Command("CREATE MATERIALIZED VIEW".into()));
                }
                let id = self.catalog.reserve(&spec.name)?;
                self.start_view(ctx, &spec, id, true).await?;
                Ok(Outcome::Command("CREATE MATERIALIZED VIEW".into()))
            }
            Prepared::DropViews {
                names,
                if_exists,
                cascade,
            } => {
                let _ddl = self.catalog.lock_ddl().await;
                let mut existing = Vec::new();
                for name in names {
                    if self.catalog.view(&name).is_some() {
                        existing.push(name);
                    } else if self.catalog.table(&name).is_some() {
                        return Err(Error::user(
                            "42809",
                            format!("\"{name}\" is not a materialized view; use DROP TABLE"),
                        ));
                    } else if !if_exists {
                        return Err(Error::user(
                            "42P01",
                            format!("materialized view \"{name}\" does not exist"),
                        ));
                    }
                }
                let dropping = views_to_drop(&self.catalog, &existing, cascade)?;
                let ids: Vec<_> = dropping
                    .iter()
                    .filter_map(|name| self.catalog.view(name).map(|v| v.id))
                    .collect();
                self.catalog.remove_views(&dropping).await?;
                for id in ids {
                    self.forget_view(id).await;
                }
                Ok(Outcome::Command("DROP MATERIALIZED VIEW".into()))
            }
            Prepared::CreatePlainView(spec) => {
                self.create_plain_view(ctx, *spec).await?;
                Ok(Outcome::Command("CREATE VIEW".into()))
            }
            Prepared::DropPlainViews { names, if_exists } => {
                for name in names {
                    self.catalog.drop_plain_view(&name, if_exists).await?;
                }
                Ok(Outcome::Command("DROP VIEW".into()))
            }
            Prepared::ExplainView(lines) => plan_lines(lines),
            Prepared::Flush => {
                self.runtime.flush().await;
                Ok(Outcome::Command("FLUSH".into()))
            }
            Prepared::Checkpoint => {
                self.coordinator()?.checkpoint().await.map_err(Error::io)?;
                Ok(Outcome::Command("CHECKPOINT".into()))
            }
            Prepared::CreateSavepoint { name, location } => {
                self.create_savepoint(&name, location).await?;
                Ok(Outcome::Command("CREATE SAVEPOINT".into()))
            }
            Prepared::RestoreSavepoint(name) => {
                self.restore_savepoint(&name).await?;
                Ok(Outcome::Command("RESTORE SAVEPOINT".into()))
            }
            Prepared::DropSavepoint { name, if_exists } => {
                self.drop_savepoint(&name, if_exists).await?;
                Ok(Outcome::Command("DROP SAVEPOINT".into()))
            }
            Prepared::SetDatabase { name, value } => {
                let tag = if value.is_some() { "SET" } else { "RESET" };
                self.set_setting(&name, value).await?;
                Ok(Outcome::Command(tag.into()))
            }
            Prepared::Lock { .. } => Ok(Outcome::Command("LOCK TABLE".into())),
            Prepared::Maintenance { command, .. } => Ok(Outcome::Command(command.into())),
            Prepared::ShowCreate { name, definition } => {
                let row = [
                    DATABASE_NAME.to_string(),
                    PUBLIC_SCHEMA.to_string(),
                    name,
                    definition,
                ];
                text_rows(show_create_schema(), row.map(|v| vec![v]).to_vec())
            }
            Prepared::ShowDatabase(name) => {
                let value = self
                    .coordinator()?
                    .settings()
                    .show(&name)
                    .map_err(setting_error)?;
                text_rows(setting_schema(&name), vec![vec![value]])
            }
            Prepared::Plan(plan) => {
                let plan = match params {
                    Some(params) => plan.with_param_values(params)?,
                    None => plan,
                };
                let op = match &plan {
                    LogicalPlan::Dml(DmlStatement { op, .. }) => Some(op.clone()),
                    _ => None,
                };
                let explain = matches!(plan, LogicalPlan::Explain(_) | LogicalPlan::Analyze(_));
                let described = described_schema(&plan);
                let frame = if op.is_none() && !self.catalog.views().is_empty() {
                    // One pin per query: every view it reads at one epoch;
                    // a snapshot block's for each of its queries.
                    let config = ctx.copied_config();
                    let pin = config
                        .get_extension::<Transaction>()
                        .and_then(|transaction| transaction.view_pin())
                        .unwrap_or_default();
                    let config = config.with_extension(pin);
                    let state = SessionStateBuilder::new_from_existing(ctx.state())
                        .with_config(config)
                        .build();
                    SessionContext::new_with_state(state)
                        .execute_logical_plan(plan)
                        .await?
                } else if op == Some(WriteOp::Update) {
                    // An UPDATE's assignments go to the table to evaluate over its
                    // own columns, where `__common_expr` columns do not exist.
                    SessionContext::new_with_state(without_rules(
                        &ctx.state(),
                        &["common_sub_expression_eliminate"],
                    ))
                    .execute_logical_plan(plan)
                    .await?
                } else {
                    ctx.execute_logical_plan(plan).await?
                };
                match op {
                    None if explain => query_plan(frame.collect().await?),
                    None => Ok(Outcome::Rows(described_as(
                        frame.execute_stream().await?,
                        described,
                    ))),
                    Some(op) => {
                        let count = written_rows(frame).await?;
                        Ok(Outcome::Command(match op {
                            WriteOp::Insert(_) => format!("INSERT 0 {count}"),
                            WriteOp::Update => format!("UPDATE {count}"),
                            WriteOp::Delete => format!("DELETE {count}"),
                            other => format!("{other} {count}"),
                        }))
                    }
                }
            }
        }
    }
}

impl Drop for Database {
    /// `pg_catalog` holds the catalog list that holds it; deregistering it
    /// breaks that cycle, so the storage it reaches is closed with us.
    fn drop(&mut self) {
        if let Some(catalog) = self.base.catalog(DATABASE_NAME) {
            let _ = catalog.deregister_schema("pg_catalog", true);
        }
    }
}

/// A view's SQL as the catalog stores it: weir's closing clause included,
/// so the view plans the same when started again.
fn view_sql(statement: &Statement, emit_on_window_close: bool) -> String {
    if emit_on_window_close {
        format!("{statement} EMIT ON WINDOW CLOSE")
    } else {
        statement.to_string()
    }
}

/// `rows` as described by `schema`: its own schema with the metadata
/// [`described_schema`] adds, the batches as they are.
fn described_as(rows: SendableRecordBatchStream, schema: SchemaRef) -> SendableRecordBatchStream {
    if rows
        .schema()
        .fields()
        .iter()
        .zip(schema.fields())
        .all(|(a, b)| a.metadata() == b.metadata())
    {
        return rows;
    }
    Box::pin(RecordBatchStreamAdapter::new(schema, rows))
}

/// The `count` a DataFusion write returns.
async fn written_rows(frame: DataFrame) -> Result<u64> {
    let mut count = 0;
    for batch in frame.collect().await? {
        if let Some(counts) = batch
            .columns()
            .first()
            .and_then(|c| c.as_any().downcast_ref::<UInt64Array>())
        {
            count += counts.iter().flatten().sum::<u64>();
        }
    }
    Ok(count)
}

/// Refuses UPDATE and DELETE forms whose rows DataFusion would not hand to
/// the table exactly (a subquery in WHERE, FROM/USING joins, RETURNING).
fn check_write_shape(statement: &Statement) -> Result<()> {
    let verb = match statement {
        Statement::Update(update) if update.from.is_some() => {
            return Err(Error::not_supported("UPDATE ... FROM is not supported"));
        }
        Statement::Delete(delete) if delete.using.is_some() => {
            return Err(Error::not_supported("DELETE ... USING is not supported"));
        }
        Statement::Update(u) if u.returning.is_some() => {
            return Err(Error::not_supported("RETURNING is not supported"));
        }
        Statement::Delete(d) if d.returning.is_some() => {
            return Err(Error::not_supported("RETURNING is not supported"));
        }
        Statement::Insert(i) if i.returning.is_some() => {
            return Err(Error::not_supported("RETURNING is not supported"));
        }
        Statement::Insert(i) if i.on.is_some() => {
            return Err(Error::not_supported(
                "INSERT ... ON CONFLICT is not supported",
            ));
        }
        Statement::Update(_) => "UPDATE",
        Statement::Delete(_) => "DELETE",
        _ => return Ok(()),
    };
    let has_subquery = visit_expressions(statement, |expr| match expr {
        Expr::Subquery(_) | Expr::Exists { .. } | Expr::InSubquery { .. } => {
            std::ops::ControlFlow::Break(())
        }
        _ => std::ops::ControlFlow::Continue(()),
    });
    if has_subquery.is_break() {
        return Err(Error::not_supported(format!(
            "subqueries in {verb} are not supported"
        )));
    }
    Ok(())
}
