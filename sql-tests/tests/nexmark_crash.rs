//! A generated source under `kill -9`: checkpoints taken while a bounded
//! nexmark run is being generated, the server killed mid-run, restarted
//! (once, or `WEIR_SOURCE_KILLS` times in the fault campaign); the views
//! resume from the checkpointed event numbers and end equal to the batch
//! answer over the whole run — nothing generated twice, nothing skipped.

use std::time::{Duration, Instant};

use anyhow::ensure;

use crate::Test;
use crate::checkpoint_failures::{one_i64, wait_for_count};
use crate::crash::{ServerProcess, connect};

pub const TESTS: &[(&str, Test)] = &[(
    "crash/nexmark source killed mid-run: views resume and equal the batch answer",
    || Box::pin(nexmark_kill_mid_run()),
)];

/// Events generated per kill.
const EVENTS: i64 = 400_000;

fn kills() -> i64 {
    std::env::var("WEIR_SOURCE_KILLS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1)
}

/// Rows in which `view` and the batch query differ, counted both ways.
const DIFFERENCE: &str = "SELECT count(*) FROM (
    (SELECT * FROM per_auction EXCEPT ALL
       SELECT auction, count(*), sum(price) FROM bid GROUP BY auction)
    UNION ALL
    (SELECT auction, count(*), sum(price) FROM bid GROUP BY auction
       EXCEPT ALL SELECT * FROM per_auction))";

async fn nexmark_kill_mid_run() -> anyhow::Result<()> {
    let kills = kills();
    let events = EVENTS * kills;
    let all_bids = events / 50 * 46;
    let dir = tempfile::tempdir()?;
    let mut server = ServerProcess::start(dir.path())?;
    let client = connect(server.port).await?;
    client
        .batch_execute(&format!(
            "SET checkpoint_interval = '200ms';
             CREATE SOURCE bid WITH (connector = 'nexmark', table = 'bid', max_events = '{events}');
             CREATE MATERIALIZED VIEW per_auction AS
               SELECT auction, count(*) AS bids, sum(price) AS total FROM bid GROUP BY auction;"
        ))
        .await?;
    drop(client);
    let counted = "SELECT coalesce(sum(bids), 0) FROM per_auction";
    let completed = "SELECT count(*) FROM weir_catalog.checkpoints \
                     WHERE status = 'completed' AND trigger <> 'restored'";
    let mut kills_at = Vec::new();
    for _ in 0..kills {
        let client = connect(server.port).await?;
        // Kill once two checkpoints of this run have recorded a position
        // inside it, past the last kill's.
        let before = one_i64(&client, completed).await?;
        let previous = kills_at.last().copied().unwrap_or(0);
        let deadline = Instant::now() + Duration::from_secs(120);
        let bids_at_kill = loop {
            let bids = one_i64(&client, counted).await?;
            ensure!(
                bids < all_bids,
                "the run ended before a checkpoint landed inside it"
            );
            if one_i64(&client, completed).await? >= before + 2 && bids > previous {
                break bids;
            }
            ensure!(Instant::now() < deadline, "no checkpoint within 2 minutes");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        kills_at.push(bids_at_kill);
        drop(client);
        server.kill()?;
        server = ServerProcess::start(dir.path())?;
    }
    let client = connect(server.port).await?;
    wait_for_count(&client, counted, all_bids, "bids").await?;
    let difference = one_i64(&client, DIFFERENCE).await?;
    ensure!(
        difference == 0,
        "{difference} rows differ from the batch answer"
    );
    println!(
        "    killed {kills} times, with {kills_at:?} of {all_bids} bids counted; after restart all, equal to batch"
    );
    drop(client);
    server.kill()?;
    Ok(())
}
