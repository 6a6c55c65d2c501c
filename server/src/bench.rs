//! `weir bench`: throughput measured through the real path (pgwire ->
//! planner -> storage with synced commits), against an in-process server on
//! a temporary data directory. Figures are printed with their baseline
//! (one client), so a run compares with itself, not with another machine.

use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Subcommand;
use tokio_postgres::NoTls;

use crate::{Config, RunningServer};

#[derive(Debug, Clone, Subcommand)]
pub enum Benchmark {
    /// Single-row INSERTs, each acknowledged only once durable, from
    /// concurrent clients; shows what group commit buys.
    Insert {
        /// Client counts to measure, comma separated.
        #[arg(long, value_delimiter = ',', default_value = "1,8")]
        clients: Vec<usize>,
        /// How long each measurement runs.
        #[arg(long, default_value = "5")]
        seconds: u64,
    },
    /// Rows per second through materialized views (filter+project, a
    /// keyed aggregate, a join), against DataFusion's batch answer.
    Views {
        #[arg(long, default_value = "1000000")]
        rows: u64,
        /// Distinct group and join keys.
        #[arg(long, default_value = "100000")]
        keys: u64,
        /// Views to measure, comma separated (default: all).
        #[arg(long, value_delimiter = ',')]
        only: Vec<String>,
    },
    /// Checkpoints of a view holding about `keys * value_bytes` of keyed
    /// state, with `churn` of the keys changing between checkpoints:
    /// incremental against full size and duration, the synchronous pause,
    /// recovery time, and throughput against checkpoints off.
    Checkpoints {
        #[arg(long, default_value = "1000000")]
        keys: u64,
        /// Bytes of each row's value (incompressible hex).
        #[arg(long, default_value = "1024")]
        value_bytes: u64,
        /// Share of keys updated between checkpoints.
        #[arg(long, default_value = "0.05")]
        churn: f64,
        /// Checkpoints measured per mode.
        #[arg(long, default_value = "5")]
        rounds: u64,
    },
    /// A savepoint of a view holding about `keys * value_bytes` of keyed
    /// state (plus its table's rows), against a full checkpoint of the same
    /// state: size and duration, writes acknowledged while it is taken, an
    /// `AS OF SAVEPOINT` read, `RESTORE SAVEPOINT`, and new servers started
    /// from it on each state backend.
    Savepoints {
        #[arg(long, default_value = "1000000")]
        keys: u64,
        /// Bytes of each row's value (incompressible hex).
        #[arg(long, default_value = "512")]
        value_bytes: u64,
    },
    /// Nexmark queries as materialized views over a bounded run of the
    /// nexmark source, checkpoints every second: events per second (per
    /// core), checkpoint count and p99 duration, rows checked against the
    /// batch answer.
    Nexmark {
        /// Queries to run, comma separated (default: all the bench knows).
        #[arg(long, value_delimiter = ',')]
        query: Vec<String>,
        /// Events generated per query.
        #[arg(long, default_value = "10000000")]
        events: u64,
        /// Events per second of event time: at 10,000, 10M events span
        /// 1,000 s, a hundred 10 s windows.
        #[arg(long, default_value = "100000")]
        event_rate: u64,
    },
}

pub async fn run(benchmark: Benchmark) -> anyhow::Result<()> {
    match benchmark {
        Benchmark::Insert { clients, seconds } => {
            insert(&clients, Duration::from_secs(seconds)).await
        }
        Benchmark::Views { rows, keys, only } => crate::view_bench::views(rows, keys, &only).await,
        Benchmark::Checkpoints {
            keys,
            value_bytes,
            churn,
            rounds,
        } => crate::checkpoint_bench::checkpoints(keys, value_bytes, churn, rounds).await,
        Benchmark::Savepoints { keys, value_bytes } => {
            crate::savepoint_bench::savepoints(keys, value_bytes).await
        }
        Benchmark::Nexmark {
            query,
            events,
            event_rate,
        } => crate::nexmark_bench::nexmark(&query, events, event_rate).await,
    }
}

/// A server on a fresh temporary data directory, for one benchmark.
pub(crate) struct BenchServer {
    pub dir: tempfile::TempDir,
    pub server: RunningServer,
    pub url: String,
}

