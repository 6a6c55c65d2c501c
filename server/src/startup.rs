//! Connection startup: who may connect. Today only the `weir` user to the
//! `weir` database over loopback, without a password; this is the one place
//! where password or SCRAM authentication will plug in.

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use futures::Sink;
use pgwire::api::ClientInfo;
use pgwire::api::auth::noop::NoopStartupHandler;
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};

use std::sync::{Mutex, OnceLock};
use weir_planner::{BackendEntry, BackendStart, Backends};

use crate::cancel::SessionCancel;
use crate::session::SessionParameters;

pub const USER: &str = "weir";
pub const DATABASE: &str = "weir";

pub(crate) struct Startup {
    /// The session's cancellation, registered once the client is let in.
    pub cancel: Arc<SessionCancel>,
    /// Where the session files itself for `pg_stat_activity`...
    pub backends: Arc<Backends>,
    /// ... and the entry it gets, which the session keeps.
    pub backend: Arc<OnceLock<BackendEntry>>,
    /// The session's parameters, which the startup's `application_name`
    /// sets.
    pub parameters: Arc<Mutex<SessionParameters>>,
}

fn fatal(code: &str, message: String) -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new(
        "FATAL".into(),
        code.into(),
        message,
    )))
}

#[async_trait]
impl NoopStartupHandler for Startup {
    async fn post_startup<C>(
        &self,
        client: &mut C,
        _message: PgWireFrontendMessage,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        if !client.socket_addr().ip().is_loopback() {
            return Err(fatal(
                "28000",
                "password authentication is not available yet: connect over loopback".into(),
            ));
        }
        let user = client.metadata().get("user").cloned().unwrap_or_default();
        if user != USER {
            return Err(fatal("28000", format!("role \"{user}\" does not exist")));
        }
        let database = client
            .metadata()
            .get("database")
            .cloned()
            .unwrap_or_else(|| user.clone());
        if database != DATABASE {
            return Err(fatal(
                "3D000",
                format!("database \"{database}\" does not exist"),
            ));
        }
        let (pid, secret) = client.pid_and_secret_key();
        self.cancel.register(pid, &secret);
        let application_name = client
            .metadata()
            .get("application_name")
            .cloned()
            .unwrap_or_default();
        if let Ok(mut parameters) = self.parameters.lock() {
            let _ = parameters.set("application_name", Some(application_name.clone()));
        }
        let _ = self.backend.set(self.backends.register(BackendStart {
            pid,
            user,
            database,
            application_name,
            client: client.socket_addr(),
        }));
        Ok(())
    }
}
