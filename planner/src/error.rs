//! Errors of the planner, by category. The server turns each into an
//! ErrorResponse with a SQLSTATE.

use datafusion::error::DataFusionError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The statement itself is wrong; `code` is its SQLSTATE.
    #[error("{message}")]
    User { code: &'static str, message: String },
    /// Valid SQL that weir does not support (SQLSTATE 0A000).
    #[error("{0}")]
    NotSupported(String),
    /// Raised while DataFusion planned or ran the statement.
    #[error(transparent)]
    DataFusion(#[from] DataFusionError),
    /// Raised by the storage layer.
    #[error(transparent)]
    Storage(#[from] weir_storage::Error),
    /// A broken invariant inside weir.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    pub fn user(code: &'static str, message: impl Into<String>) -> Self {
        Error::User {
            code,
            message: message.into(),
        }
    }

    pub fn not_supported(message: impl Into<String>) -> Self {
        Error::NotSupported(message.into())
    }

    /// A failed read or write of files or object storage, described by
    /// `message`: 53100 when the disk is full, else 58030.
    pub fn io(message: impl Into<String>) -> Self {
        let message = message.into();
        Error::user(io_code(&message), message)
    }
}

/// The SQLSTATE of a storage failure described by `message`: 53100
/// (disk full) for ENOSPC, as the OS words it, else 58030 (io error).
pub fn io_code(message: &str) -> &'static str {
    if message.contains("No space left on device") {
        "53100"
    } else {
        "58030"
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
