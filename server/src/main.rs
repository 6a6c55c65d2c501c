//! The `weir` binary: `weir` serves; `weir bench ...` measures.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use weir_server::config::{
    DEFAULT_DATA_DIR, DEFAULT_LISTEN, DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_MESSAGE_SIZE,
    DEFAULT_QUERY_MEMORY_LIMIT, FileConfig, SizeFlags,
};
use weir_server::{Config, RunningServer, bench, shutdown_signal};

#[derive(Debug, Parser)]
#[command(
    name = "weir",
    version,
    about = "A streaming SQL database that speaks Postgres"
)]
struct Cli {
    /// Address to listen on.
    #[arg(long, env = "WEIR_LISTEN", global = true, help = format!("Address to listen on [default: {DEFAULT_LISTEN}]"))]
    listen: Option<String>,
    /// Directory that holds all of weir's data.
    #[arg(long, env = "WEIR_DATA_DIR", global = true, help = format!("Directory for all data [default: {DEFAULT_DATA_DIR}]"))]
    data_dir: Option<PathBuf>,
    /// A directory, besides the data directory, that SQL may name as a
    /// file:// location (file sources, checkpoint storage, savepoints);
    /// repeat for more. Also `file_roots` in the config file.
    #[arg(long = "file-root", value_name = "DIR")]
    file_roots: Vec<PathBuf>,
    /// Memory the queries of all sessions together may hold, like 512MB or
    /// 4GB; past it sorts spill to disk and other queries fail with 53200.
    /// Also `query_memory_limit` in the config file.
    #[arg(long, env = "WEIR_QUERY_MEMORY_LIMIT", value_name = "SIZE", help = format!("Memory for queries [default: {DEFAULT_QUERY_MEMORY_LIMIT}]"))]
    query_memory_limit: Option<String>,
    /// The largest protocol message a client may send, like 64MB; a larger
    /// one closes its connection with 54000. Also `max_message_size` in
    /// the config file.
    #[arg(long, env = "WEIR_MAX_MESSAGE_SIZE", value_name = "SIZE", help = format!("Largest protocol message [default: {DEFAULT_MAX_MESSAGE_SIZE}]"))]
    max_message_size: Option<String>,
    /// PEM certificate chain to offer TLS with (with --tls-key). Also
    /// `tls_cert` in the config file.
    #[arg(long, env = "WEIR_TLS_CERT", value_name = "FILE")]
    tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert. Also `tls_key` in the config file.
    #[arg(long, env = "WEIR_TLS_KEY", value_name = "FILE")]
    tls_key: Option<PathBuf>,
    /// Whether loopback clients log in without a password [default: true].
    /// Also `trust_loopback` in the config file.
    #[arg(long, env = "WEIR_TRUST_LOOPBACK", value_name = "BOOL")]
    trust_loopback: Option<bool>,
    /// Refuse clients from other hosts that do not use TLS. Also
    /// `remote_tls_only` in the config file.
    #[arg(long, env = "WEIR_REMOTE_TLS_ONLY", value_name = "BOOL")]
    remote_tls_only: Option<bool>,
    /// Connections at once (superusers may exceed it); past it 53300.
    /// Also `max_connections` in the config file.
    #[arg(long, env = "WEIR_MAX_CONNECTIONS", value_name = "N", help = format!("Connections at once [default: {DEFAULT_MAX_CONNECTIONS}]"))]
    max_connections: Option<usize>,
    /// TOML file with the same keys as the flags (listen, data_dir,
    /// file_roots, query_memory_limit, max_message_size, tls_cert, tls_key,
    /// trust_loopback, remote_tls_only, max_connections).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// Start from this savepoint (the URL of its directory): every table,
    /// view and source offset as it was then.
    #[arg(long, value_name = "URL")]
    restore_savepoint: Option<String>,
    /// With --restore-savepoint: the state backend to restore into
    /// (rocksdb or memory), whichever the savepoint was taken on.
    #[arg(long, value_name = "BACKEND", requires = "restore_savepoint")]
    state_backend: Option<String>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a benchmark against an in-process server on a temporary data directory.
    Bench {
        #[command(subcommand)]
        benchmark: bench::Benchmark,
    },
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let cli = Cli::parse();
    let runtime = weir_server::runtime()?;
    match cli.command {
        Some(Command::Bench { benchmark }) => runtime.block_on(bench::run(benchmark)),
        None => {
            let mut file = match &cli.config {
                Some(path) => FileConfig::load(path)?,
                None => FileConfig::default(),
            };
            file.tls_cert = cli.tls_cert.or(file.tls_cert);
            file.tls_key = cli.tls_key.or(file.tls_key);
            file.trust_loopback = cli.trust_loopback.or(file.trust_loopback);
            file.remote_tls_only = cli.remote_tls_only.or(file.remote_tls_only);
            file.max_connections = cli.max_connections.or(file.max_connections);
            let mut config = Config::resolve(
                cli.listen,
                cli.data_dir,
                SizeFlags {
                    query_memory_limit: cli.query_memory_limit,
                    max_message_size: cli.max_message_size,
                },
                file,
            )?;
            config.restore_savepoint = cli.restore_savepoint;
            config.restore_state_backend = cli.state_backend;
            config.file_roots.extend(cli.file_roots);
            runtime.block_on(serve(config))
        }
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let server = RunningServer::start(&config).await?;
    shutdown_signal().await.context("cannot wait for signals")?;
    tracing::info!("shutting down");
    server.shutdown().await;
    Ok(())
}
