//! Functions that read or change the session calling them, registered on
//! each session's own context: `current_setting(name [, missing_ok])`,
//! `set_config(name, value, is_local)`, `pg_backend_pid()` and
//! `pg_cancel_backend(pid)`, which cancels another session's running query
//! as a cancel request would, and `pg_terminate_backend(pid)`, which ends
//! its connection; both say whether that session exists.
//!
//! A role may cancel or terminate only its own sessions, a superuser any.
//!
//! `current_user`, `session_user`, `current_role` and `user` answer the
//! role the session logged in as.
//!
//! `set_config` changes the parameter for the rest of the session whatever
//! `is_local` says: weir has no transaction for it to end with.

use std::sync::{Arc, Mutex};

use datafusion::arrow::datatypes::DataType;
use datafusion::common::ScalarValue;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::context::SessionContext;
use datafusion::logical_expr::{ColumnarValue, Volatility, create_udf};
use weir_planner::roles::SessionRole;
use weir_planner::{Database, Error};

use crate::cancel::SessionCancel;
use crate::session::SessionParameters;

/// What the session functions reach.
#[derive(Clone)]
pub(crate) struct SessionHandles {
    pub database: Arc<Database>,
    pub parameters: Arc<Mutex<SessionParameters>>,
    pub cancel: Arc<SessionCancel>,
    pub role: Arc<SessionRole>,
}

/// Registers the session functions on the session's context.
pub(crate) fn register_session_functions(ctx: &SessionContext, handles: &SessionHandles) {
    for name in ["current_user", "session_user", "current_role", "user"] {
        let role = Arc::clone(&handles.role);
        ctx.register_udf(create_udf(
            name,
            vec![],
            DataType::Utf8,
            Volatility::Stable,
            Arc::new(move |_| {
                Ok(ColumnarValue::Scalar(ScalarValue::Utf8(Some(
                    role.name().to_string(),
                ))))
            }),
        ));
    }
    let session = handles.clone();
    ctx.register_udf(create_udf(
        "current_setting",
        vec![DataType::Utf8],
        DataType::Utf8,
        Volatility::Volatile,
        Arc::new(move |args| {
            let name = text_arg(args, 0)?;
            let value = current_setting(&session, &name).map_err(external)?;
            Ok(ColumnarValue::Scalar(ScalarValue::Utf8(Some(value))))
        }),
    ));
    let session = handles.clone();
    ctx.register_udf(create_udf(
        "set_config",
        vec![DataType::Utf8, DataType::Utf8, DataType::Boolean],
        DataType::Utf8,
        Volatility::Volatile,
        Arc::new(move |args| {
            let (name, value) = (text_arg(args, 0)?, text_arg(args, 1)?);
            let mut parameters = session
                .parameters
                .lock()
                .map_err(|_| external(Error::Internal("session lock poisoned".into())))?;
            parameters
                .set(&name.to_lowercase(), Some(value))
                .map_err(external)?;
            let value = parameters.get(&name.to_lowercase()).map_err(external)?;
            Ok(ColumnarValue::Scalar(ScalarValue::Utf8(Some(value))))
        }),
    ));
    for (name, end) in [
        (
            "pg_cancel_backend",
            SessionCancel::cancel_backend as fn(&SessionCancel, i32) -> bool,
        ),
        ("pg_terminate_backend", SessionCancel::terminate_backend),
    ] {
        let cancel = Arc::clone(&handles.cancel);
        let (database, role) = (Arc::clone(&handles.database), Arc::clone(&handles.role));
        ctx.register_udf(create_udf(
            name,
            vec![DataType::Int64],
            DataType::Boolean,
            Volatility::Volatile,
            Arc::new(move |args| {
                let pid = match args.first() {
                    Some(ColumnarValue::Scalar(ScalarValue::Int64(pid))) => *pid,
                    _ => {
                        return Err(external(Error::not_supported(
                            "pg_cancel_backend and pg_terminate_backend take a constant process id",
                        )));
                    }
                };
                let pid = pid.map(|pid| i32::try_from(pid).unwrap_or(0));
                // As in PostgreSQL: a superuser signals any session, a role
                // only its own.
                if let Some(target) = pid.and_then(|pid| database.backends().user_of(pid))
                    && target != role.name()
                    && !database.role(role.name()).is_some_and(|r| r.superuser)
                {
                    return Err(external(Error::user(
                        "42501",
                        format!("permission denied to signal the session of role \"{target}\""),
                    )));
                }
                let found = pid.map(|pid| end(&cancel, pid));
                Ok(ColumnarValue::Scalar(ScalarValue::Boolean(found)))
            }),
        ));
    }
    let cancel = Arc::clone(&handles.cancel);
    ctx.register_udf(create_udf(
        "pg_backend_pid",
        vec![],
        DataType::Int32,
        Volatility::Stable,
        Arc::new(move |_| {
            Ok(ColumnarValue::Scalar(ScalarValue::Int32(Some(
                cancel.pid(),
            ))))
        }),
    ));
}

/// A session parameter, or else a database setting (`checkpoint_interval`).
fn current_setting(session: &SessionHandles, name: &str) -> Result<String, Error> {
    let name = name.to_lowercase();
    let parameters = session
        .parameters
        .lock()
        .map_err(|_| Error::Internal("session lock poisoned".into()))?;
    match parameters.get(&name) {
        Ok(value) => Ok(value),
        Err(unknown) => session
            .database
            .settings()
            .into_iter()
            .find(|(setting, _, _)| *setting == name)
            .map(|(_, value, _)| value)
            .ok_or(unknown),
    }
}

/// Argument `i` as text; every argument of these functions is a constant.
fn text_arg(args: &[ColumnarValue], i: usize) -> Result<String> {
    match args.get(i) {
        Some(ColumnarValue::Scalar(ScalarValue::Utf8(Some(s)))) => Ok(s.clone()),
        Some(ColumnarValue::Scalar(ScalarValue::Utf8(None))) => Err(external(Error::user(
            "22004",
            "the setting name and value may not be NULL",
        ))),
        _ => Err(external(Error::not_supported(
            "session functions take constant arguments",
        ))),
    }
}

fn external(e: Error) -> DataFusionError {
    DataFusionError::External(Box::new(e))
}
