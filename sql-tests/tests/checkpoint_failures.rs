//! Checkpoints failing: storage that refuses new checkpoints. Failures are
//! counted and reported, processing goes on, and once more checkpoints
//! fail in a row than `tolerable_checkpoint_failures` the views restart
//! from the last completed checkpoint, equal to the batch answer after.
//! And checkpoints damaged in storage: recovery falls back to an older one,
//! or rebuilds the views from the tables' logs, never serving wrong data.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, ensure};

use crate::crash::connect;

use crate::Test;

pub const TESTS: &[(&str, Test)] = &[
    (
        "checkpoints/unwritable storage: failures counted, processing goes on, views restart",
        || Box::pin(unwritable_storage()),
    ),
    (
        "checkpoints/damaged newest checkpoint: the one before is used; none usable: views rebuilt",
        || Box::pin(damaged_checkpoints()),
    ),
    (
        "checkpoints/ids never repeat, even across a restart after failed checkpoints",
        || Box::pin(ids_never_repeat()),
    ),
    (
        "checkpoints/delete_on_cancellation: a clean stop leaves no checkpoint, complete or not",
        || Box::pin(delete_on_cancellation()),
    ),
];

pub(crate) async fn one_i64(client: &tokio_postgres::Client, sql: &str) -> anyhow::Result<i64> {
    Ok(client.query_one(sql, &[]).await?.get(0))
}

/// Polls `count` (a query of one number) until it reaches `all` of
/// `what`, within 5 minutes; a count above `all` is counting twice.
pub(crate) async fn wait_for_count(
    client: &tokio_postgres::Client,
    count: &str,
    all: i64,
    what: &str,
) -> anyhow::Result<()> {
    let deadline = std::time::Instant::now() + Duration::from_secs(300);
    loop {
        let counted = one_i64(client, count).await?;
        ensure!(
            counted <= all,
            "{counted} {what} counted, more than the {all} there are"
        );
        if counted == all {
            return Ok(());
        }
        ensure!(
            std::time::Instant::now() < deadline,
            "only {counted} of {all} {what} after 5 minutes"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The `totals` view (`sum(v)`, `count(*)` of `t`) against its batch answer.
pub(crate) async fn view_equals_batch(client: &tokio_postgres::Client) -> anyhow::Result<()> {
    client.batch_execute("FLUSH").await?;
    let view = client.query_one("SELECT total, n FROM totals", &[]).await?;
    let batch = client
        .query_one("SELECT sum(v) AS total, count(*) AS n FROM t", &[])
        .await?;
    let (view, batch): ((i64, i64), (i64, i64)) =
        ((view.get(0), view.get(1)), (batch.get(0), batch.get(1)));
    ensure!(
        view == batch,
        "view {view:?} differs from the batch answer {batch:?}"
    );
    Ok(())
}

async fn unwritable_storage() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let server = crate::start_server(dir.path()).await?;
    let client = connect(server.local_addr().port()).await?;
    let store = dir.path().join("store");
    client
        .batch_execute(&format!(
            "SET checkpoint_interval = off;
             SET checkpoint_storage = 'file://{}';
             SET tolerable_checkpoint_failures = 2;
             SET restart_delay = '10ms';
             CREATE TABLE t (k BIGINT PRIMARY KEY, v BIGINT);
             INSERT INTO t SELECT value, value % 10 FROM generate_series(1, 1000);
             CREATE MATERIALIZED VIEW totals AS SELECT sum(v) AS total, count(*) AS n FROM t;
             CHECKPOINT;",
            store.display()
        ))
        .await?;
    let last = one_i64(&client, "SELECT max(id) FROM weir_catalog.checkpoints").await?;
    // A file where each of the next checkpoints' directories would go.
    let blocked: Vec<_> = (last + 1..last + 20)
        .map(|id| store.join(format!("chk-{id}")))
        .collect();
    for path in &blocked {
        std::fs::write(path, b"not a directory")?;
    }

    for failure in 1..=2 {
        match client.batch_execute("CHECKPOINT").await {
            Ok(()) => bail!("checkpoint {failure} succeeded on unwritable storage"),
            Err(e) => ensure!(
                e.code().map(|c| c.code()) == Some("58030"),
                "CHECKPOINT failed with {e:?}, not SQLSTATE 58030"
            ),
        }
        // Processing goes on while checkpoints fail.
        client
            .batch_execute(&format!("INSERT INTO t VALUES ({}, 7)", 5000 + failure))
            .await?;
        view_equals_batch(&client).await?;
    }
    let failed = one_i64(
        &client,
        "SELECT count(*) FROM weir_catalog.checkpoints WHERE status = 'failed' AND failure IS NOT NULL",
    )
    .await?;
    ensure!(
        failed == 2,
        "{failed} failed checkpoints reported, expected 2"
    );

    // One more than tolerated: the views restart from the last checkpoint.
    ensure!(
        client.batch_execute("CHECKPOINT").await.is_err(),
        "third checkpoint succeeded"
    );
    let mut restored = 0;
    for _ in 0..100 {
        restored = one_i64(
            &client,
            "SELECT count(*) FROM weir_catalog.checkpoints WHERE trigger = 'restored'",
        )
        .await?;
        if restored > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    ensure!(
        restored == 1,
        "the views did not restart from the last checkpoint"
    );
    client
        .batch_execute("INSERT INTO t VALUES (9000, 3)")
        .await?;
    view_equals_batch(&client).await?;

    // Storage writable again: checkpoints complete.
    for path in &blocked {
        std::fs::remove_file(path)?;
    }
    client.batch_execute("CHECKPOINT").await?;
    drop(client);
    server.shutdown().await;
    Ok(())
}

/// Every file under `dir`, recursively.
fn files_under(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            files.extend(files_under(&path)?);
        } else {
            files.push(path);
        }
    }
    Ok(files)
}

/// The ids of the checkpoints in `store` that have `_metadata`.
fn complete_checkpoints(store: &Path) -> anyhow::Result<Vec<u64>> {
    let mut ids: Vec<u64> = std::fs::read_dir(store)?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("_metadata").exists())
        .filter_map(|e| e.file_name().to_str()?.strip_prefix("chk-")?.parse().ok())
        .collect();
    ids.sort_unstable();
    Ok(ids)
}

