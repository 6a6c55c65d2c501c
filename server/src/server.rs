//! Accepting connections, and stopping cleanly.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinSet;
use weir_planner::{CheckpointSettings, Database, RestartStrategy};

use crate::Config;
use crate::authentication::Gate;
use crate::cancel::CancelRegistry;
use crate::connection::ConnectionHandlers;
use crate::hangup;
use crate::tls::Tls;
use crate::wire::serve_socket;

/// What every connection is served with.
#[derive(Clone)]
struct Serving {
    max_message_size: usize,
    gate: Arc<Gate>,
    tls: Option<pgwire::tokio::TlsAcceptor>,
}

/// A server accepting connections in the background.
pub struct RunningServer {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl RunningServer {
    /// Opens the database in `config.data_dir` and starts listening.
    pub async fn start(config: &Config) -> anyhow::Result<Self> {
        let data_dir = config.data_dir.clone();
        let memory = config.query_memory_limit;
        let mut database = tokio::task::spawn_blocking(move || Database::open(&data_dir, memory))
            .await?
            .with_context(|| {
                format!("cannot open the database in {}", config.data_dir.display())
            })?;
        database.allow_file_roots(config.file_roots.iter().map(PathBuf::as_path));
        if let Some(url) = &config.restore_savepoint {
            let manifest = database
                .stage_savepoint(url, config.restore_state_backend.as_deref())
                .await
                .with_context(|| format!("cannot restore the savepoint at {url}"))?;
            tracing::info!(
                savepoint = manifest.name,
                epoch = manifest.epoch,
                "restoring savepoint"
            );
        }
        database
            .start_views()
            .await
            .context("cannot start the materialized views")?;
        let tls = match (&config.security.tls_cert, &config.security.tls_key) {
            (Some(cert), Some(key)) => Some(Tls::load(cert, key)?),
            (None, None) => None,
            _ => anyhow::bail!("TLS needs both --tls-cert and --tls-key"),
        };
        let database = Arc::new(database);
        first_password(&database).await?;
        let gate = Gate::new(
            Arc::clone(&database),
            &config.security,
            tls.as_ref().map(|t| t.certificate_pem.as_slice()),
        )
        .context("the TLS certificate cannot be used for SCRAM channel binding")?;
        let gate = Arc::new(gate);
        let serving = Serving {
            max_message_size: config.max_message_size,
            gate,
            tls: tls.map(|t| t.acceptor),
        };
        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(serve(listener, database, stopped, serving));
        tracing::info!(
            "weir is listening on {addr}, data in {}",
            config.data_dir.display()
        );
        Ok(Self {
            addr,
            stop: Some(stop),
            task,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Closes every connection and the database. Writes already
    /// acknowledged are durable; the data directory can be reopened as soon
    /// as this returns.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.task).await;
    }
}

/// Restarts views each time one of them fails, or checkpoints fail more
/// often in a row than `tolerable_checkpoint_failures`, in a task of its
/// own: connections, queries on tables and shutdown are served while views
/// wait out `restart_delay` and restart. Attempts count across failures
/// for the life of the server (`ALTER MATERIALIZED VIEW ... RESUME` starts
/// the count again), so `restart_attempts` caps them however often the
/// failures recur, and `exponential_delay` doubles from one to the next.
/// Once they are used up, failed views stay failed, with their error in
/// `weir_catalog.views`.
async fn supervise_restarts(database: Arc<Database>) {
    let Some(mut checkpoint_restarts) = database.checkpoint_restarts() else {
        return;
    };
    let mut view_failures = database.view_failures();
    loop {
        let why = tokio::select! {
            changed = checkpoint_restarts.changed() => match changed {
                Ok(()) => "too many checkpoints failed",
                Err(_) => return,
            },
            changed = view_failures.changed() => match changed {
                Ok(()) => "a view failed",
                Err(_) => return,
            },
        };
        let settings = database.checkpoint_settings();
        let attempts = database.restarts_used();
        let Some(delay) = next_restart(&settings, attempts) else {
            if settings.restart_strategy == RestartStrategy::NoRestart {
                tracing::error!(why, "restart_strategy is none: views are not restarted");
            } else {
                tracing::error!(
                    why,
                    attempts,
                    "restart_attempts used up: views are not restarted again (ALTER MATERIALIZED VIEW ... RESUME restarts them)"
                );
            }
            continue;
        };
        database.count_restart();
        tokio::time::sleep(delay).await;
        // Failures of the views being replaced are not new failures.
        view_failures.mark_unchanged();
        match database.restart_views().await {
            Ok(()) => tracing::warn!(
                why,
                attempt = attempts + 1,
                "views restarted from the last completed checkpoint"
            ),
            Err(e) => {
                tracing::error!(why, attempt = attempts + 1, error = %e, "restarting views failed")
            }
        }
    }
}

/// How long to wait before the restart that follows `attempts` earlier
/// ones, or `None` when the strategy allows no more.
fn next_restart(settings: &CheckpointSettings, attempts: u32) -> Option<Duration> {
    if settings.restart_strategy == RestartStrategy::NoRestart
        || attempts >= settings.restart_attempts
    {
        return None;
    }
    Some(
        settings
            .restart_strategy
            .delay(settings.restart_delay, attempts + 1),
    )
}

/// Sets the bootstrap superuser's password from `WEIR_PASSWORD` if it has
/// none, or says how to set one.
async fn first_password(database: &Database) -> anyhow::Result<()> {
    use weir_planner::roles::BOOTSTRAP_ROLE;
    if let Ok(password) = std::env::var("WEIR_PASSWORD")
        && !password.is_empty()
        && database
            .set_first_password(BOOTSTRAP_ROLE, &password)
            .await?
    {
        tracing::info!("the password of superuser \"{BOOTSTRAP_ROLE}\" was set from WEIR_PASSWORD");
    }
    if database
        .role(BOOTSTRAP_ROLE)
        .is_some_and(|r| r.superuser && r.password.is_none())
    {
        tracing::info!(
            "superuser \"{BOOTSTRAP_ROLE}\" has no password: it logs in over loopback only; \
             set one with ALTER ROLE {BOOTSTRAP_ROLE} PASSWORD '...' (or start with WEIR_PASSWORD)"
        );
    }
    Ok(())
}

async fn serve(
    listener: TcpListener,
    database: Arc<Database>,
    mut stopped: oneshot::Receiver<()>,
    serving: Serving,
) {
    let cancels = Arc::new(CancelRegistry::default());
    let mut sessions = JoinSet::new();
    let restarts = tokio::spawn(supervise_restarts(Arc::clone(&database)));
    loop {
        tokio::select! {
            _ = &mut stopped => break,
            accepted = listener.accept() => match accepted {
                Ok((socket, peer)) => {
                    let handlers = ConnectionHandlers::new(
                        Arc::clone(&database),
                        Arc::clone(&cancels),
                        Arc::clone(&serving.gate),
                    );
                    let cancel = handlers.cancel();
                    let serving = serving.clone();
                    let task = sessions.spawn(async move {
                        if let Err(e) = serve_connection(socket, handlers, serving).await {
                            tracing::debug!("connection from {peer} ended: {e}");
                        }
                    });
                    cancel.set_task(task);
                }
                Err(e) => {
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(ended) = sessions.join_next(), if !sessions.is_empty() => {
                if let Err(e) = ended
                    && e.is_panic()
                {
                    // The protocol decoder panics on some malformed frames:
                    // only that connection ends.
                    tracing::warn!("a connection ended in a panic: {e}");
                }
            }
        }
    }
    drop(listener);
    restarts.abort();
    let _ = restarts.await;
    sessions.shutdown().await;
    database.stop_views().await;
    // The last handle: closing it waits for the commit thread to finish.
    let _ = tokio::task::spawn_blocking(move || drop(database)).await;
    tracing::info!("weir stopped");
}

/// Serves one client until it leaves; if it leaves while a statement
/// runs, the statement stops.
async fn serve_connection(
    socket: TcpStream,
    handlers: ConnectionHandlers,
    serving: Serving,
) -> std::io::Result<()> {
    let cancel = handlers.cancel();
    let (socket, watch) = hangup::watched(socket)?;
    let serving = serve_socket(socket, handlers, serving.max_message_size, serving.tls);
    tokio::pin!(serving);
    tokio::select! {
        served = &mut serving => served,
        () = hangup::client_gone(&watch) => {
            cancel.hang_up();
            drop(watch);
            serving.await
        }
    }
}

/// Resolves on Ctrl-C or SIGTERM: the signals that stop weir cleanly.
pub async fn shutdown_signal() -> std::io::Result<()> {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        result = tokio::signal::ctrl_c() => result,
        _ = terminate.recv() => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_attempts_cap_restarts_and_exponential_delay_doubles() {
        let mut settings = CheckpointSettings {
            restart_attempts: 2,
            restart_delay: Duration::from_secs(1),
            restart_strategy: RestartStrategy::ExponentialDelay,
            ..CheckpointSettings::default()
        };
        assert_eq!(next_restart(&settings, 0), Some(Duration::from_secs(1)));
        assert_eq!(next_restart(&settings, 1), Some(Duration::from_secs(2)));
        assert_eq!(next_restart(&settings, 2), None);
        settings.restart_strategy = RestartStrategy::FixedDelay;
        assert_eq!(next_restart(&settings, 1), Some(Duration::from_secs(1)));
        settings.restart_strategy = RestartStrategy::NoRestart;
        assert_eq!(next_restart(&settings, 0), None);
    }
}
