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

type Test = fn() -> Pin<Box<dyn Future<Output = anyhow::Result<()>>>>;

pub const TESTS: &[(&str, Test)] = &[
    ("crash/kill -9 under insert load", || {
        Box::pin(kill_under_insert_load())
    }),
    ("crash/SIGTERM under insert load stops cleanly", || {
        Box::pin(terminate_under_insert_load())
    }),
];

/// In a child started by [`ServerProcess::start`]: serve until killed or
/// stopped by SIGTERM.
pub fn serve_if_child() -> Option<ExitCode> {
    let dir = std::env::var_os(CHILD_ENV)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .ok()?;
    let result: anyhow::Result<()> = runtime.block_on(async {
        let server = crate::start_server(Path::new(&dir)).await?;
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
struct ServerProcess {
    child: Child,
    port: u16,
}

impl ServerProcess {
    fn start(data_dir: &Path) -> anyhow::Result<Self> {
        let mut child = Command::new(std::env::current_exe()?)
            .env(CHILD_ENV, data_dir)
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
    fn kill(mut self) -> anyhow::Result<()> {
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

async fn connect(port: u16) -> anyhow::Result<tokio_postgres::Client> {
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
