//! `weir bench savepoints`: what a savepoint of a view holding about
//! `keys * value_bytes` of keyed state costs, set beside a full checkpoint
//! of the same state taken in the same run.
//!
//! Reported: the savepoint's size and duration against the full
//! checkpoint's; single-row INSERTs acknowledged per second while the
//! savepoint is taken against just before it, with the longest wait between
//! two acknowledgements (processing is not meant to stop); the time of an
//! `AS OF SAVEPOINT` read; the time of `RESTORE SAVEPOINT` after a tenth of
//! the keys changed and another tenth were deleted; and the time new servers
//! on fresh data directories take to start from the savepoint, into RocksDB
//! and into the memory backend. Every restore is checked against the view's
//! contents at the savepoint.

use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio_postgres::Client;

use crate::bench::{BenchServer, with_sqlstate};
use crate::checkpoint_bench::{checkpoint, fill};
use crate::view_bench::megabytes;

/// How long the INSERT rate is measured before the savepoint.
const BEFORE: Duration = Duration::from_secs(3);

pub async fn savepoints(keys: u64, value_bytes: u64) -> anyhow::Result<()> {
    run(keys, value_bytes).await.map_err(with_sqlstate)
}

/// What identifies the view's contents: row count, and the smallest and
/// largest value.
async fn fingerprint(client: &Client, relation: &str) -> anyhow::Result<(i64, String, String)> {
    let row = client
        .query_one(
            &format!("SELECT count(*), min(v), max(v) FROM {relation}"),
            &[],
        )
        .await?;
    Ok((row.get(0), row.get(1), row.get(2)))
}

/// Inserts single rows into `ticks` until `stop` turns true; returns when
/// each was acknowledged.
async fn write_ticks(
    client: Client,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<Vec<Instant>> {
    let insert = client.prepare("INSERT INTO ticks VALUES ($1)").await?;
    let mut acknowledged = Vec::new();
    let mut n = 0i64;
    while !*stop.borrow_and_update() {
        client.execute(&insert, &[&n]).await?;
        acknowledged.push(Instant::now());
        n += 1;
    }
    Ok(acknowledged)
}

/// Acknowledgements per second in `[from, to)`, and the longest wait
/// between two of them there.
fn rate_between(acknowledged: &[Instant], from: Instant, to: Instant) -> (f64, Duration) {
    let inside: Vec<Instant> = acknowledged
        .iter()
        .copied()
        .filter(|t| *t >= from && *t < to)
        .collect();
    let mut longest = Duration::ZERO;
    let mut previous = from;
    for t in inside.iter().copied().chain([to]) {
        longest = longest.max(t - previous);
        previous = t;
    }
    let seconds = (to - from).as_secs_f64().max(f64::EPSILON);
    (inside.len() as f64 / seconds, longest)
}

async fn run(keys: u64, value_bytes: u64) -> anyhow::Result<()> {
    let pieces = value_bytes.div_ceil(32);
    let bench = BenchServer::start().await?;
    let client = bench.connect().await?;
    let started = Instant::now();
    fill(&client, keys, pieces).await?;
    client
        .batch_execute(
            "CREATE MATERIALIZED VIEW state AS SELECT k, v FROM kv;
             CREATE TABLE ticks (n BIGINT);
             CREATE MATERIALIZED VIEW tick_count AS SELECT count(*) AS n FROM ticks;
             FLUSH",
        )
        .await?;
    println!(
        "{keys} keys of {} bytes in table `kv` and view `state`, loaded in {:.1}s",
        pieces * 32,
        started.elapsed().as_secs_f64()
    );
    let at_savepoint = fingerprint(&client, "state").await?;

    client
        .batch_execute("SET incremental_checkpoints = off")
        .await?;
    let full = checkpoint(&client).await?;

    let (stop, stopped) = watch::channel(false);
    let writer = tokio::spawn(write_ticks(bench.connect().await?, stopped));
    tokio::time::sleep(BEFORE).await;
    let savepoint_started = Instant::now();
    client.batch_execute("CREATE SAVEPOINT sp").await?;
    let savepoint_done = Instant::now();
    stop.send(true)?;
    let acknowledged = writer.await??;
    let (rate_before, _) =
        rate_between(&acknowledged, savepoint_started - BEFORE, savepoint_started);
    let (rate_during, longest_wait) =
        rate_between(&acknowledged, savepoint_started, savepoint_done);

    let row = client
        .query_one(
            "SELECT size_bytes, location FROM weir_catalog.savepoints WHERE name = 'sp'",
            &[],
        )
        .await?;
    let (size, location): (i64, String) = (row.get(0), row.get(1));
    let savepoint_seconds = (savepoint_done - savepoint_started).as_secs_f64();
    println!("{:<22} {:>10} {:>12}", "", "size MB", "duration s");
    println!(
        "{:<22} {:>10.1} {:>12.2}",
        "full checkpoint",
        megabytes(full.full_bytes as u64),
        full.duration_ms / 1000.0
    );
    println!(
        "{:<22} {:>10.1} {:>12.2}   ({:.2}x the checkpoint's size, {:.2}x its duration)",
        "savepoint",
        megabytes(size as u64),
        savepoint_seconds,
        size as f64 / full.full_bytes.max(1) as f64,
        savepoint_seconds * 1000.0 / full.duration_ms.max(f64::EPSILON)
    );
    println!(
        "INSERTs acknowledged/s: {rate_before:.0} before the savepoint, {rate_during:.0} while it was taken ({:.2}x); longest wait {:.0} ms",
        rate_during / rate_before.max(f64::EPSILON),
        longest_wait.as_secs_f64() * 1000.0
    );

    let read = Instant::now();
    let as_of = fingerprint(&client, "state AS OF SAVEPOINT sp").await?;
    anyhow::ensure!(
        as_of == at_savepoint,
        "AS OF SAVEPOINT read {as_of:?}, not {at_savepoint:?}"
    );
    println!(
        "AS OF SAVEPOINT read of `state`: {:.2}s",
        read.elapsed().as_secs_f64()
    );

    client
        .batch_execute(
            "UPDATE kv SET v = 'changed' WHERE k % 10 = 0;
             DELETE FROM kv WHERE k % 10 = 1;
             FLUSH",
        )
        .await?;
    anyhow::ensure!(
        fingerprint(&client, "state").await? != at_savepoint,
        "the changes left the view as it was"
    );
    let restore = Instant::now();
    client.batch_execute("RESTORE SAVEPOINT sp; FLUSH").await?;
    let restored = fingerprint(&client, "state").await?;
    anyhow::ensure!(
        restored == at_savepoint,
        "RESTORE SAVEPOINT left {restored:?}, not {at_savepoint:?}"
    );
    println!(
        "RESTORE SAVEPOINT in place: {:.2}s",
        restore.elapsed().as_secs_f64()
    );

    for backend in ["rocksdb", "memory"] {
        let (fresh, ready) = BenchServer::from_savepoint(&location, Some(backend)).await?;
        let fresh_client = fresh.connect().await?;
        fresh_client.batch_execute("FLUSH").await?;
        let restored = fingerprint(&fresh_client, "state").await?;
        anyhow::ensure!(
            restored == at_savepoint,
            "a server started from the savepoint on {backend} holds {restored:?}, not {at_savepoint:?}"
        );
        println!(
            "new server from the savepoint, {backend} backend: ready in {:.2}s",
            ready.as_secs_f64()
        );
        drop(fresh_client);
        fresh.server.shutdown().await;
    }
    drop(client);
    bench.server.shutdown().await;
    Ok(())
}
