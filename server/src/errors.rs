//! Errors to Postgres ErrorResponses: every error category gets a SQLSTATE.
//!
//! weir's own errors carry their code. DataFusion's are classified by
//! variant, following wrapped errors down to the storage or Arrow error
//! that caused them, so a duplicate key inside an INSERT plan still reads
//! `23505`.

use datafusion::arrow::error::ArrowError;
use datafusion::common::SchemaError;
use datafusion::error::DataFusionError;
use pgwire::error::{ErrorInfo, PgWireError};
use weir_executor::runtime::ViewFailure;
use weir_planner::{Error, io_code};
use weir_storage::{ConstraintViolation, Error as StorageError};

/// SQLSTATE and message for `error`.
pub(crate) fn classify(error: &Error) -> (&'static str, String) {
    match error {
        Error::User { code, message } => (code, message.clone()),
        Error::NotSupported(message) => ("0A000", message.clone()),
        Error::DataFusion(e) => datafusion_error(e),
        Error::Storage(e) => storage_error(e),
        Error::Internal(message) => ("XX000", format!("internal error: {message}")),
    }
}

pub(crate) fn error_info(error: &Error) -> ErrorInfo {
    let (code, message) = classify(error);
    if code.starts_with("XX") {
        tracing::error!("{message}");
    }
    ErrorInfo::new("ERROR".into(), code.into(), message)
}

pub(crate) fn to_pgwire(error: Error) -> PgWireError {
    PgWireError::UserError(Box::new(error_info(&error)))
}

fn storage_error(e: &StorageError) -> (&'static str, String) {
    let code = match e {
        StorageError::Constraint(ConstraintViolation::UniqueKey { .. }) => "23505",
        StorageError::Constraint(ConstraintViolation::NotNull { .. }) => "23502",
        StorageError::NoSuchTable(_) => "42P01",
        StorageError::Storage(message) => io_code(message),
        StorageError::Corrupt(_) => "XX001",
        StorageError::Internal(_) => "XX000",
    };
    (code, e.to_string())
}

fn arrow_error(e: &ArrowError) -> (&'static str, String) {
    let message = e.to_string();
    if let ArrowError::ComputeError(m) = e
        && let Some(code) = math_code(m)
    {
        return (code, message);
    }
    let code = match e {
        ArrowError::DivideByZero => "22012",
        // "Can't cast value 70000 to type Int16": a number that does not fit.
        ArrowError::CastError(m) if m.contains("Can't cast value") || m.contains("verflow") => {
            "22003"
        }
        ArrowError::CastError(_) | ArrowError::ParseError(_) => "22P02",
        ArrowError::ArithmeticOverflow(_) => "22003",
        ArrowError::ComputeError(m) if m.contains("verflow") => "22003",
        ArrowError::InvalidArgumentError(m) if m.contains("non-nullable") => "23502",
        // "12345.6 is too large to store in a Decimal128 of precision 4".
        ArrowError::InvalidArgumentError(m) if m.contains("to store in a Decimal") => "22003",
        ArrowError::InvalidArgumentError(_) => "22023",
        ArrowError::ExternalError(inner) => {
            return external_error(inner.as_ref()).unwrap_or(("XX000", message));
        }
        _ => "XX000",
    };
    (code, message)
}

fn external_error(
    e: &(dyn std::error::Error + Send + Sync + 'static),
) -> Option<(&'static str, String)> {
    if let Some(storage) = e.downcast_ref::<StorageError>() {
        Some(storage_error(storage))
    } else if let Some(planner) = e.downcast_ref::<Error>() {
        Some(classify(planner))
    } else if let Some(df) = e.downcast_ref::<DataFusionError>() {
        Some(datafusion_error(df))
    } else if let Some(failure) = e.downcast_ref::<ViewFailure>() {
        // The view's own error decides the code; the message names the view.
        let (code, message) = datafusion_error(&failure.error);
        Some((
            code,
            format!("materialized view \"{}\" failed: {message}", failure.view),
        ))
    } else {
        e.downcast_ref::<ArrowError>().map(arrow_error)
    }
}

/// PostgreSQL's codes for math functions given arguments outside their
/// domain (`sqrt(-1)`, `power(0, -5)`, `ln(0)`).
fn math_code(message: &str) -> Option<&'static str> {
    let lower = message.to_lowercase();
    if lower.contains("square root of a negative") {
        Some("2201F")
    } else if lower.contains("raised to a negative power") || lower.contains("logarithm of") {
        Some("2201E")
    } else {
        None
    }
}

