//! Correlated subqueries DataFusion cannot turn into joins, evaluated once
//! per outer row, as PostgreSQL runs a SubPlan.
//!
//! DataFusion decorrelates a subquery when it is correlated by equality
//! and shaped as it expects; any other one (`x.b < t.b`, a recursive CTE
//! anchored on an outer column, a `LIMIT` under an outer reference) is left
//! in the optimized plan, which its physical planner refuses. The catalog
//! queries drivers send are full of them: asyncpg's type introspection
//! walks domain base types in a correlated recursive CTE. So weir's query
//! planner first replaces each subquery still in the plan by a function of
//! the outer columns it reads: for every distinct tuple of their values the
//! function binds them into the subquery as constants, plans and runs it,
//! and answers with its value (a scalar subquery), whether it has rows
//! (`EXISTS`) or whether it holds the left side (`IN`).
//!
//! A subquery is run once per distinct tuple in a batch: right for small
//! inputs such as the catalog's, slow over a big table, where PostgreSQL
//! is no faster without an index.

use std::collections::HashMap;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{Array, RecordBatch, new_empty_array};
use datafusion::arrow::datatypes::DataType;
use datafusion::catalog::Session;
use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode, TreeNodeRecursion};
use datafusion::common::{Column, Result, ScalarValue, exec_err, internal_datafusion_err};
use datafusion::execution::context::{QueryPlanner, SessionState};
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::logical_expr::expr::{Exists, InSubquery, ScalarFunction};
use datafusion::logical_expr::expr_rewriter::NamePreserver;
use datafusion::logical_expr::{
    ColumnarValue, Expr, LogicalPlan, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    Subquery, Volatility,
};
use datafusion::physical_plan::{ExecutionPlan, collect};
use datafusion::physical_planner::{DefaultPhysicalPlanner, PhysicalPlanner};

/// DataFusion's physical planner, after the subqueries it cannot plan have
/// become [`RowSubquery`] calls.
#[derive(Debug, Default)]
pub struct RowSubqueryPlanner;

impl RowSubqueryPlanner {
    /// `builder` planning with this planner.
    pub fn install(builder: SessionStateBuilder) -> SessionStateBuilder {
        builder.with_query_planner(Arc::new(Self))
    }
}

#[async_trait]
impl QueryPlanner for RowSubqueryPlanner {
    async fn create_physical_plan(
        &self,
        plan: &LogicalPlan,
        session: &dyn Session,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let state = session
            .as_any()
            .downcast_ref::<SessionState>()
            .ok_or_else(|| internal_datafusion_err!("a query planned outside a SessionState"))?;
        let plan = subqueries_per_row(plan.clone(), state)?;
        DefaultPhysicalPlanner::default()
            .create_physical_plan(&plan, session)
            .await
    }
}

/// `plan` with each subquery that still reads an outer column replaced by
/// a [`RowSubquery`] call over those columns.
fn subqueries_per_row(plan: LogicalPlan, state: &SessionState) -> Result<LogicalPlan> {
    plan.transform_up(|node| {
        let inputs: Vec<_> = node
            .inputs()
            .into_iter()
            .map(|i| Arc::clone(i.schema()))
            .collect();
        let in_inputs = |column: &Column| inputs.iter().any(|schema| schema.has_column(column));
        let names = NamePreserver::new(&node);
        node.map_expressions(|expr| {
            let name = names.save(&expr);
            let replaced = expr.transform_up(|expr| {
                let (kind, subquery, left) = match expr {
                    Expr::ScalarSubquery(subquery) => (Kind::Scalar, subquery, None),
                    Expr::Exists(Exists { subquery, negated }) => {
                        (Kind::Exists { negated }, subquery, None)
                    }
                    Expr::InSubquery(InSubquery {
                        expr,
                        subquery,
                        negated,
                    }) => (Kind::In { negated }, subquery, Some(*expr)),
                    other => return Ok(Transformed::no(other)),
                };
                let outer = outer_columns(&subquery.subquery, &in_inputs)?;
                if outer.is_empty() {
                    return Ok(Transformed::no(kind.rebuild(subquery, left)));
                }
                let args = left
                    .into_iter()
                    .chain(outer.iter().cloned().map(Expr::Column))
                    .collect();
                let function = RowSubquery {
                    kind,
                    plan: Arc::clone(&subquery.subquery),
                    outer,
                    state: Arc::new(state.clone()),
                    signature: Signature::variadic_any(Volatility::Volatile),
                };
                Ok(Transformed::yes(Expr::ScalarFunction(
                    ScalarFunction::new_udf(Arc::new(ScalarUDF::new_from_impl(function)), args),
                )))
            })?;
            Ok(replaced.update_data(|expr| name.restore(expr)))
        })
    })
    .data()
}

