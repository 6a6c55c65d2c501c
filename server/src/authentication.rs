//! Who may connect, and as whom.
//!
//! A client names a role of the catalog and the database `weir`. Over
//! loopback the role is trusted without a password while `trust_loopback`
//! is on (the default); from anywhere else, or with it off, the client
//! proves the role's password with SCRAM-SHA-256 (pgwire's), with channel
//! binding (`SCRAM-SHA-256-PLUS`) over TLS. A role without a password, or
//! one that does not exist, goes through the same exchange against a made
//! up secret and fails the same way (28P01), so roles cannot be probed.
//! With `remote_tls_only`, other hosts must use TLS (28000 otherwise).
//!
//! Once the role is known: it must have `LOGIN` (28000), the server must be
//! under `max_connections` and the role under its `CONNECTION LIMIT`
//! (53300). Failed attempts from one address are answered more slowly the
//! more of them there were in the last minute, up to 5 s each.

use std::collections::HashMap;
use std::fmt::Debug;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures::{Sink, SinkExt};
use pgwire::api::auth::sasl::scram::ScramAuth;
use pgwire::api::auth::sasl::{SASLState, SCRAM_SHA_256_METHOD, SCRAM_SHA_256_PLUS_METHOD};
use pgwire::api::auth::{
    AuthSource, DefaultServerParameterProvider, LoginInfo, Password, StartupHandler,
    finish_authentication, protocol_negotiation, save_startup_parameters_to_metadata,
};
use pgwire::api::{
    ClientInfo, PgWireConnectionState, PidSecretKeyGenerator, RandomPidSecretKeyGenerator,
};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::startup::{Authentication, PasswordMessageFamily};
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};
use weir_planner::roles::{RoleRecord, SCRAM_ITERATIONS, ScramSecret, SessionRole};
use weir_planner::{BackendEntry, BackendStart, Backends, Database, SERVER_VERSION};

use crate::cancel::SessionCancel;
use crate::config::SecurityConfig;
use crate::session::SessionParameters;

pub const DATABASE: &str = "weir";
/// Failed attempts remembered per address.
const FAILURE_WINDOW: Duration = Duration::from_secs(60);
const MAX_FAILURE_DELAY: Duration = Duration::from_secs(5);

/// How the server lets clients in; one for the whole server.
pub struct Gate {
    database: Arc<Database>,
    trust_loopback: bool,
    remote_tls_only: bool,
    max_connections: usize,
    /// pgwire's SCRAM over the catalog's secrets, with the certificate for
    /// channel binding when TLS is on; made once, at start.
    scram: ScramAuth,
    pids: RandomPidSecretKeyGenerator,
    /// Connections let in, by role.
    connections: Mutex<HashMap<String, usize>>,
    failures: Mutex<HashMap<IpAddr, Vec<Instant>>>,
}

impl Gate {
    /// # Errors
    /// When the certificate cannot be read for channel binding.
    pub fn new(
        database: Arc<Database>,
        security: &SecurityConfig,
        certificate_pem: Option<&[u8]>,
    ) -> PgWireResult<Self> {
        let secrets = Secrets {
            database: Arc::clone(&database),
            mock_salt_key: rand_key(),
        };
        let mut scram = ScramAuth::new(Arc::new(secrets));
        scram.set_iterations(SCRAM_ITERATIONS as usize);
        if let Some(pem) = certificate_pem {
            scram.configure_certificate(pem)?;
        }
        Ok(Self {
            database,
            trust_loopback: security.trust_loopback,
            remote_tls_only: security.remote_tls_only,
            max_connections: security.max_connections,
            scram,
            pids: RandomPidSecretKeyGenerator::default(),
            connections: Mutex::default(),
            failures: Mutex::default(),
        })
    }

    /// Takes one connection slot of `role`, or refuses (53300).
    fn admit(self: &Arc<Self>, role: &RoleRecord) -> PgWireResult<ConnectionSlot> {
        let mut connections = self.connections.lock().unwrap_or_else(|p| p.into_inner());
        let total: usize = connections.values().sum();
        if total >= self.max_connections && !role.superuser {
            return Err(fatal("53300", "sorry, too many clients already".into()));
        }
        let held = connections.entry(role.name.clone()).or_default();
        if role.connection_limit >= 0 && *held >= role.connection_limit as usize {
            return Err(fatal(
                "53300",
                format!("too many connections for role \"{}\"", role.name),
            ));
        }
        *held += 1;
        Ok(ConnectionSlot {
            gate: Arc::clone(self),
            role: role.name.clone(),
        })
    }

