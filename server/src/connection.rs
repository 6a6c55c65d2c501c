//! One client connection: its session and both query protocols.
//!
//! The simple protocol may carry several statements; they run in order and
//! the first error ends the batch, as in Postgres. The extended protocol
//! prepares one statement at Parse (so Describe knows parameter and result
//! types) and runs it at Execute with the bound parameters.

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::{Arc, Mutex, OnceLock};

use arrow_pg::datatypes::into_pg_type;
use async_trait::async_trait;
use datafusion::arrow::array::{ArrayRef, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::common::ParamValues;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::execution::context::SessionContext;
use datafusion::logical_expr::LogicalPlan;
use datafusion::physical_plan::common::collect;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::sql::sqlparser::ast::Statement;
use futures::{Sink, SinkExt, TryStreamExt};
use pgwire::api::auth::StartupHandler;
use pgwire::api::auth::sasl::SASLState;
use pgwire::api::cancel::CancelHandler;
use pgwire::api::copy::CopyHandler;
use pgwire::api::portal::{Format, Portal};
use pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler};
use pgwire::api::results::{FieldInfo, Response, Tag};
use pgwire::api::stmt::QueryParser;
use pgwire::api::store::{Entry, PortalStore};
use pgwire::api::{ClientInfo, ClientPortalStore, DEFAULT_NAME, PgWireServerHandlers, Type};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::PgWireBackendMessage;
use pgwire::messages::extendedquery::{Describe, TARGET_TYPE_BYTE_STATEMENT};
use tokio::task::AbortHandle;
use weir_executor::Transaction;
use weir_planner::roles::SessionRole;
use weir_planner::{
    BackendEntry, CopyIn, Database, Error, IsolationLevel, Outcome, Prepared, SessionStatement,
    TransactionModes, TransactionStatus,
};

use crate::authentication::{Gate, Startup};
use crate::cancel::{CancelRegistry, CancelSignal, Canceller, SessionCancel};
use crate::copy_in::{self, CopyInProgress, SharedCopy};
use crate::copy_out::copy_out;
use crate::describe::send_statement_description;
use crate::errors::{error_info, to_pgwire};
use crate::oid_parameters::oid_parameters;
use crate::parameters::bind_parameters;
use crate::pg_fields::pg_fields;
use crate::rows::{TextOptions, encode_batches, encode_rows};
use crate::session::SessionParameters;
use crate::session_functions::{SessionHandles, register_session_functions};
use crate::sql_prepare::SqlPrepared;
use crate::transaction_block::{BlockReply, TransactionBlock};

/// A statement prepared through the extended protocol.
#[derive(Debug, Clone)]
pub(crate) struct PreparedStatement {
    /// Its text, as `pg_stat_activity` shows it.
    sql: String,
    prepared: Prepared,
    parameter_types: Vec<Option<DataType>>,
    /// Parameters described as `oid` or `oid[]` though planned as integers.
    oid_parameters: HashMap<usize, Type>,
}

/// pgwire builds a portal only from a default one; weir builds one to hand
/// arrow-pg a subset of a Bind's values ([`bind_parameters`]). The default
/// statement is replaced before use and never runs.
impl Default for PreparedStatement {
    fn default() -> Self {
        Self {
            sql: String::new(),
            prepared: Prepared::Flush,
            parameter_types: Vec::new(),
            oid_parameters: HashMap::new(),
        }
    }
}

/// Plans statements for the extended protocol, in its session's context.
pub(crate) struct StatementPreparer {
    database: Arc<Database>,
    ctx: SessionContext,
    /// A statement that fails to prepare fails the open block, if any.
    block: Arc<TransactionBlock>,
}

