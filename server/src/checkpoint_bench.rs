//! `weir bench checkpoints`: what checkpoints cost on a view holding about
//! `keys * value_bytes` of keyed state in RocksDB, with a share of the keys
//! changing between checkpoints.
//!
//! Reported, all from the same run: the size and duration of incremental
//! checkpoints against full ones (`incremental_checkpoints = off`), the
//! synchronous pause at the barrier (p50/p99), the time a restarted server
//! takes to restore the view, and update throughput with checkpoints every
//! second against checkpoints off.

use std::time::Instant;

use tokio_postgres::Client;

use crate::bench::{BenchServer, with_sqlstate};
use crate::view_bench::megabytes;

/// A row's value: `pieces` md5 digests of the key and a salt, as hex; each
/// digest of a different expression of `k`, so no two are alike.
fn value_expr(pieces: u64, salt: &str) -> String {
    let digests: Vec<String> = (0..pieces.max(1))
        .map(|i| format!("md5(concat(k + {i}, '{salt}'))"))
        .collect();
    format!("concat({})", digests.join(", "))
}

pub(crate) async fn fill(client: &Client, keys: u64, pieces: u64) -> anyhow::Result<()> {
    client
        .batch_execute(
            "CREATE TABLE kv (k BIGINT PRIMARY KEY, v VARCHAR);
             SET checkpoint_interval = off;",
        )
        .await?;
    let step = 50_000;
    let mut from = 0;
    while from < keys {
        let to = (from + step).min(keys) - 1;
        client
            .batch_execute(&format!(
                "INSERT INTO kv SELECT k, {} AS v FROM (SELECT value AS k FROM generate_series({from}, {to}))",
                value_expr(pieces, "")
            ))
            .await?;
        from = to + 1;
    }
    Ok(())
}

/// One completed checkpoint as the catalog reports it.
#[derive(Debug)]
pub(crate) struct Taken {
    pub duration_ms: f64,
    pub sync_ms: f64,
    pub full_bytes: i64,
    pub incremental_bytes: i64,
}

pub(crate) async fn checkpoint(client: &Client) -> anyhow::Result<Taken> {
    client.batch_execute("CHECKPOINT").await?;
    let row = client
        .query_one(
            "SELECT duration_ms, sync_ms, full_bytes, incremental_bytes \
             FROM weir_catalog.checkpoints WHERE status = 'completed' ORDER BY id DESC LIMIT 1",
            &[],
        )
        .await?;
    Ok(Taken {
        duration_ms: row.get::<_, Option<f64>>(0).unwrap_or_default(),
        sync_ms: row.get(1),
        full_bytes: row.get(2),
        incremental_bytes: row.get(3),
    })
}

/// Updates the keys of one churn slice; returns the rows changed per second
/// until the view reflects them.
async fn churn_round(client: &Client, slices: u64, round: u64, pieces: u64) -> anyhow::Result<f64> {
    let started = Instant::now();
    let updated = client
        .execute(
            &format!(
                "UPDATE kv SET v = {} WHERE k % {slices} = {}",
                value_expr(pieces, &format!("r{round}-")),
                round % slices
            ),
            &[],
        )
        .await?;
    client.batch_execute("FLUSH").await?;
    Ok(updated as f64 / started.elapsed().as_secs_f64())
}

fn percentile(values: &[f64], p: f64) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(index).copied().unwrap_or_default()
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len().max(1) as f64
}

pub async fn checkpoints(
    keys: u64,
    value_bytes: u64,
    churn: f64,
    rounds: u64,
) -> anyhow::Result<()> {
    run(keys, value_bytes, churn, rounds)
        .await
        .map_err(with_sqlstate)
}

