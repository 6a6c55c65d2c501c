//! The server's sessions, as `pg_catalog.pg_stat_activity` lists them:
//! one row per connected client with its process id, who and where it is,
//! and what it is doing — the statement it runs (`active`, for as long as
//! its rows are still being sent), or `idle`, `idle in transaction`, or
//! `idle in transaction (aborted)` with the last statement it ran.
//!
//! A session files itself with [`Backends::register`] once its client is
//! let in, and leaves when the [`BackendEntry`] it gets is dropped.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use datafusion::arrow::array::{
    ArrayRef, Int32Array, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

use crate::{Error, Result};

/// Every connected session, by process id.
#[derive(Debug, Default)]
pub struct Backends {
    by_pid: Mutex<BTreeMap<i32, Arc<Mutex<Backend>>>>,
}

/// Who a session is, as its startup told.
#[derive(Debug, Clone)]
pub struct BackendStart {
    pub pid: i32,
    pub user: String,
    pub database: String,
    pub application_name: String,
    pub client: SocketAddr,
}

/// Where a session stands with its transaction block, between statements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransactionStatus {
    /// No block is open.
    Idle,
    /// A block is open.
    InBlock,
    /// A block is open and failed: it waits for ROLLBACK.
    Failed,
}

#[derive(Debug)]
struct Backend {
    start: BackendStart,
    backend_start: SystemTime,
    /// Statements of this session still running or sending rows.
    running: usize,
    transaction: TransactionStatus,
    xact_start: Option<SystemTime>,
    query: String,
    query_start: Option<SystemTime>,
    state_change: SystemTime,
}

impl Backend {
    fn state(&self) -> &'static str {
        match (self.running, self.transaction) {
            (1.., _) => "active",
            (0, TransactionStatus::Idle) => "idle",
            (0, TransactionStatus::InBlock) => "idle in transaction",
            (0, TransactionStatus::Failed) => "idle in transaction (aborted)",
        }
    }
}

fn lock(backend: &Mutex<Backend>) -> MutexGuard<'_, Backend> {
    backend.lock().unwrap_or_else(|e| e.into_inner())
}

impl Backends {
    /// Files a session that has just been let in.
    pub fn register(self: &Arc<Self>, start: BackendStart) -> BackendEntry {
        let now = SystemTime::now();
        let pid = start.pid;
        let backend = Arc::new(Mutex::new(Backend {
            start,
            backend_start: now,
            running: 0,
            transaction: TransactionStatus::Idle,
            xact_start: None,
            query: String::new(),
            query_start: None,
            state_change: now,
        }));
        self.sessions().insert(pid, Arc::clone(&backend));
        BackendEntry {
            backends: Arc::clone(self),
            pid,
            backend,
        }
    }

    /// The role the session `pid` logged in as, if there is one.
    pub fn user_of(&self, pid: i32) -> Option<String> {
        let backend = self.sessions().get(&pid).cloned()?;
        Some(lock(&backend).start.user.clone())
    }

    fn sessions(&self) -> MutexGuard<'_, BTreeMap<i32, Arc<Mutex<Backend>>>> {
        self.by_pid.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The columns of `pg_stat_activity`, PostgreSQL's names and order.
    pub fn schema() -> SchemaRef {
        let time = || DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into()));
        Arc::new(Schema::new(vec![
            Field::new("datid", DataType::Int32, true),
            Field::new("datname", DataType::Utf8, true),
            Field::new("pid", DataType::Int32, false),
            Field::new("leader_pid", DataType::Int32, true),
            Field::new("usesysid", DataType::Int32, true),
            Field::new("usename", DataType::Utf8, true),
            Field::new("application_name", DataType::Utf8, false),
            Field::new("client_addr", DataType::Utf8, true),
            Field::new("client_hostname", DataType::Utf8, true),
            Field::new("client_port", DataType::Int32, true),
            Field::new("backend_start", time(), false),
            Field::new("xact_start", time(), true),
            Field::new("query_start", time(), true),
            Field::new("state_change", time(), false),
            Field::new("wait_event_type", DataType::Utf8, true),
            Field::new("wait_event", DataType::Utf8, true),
            Field::new("state", DataType::Utf8, false),
            Field::new("backend_xid", DataType::Utf8, true),
            Field::new("backend_xmin", DataType::Utf8, true),
            Field::new("query_id", DataType::Int64, true),
            Field::new("query", DataType::Utf8, false),
            Field::new("backend_type", DataType::Utf8, false),
        ]))
    }

    /// One row per session, as it is now.
    pub fn activity(&self) -> Result<RecordBatch> {
        let backends: Vec<Arc<Mutex<Backend>>> = self.sessions().values().cloned().collect();
        let rows: Vec<_> = backends.iter().map(|b| lock(b)).collect();
        let n = rows.len();
        let text = |f: &dyn Fn(&Backend) -> Option<String>| -> ArrayRef {
            Arc::new(StringArray::from_iter(rows.iter().map(|b| f(b))))
        };
        let int = |f: &dyn Fn(&Backend) -> Option<i32>| -> ArrayRef {
            Arc::new(Int32Array::from_iter(rows.iter().map(|b| f(b))))
        };
        let time = |f: &dyn Fn(&Backend) -> Option<SystemTime>| -> ArrayRef {
            Arc::new(
                TimestampMicrosecondArray::from_iter(rows.iter().map(|b| f(b).map(micros)))
                    .with_timezone("+00:00"),
            )
        };
        let nulls = |data_type: &DataType| datafusion::arrow::array::new_null_array(data_type, n);
        let columns = vec![
            nulls(&DataType::Int32),
            text(&|b| Some(b.start.database.clone())),
            int(&|b| Some(b.start.pid)),
            nulls(&DataType::Int32),
            nulls(&DataType::Int32),
            text(&|b| Some(b.start.user.clone())),
            text(&|b| Some(b.start.application_name.clone())),
            text(&|b| Some(b.start.client.ip().to_string())),
            nulls(&DataType::Utf8),
            int(&|b| Some(i32::from(b.start.client.port()))),
            time(&|b| Some(b.backend_start)),
            time(&|b| b.xact_start),
            time(&|b| b.query_start),
            time(&|b| Some(b.state_change)),
            nulls(&DataType::Utf8),
            nulls(&DataType::Utf8),
            text(&|b| Some(b.state().to_string())),
            nulls(&DataType::Utf8),
            nulls(&DataType::Utf8),
            Arc::new(Int64Array::new_null(n)),
            text(&|b| Some(b.query.clone())),
            text(&|_| Some("client backend".to_string())),
        ];
        RecordBatch::try_new(Self::schema(), columns)
            .map_err(|e| Error::Internal(format!("pg_stat_activity: {e}")))
    }
}

