//! Errors of the storage layer, by category.

/// A row that breaks a table's constraints; the user's write is refused whole.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConstraintViolation {
    #[error("duplicate key value violates unique constraint \"{table}_pkey\"")]
    UniqueKey { table: String },
    #[error(
        "null value in column \"{column}\" of relation \"{table}\" violates not-null constraint"
    )]
    NotNull { table: String, column: String },
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The caller asked for something the data does not allow.
    #[error(transparent)]
    Constraint(#[from] ConstraintViolation),
    /// The table was dropped (or never existed).
    #[error("relation \"{0}\" does not exist")]
    NoSuchTable(String),
    /// The disk or the engine failed; the write did not happen.
    #[error("storage error: {0}")]
    Storage(String),
    /// Stored bytes could not be decoded.
    #[error("corrupt data: {0}")]
    Corrupt(String),
    /// A broken invariant inside weir.
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<arrow::error::ArrowError> for Error {
    fn from(e: arrow::error::ArrowError) -> Self {
        Error::Internal(e.to_string())
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
