//! A file source under `kill -9`: CSV files land in a watched directory
//! while a view reads them with checkpoints every 200 ms; the server is
//! killed mid-stream (once, or `WEIR_FILE_KILLS` times), more files land
//! while it is down, and after restart the view resumes from the
//! checkpointed row and ends equal to the batch answer over every file —
//! no row counted twice, none skipped.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::ensure;

use crate::Test;
use crate::checkpoint_failures::{one_i64, wait_for_count};
use crate::crash::{ServerProcess, connect};

pub const TESTS: &[(&str, Test)] = &[(
    "crash/file source killed mid-stream: the view resumes and equals the batch answer",
    || Box::pin(file_source_kill_mid_stream()),
)];

/// Files per kill.
const FILES: usize = 30;
const ROWS_PER_FILE: usize = 5_000;
/// Files of a round written before its kill; the rest land while the
/// server is down.
const BEFORE_KILL: usize = 20;

fn kills() -> usize {
    std::env::var("WEIR_FILE_KILLS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1)
}

/// Rows in which the view and the batch query differ, counted both ways.
const DIFFERENCE: &str = "SELECT count(*) FROM (
    (SELECT * FROM per_group EXCEPT ALL
       SELECT k % 97, count(*), sum(v) FROM all_logs GROUP BY k % 97)
    UNION ALL
    (SELECT k % 97, count(*), sum(v) FROM all_logs GROUP BY k % 97
       EXCEPT ALL SELECT * FROM per_group))";

/// File `n`: rows `k, v` with `k` running on from the files before it.
fn write_file(dir: &Path, n: usize) -> std::io::Result<()> {
    let mut text = String::from("k,v\n");
    for row in 0..ROWS_PER_FILE {
        let k = n * ROWS_PER_FILE + row;
        text.push_str(&format!("{k},{}\n", k * 7 % 1000));
    }
    // Written under a hidden name, then renamed: a listing never sees
    // half a file.
    let hidden = dir.join(format!(".part-{n:04}.csv"));
    std::fs::write(&hidden, text)?;
    std::fs::rename(hidden, dir.join(format!("part-{n:04}.csv")))
}

async fn file_source_kill_mid_stream() -> anyhow::Result<()> {
    let kills = kills();
    let data = tempfile::tempdir()?;
    let files = tempfile::tempdir()?;
    let url = format!("file://{}/", files.path().display());
    let mut server = ServerProcess::start(data.path())?;
    let client = connect(server.port).await?;
    client
        .batch_execute(&format!(
            "SET checkpoint_interval = '200ms';
             CREATE SOURCE logs (k BIGINT, v BIGINT)
               WITH (connector = 'file', path = '{url}', format = 'csv', discovery_interval = '50ms');
             CREATE MATERIALIZED VIEW per_group AS
               SELECT k % 97 AS g, count(*) AS n, sum(v) AS total FROM logs GROUP BY k % 97;"
        ))
        .await?;
    drop(client);
    let counted = "SELECT coalesce(sum(n), 0) FROM per_group";
    let completed = "SELECT count(*) FROM weir_catalog.checkpoints \
                     WHERE status = 'completed' AND trigger <> 'restored'";
    let mut kills_at = Vec::new();
    for round in 0..kills {
        let client = connect(server.port).await?;
        let first = round * FILES;
        let before = one_i64(&client, completed).await?;
        let previous = kills_at.last().copied().unwrap_or(0);
        let deadline = Instant::now() + Duration::from_secs(120);
        let mut written = first;
        let rows_at_kill = loop {
            if written < first + BEFORE_KILL {
                write_file(files.path(), written)?;
                written += 1;
            }
            let rows = one_i64(&client, counted).await?;
            if written >= first + BEFORE_KILL / 2
                && one_i64(&client, completed).await? >= before + 2
                && rows > previous
            {
                break rows;
            }
            ensure!(Instant::now() < deadline, "no checkpoint within 2 minutes");
            tokio::time::sleep(Duration::from_millis(30)).await;
        };
        kills_at.push(rows_at_kill);
        drop(client);
        server.kill()?;
        for n in written..first + FILES {
            write_file(files.path(), n)?;
        }
        server = ServerProcess::start(data.path())?;
    }

    let client = connect(server.port).await?;
    let all_rows = (kills * FILES * ROWS_PER_FILE) as i64;
    wait_for_count(&client, counted, all_rows, "rows").await?;
    client
        .batch_execute(&format!(
            "CREATE SOURCE all_logs (k BIGINT, v BIGINT)
               WITH (connector = 'file', path = '{url}', format = 'csv', discovery_interval = 'off')"
        ))
        .await?;
    let difference = one_i64(&client, DIFFERENCE).await?;
    ensure!(
        difference == 0,
        "{difference} rows differ from the batch answer"
    );
    println!(
        "    killed {kills} times, with {kills_at:?} of {all_rows} rows counted; after restart all, equal to batch"
    );
    drop(client);
    server.kill()?;
    Ok(())
}
