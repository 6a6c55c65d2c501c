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
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
