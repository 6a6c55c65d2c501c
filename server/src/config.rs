//! Server configuration: command-line flags, `WEIR_*` environment variables
//! and an optional TOML file with the same keys. Flags and variables win
//! over the file; the file wins over defaults.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Deserialize;

pub const DEFAULT_LISTEN: &str = "127.0.0.1:4590";
pub const DEFAULT_DATA_DIR: &str = "./weir-data";

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
}

/// The keys a configuration file may set.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub listen: Option<String>,
    pub data_dir: Option<PathBuf>,
    #[serde(default)]
    pub file_roots: Vec<PathBuf>,
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
        Ok(Self {
            listen,
            data_dir,
            restore_savepoint: None,
            restore_state_backend: None,
            file_roots: file.file_roots,
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
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_win_over_the_file_and_the_file_over_defaults() {
        let file: FileConfig =
            toml::from_str("listen = \"127.0.0.1:7000\"\ndata_dir = \"/tmp/x\"").unwrap();
        let config = Config::resolve(Some("127.0.0.1:7001".into()), None, file).unwrap();
        assert_eq!(config.listen.port(), 7001);
        assert_eq!(config.data_dir, PathBuf::from("/tmp/x"));
        let config = Config::resolve(None, None, FileConfig::default()).unwrap();
        assert_eq!(config.listen.to_string(), DEFAULT_LISTEN);
    }

    #[test]
    fn bad_values_are_refused() {
        assert!(Config::resolve(Some("nowhere".into()), None, FileConfig::default()).is_err());
        assert!(toml::from_str::<FileConfig>("listn = \"x\"").is_err());
    }
}
