//! A full disk: the data directory on a small tmpfs fills up under INSERTs.
//! Writes and checkpoints fail with 53100 and the server keeps serving;
//! once space returns, writes succeed again without a restart, a view that
//! failed resumes, and every acknowledged row is there, before and after a
//! restart.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, bail, ensure};

use crate::Test;
use crate::checkpoint_failures::one_i64;
use crate::crash::connect;

pub const TESTS: &[(&str, Test)] = &[(
    "faults/full disk: writes fail with 53100, succeed again once space returns, nothing acked is lost",
    || Box::pin(full_disk()),
)];

/// A tmpfs of `megabytes` mounted at a new directory, unmounted on drop.
struct SmallDisk {
    mount: PathBuf,
}

impl SmallDisk {
    /// `None` where this process may not mount (not root, or a container
    /// without the right): the test then says it was skipped.
    fn mount(under: &Path, megabytes: u32) -> anyhow::Result<Option<Self>> {
        let mount = under.join("small-disk");
        std::fs::create_dir_all(&mount)?;
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={megabytes}m"), "tmpfs"])
            .arg(&mount)
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|status| status.success());
        Ok(mounted.then_some(Self { mount }))
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.mount).status();
    }
}

/// Fills all but `keep` bytes of the file system holding `dir`.
fn fill(path: &Path, keep_megabytes: u64) -> anyhow::Result<()> {
    let output = Command::new("df")
        .args(["--output=avail", "-B1M"])
        .arg(path.parent().context("no parent")?)
        .output()?;
    let available: u64 = String::from_utf8_lossy(&output.stdout)
        .lines()
        .nth(1)
        .context("df printed nothing")?
        .trim()
        .parse()?;
    let filler = vec![0u8; 1 << 20];
    let mut file = std::fs::File::create(path)?;
    for _ in 0..available.saturating_sub(keep_megabytes) {
        std::io::Write::write_all(&mut file, &filler)?;
    }
    file.sync_all()?;
    Ok(())
}

async fn full_disk() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    // Room for RocksDB to resume once space returns: it waits for a write
    // buffer's worth (64 MB) free.
    let Some(disk) = SmallDisk::mount(dir.path(), 128)? else {
        println!("    skipped: this process cannot mount a tmpfs (it needs root)");
        return Ok(());
    };
    let data = disk.mount.join("data");
    let config = weir_server::Config::ephemeral(&data);
    let server = weir_server::RunningServer::start(&config).await?;
    let client = connect(server.local_addr().port()).await?;
    client
        .batch_execute(
            "SET checkpoint_interval = off;
             SET restart_strategy = none;
             CREATE TABLE t (k BIGINT PRIMARY KEY, s TEXT);
             CREATE MATERIALIZED VIEW n AS SELECT count(*) AS n FROM t;
             CHECKPOINT",
        )
        .await?;
    let filler = disk.mount.join("filler");
    fill(&filler, 6)?;

    let (mut acked, mut batch) = (0i64, 0i64);
    let error = loop {
        let insert = format!(
            "INSERT INTO t SELECT value + {}, repeat('x', 1000) FROM generate_series(1, 500)",
            batch * 1000
        );
        match client.batch_execute(&insert).await {
            Ok(()) => acked += 500,
            Err(e) => break e,
        }
        batch += 1;
        if batch > 200 {
            bail!("100 MB of rows went into 6 MB of free space");
        }
    };
    println!("full after {acked} rows: {error}");
    ensure!(
        error.code().map(|c| c.code()) == Some("53100"),
        "a full disk failed the INSERT with {error:?}, not 53100"
    );
    // The server goes on serving reads; a checkpoint fails as clearly.
    ensure!(one_i64(&client, "SELECT count(*) FROM t").await? == acked);
    let checkpoint = client.batch_execute("CHECKPOINT").await;
    let code = checkpoint
        .err()
        .and_then(|e| e.code().map(|c| c.code().to_string()));
    ensure!(
        code.as_deref() == Some("53100"),
        "CHECKPOINT on a full disk: {code:?}"
    );

    // Space returns: writes succeed again, without a restart.
    std::fs::remove_file(&filler)?;
    let mut recovered = false;
    let mut last = String::new();
    let start = std::time::Instant::now();
    for _ in 0..300 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        batch += 1;
        let insert = format!(
            "INSERT INTO t SELECT value + {}, 'back' FROM generate_series(1, 10)",
            batch * 1000
        );
        let result = client.batch_execute(&insert).await;
        if let Err(e) = &result {
            last = e.to_string();
        }
        if result.is_ok() {
            acked += 10;
            recovered = true;
            println!("writes recovered after {:?}", start.elapsed());
            break;
        }
    }
    ensure!(
        recovered,
        "writes still fail a minute after space returned: {last}"
    );
    ensure!(one_i64(&client, "SELECT count(*) FROM t").await? == acked);
    // A view whose state could not be written failed and stays failed
    // (no restart strategy), saying why, until it is resumed.
    let status = client
        .query_one(
            "SELECT status, failure FROM weir_catalog.views WHERE name = 'n'",
            &[],
        )
        .await?;
    let (status, failure): (String, Option<String>) = (status.get(0), status.get(1));
    if status == "failed" {
        let failure = failure.unwrap_or_default();
        ensure!(
            failure.contains("No space left on device"),
            "the view failed with {failure:?}"
        );
        client
            .batch_execute("ALTER MATERIALIZED VIEW n RESUME")
            .await?;
    }
    println!("the view was {status} after the disk filled");
    client.batch_execute("CHECKPOINT; FLUSH").await?;
    let view = one_i64(&client, "SELECT n FROM n").await?;
    ensure!(view == acked, "the view counts {view} of {acked} rows");
    drop(client);
    server.shutdown().await;

    let server = weir_server::RunningServer::start(&config).await?;
    let client = connect(server.local_addr().port()).await?;
    let after = one_i64(&client, "SELECT count(*) FROM t").await?;
    ensure!(
        after == acked,
        "{after} rows after a restart, {acked} acknowledged"
    );
    drop(client);
    server.shutdown().await;
    drop(disk);
    Ok(())
}