async fn run(keys: u64, value_bytes: u64, churn: f64, rounds: u64) -> anyhow::Result<()> {
    let pieces = value_bytes.div_ceil(32);
    let slices = (1.0 / churn.clamp(0.001, 1.0)).round() as u64;
    let bench = BenchServer::start().await?;
    let client = bench.connect().await?;
    let started = Instant::now();
    fill(&client, keys, pieces).await?;
    client
        .batch_execute("CREATE MATERIALIZED VIEW state AS SELECT k, v FROM kv")
        .await?;
    println!(
        "{keys} keys of {} bytes in view `state`, loaded in {:.1}s; {:.1}% of keys change per round",
        pieces * 32,
        started.elapsed().as_secs_f64(),
        100.0 / slices as f64
    );

    let mut round = 0;
    let mut syncs = Vec::new();
    println!(
        "{:<12} {:>12} {:>14} {:>12} {:>10}",
        "checkpoints", "full MB", "uploaded MB", "duration s", "sync ms"
    );
    for mode in ["incremental", "full"] {
        client
            .batch_execute(&format!(
                "SET incremental_checkpoints = {}",
                if mode == "full" { "off" } else { "on" }
            ))
            .await?;
        // The first checkpoint of a mode uploads everything; rounds follow.
        checkpoint(&client).await?;
        let mut taken = Vec::new();
        for _ in 0..rounds {
            churn_round(&client, slices, round, pieces).await?;
            round += 1;
            taken.push(checkpoint(&client).await?);
        }
        syncs.extend(taken.iter().map(|t| t.sync_ms));
        let avg = |f: &dyn Fn(&Taken) -> f64| mean(&taken.iter().map(f).collect::<Vec<_>>());
        println!(
            "{mode:<12} {:>12.1} {:>14.1} {:>12.2} {:>10.1}",
            megabytes(avg(&|t| t.full_bytes as f64) as u64),
            megabytes(avg(&|t| t.incremental_bytes as f64) as u64),
            avg(&|t| t.duration_ms) / 1000.0,
            avg(&|t| t.sync_ms),
        );
        let per_round: Vec<String> = taken
            .iter()
            .map(|t| format!("{:.0}", megabytes(t.incremental_bytes as u64)))
            .collect();
        let uploaded: Vec<f64> = taken.iter().map(|t| t.incremental_bytes as f64).collect();
        println!(
            "  uploaded per round, MB: {} (median {:.1})",
            per_round.join(" "),
            megabytes(percentile(&uploaded, 0.5) as u64)
        );
    }
    println!(
        "synchronous pause over {} checkpoints: p50 {:.1} ms, p99 {:.1} ms",
        syncs.len(),
        percentile(&syncs, 0.5),
        percentile(&syncs, 0.99)
    );

    // Throughput: the same update rounds with checkpoints off, then every second.
    client
        .batch_execute("SET incremental_checkpoints = on")
        .await?;
    let mut throughput = Vec::new();
    for interval in ["off", "1s"] {
        client
            .batch_execute(&format!("SET checkpoint_interval = '{interval}'"))
            .await?;
        let mut rates = Vec::new();
        for _ in 0..rounds {
            rates.push(churn_round(&client, slices, round, pieces).await?);
            round += 1;
        }
        throughput.push(mean(&rates));
    }
    let background = client
        .query_one(
            "SELECT count(*) FROM weir_catalog.checkpoints WHERE trigger = 'interval' AND status = 'completed'",
            &[],
        )
        .await?
        .get::<_, i64>(0);
    println!(
        "updated rows/s until visible: checkpoints off {:.0}, every 1s {:.0} ({background} taken): {:.2}x",
        throughput[0],
        throughput[1],
        throughput[1] / throughput[0]
    );

    client
        .batch_execute("SET checkpoint_interval = off; CHECKPOINT")
        .await?;
    drop(client);
    let (bench, ready) = bench.restart().await?;
    let client = bench.connect().await?;
    let rows = client
        .query_one("SELECT count(*) FROM state", &[])
        .await?
        .get::<_, i64>(0);
    anyhow::ensure!(
        rows as u64 == keys,
        "restored view holds {rows} rows, not {keys}"
    );
    println!(
        "recovery: restart with the view restored from the last checkpoint in {:.2}s ({rows} rows)",
        ready.as_secs_f64()
    );
    drop(client);
    bench.server.shutdown().await;
    Ok(())
}