/// The columns a statement returns, if any.
fn result_schema(prepared: &Prepared) -> Option<SchemaRef> {
    let text = |names: &[&str]| {
        let fields: Vec<Field> = names
            .iter()
            .map(|n| Field::new(*n, DataType::Utf8, true))
            .collect();
        Some(Arc::new(Schema::new(fields)))
    };
    match prepared {
        Prepared::Session(SessionStatement::Show { name }) => text(&[name.as_str()]),
        Prepared::Session(SessionStatement::ShowAll) => text(&["name", "setting", "description"]),
        other => other.result_schema(),
    }
}

impl StatementPreparer {
    async fn prepare(&self, sql: &str) -> PgWireResult<Option<PreparedStatement>> {
        let mut parsed = self.database.parse(sql).map_err(to_pgwire)?;
        if parsed.len() > 1 {
            return Err(to_pgwire(Error::user(
                "42601",
                "cannot insert multiple commands into a prepared statement",
            )));
        }
        let Some(statement) = parsed.pop() else {
            return Ok(None);
        };
        let oid_parameters = oid_parameters(&statement.statement);
        let prepared = self
            .database
            .prepare(&self.ctx, statement)
            .await
            .map_err(to_pgwire)?;
        let parameter_types = prepared.parameter_types().map_err(to_pgwire)?;
        Ok(Some(PreparedStatement {
            sql: sql.to_string(),
            prepared,
            parameter_types,
            oid_parameters,
        }))
    }
}

#[async_trait]
impl QueryParser for StatementPreparer {
    type Statement = PreparedStatement;

    async fn parse_sql<C>(
        &self,
        _client: &C,
        sql: &str,
        _types: &[Option<Type>],
    ) -> PgWireResult<Option<PreparedStatement>>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        let prepared = self.prepare(sql).await;
        if prepared.is_err() {
            self.block.failed();
        }
        prepared
    }

    fn get_parameter_types(&self, statement: &PreparedStatement) -> PgWireResult<Vec<Type>> {
        statement
            .parameter_types
            .iter()
            .enumerate()
            .map(|(i, t)| match (statement.oid_parameters.get(&i), t) {
                (Some(oid), _) => Ok(oid.clone()),
                (None, Some(t)) => into_pg_type(t),
                (None, None) => Ok(Type::UNKNOWN),
            })
            .collect()
    }

    fn get_result_schema(
        &self,
        statement: &PreparedStatement,
        format: Option<&Format>,
    ) -> PgWireResult<Vec<FieldInfo>> {
        match result_schema(&statement.prepared) {
            Some(schema) => pg_fields(&schema, format.unwrap_or(&Format::UnifiedText)),
            None => Ok(Vec::new()),
        }
    }
}

/// A session: its parameters and its DataFusion context.
pub(crate) struct Connection {
    database: Arc<Database>,
    ctx: SessionContext,
    parameters: Arc<Mutex<SessionParameters>>,
    preparer: Arc<StatementPreparer>,
    cancel: Arc<SessionCancel>,
    block: Arc<TransactionBlock>,
    /// The session's row in `pg_stat_activity`, once startup filed it.
    backend: Arc<OnceLock<BackendEntry>>,
    /// Closes the connection once it has idled in an open block for
    /// `idle_in_transaction_session_timeout`.
    idle_timer: Mutex<Option<AbortHandle>>,
    /// A `COPY ... FROM STDIN` receiving its rows.
    copy: SharedCopy,
    /// The role the session runs as, which startup sets.
    role: Arc<SessionRole>,
    /// Statements prepared with SQL `PREPARE`.
    sql_prepared: SqlPrepared,
}