/// The columns of the enclosing node that `plan` reads, in a stable order.
fn outer_columns(plan: &LogicalPlan, in_inputs: &impl Fn(&Column) -> bool) -> Result<Vec<Column>> {
    let mut columns = Vec::new();
    plan.apply_with_subqueries(|node| {
        node.apply_expressions(|expr| {
            expr.apply(|expr| {
                if let Expr::OuterReferenceColumn(_, column) = expr
                    && in_inputs(column)
                    && !columns.contains(column)
                {
                    columns.push(column.clone());
                }
                Ok(TreeNodeRecursion::Continue)
            })
        })
    })?;
    Ok(columns)
}

/// What a subquery's rows answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    /// Its one value, NULL when it has no row.
    Scalar,
    /// Whether it has rows.
    Exists { negated: bool },
    /// Whether its column holds the left side, with SQL's NULLs.
    In { negated: bool },
}

impl Kind {
    /// The expression this kind of subquery was written as.
    fn rebuild(self, subquery: Subquery, left: Option<Expr>) -> Expr {
        match (self, left) {
            (Kind::Exists { negated }, _) => Expr::Exists(Exists { subquery, negated }),
            (Kind::In { negated }, Some(expr)) => Expr::InSubquery(InSubquery {
                expr: Box::new(expr),
                subquery,
                negated,
            }),
            _ => Expr::ScalarSubquery(subquery),
        }
    }

    /// The answer for one outer row, from the subquery's `rows`.
    fn answer(self, rows: &[RecordBatch], left: Option<&ScalarValue>) -> Result<ScalarValue> {
        let count: usize = rows.iter().map(RecordBatch::num_rows).sum();
        match self {
            Kind::Scalar => match count {
                0 => Ok(ScalarValue::Null),
                1 => {
                    let batch = rows.iter().find(|b| b.num_rows() == 1).expect("one row");
                    ScalarValue::try_from_array(batch.column(0), 0)
                }
                _ => exec_err!("Scalar subquery returned more than one row"),
            },
            Kind::Exists { negated } => Ok(ScalarValue::Boolean(Some((count > 0) != negated))),
            Kind::In { negated } => {
                let left = left.ok_or_else(|| internal_datafusion_err!("IN without its left"))?;
                let found = contains(rows, left)?;
                Ok(ScalarValue::Boolean(found.map(|f| f != negated)))
            }
        }
    }
}

/// SQL's `left IN (rows)`: true when a row equals it, NULL when none does
/// but a row or the left side is NULL, false otherwise.
fn contains(rows: &[RecordBatch], left: &ScalarValue) -> Result<Option<bool>> {
    let mut saw_null = false;
    for batch in rows {
        let column = batch.column(0);
        for i in 0..column.len() {
            let value = ScalarValue::try_from_array(column, i)?;
            if value.is_null() {
                saw_null = true;
            } else if !left.is_null() && value == left.cast_to(&value.data_type())? {
                return Ok(Some(true));
            }
        }
    }
    let any_rows = rows.iter().any(|b| b.num_rows() > 0);
    Ok(if any_rows && (saw_null || left.is_null()) {
        None
    } else {
        Some(false)
    })
}

/// A subquery as a function of the outer columns it reads.
struct RowSubquery {
    kind: Kind,
    plan: Arc<LogicalPlan>,
    /// The outer columns, in the order of the call's arguments (after the
    /// left side of an `IN`).
    outer: Vec<Column>,
    state: Arc<SessionState>,
    signature: Signature,
}

impl fmt::Debug for RowSubquery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RowSubquery")
            .field("kind", &self.kind)
            .field("outer", &self.outer)
            .finish_non_exhaustive()
    }
}

impl PartialEq for RowSubquery {
    fn eq(&self, other: &Self) -> bool {
        self.kind == other.kind && self.outer == other.outer && self.plan == other.plan
    }
}

impl Eq for RowSubquery {}

impl Hash for RowSubquery {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.kind.hash(state);
        self.outer.hash(state);
        self.plan.hash(state);
    }
}