    /// Records a failed attempt from `ip`; how long to wait before saying so.
    fn failed(&self, ip: IpAddr) -> Duration {
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        failures.retain(|_, times| {
            times.retain(|t| now.duration_since(*t) < FAILURE_WINDOW);
            !times.is_empty()
        });
        let times = failures.entry(ip).or_default();
        times.push(now);
        let recent = times.len().min(16) as u32;
        (Duration::from_millis(100) * 2u32.pow(recent - 1)).min(MAX_FAILURE_DELAY)
    }
}

fn rand_key() -> [u8; 16] {
    use ring::rand::SecureRandom;
    let mut key = [0u8; 16];
    let _ = ring::rand::SystemRandom::new().fill(&mut key);
    key
}

/// A connection counted against its role's limit while it lasts.
pub(crate) struct ConnectionSlot {
    gate: Arc<Gate>,
    role: String,
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let mut connections = self
            .gate
            .connections
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(held) = connections.get_mut(&self.role) {
            *held = held.saturating_sub(1);
            if *held == 0 {
                connections.remove(&self.role);
            }
        }
    }
}

/// The catalog's secrets, as pgwire's SCRAM asks for them.
struct Secrets {
    database: Arc<Database>,
    /// Salts answered for roles that cannot log in with a password, the
    /// same each time for one name (as a real role's would be).
    mock_salt_key: [u8; 16],
}

impl Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secrets")
    }
}

impl Secrets {
    /// What SCRAM checks `user`'s proof against.
    fn secret(&self, user: &str) -> ScramSecret {
        match self.database.role(user) {
            Some(RoleRecord {
                password: Some(secret),
                ..
            }) => secret,
            _ => {
                // A secret no password matches, under a salt that looks real.
                let salt = ring::hmac::sign(
                    &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &self.mock_salt_key),
                    user.as_bytes(),
                );
                let password = String::from_utf8_lossy(&rand_key()).into_owned();
                ScramSecret::with_salt(&password, &salt.as_ref()[..16], SCRAM_ITERATIONS)
            }
        }
    }
}

#[async_trait]
impl AuthSource for Secrets {
    async fn get_password(&self, login: &LoginInfo) -> PgWireResult<Password> {
        let secret = self.secret(login.user().unwrap_or_default());
        Ok(Password::new(
            Some(secret.salt_bytes()),
            secret.salted_password_bytes(),
        ))
    }
}

fn fatal(code: &str, message: String) -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new(
        "FATAL".into(),
        code.into(),
        message,
    )))
}

/// One connection's startup.
pub(crate) struct Startup {
    pub gate: Arc<Gate>,
    /// The session's cancellation, registered once the client is let in.
    pub cancel: Arc<SessionCancel>,
    /// Where the session files itself for `pg_stat_activity`...
    pub backends: Arc<Backends>,
    /// ... and the entry it gets, which the session keeps.
    pub backend: Arc<OnceLock<BackendEntry>>,
    /// The session's parameters, which the startup's `application_name`
    /// sets.
    pub parameters: Arc<Mutex<SessionParameters>>,
    /// The role the session runs as, once known.
    pub role: Arc<SessionRole>,
    pub sasl: tokio::sync::Mutex<SASLState>,
    pub slot: OnceLock<ConnectionSlot>,
}

impl Startup {
    /// The user and database the client asked for; refuses a database
    /// weir does not serve.
    fn requested<C: ClientInfo>(client: &C) -> PgWireResult<String> {
        let user = client.metadata().get("user").cloned().unwrap_or_default();
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
        Ok(user)
    }

