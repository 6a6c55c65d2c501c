//! Crash tests: a real server process killed with SIGKILL under load, then
//! restarted on the same data directory. Every write that was acknowledged
//! must be there exactly once, and nothing that was never sent may appear.
//!
//! The server process is this test binary itself, started again with
//! [`CHILD_ENV`] set: then it only serves, until it is killed or stopped
//! with SIGTERM like the `weir` binary.

use std::collections::HashSet;
use std::future::Future;
use std::io::BufRead;
use std::path::Path;
use std::pin::Pin;
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, bail, ensure};
use tokio_postgres::NoTls;

const CHILD_ENV: &str = "WEIR_SQL_TESTS_SERVE_DIR";
const WRITERS: i32 = 4;

use crate::Test;

pub const TESTS: &[(&str, Test)] = &[
    ("crash/kill -9 under insert load", || {
        Box::pin(kill_under_insert_load())
    }),
    ("crash/SIGTERM under insert load stops cleanly", || {
        Box::pin(terminate_under_insert_load())
    }),
    (
        "crash/kill -9 again and again under load (20 kills, WEIR_CRASH_ROUNDS in the campaign): views equal the batch answer",
        || Box::pin(kill_views_repeatedly()),
    ),
];

/// In a child started by [`ServerProcess::start`]: serve until killed or
/// stopped by SIGTERM.
/// A child server starts from this savepoint (`--restore-savepoint`).
pub(crate) const RESTORE_ENV: &str = "WEIR_TEST_RESTORE_SAVEPOINT";
/// ... into this state backend (`--state-backend`).
pub(crate) const BACKEND_ENV: &str = "WEIR_TEST_STATE_BACKEND";

pub fn serve_if_child() -> Option<ExitCode> {
    let dir = std::env::var_os(CHILD_ENV)?;
    let runtime = weir_server::runtime().ok()?;
    let result: anyhow::Result<()> = runtime.block_on(async {
        let mut config = weir_server::Config::ephemeral(Path::new(&dir));
        config.restore_savepoint = std::env::var(RESTORE_ENV).ok();
        config.restore_state_backend = std::env::var(BACKEND_ENV).ok();
        let server = weir_server::RunningServer::start(&config).await?;
        println!("PORT {}", server.local_addr().port());
        weir_server::shutdown_signal().await?;
        server.shutdown().await;
        Ok(())
    });
    match result {
        Ok(()) => Some(ExitCode::SUCCESS),
        Err(e) => {
            eprintln!("server child failed: {e:?}");
            Some(ExitCode::FAILURE)
        }
    }
}

/// A server in its own process, killed when dropped.
pub(crate) struct ServerProcess {
    child: Child,
    pub(crate) port: u16,
}

impl ServerProcess {
    pub(crate) fn start(data_dir: &Path) -> anyhow::Result<Self> {
        Self::start_with_env(data_dir, &[])
    }

    /// Starts a server with these environment variables set.
    pub(crate) fn start_with_env(data_dir: &Path, env: &[(&str, &str)]) -> anyhow::Result<Self> {
        let mut child = Command::new(std::env::current_exe()?)
            .env(CHILD_ENV, data_dir)
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("cannot start the server process")?;
        let stdout = child.stdout.take().context("no stdout")?;
        let mut line = String::new();
        std::io::BufReader::new(stdout).read_line(&mut line)?;
        let port = match line.trim().strip_prefix("PORT ").map(str::parse) {
            Some(Ok(port)) => port,
            _ => {
                let _ = child.kill();
                bail!("server process did not report its port: {line:?}");
            }
        };
        Ok(Self { child, port })
    }

    /// SIGKILL: no shutdown code runs.
    pub(crate) fn kill(mut self) -> anyhow::Result<()> {
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }

