//! One client connection: its session and both query protocols.
//!
//! The simple protocol may carry several statements; they run in order and
//! the first error ends the batch, as in Postgres. The extended protocol
//! prepares one statement at Parse (so Describe knows parameter and result
//! types) and runs it at Execute with the bound parameters.

use std::fmt::Debug;
use std::sync::{Arc, Mutex};

use arrow_pg::datatypes::{arrow_schema_to_pg_fields, into_pg_type};
use async_trait::async_trait;
use datafusion::arrow::array::{ArrayRef, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::common::ParamValues;
use datafusion::execution::context::SessionContext;
use datafusion::physical_plan::common::collect;
use futures::{Sink, SinkExt};
use pgwire::api::auth::StartupHandler;
use pgwire::api::cancel::CancelHandler;
use pgwire::api::portal::{Format, Portal};
use pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler};
use pgwire::api::results::{FieldInfo, Response, Tag};
use pgwire::api::stmt::QueryParser;
use pgwire::api::store::PortalStore;
use pgwire::api::{ClientInfo, ClientPortalStore, PgWireServerHandlers, Type};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::PgWireBackendMessage;
use weir_executor::Transaction;
use weir_planner::{Database, Error, Outcome, Prepared, SessionStatement};

use crate::cancel::{CancelRegistry, CancelSignal, Canceller, SessionCancel};
use crate::errors::{error_info, to_pgwire};
use crate::parameters::bind_parameters;
use crate::rows::{TextOptions, encode_batches, encode_rows};
use crate::session::SessionParameters;
use crate::session_functions::{SessionHandles, register_session_functions};
use crate::startup::Startup;
use crate::transaction_block::{BlockReply, TransactionBlock};

/// A statement prepared through the extended protocol.
#[derive(Debug, Clone)]
pub(crate) struct PreparedStatement {
    prepared: Prepared,
    parameter_types: Vec<Option<DataType>>,
}

/// pgwire builds a portal only from a default one; weir builds one to hand
/// arrow-pg a subset of a Bind's values ([`bind_parameters`]). The default
/// statement is replaced before use and never runs.
impl Default for PreparedStatement {
    fn default() -> Self {
        Self {
            prepared: Prepared::Flush,
            parameter_types: Vec::new(),
        }
    }
}

/// Plans statements for the extended protocol, in its session's context.
pub(crate) struct StatementPreparer {
    database: Arc<Database>,
    ctx: SessionContext,
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
        let prepared = self
            .database
            .prepare(&self.ctx, statement)
            .await
            .map_err(to_pgwire)?;
        let parameter_types = prepared.parameter_types().map_err(to_pgwire)?;
        Ok(Some(PreparedStatement {
            prepared,
            parameter_types,
        }))
    }

    fn get_parameter_types(&self, statement: &PreparedStatement) -> PgWireResult<Vec<Type>> {
        statement
            .parameter_types
            .iter()
            .map(|t| match t {
                Some(t) => into_pg_type(t),
                None => Ok(Type::UNKNOWN),
            })
            .collect()
    }

    fn get_result_schema(
        &self,
        statement: &PreparedStatement,
        format: Option<&Format>,
    ) -> PgWireResult<Vec<FieldInfo>> {
        match result_schema(&statement.prepared) {
            Some(schema) => {
                arrow_schema_to_pg_fields(&schema, format.unwrap_or(&Format::UnifiedText), None)
            }
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
    block: TransactionBlock,
}

impl Connection {
    pub fn new(database: Arc<Database>, cancel: Arc<SessionCancel>) -> Self {
        let ctx = database.session_context();
        let transaction = Arc::new(Transaction::default());
        ctx.state_ref()
            .write()
            .config_mut()
            .set_extension(Arc::clone(&transaction));
        let parameters = Arc::default();
        register_session_functions(
            &ctx,
            &SessionHandles {
                database: Arc::clone(&database),
                parameters: Arc::clone(&parameters),
                cancel: Arc::clone(&cancel),
            },
        );
        let preparer = Arc::new(StatementPreparer {
            database: Arc::clone(&database),
            ctx: ctx.clone(),
        });
        Self {
            database,
            ctx,
            parameters,
            preparer,
            cancel,
            block: TransactionBlock::new(transaction),
        }
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
        result
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
                return Ok(Response::Query(encode_rows(rows, format, options, cancel)?));
            }
            Outcome::Command(tag) => return Ok(Response::Execution(Tag::new(&tag))),
            Outcome::Session(statement) => match self.block.run(&statement).await {
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

    /// The cancel signal of the statement about to run, with the session's
    /// `statement_timeout`.
    fn signal(&self) -> CancelSignal {
        let timeout = self
            .parameters
            .lock()
            .ok()
            .and_then(|p| p.statement_timeout());
        self.cancel.signal(timeout)
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
                SessionReply::Rows(vec![vec![parameters.get(&name)?]])
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
            SessionStatement::Begin
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
        let statements = self.database.parse(query).map_err(to_pgwire)?;
        let mut responses = Vec::with_capacity(statements.len());
        let last = statements.len().saturating_sub(1);
        for (index, statement) in statements.into_iter().enumerate() {
            let prepared = match self.database.prepare(&self.ctx, statement).await {
                Ok(prepared) => prepared,
                Err(e) => {
                    responses.push(Response::Error(Box::new(error_info(&e))));
                    break;
                }
            };
            if let Prepared::Session(SessionStatement::Deallocate { name: Some(name) }) = &prepared
            {
                client.portal_store().rm_statement(name);
            }
            let cancel = self.signal();
            let materialize = index < last;
            let result = self
                .run(prepared, None, &Format::UnifiedText, materialize, cancel)
                .await;
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
        let statement = &portal.statement.statement;
        let types: Vec<Option<&DataType>> = statement
            .parameter_types
            .iter()
            .map(Option::as_ref)
            .collect();
        let params = bind_parameters(portal, &types)?;
        let result = self
            .run(
                statement.prepared.clone(),
                params,
                &portal.result_column_format,
                false,
                self.signal(),
            )
            .await;
        self.send_warning(client).await?;
        result
    }
}

/// Everything pgwire needs to serve one connection.
pub(crate) struct ConnectionHandlers {
    connection: Arc<Connection>,
    startup: Arc<Startup>,
    canceller: Arc<Canceller>,
}

impl ConnectionHandlers {
    pub fn new(database: Arc<Database>, registry: Arc<CancelRegistry>) -> Self {
        let cancel = Arc::new(SessionCancel::new(Arc::clone(&registry)));
        Self {
            connection: Arc::new(Connection::new(database, Arc::clone(&cancel))),
            startup: Arc::new(Startup { cancel }),
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
}