impl ScalarUDFImpl for RowSubquery {
    fn name(&self) -> &str {
        "subquery"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(match self.kind {
            Kind::Scalar => self.plan.schema().field(0).data_type().clone(),
            Kind::Exists { .. } | Kind::In { .. } => DataType::Boolean,
        })
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let has_left = matches!(self.kind, Kind::In { .. });
        let mut answers: HashMap<Vec<ScalarValue>, ScalarValue> = HashMap::new();
        let mut rows = Vec::with_capacity(args.number_rows);
        for row in 0..args.number_rows {
            let values = arrays
                .iter()
                .map(|array| ScalarValue::try_from_array(array, row))
                .collect::<Result<Vec<_>>>()?;
            rows.push(values.clone());
            answers.entry(values).or_insert(ScalarValue::Null);
        }
        let keys: Vec<_> = answers.keys().cloned().collect();
        for (key, answer) in keys.iter().zip(self.run_all(&keys, has_left)?) {
            answers.insert(key.clone(), answer);
        }
        let return_type = self.return_type(&[])?;
        let values = rows
            .iter()
            .map(|key| match &answers[key] {
                ScalarValue::Null => ScalarValue::try_from(&return_type),
                value => value.cast_to(&return_type),
            })
            .collect::<Result<Vec<_>>>()?;
        let array = if values.is_empty() {
            new_empty_array(&return_type)
        } else {
            ScalarValue::iter_to_array(values)?
        };
        Ok(ColumnarValue::Array(array))
    }
}

impl RowSubquery {
    /// The answers for each tuple of `keys` (the left side first, when
    /// `has_left`), run on a runtime of their own: a function is called
    /// from inside a stream that the caller's runtime is polling.
    fn run_all(&self, keys: &[Vec<ScalarValue>], has_left: bool) -> Result<Vec<ScalarValue>> {
        let work = async {
            let mut answers = Vec::with_capacity(keys.len());
            for key in keys {
                let (left, outer) = match has_left {
                    true => (key.first(), &key[1..]),
                    false => (None, &key[..]),
                };
                let plan = bind_outer(&self.plan, &self.outer, outer)?;
                let physical = self.state.create_physical_plan(&plan).await?;
                let rows = collect(physical, self.state.task_ctx()).await?;
                answers.push(self.kind.answer(&rows, left)?);
            }
            Ok(answers)
        };
        std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()?
                        .block_on(work)
                })
                .join()
                .map_err(|_| internal_datafusion_err!("a subquery's evaluation panicked"))?
        })
    }
}

/// `plan` with the outer references to `columns` replaced by `values`.
fn bind_outer(
    plan: &LogicalPlan,
    columns: &[Column],
    values: &[ScalarValue],
) -> Result<LogicalPlan> {
    let bound = |column: &Column| columns.iter().position(|c| c == column);
    // A subquery no longer refers outside for the columns now bound.
    let unbind = |outer_refs: &mut Vec<Expr>| {
        outer_refs.retain(|e| match e {
            Expr::OuterReferenceColumn(_, column) => bound(column).is_none(),
            _ => true,
        })
    };
    plan.clone()
        .transform_down_with_subqueries(|mut node| {
            if let LogicalPlan::Subquery(derived) = &mut node {
                unbind(&mut derived.outer_ref_columns);
            }
            let names = NamePreserver::new(&node);
            node.map_expressions(|expr| {
                let name = names.save(&expr);
                let replaced = expr.transform(|mut expr| {
                    if let Expr::OuterReferenceColumn(_, column) = &expr
                        && let Some(i) = bound(column)
                    {
                        return Ok(Transformed::yes(Expr::Literal(values[i].clone(), None)));
                    }
                    if let Some(subquery) = subquery_of(&mut expr) {
                        unbind(&mut subquery.outer_ref_columns);
                    }
                    Ok(Transformed::no(expr))
                })?;
                Ok(replaced.update_data(|expr| name.restore(expr)))
            })
        })?
        .data
        // A derived table that read only bound columns is a plain one now.
        .transform_up_with_subqueries(|node| match node {
            LogicalPlan::Subquery(derived) if derived.outer_ref_columns.is_empty() => {
                Ok(Transformed::yes(Arc::unwrap_or_clone(derived.subquery)))
            }
            other => Ok(Transformed::no(other)),
        })
        .data()
}

/// The subquery `expr` runs, if it runs one.
fn subquery_of(expr: &mut Expr) -> Option<&mut Subquery> {
    match expr {
        Expr::ScalarSubquery(subquery)
        | Expr::Exists(Exists { subquery, .. })
        | Expr::InSubquery(InSubquery { subquery, .. }) => Some(subquery),
        _ => None,
    }
}
