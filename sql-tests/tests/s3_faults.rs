//! Object-store faults: a proxy between weir and the S3 server that can
//! refuse every request or slow each one down. Checkpoints fail or take
//! longer, never the views: writes go on, views stay equal to the batch
//! answer, and once the faults stop checkpoints succeed and a `kill -9`
//! recovers from the bucket.

use std::time::Duration;

use anyhow::ensure;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::Test;
use crate::checkpoint_failures::{one_i64, view_equals_batch};
use crate::crash::{ServerProcess, connect};
use crate::s3::{BUCKET, S3Server};

pub const TESTS: &[(&str, Test)] = &[(
    "faults/object store refusing and slow: checkpoints fail or wait, views never do",
    || Box::pin(object_store_faults()),
)];

const PASS: u8 = 0;
const REFUSE: u8 = 1;
const SLOW: u8 = 2;

/// A TCP proxy to `target` whose behaviour `mode` sets, connection by
/// connection: pass through, answer 403, or pass through after a delay.
/// A change of mode closes the connections open, so that pooled ones do
/// not carry on in the old mode.
async fn proxy(target: String, mode: watch::Receiver<u8>) -> anyhow::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let mut changes = mode.clone();
            let mode = *changes.borrow_and_update();
            let target = target.clone();
            tokio::spawn(async move {
                if mode == REFUSE {
                    let body =
                        "<Error><Code>AccessDenied</Code><Message>injected fault</Message></Error>";
                    let response = format!(
                        "HTTP/1.1 403 Forbidden\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = client.write_all(response.as_bytes()).await;
                    return;
                }
                if mode == SLOW {
                    tokio::time::sleep(Duration::from_millis(300)).await;
                }
                if let Ok(mut server) = TcpStream::connect(target.as_str()).await {
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = changes.changed() => {}
                    }
                }
            });
        }
    });
    Ok(port)
}

async fn object_store_faults() -> anyhow::Result<()> {
    let s3 = S3Server::start().await?;
    let (mode, modes) = watch::channel(PASS);
    let target = s3.endpoint().trim_start_matches("http://").to_string();
    let port = proxy(target, modes).await?;
    let endpoint = format!("http://127.0.0.1:{port}");
    let env = S3Server::env(&endpoint);
    let dir = tempfile::tempdir()?;
    let server = ServerProcess::start_with_env(dir.path(), &env)?;
    let client = connect(server.port).await?;
    client
        .batch_execute(&format!(
            "SET checkpoint_interval = off;
             SET tolerable_checkpoint_failures = 100;
             SET checkpoint_storage = 's3://{BUCKET}/faults';
             CREATE TABLE t (k BIGINT PRIMARY KEY, v BIGINT);
             INSERT INTO t SELECT value, value % 7 FROM generate_series(1, 2000);
             CREATE MATERIALIZED VIEW totals AS SELECT sum(v) AS total, count(*) AS n FROM t;
             CHECKPOINT;"
        ))
        .await?;

    // Every request refused: checkpoints fail with the reason; views go on.
    mode.send_replace(REFUSE);
    for round in 0..3 {
        let failed = client.batch_execute("CHECKPOINT").await;
        ensure!(
            failed.is_err(),
            "a checkpoint succeeded while S3 refused everything"
        );
        client
            .batch_execute(&format!("INSERT INTO t VALUES ({}, 5)", 10_000 + round))
            .await?;
        view_equals_batch(&client).await?;
    }
    let failures = one_i64(
        &client,
        "SELECT count(*) FROM weir_catalog.checkpoints WHERE status = 'failed' AND failure IS NOT NULL",
    )
    .await?;
    ensure!(failures >= 3, "{failures} failed checkpoints recorded");
    let running = one_i64(
        &client,
        "SELECT count(*) FROM weir_catalog.views WHERE status = 'running'",
    )
    .await?;
    ensure!(running == 1, "the view stopped while checkpoints failed");

    // Every request slow: checkpoints still complete.
    mode.send_replace(SLOW);
    client
        .batch_execute("INSERT INTO t VALUES (20000, 6); CHECKPOINT")
        .await?;
    view_equals_batch(&client).await?;

    // Faults over: written after the last checkpoint, replayed after a kill.
    mode.send_replace(PASS);
    client
        .batch_execute("CHECKPOINT; INSERT INTO t VALUES (30000, 4)")
        .await?;
    drop(client);
    server.kill()?;
    let restarted = ServerProcess::start_with_env(dir.path(), &env)?;
    let client = connect(restarted.port).await?;
    view_equals_batch(&client).await?;
    let rows = one_i64(&client, "SELECT count(*) FROM t").await?;
    ensure!(rows == 2005, "{rows} rows after the restart");
    Ok(())
}
