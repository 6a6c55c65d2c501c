//! Accepting connections, and stopping cleanly.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use pgwire::tokio::process_socket;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinSet;
use weir_planner::{Database, RestartStrategy};

use crate::Config;
use crate::cancel::CancelRegistry;
use crate::connection::ConnectionHandlers;

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
        let database = tokio::task::spawn_blocking(move || Database::open(&data_dir))
            .await?
            .with_context(|| {
                format!("cannot open the database in {}", config.data_dir.display())
            })?;
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
        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(serve(listener, Arc::new(database), stopped));
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

/// The restart strategy: views restart from the last completed checkpoint,
/// up to `restart_attempts` times, `restart_delay` apart (doubling each
/// time with `exponential_delay`); then, or at once with `none`, they are
/// left as they are, loudly.
async fn restart_views(database: &Database) {
    let settings = database.checkpoint_settings();
    if settings.restart_strategy == RestartStrategy::NoRestart {
        tracing::error!("restart_strategy is none: views keep running as they are");
        return;
    }
    for attempt in 1..=settings.restart_attempts {
        let delay = settings
            .restart_strategy
            .delay(settings.restart_delay, attempt);
        tokio::time::sleep(delay).await;
        match database.restart_views().await {
            Ok(()) => {
                tracing::warn!(
                    attempt,
                    "views restarted from the last completed checkpoint"
                );
                return;
            }
            Err(e) => tracing::error!(attempt, error = %e, "restarting views failed"),
        }
    }
    tracing::error!(
        attempts = settings.restart_attempts,
        "giving up restarting views; they keep running as they are"
    );
}

async fn serve(listener: TcpListener, database: Arc<Database>, mut stopped: oneshot::Receiver<()>) {
    let cancels = Arc::new(CancelRegistry::default());
    let mut sessions = JoinSet::new();
    let mut restarts = database.checkpoint_restarts();
    loop {
        tokio::select! {
            _ = &mut stopped => break,
            Some(Ok(())) = async { match restarts.as_mut() {
                Some(r) => Some(r.changed().await),
                None => None,
            } } => restart_views(&database).await,
            accepted = listener.accept() => match accepted {
                Ok((socket, peer)) => {
                    let handlers = ConnectionHandlers::new(Arc::clone(&database), Arc::clone(&cancels));
                    sessions.spawn(async move {
                        if let Err(e) = process_socket(socket, None, handlers).await {
                            tracing::debug!("connection from {peer} ended: {e}");
                        }
                    });
                }
                Err(e) => {
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = sessions.join_next(), if !sessions.is_empty() => {}
        }
    }
    drop(listener);
    sessions.shutdown().await;
    database.stop_views().await;
    // The last handle: closing it waits for the commit thread to finish.
    let _ = tokio::task::spawn_blocking(move || drop(database)).await;
    tracing::info!("weir stopped");
}

/// Resolves on Ctrl-C or SIGTERM: the signals that stop weir cleanly.
pub async fn shutdown_signal() -> std::io::Result<()> {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        result = tokio::signal::ctrl_c() => result,
        _ = terminate.recv() => Ok(()),
    }
}
