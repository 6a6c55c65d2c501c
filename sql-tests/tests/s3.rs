//! Checkpoints in S3: a real S3-compatible server (moto's, from PyPI) on
//! loopback, a weir process configured through the standard `AWS_*`
//! environment variables, checkpoints written to and deleted from the
//! bucket, and a `kill -9` recovered from what the bucket holds.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, bail, ensure};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::checkpoint_failures::one_i64;
use crate::crash::{ServerProcess, connect};

use crate::Test;

pub const TESTS: &[(&str, Test)] = &[(
    "checkpoints/s3: checkpoints go to an S3 bucket, retention deletes there, kill -9 recovers",
    || Box::pin(checkpoints_in_s3()),
)];

pub(crate) const BUCKET: &str = "weir-checkpoints";

/// moto's S3 server on a free loopback port, stopped when dropped.
pub(crate) struct S3Server {
    child: Child,
    port: u16,
}

impl S3Server {
    pub(crate) async fn start() -> anyhow::Result<Self> {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let child = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("cannot start moto_server (pip install 'moto[server]')")?;
        let server = Self { child, port };
        for _ in 0..200 {
            if let Ok((status, _)) = server.request("PUT", &format!("/{BUCKET}")).await {
                ensure!(status == 200, "creating the bucket answered {status}");
                return Ok(server);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!("moto_server did not answer on port {port} within 20 s")
    }

    /// The `AWS_*` variables a weir process needs to reach this server at
    /// `endpoint`.
    pub(crate) fn env(endpoint: &str) -> [(&'static str, &str); 5] {
        [
            ("AWS_ENDPOINT", endpoint),
            ("AWS_ALLOW_HTTP", "true"),
            ("AWS_REGION", "us-east-1"),
            ("AWS_ACCESS_KEY_ID", "weir"),
            ("AWS_SECRET_ACCESS_KEY", "weir-secret"),
        ]
    }

    pub(crate) fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// One plain HTTP/1.1 request; the status and the body.
    async fn request(&self, method: &str, target: &str) -> anyhow::Result<(u16, String)> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).await?;
        let request = format!(
            "{method} {target} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            self.port
        );
        stream.write_all(request.as_bytes()).await?;
        let mut response = String::new();
        stream.read_to_string(&mut response).await?;
        let status = response
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .with_context(|| format!("not an HTTP response: {response:.80}"))?;
        Ok((status, response))
    }

    /// Every key in the bucket under `prefix`.
    async fn keys(&self, prefix: &str) -> anyhow::Result<Vec<String>> {
        let (status, body) = self
            .request("GET", &format!("/{BUCKET}?list-type=2&prefix={prefix}"))
            .await?;
        ensure!(status == 200, "listing the bucket answered {status}");
        ensure!(
            !body.contains("<IsTruncated>true"),
            "more keys than one listing holds"
        );
        Ok(body
            .split("<Key>")
            .skip(1)
            .filter_map(|k| k.split_once("</Key>").map(|(key, _)| key.to_string()))
            .collect())
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn checkpoints_in_s3() -> anyhow::Result<()> {
    let s3 = S3Server::start().await?;
    let endpoint = s3.endpoint();
    let env = S3Server::env(&endpoint);
    let dir = tempfile::tempdir()?;
    let server = ServerProcess::start_with_env(dir.path(), &env)?;
    let client = connect(server.port).await?;
    client
        .batch_execute(&format!(
            "SET checkpoint_interval = off;
             SET checkpoint_storage = 's3://{BUCKET}/cluster-a';
             SET checkpoints_retained = 1;
             CREATE TABLE t (k BIGINT PRIMARY KEY, v BIGINT);
             INSERT INTO t SELECT value, value % 7 FROM generate_series(1, 5000);
             CREATE MATERIALIZED VIEW totals AS SELECT v, count(*) AS n, sum(k) AS s FROM t GROUP BY v;
             CHECKPOINT;
             UPDATE t SET v = 100 WHERE k <= 10;
             CHECKPOINT;
             DELETE FROM t WHERE k > 4990;
             CHECKPOINT;"
        ))
        .await?;
    let completed = one_i64(
        &client,
        "SELECT count(*) FROM weir_catalog.checkpoints WHERE status = 'completed'",
    )
    .await?;
    ensure!(completed == 3, "{completed} checkpoints completed, not 3");

    // Only the newest checkpoint is retained, with the shared files it uses.
    // Retention runs after CHECKPOINT has returned, so give it a moment.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let keys = loop {
        let keys = s3.keys("cluster-a/").await?;
        let metadata: Vec<&String> = keys.iter().filter(|k| k.ends_with("/_metadata")).collect();
        let old_left = keys
            .iter()
            .any(|k| k.starts_with("cluster-a/chk-1/") || k.starts_with("cluster-a/chk-2/"));
        if metadata == ["cluster-a/chk-3/_metadata"] && !old_left {
            break keys;
        }
        ensure!(
            std::time::Instant::now() < deadline,
            "checkpoints 1 and 2 not deleted from the bucket: {keys:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    ensure!(
        keys.iter().any(|k| k.starts_with("cluster-a/shared/")),
        "no shared state files in the bucket: {keys:?}"
    );
    ensure!(
        !dir.path().join("checkpoints").exists()
            || std::fs::read_dir(dir.path().join("checkpoints"))?
                .next()
                .is_none(),
        "checkpoints were written to the data directory too"
    );

    // Written after the last checkpoint: replayed from the table's log.
    client
        .batch_execute("INSERT INTO t VALUES (9001, 3), (9002, 100)")
        .await?;
    drop(client);
    server.kill()?;

    let restarted = ServerProcess::start_with_env(dir.path(), &env)?;
    let client = connect(restarted.port).await?;
    let restored = one_i64(
        &client,
        "SELECT count(*) FROM weir_catalog.checkpoints WHERE trigger = 'restored'",
    )
    .await?;
    ensure!(restored == 1, "the views did not resume from a checkpoint");
    client.batch_execute("FLUSH").await?;
    let rows = |sql: &'static str| {
        let client = &client;
        async move {
            let rows = client.query(sql, &[]).await?;
            Ok::<_, anyhow::Error>(
                rows.iter()
                    .map(|r| (r.get::<_, i64>(0), r.get::<_, i64>(1), r.get::<_, i64>(2)))
                    .collect::<Vec<_>>(),
            )
        }
    };
    let view = rows("SELECT v, n, s FROM totals ORDER BY v").await?;
    let batch = rows("SELECT v, count(*), sum(k) FROM t GROUP BY v ORDER BY v").await?;
    ensure!(
        view == batch,
        "after recovery from S3 the view is {view:?}, the batch answer {batch:?}"
    );
    ensure!(view.len() == 8, "expected 8 groups, got {view:?}");
    Ok(())
}
