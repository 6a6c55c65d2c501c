//! Query cancellation, including while rows stream.
//!
//! pgwire races a cancel request only against producing a response, but a
//! SELECT's work happens later, while its rows stream. So weir keeps its own
//! registry: every session registers its (pid, secret key) at startup with a
//! watch channel; a cancel request bumps that channel, and whatever the
//! session is doing for its current query — executing, or streaming rows —
//! stops with `57014`. A signal may also carry the session's
//! `statement_timeout`, which stops the query the same way when it expires.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use pgwire::api::cancel::CancelHandler;
use pgwire::error::PgWireError;
use pgwire::messages::cancel::CancelRequest;
use pgwire::messages::startup::SecretKey;
use tokio::sync::watch;
use tokio::task::AbortHandle;
use tokio::time::Instant;
use weir_planner::{Error, RunningQuery};

use crate::errors::to_pgwire;

type SessionKey = (i32, Vec<u8>);

fn key(pid: i32, secret: &SecretKey) -> SessionKey {
    (pid, secret.to_bytes().to_vec())
}

/// Every live session that can be cancelled, shared by the whole server.
#[derive(Debug, Default)]
pub(crate) struct CancelRegistry {
    sessions: Mutex<HashMap<SessionKey, watch::Sender<u64>>>,
    /// Each started session's connection task, by process id, for
    /// `pg_terminate_backend`.
    tasks: Mutex<HashMap<i32, AbortHandle>>,
}

/// One session's end of the registry.
#[derive(Debug)]
pub(crate) struct SessionCancel {
    registry: Arc<CancelRegistry>,
    requests: watch::Sender<u64>,
    key: Mutex<Option<SessionKey>>,
    /// The task serving the connection, once spawned.
    task: Mutex<Option<AbortHandle>>,
}

impl SessionCancel {
    pub fn new(registry: Arc<CancelRegistry>) -> Self {
        Self {
            registry,
            requests: watch::Sender::new(0),
            key: Mutex::new(None),
            task: Mutex::new(None),
        }
    }

    /// Makes the session cancellable under the keys it gave its client.
    pub fn register(&self, pid: i32, secret: &SecretKey) {
        let key = key(pid, secret);
        if let Ok(mut sessions) = self.registry.sessions.lock() {
            sessions.insert(key.clone(), self.requests.clone());
        }
        if let Ok(mut own) = self.key.lock() {
            *own = Some(key);
        }
        self.register_task();
    }

    /// Makes the session's connection task the one `pg_terminate_backend`
    /// ends; it may be given before or after the session starts up.
    pub fn set_task(&self, task: AbortHandle) {
        if let Ok(mut own) = self.task.lock() {
            *own = Some(task);
        }
        self.register_task();
    }

    /// Files the task under the session's pid once both are known.
    fn register_task(&self) {
        let task = self.task.lock().ok().and_then(|t| t.clone());
        if let (Some(task), true) = (task, self.pid() != 0)
            && let Ok(mut tasks) = self.registry.tasks.lock()
        {
            tasks.insert(self.pid(), task);
        }
    }

    /// Ends the connection of the session with process id `pid`, as
    /// `pg_terminate_backend(pid)` does; whether there is such a session.
    pub fn terminate_backend(&self, pid: i32) -> bool {
        let task = self
            .registry
            .tasks
            .lock()
            .ok()
            .and_then(|tasks| tasks.get(&pid).cloned());
        match task {
            Some(task) => {
                task.abort();
                true
            }
            None => false,
        }
    }

    /// The process id the session gave its client (0 before startup).
    pub fn pid(&self) -> i32 {
        self.key
            .lock()
            .ok()
            .and_then(|k| k.as_ref().map(|(pid, _)| *pid))
            .unwrap_or(0)
    }

    /// Cancels the current query of the session with process id `pid`, as
    /// `pg_cancel_backend(pid)` does; whether there is such a session.
    pub fn cancel_backend(&self, pid: i32) -> bool {
        let Ok(sessions) = self.registry.sessions.lock() else {
            return false;
        };
        let mut found = false;
        for ((session_pid, _), requests) in sessions.iter() {
            if *session_pid == pid {
                requests.send_modify(|count| *count += 1);
                found = true;
            }
        }
        found
    }

    /// The client has gone: its running query, if any, stops as if
    /// cancelled, since nobody will read its answer.
    pub fn hang_up(&self) {
        self.requests.send_modify(|count| *count += 1);
    }

    /// The signal for the query about to run: fires on a cancel request
    /// that arrives from now on, and once `timeout` has passed, if given.
    pub fn signal(&self, timeout: Option<Duration>) -> CancelSignal {
        let mut requests = self.requests.subscribe();
        requests.mark_unchanged();
        CancelSignal {
            requests,
            deadline: timeout.map(|t| Instant::now() + t),
            running: None,
        }
    }
}

impl Drop for SessionCancel {
    fn drop(&mut self) {
        let own = self.key.lock().ok().and_then(|mut k| k.take());
        if let Some((pid, _)) = &own
            && let Ok(mut tasks) = self.registry.tasks.lock()
        {
            tasks.remove(pid);
        }
        if let (Some(key), Ok(mut sessions)) = (own, self.registry.sessions.lock()) {
            sessions.remove(&key);
        }
    }
}

pub(crate) struct CancelSignal {
    requests: watch::Receiver<u64>,
    deadline: Option<Instant>,
    /// A signal lives as long as its statement, rows sent included: the
    /// statement shows as `active` in `pg_stat_activity` until it drops.
    pub running: Option<RunningQuery>,
}

impl CancelSignal {
    /// Resolves when the query is cancelled or times out, with the error
    /// that ends it; otherwise never.
    pub async fn cancelled(&mut self) -> PgWireError {
        let requested = async {
            if self.requests.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        };
        let expired = async {
            match self.deadline {
                Some(deadline) => tokio::time::sleep_until(deadline).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = requested => PgWireError::QueryCanceled,
            () = expired => to_pgwire(Error::user(
                "57014",
                "canceling statement due to statement timeout",
            )),
        }
    }
}

/// Answers CancelRequest messages (which arrive on a connection of their own).
#[derive(Debug)]
pub(crate) struct Canceller {
    pub registry: Arc<CancelRegistry>,
}

#[async_trait]
impl CancelHandler for Canceller {
    async fn on_cancel_request(&self, request: CancelRequest) {
        let sessions = match self.registry.sessions.lock() {
            Ok(sessions) => sessions,
            Err(_) => return,
        };
        if let Some(requests) = sessions.get(&key(request.pid, &request.secret_key)) {
            requests.send_modify(|count| *count += 1);
        }
    }
}
