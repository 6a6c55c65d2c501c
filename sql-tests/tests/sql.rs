//! The weir test binary: every `.slt` file under `slt/` in both protocol
//! modes, then the protocol and crash tests. `cargo test -p weir-sql-tests -- WORD` runs
//! only the suites whose path contains WORD.
//!
//! Each file gets a fresh data directory and an in-process server on an
//! ephemeral port. A line `# weir: restart` in a file stops the server and
//! starts a new one on the same data directory before going on: what was
//! acknowledged before must still be there.

mod against_postgres;
mod checkpoint_failures;
mod client;
mod clients;
mod crash;
mod differential;
mod disk_full;
mod file_crash;
mod fuzz;
mod nexmark_crash;
mod protocol;
mod s3;
mod s3_faults;
mod savepoints;
mod security;
mod sessions;

/// A test that is not an slt file: an async function run to completion.
type Test = fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = anyhow::Result<()>>>>;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, anyhow};
use client::{PgClient, Protocol};
use sqllogictest::Runner;
use weir_server::{Config, RunningServer};

const RESTART_MARKER: &str = "# weir: restart";
/// A directory a script may write files in and name as `$WEIR_FILES`
/// (after `control substitution on`); it lasts across restarts.
const FILES_VAR: &str = "WEIR_FILES";
const SUBSTITUTION_ON: &str = "control substitution on";

fn slt_files(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            slt_files(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "slt") {
            out.push(path);
        }
    }
    Ok(())
}

pub async fn start_server(data_dir: &Path) -> anyhow::Result<RunningServer> {
    RunningServer::start(&Config::ephemeral(data_dir)).await
}

/// Splits a script at restart markers; each part keeps its line numbers
/// (earlier lines become blank), so errors point into the real file. A
/// script that turns substitution on has it on in every part.
fn segments(script: &str) -> Vec<String> {
    let lines: Vec<&str> = script.lines().collect();
    let substitution = lines.iter().any(|l| l.trim() == SUBSTITUTION_ON);
    let mut parts = Vec::new();
    let mut start = 0;
    for (i, line) in lines.iter().enumerate() {
        if line.trim() == RESTART_MARKER {
            parts.push((start, i));
            start = i + 1;
        }
    }
    parts.push((start, lines.len()));
    parts
        .into_iter()
        .map(|(from, to)| {
            let earlier = match from {
                0 => String::new(),
                _ if substitution => format!("{SUBSTITUTION_ON}{}", "\n".repeat(from)),
                _ => "\n".repeat(from),
            };
            earlier + &lines[from..to].join("\n") + "\n"
        })
        .collect()
}

async fn run_file(path: &Path, protocol: Protocol) -> anyhow::Result<()> {
    let script =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let data_dir = tempfile::tempdir()?;
    let files_dir = tempfile::tempdir()?;
    for segment in segments(&script) {
        let server = start_server(data_dir.path()).await?;
        let port = server.local_addr().port();
        let mut runner = Runner::new(move || PgClient::connect(port, protocol));
        runner.add_label(protocol.name());
        runner.set_var(FILES_VAR.into(), files_dir.path().display().to_string());
        let result = runner.run_script_async(&segment).await;
        runner.shutdown_async().await;
        server.shutdown().await;
        result.map_err(|e| anyhow!("{}", e.display(false)))?;
    }
    Ok(())
}

fn main() -> ExitCode {
    // pgwire's decoder panics on some malformed frames of the protocol
    // fuzz; the connection task ends and the server goes on. One line each,
    // not a backtrace, keeps the log readable.
    std::panic::set_hook(Box::new(|info| {
        let thread = std::thread::current();
        eprintln!("panic on {}: {info}", thread.name().unwrap_or("a thread"));
    }));
    if let Some(code) = crash::serve_if_child() {
        return code;
    }
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let selected =
        |name: &str| filters.is_empty() || filters.iter().any(|f| name.contains(f.as_str()));
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("slt");
    let mut files = Vec::new();
    if let Err(e) = slt_files(&root, &mut files) {
        eprintln!("cannot list {}: {e}", root.display());
        return ExitCode::FAILURE;
    }
    files.sort();
    let runtime = match weir_server::runtime() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("cannot start a runtime: {e}");
            return ExitCode::FAILURE;
        }
    };

    let (mut passed, mut failed) = (0, Vec::new());
    let mut record = |name: String, result: anyhow::Result<()>| match result {
        Ok(()) => {
            println!("test {name} ... ok");
            passed += 1;
        }
        Err(e) => {
            println!("test {name} ... FAILED");
            failed.push((name, e));
        }
    };
    for file in &files {
        let relative = file
            .strip_prefix(&root)
            .unwrap_or(file)
            .display()
            .to_string();
        for protocol in [Protocol::Simple, Protocol::Extended] {
            let name = format!("slt/{relative} ({})", protocol.name());
            if selected(&name) {
                let result = runtime.block_on(run_file(file, protocol));
                record(name, result);
            }
        }
    }
    for (name, test) in protocol::TESTS
        .iter()
        .chain(sessions::TESTS)
        .chain(differential::TESTS)
        .chain(crash::TESTS)
        .chain(checkpoint_failures::TESTS)
        .chain(s3::TESTS)
        .chain(savepoints::TESTS)
        .chain(nexmark_crash::TESTS)
        .chain(file_crash::TESTS)
        .chain(disk_full::TESTS)
        .chain(fuzz::TESTS)
        .chain(s3_faults::TESTS)
        .chain(security::TESTS)
        .chain(clients::TESTS)
        .chain(against_postgres::TESTS)
    {
        if selected(name) {
            record(name.to_string(), runtime.block_on(test()));
        }
    }

    for (name, error) in &failed {
        println!("\n---- {name} ----\n{error:#}");
    }
    println!("\n{passed} passed, {} failed", failed.len());
    if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
