//! What a prepared statement is ([`Prepared`]), what running one gives
//! ([`Outcome`]), and the fixed shapes of the rows weir makes itself
//! (EXPLAIN's `QUERY PLAN`, `SHOW` of a setting, `SHOW CREATE`).

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::{RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::execution::SendableRecordBatchStream;
use datafusion::logical_expr::expr::{Cast, Placeholder, TryCast};
use datafusion::logical_expr::{Expr, LogicalPlan};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;

use super::copy::{CopyFormat, CopyIn};
use super::plain_views::PlainViewSpec;
use super::truncate::TruncateTarget;
use crate::catalog::AccessChange;
use crate::ddl::TableSpec;
use crate::described_schema;
use crate::sources::SourceSpec;
use crate::statement::SessionStatement;
use crate::views::ViewSpec;
use crate::{Error, Result};

/// A statement ready to run, possibly many times with different parameters.
#[derive(Debug, Clone)]
pub enum Prepared {
    /// Planned by DataFusion: SELECT, EXPLAIN, INSERT, UPDATE, DELETE.
    Plan(LogicalPlan),
    CreateTable {
        spec: TableSpec,
        sql: String,
        append_only: bool,
        if_not_exists: bool,
    },
    DropTable {
        names: Vec<String>,
        if_exists: bool,
    },
    CreateSource {
        spec: SourceSpec,
        sql: String,
        if_not_exists: bool,
        /// A `file` connector: for superusers only.
        reads_storage: bool,
    },
    DropSources {
        names: Vec<String>,
        if_exists: bool,
    },
    AlterSource {
        name: String,
        paused: bool,
    },
    /// `ALTER MATERIALIZED VIEW name RESUME`.
    ResumeView(String),
    /// `TRUNCATE`: a DELETE of every row for each table, one commit.
    Truncate(Vec<TruncateTarget>),
    /// `LOCK TABLE names`, inside a transaction block (see `docs/sql.md`).
    Lock {
        tables: Vec<String>,
    },
    /// `VACUUM` or `ANALYZE` of tables that exist (see `maintenance.rs`).
    Maintenance {
        command: &'static str,
        tables: Vec<String>,
    },
    /// `COPY table FROM STDIN`: the server gathers the rows.
    CopyIn(CopyIn),
    /// `COPY table | (query) TO STDOUT`.
    CopyOut {
        plan: LogicalPlan,
        format: CopyFormat,
    },
    CreateView(Box<ViewSpec>),
    /// `CREATE VIEW`: a plain view.
    CreatePlainView(Box<PlainViewSpec>),
    DropPlainViews {
        names: Vec<String>,
        if_exists: bool,
    },
    DropViews {
        names: Vec<String>,
        if_exists: bool,
        cascade: bool,
    },
    /// `EXPLAIN CREATE MATERIALIZED VIEW`: the operator graph, as text.
    ExplainView(Vec<String>),
    Flush,
    Checkpoint,
    CreateSavepoint {
        name: String,
        location: Option<String>,
    },
    RestoreSavepoint(String),
    DropSavepoint {
        name: String,
        if_exists: bool,
    },
    /// `SET`/`RESET` of a database setting (`None`: its default).
    SetDatabase {
        name: String,
        value: Option<String>,
    },
    /// `SHOW` of a database setting.
    ShowDatabase(String),
    /// `SHOW CREATE TABLE | VIEW name`: the statement that made it.
    ShowCreate {
        name: String,
        definition: String,
    },
    Session(SessionStatement),
    /// Roles and grants to change; `tag` is the statement's.
    Access {
        tag: &'static str,
        changes: Vec<AccessChange>,
    },
}

/// What running a statement produced.
pub enum Outcome {
    /// Rows to stream to the client. Errors while streaming are
    /// DataFusion errors, to be classified like any other.
    Rows(SendableRecordBatchStream),
    /// A command completed: its tag (`CREATE TABLE`, `INSERT 0 2`, ...).
    Command(String),
    /// A session statement for the server to carry out.
    Session(SessionStatement),
    /// A `COPY ... FROM STDIN` waiting for its rows
    /// ([`Database::copy_in`]).
    CopyIn(CopyIn),
    /// The rows of a `COPY ... TO STDOUT`, to send in `format`.
    CopyOut {
        rows: SendableRecordBatchStream,
        format: CopyFormat,
    },
}

impl Prepared {
    /// Types of `$1, $2, ...` as far as they can be inferred.
    pub fn parameter_types(&self) -> Result<Vec<Option<DataType>>> {
        let Prepared::Plan(plan) = self else {
            return Ok(Vec::new());
        };
        let mut types = plan.get_parameter_types()?;
        for (name, cast_to) in cast_parameters(plan)? {
            if let Some(slot @ None) = types.get_mut(&name) {
                *slot = Some(cast_to);
            }
        }
        let mut ordered = Vec::new();
        for (name, data_type) in types {
            let index: usize = name
                .strip_prefix('$')
                .and_then(|n| n.parse().ok())
                .filter(|&n| n > 0)
                .ok_or_else(|| {
                    Error::user("42601", format!("parameter {name} is not of the form $n"))
                })?;
            if ordered.len() < index {
                ordered.resize(index, None);
            }
            ordered[index - 1] = data_type;
        }
        Ok(ordered)
    }

    /// The columns the statement returns, if it returns rows.
    pub fn result_schema(&self) -> Option<SchemaRef> {
        match self {
            Prepared::Plan(LogicalPlan::Dml(_)) => None,
            Prepared::Plan(LogicalPlan::Explain(_) | LogicalPlan::Analyze(_)) => {
                Some(explain_schema())
            }
            Prepared::Plan(plan) => Some(described_schema(plan)),
            Prepared::ExplainView(_) => Some(explain_schema()),
            Prepared::ShowDatabase(name) => Some(setting_schema(name)),
            Prepared::ShowCreate { .. } => Some(show_create_schema()),
            _ => None,
        }
    }
}

/// Parameters whose type DataFusion leaves open but that are cast at once
/// (`$1::oid[]`, as asyncpg's type lookup asks): they take the cast's type,
/// as PostgreSQL infers them.
fn cast_parameters(plan: &LogicalPlan) -> Result<HashMap<String, DataType>> {
    let mut found = HashMap::new();
    plan.apply_with_subqueries(|node| {
        node.apply_expressions(|expr| {
            expr.apply(|expr| {
                if let Expr::Cast(Cast { expr, field }) | Expr::TryCast(TryCast { expr, field }) =
                    expr
                    && let Expr::Placeholder(Placeholder { id, field: None }) = expr.as_ref()
                {
                    found
                        .entry(id.clone())
                        .or_insert_with(|| field.data_type().clone());
                }
                Ok(TreeNodeRecursion::Continue)
            })
        })
    })?;
    Ok(found)
}

/// The columns of `SHOW CREATE`, DataFusion's.
pub(super) fn show_create_schema() -> SchemaRef {
    Arc::new(Schema::new(
        ["table_catalog", "table_schema", "table_name", "definition"]
            .map(|c| Field::new(c, DataType::Utf8, false))
            .to_vec(),
    ))
}

fn explain_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![Field::new(
        "QUERY PLAN",
        DataType::Utf8,
        false,
    )]))
}

