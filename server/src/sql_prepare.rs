//! SQL's own `PREPARE name [(types)] AS statement` and `EXECUTE name
//! [(values)]`, as `pg_dump` uses them for the queries it repeats per
//! object. A statement prepared so is planned as a Parse of the extended
//! protocol plans it; `EXECUTE` binds its values as text parameters, as a
//! Bind in text format would, and runs it. `DEALLOCATE` drops it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use datafusion::sql::sqlparser::ast::{Expr, UnaryOperator, Value};
use pgwire::api::portal::{Format, Portal};
use pgwire::api::stmt::StoredStatement;
use pgwire::error::PgWireResult;
use weir_planner::Error;

use crate::connection::PreparedStatement;
use crate::errors::to_pgwire;

/// A session's statements prepared with SQL `PREPARE`, by name.
#[derive(Default)]
pub(crate) struct SqlPrepared(Mutex<HashMap<String, PreparedStatement>>);

impl SqlPrepared {
    /// Keeps `statement` as `name`; `42P05` when the name is taken.
    pub fn insert(&self, name: &str, statement: PreparedStatement) -> PgWireResult<()> {
        let mut statements = self.0.lock().expect("prepared statements");
        if statements.contains_key(name) {
            return Err(to_pgwire(Error::user(
                "42P05",
                format!("prepared statement \"{name}\" already exists"),
            )));
        }
        statements.insert(name.to_string(), statement);
        Ok(())
    }

    /// Drops `name`, or every statement when `None`.
    pub fn remove(&self, name: Option<&str>) {
        let mut statements = self.0.lock().expect("prepared statements");
        match name {
            Some(name) => {
                statements.remove(name);
            }
            None => statements.clear(),
        }
    }

    /// A portal that runs `name` with `values`, bound as text.
    pub fn portal(&self, name: &str, values: &[Expr]) -> PgWireResult<Portal<PreparedStatement>> {
        let statement = self
            .0
            .lock()
            .expect("prepared statements")
            .get(name)
            .cloned()
            .ok_or_else(|| {
                to_pgwire(Error::user(
                    "26000",
                    format!("prepared statement \"{name}\" does not exist"),
                ))
            })?;
        let mut portal = Portal::<PreparedStatement>::default();
        portal.statement = Arc::new(StoredStatement::new(name.to_string(), statement, vec![]));
        portal.parameter_format = Format::UnifiedText;
        portal.parameters = values.iter().map(value_text).collect::<PgWireResult<_>>()?;
        Ok(portal)
    }
}

/// The text of a constant `EXECUTE` passes, `None` for NULL.
fn value_text(expr: &Expr) -> PgWireResult<Option<Bytes>> {
    let text = match expr {
        Expr::Value(value) => match &value.value {
            Value::Null => return Ok(None),
            Value::Number(n, _) => n.clone(),
            Value::Boolean(b) => b.to_string(),
            other => match other.clone().into_string() {
                Some(text) => text,
                None => return Err(not_constant()),
            },
        },
        Expr::UnaryOp {
            op: UnaryOperator::Minus,
            expr,
        } => match value_text(expr)? {
            Some(text) => format!("-{}", String::from_utf8_lossy(&text)),
            None => return Ok(None),
        },
        Expr::Cast { expr, .. } | Expr::Nested(expr) => return value_text(expr),
        _ => return Err(not_constant()),
    };
    Ok(Some(Bytes::from(text)))
}

fn not_constant() -> pgwire::error::PgWireError {
    to_pgwire(Error::user(
        "0A000",
        "EXECUTE takes constants as its parameters",
    ))
}
