//! Server configuration: command-line flags, `WEIR_*` environment variables
//! and an optional TOML file with the same keys. Flags and variables win
//! over the file; the file wins over defaults.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Deserialize;

pub const DEFAULT_LISTEN: &str = "127.0.0.1:4590";
pub const DEFAULT_DATA_DIR: &str = "./weir-data";
/// What the queries of all sessions together may hold in memory.
pub const DEFAULT_QUERY_MEMORY_LIMIT: &str = "4GB";
/// The largest protocol message a client may send.
pub const DEFAULT_MAX_MESSAGE_SIZE: &str = "256MB";
/// Connections at once, as PostgreSQL's default.
pub const DEFAULT_MAX_CONNECTIONS: usize = 100;

/// What a server needs to start.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    /// Start from this savepoint (a directory URL) instead.
    pub restore_savepoint: Option<String>,
    /// The state backend a restored savepoint goes into (`rocksdb` or
    /// `memory`), where it differs from the one it was taken on.
    pub restore_state_backend: Option<String>,
    /// Directories besides the data directory that SQL may name as
    /// `file://` locations (file sources, checkpoint storage, savepoints).
    pub file_roots: Vec<PathBuf>,
    /// Bytes the queries of all sessions together may hold; past it a
    /// query spills (sorts) or fails with 53200.
    pub query_memory_limit: usize,
    /// Bytes one protocol message may have; a larger one closes its
    /// connection with 54000.
    pub max_message_size: usize,
    pub security: SecurityConfig,
}

/// Who may connect, and how.
#[derive(Debug, Clone)]
pub struct SecurityConfig {
    /// PEM certificate chain and private key: TLS is offered with both.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// Loopback clients log in without a password.
    pub trust_loopback: bool,
    /// Clients from other hosts must use TLS.
    pub remote_tls_only: bool,
    /// Connections at once; superusers may exceed it.
    pub max_connections: usize,
}

impl Default for SecurityConfig {
    fn default() -> Self {
        Self {
            tls_cert: None,
            tls_key: None,
            trust_loopback: true,
            remote_tls_only: false,
            max_connections: DEFAULT_MAX_CONNECTIONS,
        }
    }
}

/// Sizes given by flag or environment, over the file's.
#[derive(Debug, Default)]
pub struct SizeFlags {
    pub query_memory_limit: Option<String>,
    pub max_message_size: Option<String>,
}

/// The keys a configuration file may set.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub listen: Option<String>,
    pub data_dir: Option<PathBuf>,
    #[serde(default)]
    pub file_roots: Vec<PathBuf>,
    pub query_memory_limit: Option<String>,
    pub max_message_size: Option<String>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub trust_loopback: Option<bool>,
    pub remote_tls_only: Option<bool>,
    pub max_connections: Option<usize>,
}

impl FileConfig {
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        toml::from_str(&text)
            .with_context(|| format!("invalid configuration in {}", path.display()))
    }
}

impl Config {
    /// Combines explicit settings (flags or environment) with a file's.
    pub fn resolve(
        listen: Option<String>,
        data_dir: Option<PathBuf>,
        sizes: SizeFlags,
        file: FileConfig,
    ) -> anyhow::Result<Self> {
        let listen = listen
            .or(file.listen)
            .unwrap_or_else(|| DEFAULT_LISTEN.to_string());
        let listen = listen.parse().with_context(|| {
            format!("--listen {listen} is not an address like {DEFAULT_LISTEN}")
        })?;
        let data_dir = data_dir
            .or(file.data_dir)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
        let size = |flag: Option<String>, file: Option<String>, default: &str, name: &str| {
            let text = flag.or(file).unwrap_or_else(|| default.to_string());
            parse_size(&text)
                .with_context(|| format!("--{name} {text} is not a size like 512MB or 4GB"))
        };
        let query_memory_limit = size(
            sizes.query_memory_limit,
            file.query_memory_limit,
            DEFAULT_QUERY_MEMORY_LIMIT,
            "query-memory-limit",
        )?;
        let max_message_size = size(
            sizes.max_message_size,
            file.max_message_size,
            DEFAULT_MAX_MESSAGE_SIZE,
            "max-message-size",
        )?;
        Ok(Self {
            listen,
            data_dir,
            restore_savepoint: None,
            restore_state_backend: None,
            file_roots: file.file_roots,
            query_memory_limit,
            max_message_size,
            security: SecurityConfig {
                tls_cert: file.tls_cert,
                tls_key: file.tls_key,
                trust_loopback: file.trust_loopback.unwrap_or(true),
                remote_tls_only: file.remote_tls_only.unwrap_or(false),
                max_connections: file.max_connections.unwrap_or(DEFAULT_MAX_CONNECTIONS),
            },
        })
    }