/// The id of the checkpoint the running views were restored from.
async fn restored_from(client: &tokio_postgres::Client) -> anyhow::Result<Option<i64>> {
    let row = client
        .query_opt(
            "SELECT id FROM weir_catalog.checkpoints WHERE trigger = 'restored'",
            &[],
        )
        .await?;
    Ok(row.map(|r| r.get(0)))
}

async fn damaged_checkpoints() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let store = dir.path().join("store");
    let server = crate::start_server(dir.path()).await?;
    let client = connect(server.local_addr().port()).await?;
    client
        .batch_execute(&format!(
            "SET checkpoint_interval = off;
             SET checkpoint_storage = 'file://{}';
             CREATE TABLE t (k BIGINT PRIMARY KEY, v BIGINT);
             INSERT INTO t SELECT value, value % 10 FROM generate_series(1, 1000);
             CREATE MATERIALIZED VIEW totals AS SELECT sum(v) AS total, count(*) AS n FROM t;
             CHECKPOINT;
             UPDATE t SET v = v + 1 WHERE k <= 100;
             CHECKPOINT;
             INSERT INTO t VALUES (2000, 5);",
            store.display()
        ))
        .await?;
    drop(client);
    server.shutdown().await;

    // The newest checkpoint's own files (MANIFEST, CURRENT, ...) get other
    // bytes of the same length: only the checksum can tell.
    let ids = complete_checkpoints(&store)?;
    let [.., previous, newest] = ids[..] else {
        bail!("expected two complete checkpoints, found {ids:?}");
    };
    let private: Vec<PathBuf> = files_under(&store.join(format!("chk-{newest}")))?
        .into_iter()
        .filter(|f| !f.ends_with("_metadata"))
        .collect();
    ensure!(
        !private.is_empty(),
        "checkpoint {newest} has no files of its own"
    );
    for file in &private {
        let mut bytes = std::fs::read(file)?;
        bytes.iter_mut().for_each(|b| *b = !*b);
        std::fs::write(file, bytes)?;
    }

    let server = crate::start_server(dir.path()).await?;
    let client = connect(server.local_addr().port()).await?;
    let restored = restored_from(&client).await?;
    ensure!(
        restored == Some(previous as i64),
        "restored from {restored:?}, expected checkpoint {previous} (the newest is damaged)"
    );
    view_equals_batch(&client).await?;
    client
        .batch_execute("INSERT INTO t VALUES (2001, 9)")
        .await?;
    view_equals_batch(&client).await?;
    drop(client);
    server.shutdown().await;

    // Shared files gone: no checkpoint is usable. The views are rebuilt
    // from the tables' logs rather than started empty.
    std::fs::remove_dir_all(store.join("shared"))?;
    let server = crate::start_server(dir.path()).await?;
    let client = connect(server.local_addr().port()).await?;
    let restored = restored_from(&client).await?;
    ensure!(
        restored.is_none(),
        "restored from checkpoint {restored:?} although its files are gone"
    );
    view_equals_batch(&client).await?;
    let n = one_i64(&client, "SELECT n FROM totals").await?;
    ensure!(n == 1002, "the rebuilt view counts {n} rows, not 1002");
    drop(client);
    server.shutdown().await;
    Ok(())
}