fn micros(time: SystemTime) -> i64 {
    time.duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// A session's own row; dropping it takes the row away.
#[derive(Debug)]
pub struct BackendEntry {
    backends: Arc<Backends>,
    pid: i32,
    backend: Arc<Mutex<Backend>>,
}

impl BackendEntry {
    /// The session starts running `query`: it is `active` until the
    /// returned guard is dropped, when the statement's last row is sent.
    pub fn query_started(&self, query: &str) -> RunningQuery {
        let now = SystemTime::now();
        let mut backend = lock(&self.backend);
        backend.running += 1;
        backend.query = query.to_string();
        backend.query_start = Some(now);
        backend.state_change = now;
        if backend.transaction == TransactionStatus::Idle {
            backend.xact_start = Some(now);
        }
        RunningQuery {
            backend: Arc::clone(&self.backend),
        }
    }

    /// Whether a statement of the session still runs or sends rows.
    pub fn is_active(&self) -> bool {
        lock(&self.backend).running > 0
    }

    /// Where the session's transaction block stands after a statement,
    /// and the application name it now has.
    pub fn statement_ended(&self, transaction: TransactionStatus, application_name: &str) {
        self.set_transaction(transaction);
        let mut backend = lock(&self.backend);
        if backend.start.application_name != application_name {
            backend.start.application_name = application_name.to_string();
        }
    }

    /// Where the session's transaction block stands now.
    pub fn set_transaction(&self, transaction: TransactionStatus) {
        let mut backend = lock(&self.backend);
        if backend.transaction == TransactionStatus::Idle && transaction != backend.transaction {
            backend.xact_start = backend.query_start;
        }
        backend.transaction = transaction;
        if backend.running == 0 && transaction == TransactionStatus::Idle {
            backend.xact_start = None;
        }
    }
}

impl Drop for BackendEntry {
    fn drop(&mut self) {
        let mut sessions = self.backends.sessions();
        if sessions
            .get(&self.pid)
            .is_some_and(|b| Arc::ptr_eq(b, &self.backend))
        {
            sessions.remove(&self.pid);
        }
    }
}

/// A statement that still runs or sends rows.
#[derive(Debug)]
pub struct RunningQuery {
    backend: Arc<Mutex<Backend>>,
}

impl Drop for RunningQuery {
    fn drop(&mut self) {
        let mut backend = lock(&self.backend);
        backend.running = backend.running.saturating_sub(1);
        if backend.running == 0 {
            backend.state_change = SystemTime::now();
            if backend.transaction == TransactionStatus::Idle {
                backend.xact_start = None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn start(pid: i32) -> BackendStart {
        BackendStart {
            pid,
            user: "weir".into(),
            database: "weir".into(),
            application_name: "psql".into(),
            client: "127.0.0.1:50000".parse().unwrap(),
        }
    }

    fn states(backends: &Backends) -> Vec<String> {
        let batch = backends.activity().unwrap();
        let column = batch
            .column_by_name("state")
            .unwrap()
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap()
            .clone();
        column.iter().map(|s| s.unwrap().to_string()).collect()
    }

    #[test]
    fn a_session_is_active_while_its_query_runs_and_leaves_when_dropped() {
        let backends = Arc::new(Backends::default());
        let first = backends.register(start(7));
        let second = backends.register(start(8));
        assert_eq!(states(&backends), ["idle", "idle"]);
        let running = first.query_started("SELECT 1");
        second.query_started("BEGIN");
        second.statement_ended(TransactionStatus::InBlock, "psql");
        assert_eq!(states(&backends), ["active", "idle in transaction"]);
        first.statement_ended(TransactionStatus::Idle, "psql");
        assert_eq!(states(&backends)[0], "active", "rows are still being sent");
        drop(running);
        second.statement_ended(TransactionStatus::Failed, "app");
        assert_eq!(states(&backends), ["idle", "idle in transaction (aborted)"]);
        drop(first);
        assert_eq!(backends.activity().unwrap().num_rows(), 1);
    }
}