impl Connection {
    pub fn new(database: Arc<Database>, cancel: Arc<SessionCancel>) -> Self {
        let ctx = database.session_context();
        let transaction = Arc::new(Transaction::default());
        let role = Arc::new(SessionRole::default());
        {
            let state = ctx.state_ref();
            let mut state = state.write();
            state.config_mut().set_extension(Arc::clone(&transaction));
            state.config_mut().set_extension(Arc::clone(&role));
        }
        let parameters = Arc::default();
        register_session_functions(
            &ctx,
            &SessionHandles {
                database: Arc::clone(&database),
                parameters: Arc::clone(&parameters),
                cancel: Arc::clone(&cancel),
                role: Arc::clone(&role),
            },
        );
        let block = Arc::new(TransactionBlock::new(transaction));
        let preparer = Arc::new(StatementPreparer {
            database: Arc::clone(&database),
            ctx: ctx.clone(),
            block: Arc::clone(&block),
        });
        Self {
            database,
            ctx,
            parameters,
            preparer,
            cancel,
            block,
            backend: Arc::default(),
            idle_timer: Mutex::default(),
            copy: SharedCopy::default(),
            role,
            sql_prepared: SqlPrepared::default(),
        }
    }

    pub(crate) fn copy_progress(&self) -> &Mutex<CopyInProgress> {
        &self.copy
    }

    /// Writes the rows a COPY received.
    pub(crate) async fn copy_rows(&self, copy: &CopyIn, data: &[u8]) -> Result<u64, Error> {
        self.database.copy_in(&self.ctx, copy, data).await
    }

    /// A COPY failed after its statement had returned: as any failed
    /// statement, it fails an open block.
    pub(crate) fn copy_failed(&self) {
        self.block.failed();
        self.statement_ended();
    }

    /// Runs one statement as [`Connection::execute`] does, within the
    /// session's transaction block: refused if the block does not allow
    /// it, and failing the block if it fails.
    async fn run(
        &self,
        prepared: Prepared,
        params: Option<ParamValues>,
        format: &Format,
        materialize: bool,
        cancel: CancelSignal,
    ) -> PgWireResult<Response> {
        if let Err(e) = self.block.check(&prepared) {
            self.block.failed();
            return Err(to_pgwire(e));
        }
        let rule = prepared.clone();
        let result = self
            .execute(prepared, params, format, materialize, cancel)
            .await;
        match &result {
            Ok(_) => self.block.ran(&rule),
            Err(_) => self.block.failed(),
        }
        if result.is_ok() && self.flushes_after(&rule) {
            self.database
                .execute(&self.ctx, Prepared::Flush, None)
                .await
                .map_err(to_pgwire)?;
        }
        self.statement_ended();
        result
    }

    /// With `implicit_flush` on: whether `prepared` just committed writes
    /// (a write outside a block, or COMMIT), which views are to reflect
    /// before it returns.
    fn flushes_after(&self, prepared: &Prepared) -> bool {
        if !self.parameters.lock().is_ok_and(|p| p.implicit_flush()) {
            return false;
        }
        match prepared {
            Prepared::Session(SessionStatement::Commit) => true,
            Prepared::Plan(LogicalPlan::Dml(_)) | Prepared::Truncate(_) => !self.block.is_open(),
            _ => false,
        }
    }

    /// `rows` as they stream to the client after the statement returned:
    /// an error among them fails the open block, as one before would.
    fn failing_block_on_error(&self, rows: SendableRecordBatchStream) -> SendableRecordBatchStream {
        let block = Arc::clone(&self.block);
        let backend = Arc::clone(&self.backend);
        let schema = rows.schema();
        let rows = rows.inspect_err(move |_| {
            block.failed();
            if let Some(backend) = backend.get() {
                backend.set_transaction(block.status());
            }
        });
        Box::pin(RecordBatchStreamAdapter::new(schema, rows))
    }

    /// A statement that did not get as far as [`Connection::run`] failed
    /// (it did not parse or plan): inside a block, the block fails.
    fn failed_early(&self) {
        self.block.failed();
        self.statement_ended();
    }

    /// After each statement: the session's row in `pg_stat_activity`, and
    /// the idle clock of an open block.
    fn statement_ended(&self) {
        if let Some(backend) = self.backend.get() {
            let application_name = self
                .parameters
                .lock()
                .ok()
                .and_then(|p| p.get("application_name").ok())
                .unwrap_or_default();
            backend.statement_ended(self.block.status(), &application_name);
        }
        self.arm_idle_timer();
    }