    /// SIGTERM, then waits (bounded) for a clean exit.
    async fn terminate(mut self) -> anyhow::Result<()> {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()?;
        ensure!(status.success(), "kill -TERM failed");
        for _ in 0..300 {
            if let Some(status) = self.child.try_wait()? {
                ensure!(
                    status.success(),
                    "server exited with {status} after SIGTERM"
                );
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!("server did not stop within 30 s of SIGTERM")
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) async fn connect(port: u16) -> anyhow::Result<tokio_postgres::Client> {
    let url = format!("host=127.0.0.1 port={port} user=weir dbname=weir");
    let (client, connection) = tokio_postgres::connect(&url, NoTls).await?;
    tokio::spawn(connection);
    Ok(client)
}

/// One writer: inserts (writer, 0), (writer, 1), ... until the server dies.
/// Returns the sequence numbers acknowledged and the next one it would send.
async fn write_until_killed(
    port: u16,
    writer: i32,
    acked: Arc<Mutex<Vec<i64>>>,
) -> anyhow::Result<i64> {
    let client = connect(port).await?;
    let insert = client.prepare("INSERT INTO log VALUES ($1, $2)").await?;
    let mut seq = 0i64;
    loop {
        let sent = seq;
        seq += 1;
        match client.execute(&insert, &[&writer, &sent]).await {
            Ok(1) => acked
                .lock()
                .map_err(|_| anyhow::anyhow!("poisoned"))?
                .push(sent),
            Ok(n) => bail!("INSERT reported {n} rows"),
            Err(_) => return Ok(seq),
        }
    }
}

async fn kill_under_insert_load() -> anyhow::Result<()> {
    stop_under_insert_load(|server| Box::pin(async move { server.kill() })).await
}

async fn terminate_under_insert_load() -> anyhow::Result<()> {
    stop_under_insert_load(|server| Box::pin(server.terminate())).await
}

type Stop = fn(ServerProcess) -> Pin<Box<dyn Future<Output = anyhow::Result<()>>>>;

/// Writers insert rows until `stop` ends the server; after a restart every
/// acknowledged row is there once, and no row that was never sent.
async fn stop_under_insert_load(stop: Stop) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let server = ServerProcess::start(dir.path())?;
    // Append-only, so a row applied twice would show up twice.
    connect(server.port)
        .await?
        .batch_execute("CREATE TABLE log (writer INT, seq BIGINT) APPEND ONLY")
        .await?;

    let mut writers = Vec::new();
    for writer in 0..WRITERS {
        let acked = Arc::new(Mutex::new(Vec::new()));
        let task = tokio::spawn(write_until_killed(server.port, writer, Arc::clone(&acked)));
        writers.push((writer, acked, task));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop(server).await?;

    let restarted = ServerProcess::start(dir.path())?;
    let rows = connect(restarted.port)
        .await?
        .query("SELECT writer, seq FROM log", &[])
        .await?;
    let mut stored = HashSet::new();
    for row in &rows {
        let key: (i32, i64) = (row.get(0), row.get(1));
        ensure!(stored.insert(key), "row {key:?} is stored twice");
    }
    let mut acknowledged = 0;
    for (writer, acked, task) in writers {
        let next_unsent = task.await??;
        let acked = acked.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
        acknowledged += acked.len();
        for &seq in acked.iter() {
            ensure!(
                stored.contains(&(writer, seq)),
                "acknowledged row ({writer}, {seq}) is lost"
            );
        }
        for &(w, seq) in &stored {
            ensure!(
                w != writer || seq < next_unsent,
                "row ({w}, {seq}) was never sent"
            );
        }
    }
    ensure!(
        acknowledged > 0,
        "no INSERT was acknowledged before the kill"
    );
    println!(
        "    {acknowledged} acknowledged rows, {} stored after the restart",
        stored.len()
    );
    Ok(())
}

/// Kills during [`kill_views_repeatedly`]: 20, or `WEIR_CRASH_ROUNDS` (the
/// fault campaign's larger run).
fn kills() -> usize {
    std::env::var("WEIR_CRASH_ROUNDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(20)
}

/// Views over a keyed table (updated) and an append-only one (inserted),
/// with aggregates, a join and a view on a view.
const VIEWS: &[(&str, &str)] = &[
    (
        "by_grp",
        "SELECT grp, count(*) AS n, sum(amount) AS total FROM ev GROUP BY grp",
    ),
    (
        "by_writer",
        "SELECT writer, count(*) AS n, max(seq) AS last FROM ev GROUP BY writer",
    ),
    (
        "joined",
        "SELECT e.grp, a.owner, count(*) AS n, sum(e.amount + a.balance) AS s \
         FROM ev e JOIN acct a ON e.grp = a.id GROUP BY e.grp, a.owner",
    ),
    (
        "top_groups",
        "SELECT grp, total FROM by_grp ORDER BY total DESC, grp LIMIT 3",
    ),
];

/// A writer of [`kill_views_repeatedly`]: inserts events (and, for
/// writer 0, updates balances) until the server dies. Returns the
/// sequence numbers acknowledged and the next one it would have sent.
async fn write_events_until_killed(port: u16, writer: i32, first: i64) -> (Vec<i64>, i64) {
    let mut acked = Vec::new();
    let mut seq = first;
    let Ok(client) = connect(port).await else {
        return (acked, seq);
    };
    let (Ok(insert), Ok(update)) = (
        client
            .prepare("INSERT INTO ev VALUES ($1, $2, $3, $4)")
            .await,
        client
            .prepare("UPDATE acct SET balance = balance + 1 WHERE id = $1")
            .await,
    ) else {
        return (acked, seq);
    };
    loop {
        let sent = seq;
        seq += 1;
        let grp = (sent % 7) as i32;
        if writer == 0 && sent % 3 == 0 && client.execute(&update, &[&grp]).await.is_err() {
            return (acked, seq);
        }
        match client
            .execute(&insert, &[&writer, &sent, &grp, &(sent % 100)])
            .await
        {
            Ok(_) => acked.push(sent),
            Err(_) => return (acked, seq),
        }
    }
}

/// Rows of a query as sorted text lines.
async fn sorted_rows(client: &tokio_postgres::Client, sql: &str) -> anyhow::Result<Vec<String>> {
    let mut rows: Vec<String> = client
        .simple_query(sql)
        .await?
        .into_iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(row) => Some(
                (0..row.len())
                    .map(|i| row.get(i).unwrap_or("NULL").to_string())
                    .collect::<Vec<_>>()
                    .join(" "),
            ),
            _ => None,
        })
        .collect();
    rows.sort();
    Ok(rows)
}

/// Writers change tables continuously while checkpoints are taken every
/// 200 ms; the server is killed at a random moment, restarted, and every
/// view must equal DataFusion's batch answer over the tables, which must
/// hold every acknowledged write once and nothing never sent. Twenty
/// times in a row, each restart resuming from a checkpoint.
async fn kill_views_repeatedly() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut server = ServerProcess::start(dir.path())?;
    {
        let client = connect(server.port).await?;
        client
            .batch_execute(
                "CREATE TABLE acct (id INT PRIMARY KEY, owner TEXT, balance BIGINT);
                 INSERT INTO acct VALUES (0, 'ann', 0), (1, 'bob', 0), (2, 'cy', 0), (3, 'di', 0), (4, 'ed', 0), (5, 'flo', 0);
                 CREATE TABLE ev (writer INT, seq BIGINT, grp INT, amount BIGINT) APPEND ONLY;
                 SET checkpoint_interval = '200ms';",
            )
            .await?;
        for (name, sql) in VIEWS {
            client
                .batch_execute(&format!("CREATE MATERIALIZED VIEW {name} AS {sql}"))
                .await?;
        }
        client.batch_execute("CHECKPOINT").await?;
    }
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_nanos() as u64;
    let mut random = seed | 1;
    let mut next_random = move |bound: u64| {
        random ^= random << 13;
        random ^= random >> 7;
        random ^= random << 17;
        random % bound
    };
    let mut acknowledged: Vec<HashSet<i64>> = vec![HashSet::new(); WRITERS as usize];
    let mut next_seq = vec![0i64; WRITERS as usize];
    let kill_count = kills();
    for kill in 1..=kill_count {
        let writers: Vec<_> = (0..WRITERS)
            .map(|w| {
                tokio::spawn(write_events_until_killed(
                    server.port,
                    w,
                    next_seq[w as usize],
                ))
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(300 + next_random(900))).await;
        server.kill()?;
        for (w, task) in writers.into_iter().enumerate() {
            let (acked, next) = task.await?;
            acknowledged[w].extend(acked);
            next_seq[w] = next;
        }

        server = ServerProcess::start(dir.path())?;
        let client = connect(server.port).await?;
        let restored = sorted_rows(
            &client,
            "SELECT id FROM weir_catalog.checkpoints WHERE trigger = 'restored'",
        )
        .await?;
        ensure!(
            restored.len() == 1,
            "kill {kill} (seed {seed}): the restart did not resume from a checkpoint"
        );
        client.batch_execute("FLUSH").await?;
        for (name, sql) in VIEWS {
            let view = sorted_rows(&client, &format!("SELECT * FROM {name}")).await?;
            let batch = sorted_rows(&client, sql).await?;
            ensure!(
                view == batch,
                "kill {kill} (seed {seed}): view {name} differs from the batch answer\nview:  {view:?}\nbatch: {batch:?}"
            );
        }
        let stored = sorted_rows(&client, "SELECT writer, seq FROM ev").await?;
        let mut seen = HashSet::new();
        for row in &stored {
            let mut parts = row.split(' ').map(str::parse::<i64>);
            let (Some(Ok(writer)), Some(Ok(seq))) = (parts.next(), parts.next()) else {
                bail!("unexpected row {row:?}");
            };
            ensure!(
                seen.insert((writer, seq)),
                "kill {kill}: ({writer}, {seq}) stored twice"
            );
            ensure!(
                seq < next_seq[writer as usize],
                "kill {kill}: ({writer}, {seq}) was never sent"
            );
        }
        for (writer, acked) in acknowledged.iter().enumerate() {
            for seq in acked {
                ensure!(
                    seen.contains(&(writer as i64, *seq)),
                    "kill {kill}: acknowledged ({writer}, {seq}) is lost"
                );
            }
        }
    }
    let total: usize = acknowledged.iter().map(HashSet::len).sum();
    println!(
        "    {kill_count} kills, {total} acknowledged events, every view equal to the batch answer"
    );
    Ok(())
}
