//! `weir bench views`: rows per second through materialized views —
//! filter+project, a keyed aggregate, a join — with RocksDB state, against
//! DataFusion answering the same query in batch over the same rows (the
//! baseline of the same run), and the latency of a one-row UPDATE reaching
//! a view over all rows. For each view it also shows how much the
//! process grew while building it beside the size of the state it wrote:
//! state lives in RocksDB, so memory stays bounded however many keys.

use std::path::Path;
use std::time::{Duration, Instant};

use tokio_postgres::Client;

use crate::bench::BenchServer;

const CASES: &[(&str, &str)] = &[
    (
        "filter+project",
        "SELECT id, v * 2 AS doubled FROM facts WHERE v % 2 = 0",
    ),
    (
        "aggregate",
        "SELECT k, count(*) AS n, sum(v) AS total, max(v) AS biggest FROM facts GROUP BY k",
    ),
    (
        "join",
        "SELECT f.id, f.v, d.name FROM facts f JOIN dims d ON f.k = d.k",
    ),
];

async fn fill(client: &Client, rows: u64, keys: u64) -> anyhow::Result<()> {
    client
        .batch_execute(
            "CREATE TABLE facts (id BIGINT PRIMARY KEY, k BIGINT, v BIGINT);
             CREATE TABLE dims (k BIGINT PRIMARY KEY, name VARCHAR);",
        )
        .await?;
    let step = 100_000;
    let mut from = 0;
    while from < rows {
        let to = (from + step).min(rows) - 1;
        client
            .batch_execute(&format!(
                "INSERT INTO facts SELECT value AS id, value % {keys} AS k, value % 1000 AS v \
                 FROM generate_series({from}, {to})"
            ))
            .await?;
        from = to + 1;
    }
    client
        .batch_execute(&format!(
            "INSERT INTO dims SELECT value AS k, concat('name ', value) AS name \
             FROM generate_series(0, {})",
            keys - 1
        ))
        .await?;
    Ok(())
}

/// The process's resident memory, in bytes (0 where /proc is absent).
fn resident_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|kb| kb.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// Bytes of all files under `dir`.
pub(crate) fn disk_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|entry| match entry.file_type() {
            Ok(t) if t.is_dir() => disk_bytes(&entry.path()),
            Ok(_) => entry.metadata().map_or(0, |m| m.len()),
            Err(_) => 0,
        })
        .sum()
}

pub(crate) fn megabytes(bytes: u64) -> f64 {
    bytes as f64 / (1 << 20) as f64
}

pub async fn views(rows: u64, keys: u64, only: &[String]) -> anyhow::Result<()> {
    let bench = BenchServer::start().await?;
    let client = bench.connect().await?;
    let started = Instant::now();
    fill(&client, rows, keys).await?;
    println!(
        "{rows} rows in facts ({keys} keys), {keys} in dims, loaded in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    println!(
        "{:<16} {:>9} {:>9} {:>12} {:>9} {:>10} {:>10}",
        "view", "view s", "batch s", "view rows/s", "vs batch", "grew MB", "state MB"
    );
    let state = bench.dir.path().join("state");
    for (name, query) in CASES {
        if !only.is_empty() && !only.iter().any(|o| o == name) {
            continue;
        }
        // The view first, so the batch query's memory is not counted.
        let (resident, stored) = (resident_bytes(), disk_bytes(&state));
        let started = Instant::now();
        client
            .batch_execute(&format!("CREATE MATERIALIZED VIEW \"{name}\" AS {query}"))
            .await?;
        let view = started.elapsed();
        let grew = resident_bytes().saturating_sub(resident);
        let written = disk_bytes(&state).saturating_sub(stored);
        let started = Instant::now();
        client
            .query_one(&format!("SELECT count(*) FROM ({query}) AS q"), &[])
            .await?;
        let batch = started.elapsed();
        let input = if *name == "join" { rows + keys } else { rows };
        println!(
            "{name:<16} {:>9.2} {:>9.2} {:>12.0} {:>8.2}x {:>10.0} {:>10.0}",
            view.as_secs_f64(),
            batch.as_secs_f64(),
            input as f64 / view.as_secs_f64(),
            batch.as_secs_f64() / view.as_secs_f64(),
            megabytes(grew),
            megabytes(written)
        );
    }
    // The UPDATE finds its row in the table; the FLUSH then waits until
    // every view has applied it: the view's share is the FLUSH.
    let (mut updates, mut flushes): (Vec<Duration>, Vec<Duration>) = (Vec::new(), Vec::new());
    for round in 0..20 {
        let started = Instant::now();
        client
            .batch_execute(&format!(
                "UPDATE facts SET v = v + 1 WHERE id = {}",
                round * 7 % rows.max(1)
            ))
            .await?;
        updates.push(started.elapsed());
        let started = Instant::now();
        client.batch_execute("FLUSH").await?;
        flushes.push(started.elapsed());
    }
    let summary = |mut times: Vec<Duration>| {
        times.sort();
        format!(
            "median {:.1} ms, max {:.1} ms",
            times[times.len() / 2].as_secs_f64() * 1000.0,
            times[times.len() - 1].as_secs_f64() * 1000.0
        )
    };
    println!(
        "one-row UPDATE of facts ({rows} rows): {}",
        summary(updates)
    );
    println!(
        "then FLUSH until every view reflects it: {}",
        summary(flushes)
    );
    drop(client);
    bench.server.shutdown().await;
    Ok(())
}