    /// Runs one statement. Rows stream to the client lazily, unless
    /// `materialize` asks for them to be computed here first (so that any
    /// error surfaces before the next statement of a batch runs).
    async fn execute(
        &self,
        prepared: Prepared,
        params: Option<ParamValues>,
        format: &Format,
        materialize: bool,
        mut cancel: CancelSignal,
    ) -> PgWireResult<Response> {
        let schema = result_schema(&prepared);
        let options = self.text_options();
        let outcome = tokio::select! {
            outcome = self.database.execute(&self.ctx, prepared, params) => outcome.map_err(to_pgwire)?,
            e = cancel.cancelled() => return Err(e),
        };
        let reply = match outcome {
            Outcome::Rows(rows) if materialize => {
                let schema = rows.schema();
                let batches = tokio::select! {
                    batches = collect(rows) => batches.map_err(|e| to_pgwire(e.into()))?,
                    e = cancel.cancelled() => return Err(e),
                };
                return Ok(Response::Query(encode_batches(
                    batches, schema, format, options, cancel,
                )?));
            }
            Outcome::Rows(rows) => {
                let rows = self.failing_block_on_error(rows);
                return Ok(Response::Query(encode_rows(rows, format, options, cancel)?));
            }
            Outcome::Command(tag) => return Ok(Response::Execution(Tag::new(&tag))),
            Outcome::CopyIn(copy) => return Ok(copy_in::lock(&self.copy).start(copy)),
            Outcome::CopyOut { rows, format } => {
                return Ok(Response::CopyOut(copy_out(rows, format, options, cancel)?));
            }
            Outcome::Session(statement) => match self
                .block
                .run(&statement, self.transaction_defaults())
                .await
            {
                Some(reply) => match reply.map_err(to_pgwire)? {
                    BlockReply::Begin => SessionReply::Begin,
                    BlockReply::End(tag) => SessionReply::End(tag),
                    BlockReply::Done(tag) => SessionReply::Done(tag),
                },
                None => self.session_statement(statement).map_err(to_pgwire)?,
            },
        };
        Ok(match reply {
            SessionReply::Rows(rows) => {
                let schema = schema
                    .ok_or_else(|| to_pgwire(Error::Internal("SHOW without columns".into())))?;
                let columns: Vec<ArrayRef> = (0..schema.fields().len())
                    .map(|i| {
                        Arc::new(StringArray::from_iter_values(
                            rows.iter().map(|r| r[i].as_str()),
                        )) as ArrayRef
                    })
                    .collect();
                let batch = RecordBatch::try_new(Arc::clone(&schema), columns)
                    .map_err(|e| to_pgwire(Error::Internal(e.to_string())))?;
                Response::Query(encode_batches(
                    vec![batch],
                    schema,
                    format,
                    options,
                    cancel,
                )?)
            }
            SessionReply::Begin => Response::TransactionStart(Tag::new("BEGIN")),
            SessionReply::End(tag) => Response::TransactionEnd(Tag::new(tag)),
            SessionReply::Done(tag) => Response::Execution(Tag::new(tag)),
        })
    }

    /// The cancel signal of the statement `sql` about to run, with the
    /// session's `statement_timeout`; while it lives the session is
    /// `active` with `sql`.
    fn signal(&self, sql: &str) -> CancelSignal {
        let timeout = self
            .parameters
            .lock()
            .ok()
            .and_then(|p| p.statement_timeout());
        self.disarm_idle_timer();
        let mut signal = self.cancel.signal(timeout);
        signal.running = self.backend.get().map(|b| b.query_started(sql));
        signal
    }

