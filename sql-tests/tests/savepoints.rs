//! Savepoints restored into fresh data directories by `weir
//! --restore-savepoint`: from a `file://` location into the memory backend
//! (taken on RocksDB), from an `s3://` bucket (moto's server on loopback),
//! surviving a `kill -9` after; and a damaged savepoint refused, by
//! `RESTORE SAVEPOINT` and at start, with nothing changed.

use std::path::{Path, PathBuf};

use anyhow::{Context, ensure};

use crate::Test;
use crate::crash::{BACKEND_ENV, RESTORE_ENV, ServerProcess, connect};
use crate::s3::{BUCKET, S3Server};

pub const TESTS: &[(&str, Test)] = &[(
    "savepoints: restore into fresh data dirs from file:// and s3://, across backends; damage refused",
    || Box::pin(restore_into_fresh_data_dirs()),
)];

type Groups = Vec<(i64, i64, i64)>;

async fn groups(client: &tokio_postgres::Client, sql: &str) -> anyhow::Result<Groups> {
    let rows = client.query(sql, &[]).await?;
    Ok(rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect())
}

const VIEW: &str = "SELECT v, n, s FROM totals ORDER BY v";
const BATCH: &str = "SELECT v, count(*), sum(k) FROM t GROUP BY v ORDER BY v";

/// The view equals the batch answer over its table; returns it.
async fn view_is_batch(client: &tokio_postgres::Client) -> anyhow::Result<Groups> {
    client.batch_execute("FLUSH").await?;
    let (view, batch) = (groups(client, VIEW).await?, groups(client, BATCH).await?);
    ensure!(view == batch, "view {view:?}, batch answer {batch:?}");
    Ok(view)
}

/// Some file of a view's state in a savepoint directory.
fn state_file(dir: &Path) -> anyhow::Result<PathBuf> {
    let mut stack = vec![dir.join("views")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                return Ok(path);
            }
        }
    }
    anyhow::bail!("no state file under {}", dir.display())
}

async fn restore_into_fresh_data_dirs() -> anyhow::Result<()> {
    let s3 = S3Server::start().await?;
    let endpoint = s3.endpoint();
    let env = S3Server::env(&endpoint);
    let saves = tempfile::tempdir()?;
    let first = tempfile::tempdir()?;
    let server = ServerProcess::start_with_env(first.path(), &env)?;
    let client = connect(server.port).await?;
    client
        .batch_execute(
            "SET checkpoint_interval = off;
             CREATE TABLE t (k BIGINT PRIMARY KEY, v BIGINT);
             INSERT INTO t SELECT value, value % 7 FROM generate_series(1, 2000);
             CREATE MATERIALIZED VIEW totals AS SELECT v, count(*) AS n, sum(k) AS s FROM t GROUP BY v;",
        )
        .await?;
    let saved = view_is_batch(&client)
        .await
        .context("before the savepoint")?;
    client
        .batch_execute(&format!(
            "CREATE SAVEPOINT local TO 'file://{}';
             CREATE SAVEPOINT offsite TO 's3://{BUCKET}/savepoints';
             UPDATE t SET v = 100 WHERE k <= 10;
             DELETE FROM t WHERE k > 1990;",
            saves.path().display()
        ))
        .await?;
    let changed = view_is_batch(&client)
        .await
        .context("after the savepoint")?;
    ensure!(
        changed != saved,
        "the changes after the savepoint changed nothing"
    );

    // file://, taken on RocksDB, restored into the memory backend.
    let local = format!("file://{}/local", saves.path().display());
    let fresh = tempfile::tempdir()?;
    let mut restore_env = env.to_vec();
    restore_env.extend([(RESTORE_ENV, local.as_str()), (BACKEND_ENV, "memory")]);
    let restored = ServerProcess::start_with_env(fresh.path(), &restore_env)?;
    let other = connect(restored.port).await?;
    let view = view_is_batch(&other)
        .await
        .context("restored from file://")?;
    ensure!(view == saved, "file:// restore differs");
    let backend: String = other.query_one("SHOW state_backend", &[]).await?.get(0);
    ensure!(backend == "memory", "restored into {backend}, not memory");
    other
        .batch_execute("INSERT INTO t VALUES (5000, 3); DELETE FROM t WHERE k = 1")
        .await?;
    let updated = view_is_batch(&other).await?;
    drop(other);
    restored.kill()?;
    let again = ServerProcess::start_with_env(fresh.path(), &env)?;
    let other = connect(again.port).await?;
    let view = view_is_batch(&other).await.context("after kill -9")?;
    ensure!(
        view == updated,
        "after kill -9 the restored database lost its later writes"
    );
    drop(other);
    again.kill()?;

    // s3://, into RocksDB.
    let offsite = format!("s3://{BUCKET}/savepoints/offsite");
    let fresh = tempfile::tempdir()?;
    let mut restore_env = env.to_vec();
    restore_env.push((RESTORE_ENV, offsite.as_str()));
    let restored = ServerProcess::start_with_env(fresh.path(), &restore_env)?;
    let other = connect(restored.port).await?;
    let view = view_is_batch(&other).await.context("restored from s3://")?;
    ensure!(view == saved, "s3:// restore differs");
    drop(other);
    restored.kill()?;

    // A damaged file: refused with XX001, nothing changed.
    let damaged = state_file(&saves.path().join("local"))?;
    let mut bytes = std::fs::read(&damaged)?;
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&damaged, bytes)?;
    let refused = client
        .batch_execute("RESTORE SAVEPOINT local")
        .await
        .err()
        .context("a damaged savepoint was restored")?;
    let code = refused.code().map(|c| c.code().to_string());
    ensure!(
        code.as_deref() == Some("XX001"),
        "refused with {code:?}: {refused}"
    );
    ensure!(
        view_is_batch(&client).await? == changed,
        "a refused restore changed the view"
    );
    let fresh = tempfile::tempdir()?;
    let mut restore_env = env.to_vec();
    restore_env.push((RESTORE_ENV, local.as_str()));
    ensure!(
        ServerProcess::start_with_env(fresh.path(), &restore_env).is_err(),
        "a server started from a damaged savepoint"
    );
    Ok(())
}