    /// A server on `data_dir`, listening on an ephemeral loopback port,
    /// that may use files under the system's temporary directory (where
    /// tests and benchmarks keep theirs).
    pub fn ephemeral(data_dir: &Path) -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir: data_dir.to_path_buf(),
            restore_savepoint: None,
            restore_state_backend: None,
            file_roots: vec![std::env::temp_dir()],
            query_memory_limit: 1 << 30,
            max_message_size: 256 << 20,
            security: SecurityConfig::default(),
        }
    }
}

/// A size in bytes, as PostgreSQL writes memory settings: a number with
/// an optional unit `kB`, `MB`, `GB` or `TB` (powers of 1024; `KiB`,
/// `MiB`, ... also).
pub fn parse_size(text: &str) -> anyhow::Result<usize> {
    let text = text.trim();
    let digits = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(digits);
    let number: usize = number.parse().context("no number")?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "kb" | "kib" => 10,
        "mb" | "mib" => 20,
        "gb" | "gib" => 30,
        "tb" | "tib" => 40,
        other => anyhow::bail!("unknown unit {other}"),
    };
    number
        .checked_mul(1 << shift)
        .filter(|bytes| *bytes > 0)
        .context("a size must be above zero and fit in memory")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_win_over_the_file_and_the_file_over_defaults() {
        let file: FileConfig =
            toml::from_str("listen = \"127.0.0.1:7000\"\ndata_dir = \"/tmp/x\"").unwrap();
        let config = Config::resolve(
            Some("127.0.0.1:7001".into()),
            None,
            SizeFlags::default(),
            file,
        )
        .unwrap();
        assert_eq!(config.listen.port(), 7001);
        assert_eq!(config.data_dir, PathBuf::from("/tmp/x"));
        let config =
            Config::resolve(None, None, SizeFlags::default(), FileConfig::default()).unwrap();
        assert_eq!(config.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(config.query_memory_limit, 4 << 30);
        assert_eq!(config.max_message_size, 256 << 20);
    }

    #[test]
    fn bad_values_are_refused() {
        let resolve = |listen: &str, memory: &str| {
            Config::resolve(
                Some(listen.into()),
                None,
                SizeFlags {
                    query_memory_limit: Some(memory.into()),
                    max_message_size: None,
                },
                FileConfig::default(),
            )
        };
        assert!(resolve("nowhere", "1GB").is_err());
        assert!(resolve(DEFAULT_LISTEN, "lots").is_err());
        assert!(resolve(DEFAULT_LISTEN, "0").is_err());
        assert!(toml::from_str::<FileConfig>("listn = \"x\"").is_err());
    }

    #[test]
    fn sizes_read_as_postgres_writes_them() {
        assert_eq!(parse_size("512MB").unwrap(), 512 << 20);
        assert_eq!(parse_size("2 GiB").unwrap(), 2 << 30);
        assert_eq!(parse_size("64kB").unwrap(), 64 << 10);
        assert_eq!(parse_size("1000").unwrap(), 1000);
        assert!(parse_size("5 parsecs").is_err());
        assert!(parse_size("99999999999TB").is_err());
    }
}