/// DataFusion's EXPLAIN rows (plan type, plan) as PostgreSQL's one `QUERY
/// PLAN` column, a line a row; each plan under a line naming its type.
pub(super) fn query_plan(batches: Vec<RecordBatch>) -> Result<Outcome> {
    let mut lines = Vec::new();
    for batch in &batches {
        let (Some(kinds), Some(plans)) = (
            batch.column(0).as_any().downcast_ref::<StringArray>(),
            batch.column(1).as_any().downcast_ref::<StringArray>(),
        ) else {
            return Err(Error::Internal("EXPLAIN rows are not text".into()));
        };
        for (kind, plan) in kinds.iter().zip(plans.iter()) {
            lines.push(format!("{}:", kind.unwrap_or_default()));
            lines.extend(plan.unwrap_or_default().lines().map(|l| format!("  {l}")));
        }
    }
    plan_lines(lines)
}

/// Lines of a plan as the rows of one `QUERY PLAN` column.
pub(super) fn plan_lines(lines: Vec<String>) -> Result<Outcome> {
    text_rows(explain_schema(), vec![lines])
}

/// Rows of text columns, given column by column, as a statement's answer.
pub(super) fn text_rows(schema: SchemaRef, columns: Vec<Vec<String>>) -> Result<Outcome> {
    let batch = RecordBatch::try_new(
        Arc::clone(&schema),
        columns
            .into_iter()
            .map(|values| Arc::new(StringArray::from(values)) as _)
            .collect(),
    )
    .map_err(datafusion::error::DataFusionError::from)?;
    Ok(Outcome::Rows(Box::pin(RecordBatchStreamAdapter::new(
        schema,
        futures::stream::iter([Ok(batch)]),
    ))))
}

pub(super) fn setting_schema(name: &str) -> SchemaRef {
    Arc::new(Schema::new(vec![Field::new(name, DataType::Utf8, false)]))
}