async fn delete_on_cancellation() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let server = crate::start_server(dir.path()).await?;
    let client = connect(server.local_addr().port()).await?;
    let store = dir.path().join("store");
    client
        .batch_execute(&format!(
            "SET checkpoint_storage = 'file://{}';
             SET checkpoint_retention = delete_on_cancellation;
             CREATE TABLE t (k BIGINT PRIMARY KEY, v BIGINT);
             INSERT INTO t SELECT value, value % 10 FROM generate_series(1, 1000);
             CREATE MATERIALIZED VIEW totals AS SELECT sum(v) AS total, count(*) AS n FROM t;
             CREATE SOURCE bids WITH (connector = 'nexmark', table = 'bid', event_rate = '200000');
             CREATE MATERIALIZED VIEW per_auction AS
               SELECT auction, count(*) AS n FROM bids GROUP BY auction;
             CHECKPOINT;
             SET checkpoint_interval = '20ms';",
            store.display()
        ))
        .await?;
    let completed = one_i64(
        &client,
        "SELECT count(*) FROM weir_catalog.checkpoints WHERE status = 'completed'",
    )
    .await?;
    ensure!(completed >= 1, "no checkpoint completed");
    tokio::time::sleep(Duration::from_millis(500)).await;
    drop(client);
    server.shutdown().await;
    let left: Vec<String> = std::fs::read_dir(&store)?
        .filter_map(|entry| entry.ok())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("chk-"))
        .collect();
    ensure!(left.is_empty(), "left behind after a clean stop: {left:?}");
    Ok(())
}

async fn ids_never_repeat() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let store = dir.path().join("store");
    let failed_id = {
        let server = crate::start_server(dir.path()).await?;
        let client = connect(server.local_addr().port()).await?;
        client
            .batch_execute(&format!(
                "SET checkpoint_interval = off;
                 SET checkpoint_storage = 'file://{}';
                 SET restart_strategy = none;
                 CREATE TABLE t (k BIGINT PRIMARY KEY, v BIGINT);
                 INSERT INTO t VALUES (1, 1);
                 CREATE MATERIALIZED VIEW totals AS SELECT sum(v) AS total, count(*) AS n FROM t;
                 CHECKPOINT;",
                store.display()
            ))
            .await?;
        let last = one_i64(&client, "SELECT max(id) FROM weir_catalog.checkpoints").await?;
        for id in last + 1..last + 10 {
            std::fs::write(store.join(format!("chk-{id}")), b"not a directory")?;
        }
        ensure!(client.batch_execute("CHECKPOINT").await.is_err());
        let failed = one_i64(&client, "SELECT max(id) FROM weir_catalog.checkpoints").await?;
        ensure!(
            failed == last + 1,
            "the failed checkpoint is {failed}, not {}",
            last + 1
        );
        drop(client);
        server.shutdown().await;
        failed
    };
    let server = crate::start_server(dir.path()).await?;
    let client = connect(server.local_addr().port()).await?;
    ensure!(client.batch_execute("CHECKPOINT").await.is_err());
    let next = one_i64(&client, "SELECT max(id) FROM weir_catalog.checkpoints").await?;
    ensure!(
        next > failed_id,
        "after a restart the next checkpoint is {next}, again at or below the failed {failed_id}"
    );
    drop(client);
    server.shutdown().await;
    Ok(())
}