impl BenchServer {
    pub async fn start() -> anyhow::Result<Self> {
        Ok(Self::start_in(tempfile::tempdir()?).await?.0)
    }

    /// Starts a server on a fresh directory from the savepoint at `url`,
    /// into `state_backend` where given; returns it with how long it took
    /// to be ready (the savepoint restored).
    pub async fn from_savepoint(
        url: &str,
        state_backend: Option<&str>,
    ) -> anyhow::Result<(Self, Duration)> {
        let dir = tempfile::tempdir()?;
        let config = Config {
            restore_savepoint: Some(url.to_string()),
            restore_state_backend: state_backend.map(str::to_string),
            ..Config::ephemeral(dir.path())
        };
        Self::start_with(dir, config).await
    }

    /// Starts a server on `dir`; returns it with how long it took to be
    /// ready (with its views started or restored).
    async fn start_in(dir: tempfile::TempDir) -> anyhow::Result<(Self, Duration)> {
        let config = Config::ephemeral(dir.path());
        Self::start_with(dir, config).await
    }

    async fn start_with(
        dir: tempfile::TempDir,
        config: Config,
    ) -> anyhow::Result<(Self, Duration)> {
        let started = Instant::now();
        let server = RunningServer::start(&config).await?;
        let ready = started.elapsed();
        let url = format!(
            "host=127.0.0.1 port={} user=weir dbname=weir",
            server.local_addr().port()
        );
        Ok((Self { dir, server, url }, ready))
    }

    /// Stops the server and starts another on the same data directory;
    /// returns it with how long it took to be ready (views restored).
    pub async fn restart(self) -> anyhow::Result<(Self, Duration)> {
        let Self { dir, server, .. } = self;
        server.shutdown().await;
        Self::start_in(dir).await
    }

    /// A new client connection, its connection task spawned.
    pub async fn connect(&self) -> anyhow::Result<tokio_postgres::Client> {
        connect(&self.url).await
    }
}

/// A benchmark's error, with the SQLSTATE and message where the server
/// refused a statement.
pub(crate) fn with_sqlstate(error: anyhow::Error) -> anyhow::Error {
    match error
        .downcast_ref::<tokio_postgres::Error>()
        .and_then(|e| e.as_db_error())
    {
        Some(db) => anyhow::anyhow!("{}: {}", db.code().code(), db.message()),
        None => error,
    }
}

async fn connect(url: &str) -> anyhow::Result<tokio_postgres::Client> {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await?;
    tokio::spawn(connection);
    Ok(client)
}

async fn insert(client_counts: &[usize], duration: Duration) -> anyhow::Result<()> {
    let bench = BenchServer::start().await?;
    let setup = bench.connect().await?;
    setup
        .batch_execute("CREATE TABLE bench (client INT, seq BIGINT, payload VARCHAR, PRIMARY KEY (client, seq))")
        .await?;

    println!("INSERT throughput, one row per statement, durable on acknowledgement");
    println!(
        "{:>8} {:>12} {:>12} {:>10}",
        "clients", "rows", "rows/s", "vs 1"
    );
    let mut baseline = None;
    for (round, &clients) in client_counts.iter().enumerate() {
        let started = Instant::now();
        let mut tasks = Vec::new();
        for client in 0..clients {
            let url = bench.url.clone();
            let id = (round * 1000 + client) as i32;
            tasks.push(tokio::spawn(async move {
                let db = connect(&url).await?;
                let insert = db.prepare("INSERT INTO bench VALUES ($1, $2, $3)").await?;
                let mut rows = 0i64;
                while started.elapsed() < duration {
                    db.execute(&insert, &[&id, &rows, &"payload of a typical size"])
                        .await?;
                    rows += 1;
                }
                anyhow::Ok(rows)
            }));
        }
        let mut rows = 0;
        for task in tasks {
            rows += task.await.context("client task")??;
        }
        let per_second = rows as f64 / started.elapsed().as_secs_f64();
        let ratio = per_second / *baseline.get_or_insert(per_second);
        println!("{clients:>8} {rows:>12} {per_second:>12.0} {ratio:>9.2}x");
    }
    let count: i64 = setup
        .query_one("SELECT count(*) FROM bench", &[])
        .await?
        .get(0);
    println!("rows stored: {count}");
    drop(setup);
    bench.server.shutdown().await;
    Ok(())
}