    /// Starts the idle clock: `idle_in_transaction_session_timeout` with a
    /// block left open, `idle_session_timeout` without. If no statement
    /// starts before it runs out (rows still being sent do not count as
    /// idle), the connection closes, and an open block's writes are
    /// dropped.
    fn arm_idle_timer(&self) {
        let in_block = matches!(
            self.block.status(),
            TransactionStatus::InBlock | TransactionStatus::Failed
        );
        let timeout = self.parameters.lock().ok().and_then(|p| {
            if in_block {
                p.idle_in_transaction_timeout()
            } else {
                p.idle_session_timeout()
            }
        });
        let Some(timeout) = timeout else {
            return;
        };
        let cancel = Arc::clone(&self.cancel);
        let backend = Arc::clone(&self.backend);
        let timer = tokio::spawn(async move {
            loop {
                tokio::time::sleep(timeout).await;
                if !backend.get().is_some_and(BackendEntry::is_active) {
                    break;
                }
            }
            let pid = cancel.pid();
            let why = if in_block {
                "idle-in-transaction timeout"
            } else {
                "idle-session timeout"
            };
            tracing::info!(pid, "terminating connection due to {why}");
            cancel.terminate_backend(pid);
        });
        if let Some(earlier) = self.idle_timer_slot().replace(timer.abort_handle()) {
            earlier.abort();
        }
    }

    fn disarm_idle_timer(&self) {
        if let Some(timer) = self.idle_timer_slot().take() {
            timer.abort();
        }
    }

    fn idle_timer_slot(&self) -> std::sync::MutexGuard<'_, Option<AbortHandle>> {
        self.idle_timer.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sends the client the warning the last statement left, if any.
    async fn send_warning<C>(&self, client: &mut C) -> PgWireResult<()>
    where
        C: Sink<PgWireBackendMessage> + Unpin + Send,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        if let Some((code, warning)) = self.block.take_notice() {
            let notice = ErrorInfo::new("WARNING".into(), code.into(), warning);
            client
                .send(PgWireBackendMessage::NoticeResponse(notice.into()))
                .await?;
        }
        Ok(())
    }

    /// How this session's values are written as text.
    fn text_options(&self) -> TextOptions {
        let extra_float_digits = self.parameters.lock().map_or(1, |p| p.extra_float_digits());
        TextOptions { extra_float_digits }
    }

    /// What a block begun now starts as: the session's
    /// `default_transaction_isolation` and `default_transaction_read_only`.
    fn transaction_defaults(&self) -> TransactionModes {
        let Ok(parameters) = self.parameters.lock() else {
            return TransactionModes::default();
        };
        TransactionModes {
            isolation: parameters
                .get("default_transaction_isolation")
                .ok()
                .and_then(|name| IsolationLevel::from_name(&name)),
            read_only: parameters
                .get("default_transaction_read_only")
                .ok()
                .map(|value| value == "on"),
        }
    }

    /// Carries out a session statement.
    fn session_statement(&self, statement: SessionStatement) -> Result<SessionReply, Error> {
        let mut parameters = self
            .parameters
            .lock()
            .map_err(|_| Error::Internal("session lock poisoned".into()))?;
        Ok(match statement {
            SessionStatement::Set { name, value } => {
                parameters.set(&name, value)?;
                SessionReply::Done("SET")
            }
            SessionStatement::Reset { name } => {
                parameters.reset(name.as_deref())?;
                SessionReply::Done("RESET")
            }
            SessionStatement::Show { name } => {
                let value = match (name.as_str(), self.block.characteristics()) {
                    ("transaction_isolation", Some((level, _))) => level.name().to_string(),
                    ("transaction_read_only", Some((_, read_only))) => on_off(read_only),
                    ("transaction_isolation", None) => {
                        parameters.get("default_transaction_isolation")?
                    }
                    ("transaction_read_only", None) => {
                        parameters.get("default_transaction_read_only")?
                    }
                    _ => parameters.get(&name)?,
                };
                SessionReply::Rows(vec![vec![value]])
            }
            SessionStatement::SetDefaults(modes) => {
                if let Some(level) = modes.isolation {
                    parameters.set("default_transaction_isolation", Some(level.name().into()))?;
                }
                if let Some(read_only) = modes.read_only {
                    parameters.set("default_transaction_read_only", Some(on_off(read_only)))?;
                }
                SessionReply::Done("SET")
            }
            SessionStatement::ShowAll => SessionReply::Rows(
                parameters
                    .all()
                    .into_iter()
                    .chain(self.database.settings())
                    .map(|(name, value, description)| {
                        vec![name.to_string(), value, description.to_string()]
                    })
                    .collect(),
            ),
            SessionStatement::Discard => {
                parameters.reset(None)?;
                SessionReply::Done("DISCARD ALL")
            }
            // The statement itself leaves the client's store in `do_query`,
            // where the store is in reach; DEALLOCATE ALL leaves them there.
            SessionStatement::Deallocate { .. } => SessionReply::Done("DEALLOCATE"),
            SessionStatement::Begin(_)
            | SessionStatement::SetTransaction(_)
            | SessionStatement::Commit
            | SessionStatement::Rollback
            | SessionStatement::Savepoint { .. }
            | SessionStatement::RollbackTo { .. }
            | SessionStatement::Release { .. } => {
                return Err(Error::Internal(
                    "transaction statement outside the transaction block".into(),
                ));
            }
        })
    }
}