    /// Lets the client in as `user`, whose password (if asked) is proven.
    async fn let_in<C>(&self, client: &mut C, user: &str) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let role = match self.gate.database.role(user) {
            Some(role) => role,
            None => return Err(fatal("28000", format!("role \"{user}\" does not exist"))),
        };
        if !role.login {
            return Err(fatal(
                "28000",
                format!("role \"{user}\" is not permitted to log in"),
            ));
        }
        let slot = self.gate.admit(&role)?;
        let _ = self.slot.set(slot);
        self.role.set(user);
        let (pid, secret) = self.gate.pids.generate(client);
        client.set_pid_and_secret_key(pid, secret.clone());
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
            user: user.to_string(),
            database: DATABASE.to_string(),
            application_name,
            client: client.socket_addr(),
        }));
        let mut parameters = DefaultServerParameterProvider::default();
        parameters.is_superuser = role.superuser;
        parameters.server_version = SERVER_VERSION.to_string();
        finish_authentication(client, &parameters).await
    }

    /// A failed password exchange, answered after the address's delay.
    async fn refuse(&self, ip: IpAddr, user: &str, error: PgWireError) -> PgWireError {
        tokio::time::sleep(self.gate.failed(ip)).await;
        match error {
            PgWireError::InvalidPassword(_) | PgWireError::InvalidScramMessage(_) => fatal(
                "28P01",
                format!("password authentication failed for user \"{user}\""),
            ),
            other => other,
        }
    }
}

#[async_trait]
impl StartupHandler for Startup {
    async fn on_startup<C>(
        &self,
        client: &mut C,
        message: PgWireFrontendMessage,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        match message {
            PgWireFrontendMessage::Startup(ref startup) => {
                protocol_negotiation(client, startup).await?;
                save_startup_parameters_to_metadata(client, startup);
                let user = Self::requested(client)?;
                let peer = client.socket_addr().ip();
                let loopback = peer.is_loopback();
                if !loopback && self.gate.remote_tls_only && !client.is_secure() {
                    return Err(fatal(
                        "28000",
                        format!(
                            "no encryption: connections from {peer} must use TLS (sslmode=require)"
                        ),
                    ));
                }
                if loopback && self.gate.trust_loopback {
                    return self.let_in(client, &user).await;
                }
                let mut mechanisms = vec![SCRAM_SHA_256_METHOD.to_string()];
                if client.is_secure() && self.gate.scram.supports_channel_binding() {
                    mechanisms.insert(0, SCRAM_SHA_256_PLUS_METHOD.to_string());
                }
                client.set_state(PgWireConnectionState::AuthenticationInProgress);
                client
                    .send(PgWireBackendMessage::Authentication(Authentication::SASL(
                        mechanisms,
                    )))
                    .await?;
            }
            PgWireFrontendMessage::PasswordMessageFamily(message) => {
                let user = Self::requested(client)?;
                let ip = client.socket_addr().ip();
                let mut state = self.sasl.lock().await;
                let message = if let SASLState::Initial = *state {
                    let initial = message.into_sasl_initial_response()?;
                    if ![SCRAM_SHA_256_METHOD, SCRAM_SHA_256_PLUS_METHOD]
                        .contains(&initial.auth_method.as_str())
                    {
                        return Err(PgWireError::UnsupportedSASLAuthMethod(initial.auth_method));
                    }
                    *state = SASLState::ScramClientFirstReceived;
                    PasswordMessageFamily::SASLInitialResponse(initial)
                } else {
                    PasswordMessageFamily::SASLResponse(message.into_sasl_response()?)
                };
                let (response, next) = match self
                    .gate
                    .scram
                    .process_scram_message(client, message, &state)
                    .await
                {
                    Ok(answer) => answer,
                    Err(e) => return Err(self.refuse(ip, &user, e).await),
                };
                *state = next;
                if matches!(*state, SASLState::Finished) {
                    // Sent after the checks, so a refused role never sees
                    // the server's proof first.
                    if let Err(e) = self.let_in_after_proof(client, &user, response).await {
                        return Err(self.refuse(ip, &user, e).await);
                    }
                } else {
                    client
                        .send(PgWireBackendMessage::Authentication(response))
                        .await?;
                }
            }
            _ => {}
        }
        Ok(())
    }
}

impl Startup {
    async fn let_in_after_proof<C>(
        &self,
        client: &mut C,
        user: &str,
        server_final: Authentication,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        client
            .feed(PgWireBackendMessage::Authentication(server_final))
            .await?;
        self.let_in(client, user).await
    }
}
