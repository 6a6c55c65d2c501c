//! A generated source under `kill -9`: checkpoints taken while a bounded
//! nexmark run is being generated, the server killed mid-run, restarted;
//! the views resume from the checkpointed event numbers and end equal to
//! the batch answer over the whole run — nothing generated twice, nothing
//! skipped.

use std::time::{Duration, Instant};

use anyhow::ensure;

use crate::Test;
use crate::checkpoint_failures::{one_i64, wait_for_count};
use crate::crash::{ServerProcess, connect};

pub const TESTS: &[(&str, Test)] = &[(
    "crash/nexmark source killed mid-run: views resume and equal the batch answer",
    || Box::pin(nexmark_kill_mid_run()),
)];

const EVENTS: i64 = 400_000;

/// Rows in which `view` and the batch query differ, counted both ways.
const DIFFERENCE: &str = "SELECT count(*) FROM (
    (SELECT * FROM per_auction EXCEPT ALL
       SELECT auction, count(*), sum(price) FROM bid GROUP BY auction)
    UNION ALL
    (SELECT auction, count(*), sum(price) FROM bid GROUP BY auction
       EXCEPT ALL SELECT * FROM per_auction))";

async fn nexmark_kill_mid_run() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let server = ServerProcess::start(dir.path())?;
    let client = connect(server.port).await?;
    client
        .batch_execute(&format!(
            "SET checkpoint_interval = '200ms';
             CREATE SOURCE bid WITH (connector = 'nexmark', table = 'bid', max_events = '{EVENTS}');
             CREATE MATERIALIZED VIEW per_auction AS
               SELECT auction, count(*) AS bids, sum(price) AS total FROM bid GROUP BY auction;"
        ))
        .await?;
    // Kill once a checkpoint has recorded a position inside the run.
    let deadline = Instant::now() + Duration::from_secs(120);
    let bids_at_kill = loop {
        let completed = one_i64(
            &client,
            "SELECT count(*) FROM weir_catalog.checkpoints WHERE status = 'completed'",
        )
        .await?;
        let bids = one_i64(&client, "SELECT coalesce(sum(bids), 0) FROM per_auction").await?;
        ensure!(
            bids < EVENTS / 50 * 46,
            "the run ended before a checkpoint landed inside it"
        );
        if completed >= 2 && bids > 0 {
            break bids;
        }
        ensure!(Instant::now() < deadline, "no checkpoint within 2 minutes");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    drop(client);
    server.kill()?;

    let server = ServerProcess::start(dir.path())?;
    let client = connect(server.port).await?;
    let all_bids = EVENTS / 50 * 46;
    let counted = "SELECT coalesce(sum(bids), 0) FROM per_auction";
    wait_for_count(&client, counted, all_bids, "bids").await?;
    let difference = one_i64(&client, DIFFERENCE).await?;
    ensure!(
        difference == 0,
        "{difference} rows differ from the batch answer"
    );
    println!(
        "    killed with {bids_at_kill} of {all_bids} bids counted; after restart all, equal to batch"
    );
    drop(client);
    server.kill()?;
    Ok(())
}