/// What a session statement answers.
enum SessionReply {
    Rows(Vec<Vec<String>>),
    Begin,
    End(&'static str),
    Done(&'static str),
}

#[async_trait]
impl SimpleQueryHandler for Connection {
    async fn do_query<C>(&self, client: &mut C, query: &str) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let statements = match self.database.parse(query) {
            Ok(statements) => statements,
            Err(e) => {
                self.failed_early();
                return Err(to_pgwire(e));
            }
        };
        let mut responses = Vec::with_capacity(statements.len());
        let last = statements.len().saturating_sub(1);
        for (index, statement) in statements.into_iter().enumerate() {
            let materialize = index < last;
            let result = match &statement.statement {
                Statement::Prepare { .. } | Statement::Execute { .. } => {
                    let result = self
                        .sql_prepare_or_execute(&statement.statement, materialize)
                        .await;
                    if result.is_err() {
                        self.failed_early();
                    }
                    result
                }
                _ => {
                    let prepared = match self.database.prepare(&self.ctx, statement).await {
                        Ok(prepared) => prepared,
                        Err(e) => {
                            self.failed_early();
                            responses.push(Response::Error(Box::new(error_info(&e))));
                            break;
                        }
                    };
                    if let Prepared::Session(SessionStatement::Deallocate { name }) = &prepared {
                        if let Some(name) = name {
                            client.portal_store().rm_statement(name);
                        }
                        self.sql_prepared.remove(name.as_deref());
                    }
                    let cancel = self.signal(query);
                    self.run(prepared, None, &Format::UnifiedText, materialize, cancel)
                        .await
                }
            };
            self.send_warning(client).await?;
            match result {
                Ok(response) => responses.push(response),
                Err(PgWireError::UserError(info)) => {
                    responses.push(Response::Error(info));
                    break;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(responses)
    }
}

#[async_trait]
impl ExtendedQueryHandler for Connection {
    type Statement = PreparedStatement;
    type QueryParser = StatementPreparer;

    fn query_parser(&self) -> Arc<StatementPreparer> {
        Arc::clone(&self.preparer)
    }

    async fn on_describe<C>(&self, client: &mut C, message: Describe) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = PreparedStatement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        if message.target_type == TARGET_TYPE_BYTE_STATEMENT {
            let name = message.name.as_deref().unwrap_or(DEFAULT_NAME);
            if let Some(Entry::Value(statement)) = client.portal_store().get_statement(name) {
                let response = self.do_describe_statement(client, &statement).await?;
                return send_statement_description(client, &response).await;
            }
        }
        self._on_describe(client, message).await
    }

    async fn do_query<C>(
        &self,
        client: &mut C,
        portal: &Portal<PreparedStatement>,
        _max_rows: usize,
    ) -> PgWireResult<Response>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = PreparedStatement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let result = self.run_portal(portal, false).await;
        self.send_warning(client).await?;
        result
    }
}

impl Connection {
    /// Runs `portal`'s statement with its parameters bound, as a Bind's
    /// and SQL `EXECUTE`'s portals are run.
    async fn run_portal(
        &self,
        portal: &Portal<PreparedStatement>,
        materialize: bool,
    ) -> PgWireResult<Response> {
        let statement = &portal.statement.statement;
        let types: Vec<Option<&DataType>> = statement
            .parameter_types
            .iter()
            .map(Option::as_ref)
            .collect();
        let params = bind_parameters(portal, &types)?;
        self.run(
            statement.prepared.clone(),
            params,
            &portal.result_column_format,
            materialize,
            self.signal(&statement.sql),
        )
        .await
    }

    /// SQL `PREPARE` keeps a statement planned as a Parse plans it;
    /// `EXECUTE` runs one with its values bound as text.
    async fn sql_prepare_or_execute(
        &self,
        statement: &Statement,
        materialize: bool,
    ) -> PgWireResult<Response> {
        match statement {
            Statement::Prepare {
                name, statement, ..
            } => {
                let sql = statement.to_string();
                let Some(prepared) = self.preparer.prepare(&sql).await? else {
                    return Err(to_pgwire(Error::user("42601", "PREPARE of no statement")));
                };
                self.sql_prepared.insert(&name.value, prepared)?;
                Ok(Response::Execution(Tag::new("PREPARE")))
            }
            Statement::Execute {
                name: Some(name),
                parameters,
                ..
            } => {
                let portal = self.sql_prepared.portal(&name.to_string(), parameters)?;
                self.run_portal(&portal, materialize).await
            }
            _ => Err(to_pgwire(Error::not_supported("EXECUTE without a name"))),
        }
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.disarm_idle_timer();
    }
}

/// Everything pgwire needs to serve one connection.
pub(crate) struct ConnectionHandlers {
    connection: Arc<Connection>,
    startup: Arc<Startup>,
    canceller: Arc<Canceller>,
}

impl ConnectionHandlers {
    pub fn new(database: Arc<Database>, registry: Arc<CancelRegistry>, gate: Arc<Gate>) -> Self {
        let cancel = Arc::new(SessionCancel::new(Arc::clone(&registry)));
        let backends = Arc::clone(database.backends());
        let connection = Connection::new(database, Arc::clone(&cancel));
        let startup = Startup {
            gate,
            cancel,
            backends,
            backend: Arc::clone(&connection.backend),
            parameters: Arc::clone(&connection.parameters),
            role: Arc::clone(&connection.role),
            sasl: tokio::sync::Mutex::new(SASLState::Initial),
            slot: OnceLock::new(),
        };
        Self {
            connection: Arc::new(connection),
            startup: Arc::new(startup),
            canceller: Arc::new(Canceller { registry }),
        }
    }
}

impl ConnectionHandlers {
    /// The session's cancellation, which also learns the task serving it.
    pub fn cancel(&self) -> Arc<SessionCancel> {
        Arc::clone(&self.startup.cancel)
    }
}

impl PgWireServerHandlers for ConnectionHandlers {
    fn simple_query_handler(&self) -> Arc<impl SimpleQueryHandler> {
        Arc::clone(&self.connection)
    }

    fn extended_query_handler(&self) -> Arc<impl ExtendedQueryHandler> {
        Arc::clone(&self.connection)
    }

    fn startup_handler(&self) -> Arc<impl StartupHandler> {
        Arc::clone(&self.startup)
    }

    fn cancel_handler(&self) -> Arc<impl CancelHandler> {
        Arc::clone(&self.canceller)
    }

    fn copy_handler(&self) -> Arc<impl CopyHandler> {
        Arc::clone(&self.connection)
    }
}

fn on_off(on: bool) -> String {
    if on { "on" } else { "off" }.to_string()
}
