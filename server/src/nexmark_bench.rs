//! `weir bench nexmark`: events per second through a Nexmark query as a
//! materialized view, with checkpoints every second to RocksDB state, as
//! NEXMARK.md asks.
//!
//! The source is a bounded run (`max_events`) of the nexmark generator's
//! `bid` stream. The clock runs from `CREATE MATERIALIZED VIEW` until the
//! view holds the answer for the whole run, which the batch answer over the
//! same events (computed first, untimed) says; that check is also the
//! result's correctness check.

use std::time::{Duration, Instant};

use anyhow::{bail, ensure};
use tokio_postgres::Client;

use crate::bench::BenchServer;

/// A query the bench runs: the view, and a one-number summary that is
/// final only once the view has seen every event.
struct Query {
    name: &'static str,
    view: &'static str,
    /// Over the view (`q`) ...
    done_in_view: &'static str,
    /// ... and over the batch input: equal when the view is complete.
    done_in_batch: &'static str,
}

const QUERIES: &[Query] = &[
    Query {
        name: "q0",
        view: "SELECT auction, bidder, price, date_time, extra FROM bid",
        done_in_view: "SELECT count(*) FROM q",
        done_in_batch: "SELECT count(*) FROM bid",
    },
    Query {
        name: "q1",
        view: "SELECT auction, bidder, 0.908 * price AS price, date_time, extra FROM bid",
        done_in_view: "SELECT count(*) FROM q",
        done_in_batch: "SELECT count(*) FROM bid",
    },
    Query {
        name: "q2",
        view: "SELECT auction, price FROM bid WHERE auction % 123 = 0",
        done_in_view: "SELECT count(*) FROM q",
        done_in_batch: "SELECT count(*) FROM bid WHERE auction % 123 = 0",
    },
    Query {
        name: "agg",
        view: "SELECT auction, count(*) AS bids, max(price) AS top FROM bid GROUP BY auction",
        done_in_view: "SELECT sum(bids) FROM q",
        done_in_batch: "SELECT count(*) FROM bid",
    },
];

async fn number(client: &Client, sql: &str) -> anyhow::Result<i64> {
    let row = client.query_one(sql, &[]).await?;
    Ok(row.get::<_, Option<i64>>(0).unwrap_or(0))
}

pub async fn nexmark(queries: &[String], events: u64) -> anyhow::Result<()> {
    let selected: Vec<&Query> = if queries.is_empty() {
        QUERIES.iter().collect()
    } else {
        queries
            .iter()
            .map(|name| match QUERIES.iter().find(|q| q.name == name) {
                Some(query) => Ok(query),
                None => {
                    let known: Vec<&str> = QUERIES.iter().map(|q| q.name).collect();
                    bail!("unknown query {name}; known: {}", known.join(", "))
                }
            })
            .collect::<anyhow::Result<_>>()?
    };
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "nexmark bid stream, {events} events per query, checkpoints every 1s (rocksdb), {cores} cores"
    );
    println!(
        "{:<6} {:>10} {:>9} {:>12} {:>14} {:>12} {:>12} {:>12}",
        "query",
        "bids",
        "seconds",
        "events/s",
        "events/s/core",
        "bids/s",
        "checkpoints",
        "p99 ckpt ms"
    );
    for query in selected {
        run(query, events, cores).await?;
    }
    Ok(())
}

async fn run(query: &Query, events: u64, cores: usize) -> anyhow::Result<()> {
    let bench = BenchServer::start().await?;
    let client = bench.connect().await?;
    client
        .batch_execute(&format!(
            "SET checkpoint_interval = off;
             CREATE SOURCE bid WITH (connector = 'nexmark', table = 'bid', max_events = '{events}');"
        ))
        .await?;
    let expected = number(&client, query.done_in_batch).await?;
    let bids = number(&client, "SELECT count(*) FROM bid").await?;
    client
        .batch_execute("SET checkpoint_interval = '1s'")
        .await?;
    let started = Instant::now();
    client
        .batch_execute(&format!("CREATE MATERIALIZED VIEW q AS {}", query.view))
        .await?;
    loop {
        let seen = number(&client, query.done_in_view).await?;
        ensure!(
            seen <= expected,
            "{}: the view counts {seen}, more than the batch answer {expected}",
            query.name
        );
        if seen == expected {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let seconds = started.elapsed().as_secs_f64();
    let checkpoints = client
        .query_one(
            "SELECT count(*), coalesce(approx_percentile_cont(duration_ms, 0.99), 0)::DOUBLE
             FROM weir_catalog.checkpoints WHERE status = 'completed' AND trigger = 'interval'",
            &[],
        )
        .await?;
    let (taken, p99): (i64, f64) = (checkpoints.get(0), checkpoints.get(1));
    let rate = events as f64 / seconds;
    println!(
        "{:<6} {:>10} {:>9.2} {:>12.0} {:>14.0} {:>12.0} {:>12} {:>12.0}",
        query.name,
        bids,
        seconds,
        rate,
        rate / cores as f64,
        bids as f64 / seconds,
        taken,
        p99
    );
    drop(client);
    bench.server.shutdown().await;
    Ok(())
}