fn plan_code(message: &str) -> &'static str {
    let lower = message.to_lowercase();
    if lower.contains("not found") && (lower.contains("table") || lower.contains("relation")) {
        "42P01"
    } else if lower.contains("correlated") && lower.contains("subquery") {
        // DataFusion wants to know before running it that a correlated
        // subquery gives one row: an aggregate or `LIMIT 1` says so.
        "0A000"
    } else if lower.contains("no function matches") || lower.contains("invalid function") {
        "42883"
    } else if lower.contains("coerce")
        || lower.contains("type mismatch")
        || lower.contains("cannot cast")
        || lower.contains("expected type")
        || lower.contains("does not support")
    {
        "42804"
    } else if lower.contains("column")
        && (lower.contains("not found") || lower.contains("no field"))
    {
        "42703"
    } else {
        "42601"
    }
}

fn datafusion_error(e: &DataFusionError) -> (&'static str, String) {
    let message = e.message().to_string();
    match e {
        DataFusionError::Context(_, inner) | DataFusionError::Diagnostic(_, inner) => {
            datafusion_error(inner)
        }
        DataFusionError::Shared(inner) => datafusion_error(inner),
        DataFusionError::Collection(errors) => errors
            .first()
            .map(datafusion_error)
            .unwrap_or(("XX000", message)),
        DataFusionError::ArrowError(inner, _) => arrow_error(inner),
        DataFusionError::External(inner) => {
            external_error(inner.as_ref()).unwrap_or(("XX000", message))
        }
        DataFusionError::SQL(_, _) => ("42601", message),
        DataFusionError::NotImplemented(text) if text.contains("Subquery") => (
            "0A000",
            format!("this form of subquery is not supported ({text})"),
        ),
        DataFusionError::NotImplemented(_) => ("0A000", message),
        DataFusionError::SchemaError(schema, _) => {
            let code = match schema.as_ref() {
                SchemaError::FieldNotFound { .. } => "42703",
                SchemaError::AmbiguousReference { .. } => "42702",
                SchemaError::DuplicateQualifiedField { .. }
                | SchemaError::DuplicateUnqualifiedField { .. } => "42701",
            };
            (code, message)
        }
        DataFusionError::Plan(text) => (plan_code(text), message),
        DataFusionError::Execution(text) => {
            let lower = text.to_lowercase();
            let code = if lower.contains("divide by zero") || lower.contains("division by zero") {
                "22012"
            } else if let Some(code) = math_code(text) {
                code
            } else if lower.contains("subquery returned more than one row") {
                return (
                    "21000",
                    "more than one row returned by a subquery used as an expression".into(),
                );
            } else if lower.contains("cast") || lower.contains("parse") {
                "22P02"
            } else {
                "22000"
            };
            (code, message)
        }
        DataFusionError::ResourcesExhausted(_) => ("53200", message),
        DataFusionError::ExecutionJoin(_) | DataFusionError::Internal(_) => ("XX000", message),
        _ => ("XX000", message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrapped_storage_errors_keep_their_code() {
        let storage =
            StorageError::Constraint(ConstraintViolation::UniqueKey { table: "t".into() });
        let wrapped = DataFusionError::Context(
            "writing".into(),
            Box::new(DataFusionError::External(Box::new(storage))),
        );
        let (code, message) = classify(&Error::DataFusion(wrapped));
        assert_eq!(code, "23505");
        assert!(message.contains("duplicate key"), "{message}");
    }

    #[test]
    fn arrow_errors_map_to_data_exceptions() {
        let e = Error::DataFusion(DataFusionError::ArrowError(
            Box::new(ArrowError::DivideByZero),
            None,
        ));
        assert_eq!(classify(&e).0, "22012");
        let e = Error::DataFusion(DataFusionError::ArrowError(
            Box::new(ArrowError::CastError(
                "Cannot cast string 'x' to value of Int32 type".into(),
            )),
            None,
        ));
        assert_eq!(classify(&e).0, "22P02");
    }

    #[test]
    fn math_domain_errors_read_as_postgres() {
        let e = |m: &str| {
            Error::DataFusion(DataFusionError::ArrowError(
                Box::new(ArrowError::ComputeError(m.into())),
                None,
            ))
        };
        let sqrt = e("Execution error: cannot take square root of a negative number");
        assert_eq!(classify(&sqrt).0, "2201F");
        assert_eq!(
            classify(&e("zero raised to a negative power is undefined")).0,
            "2201E"
        );
        let rows = Error::DataFusion(DataFusionError::Execution(
            "Scalar subquery returned more than one row".into(),
        ));
        assert_eq!(classify(&rows).0, "21000");
    }

    #[test]
    fn planner_categories_map_directly() {
        assert_eq!(classify(&Error::user("42P07", "exists")).0, "42P07");
        assert_eq!(classify(&Error::not_supported("nope")).0, "0A000");
        assert_eq!(
            classify(&Error::DataFusion(DataFusionError::Plan(
                "table 'weir.public.x' not found".into()
            )))
            .0,
            "42P01"
        );
    }
}
