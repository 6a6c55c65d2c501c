//! Checkpoints failing: storage that refuses new checkpoints. Failures are
//! counted and reported, processing goes on, and once more checkpoints
//! fail in a row than `tolerable_checkpoint_failures` the views restart
//! from the last completed checkpoint, equal to the batch answer after.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use anyhow::{bail, ensure};

use crate::crash::connect;

type Test = fn() -> Pin<Box<dyn Future<Output = anyhow::Result<()>>>>;

pub const TESTS: &[(&str, Test)] = &[(
    "checkpoints/unwritable storage: failures counted, processing goes on, views restart",
    || Box::pin(unwritable_storage()),
)];

async fn one_i64(client: &tokio_postgres::Client, sql: &str) -> anyhow::Result<i64> {
    Ok(client.query_one(sql, &[]).await?.get(0))
}

async fn view_equals_batch(client: &tokio_postgres::Client) -> anyhow::Result<()> {
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
