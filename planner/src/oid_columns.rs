//! The oid columns of a result, where its Arrow schema has lost them.
//!
//! weir's oids are `Int32` fields that carry arrow-pg's `pg.oid_alias`
//! metadata, so a client is told `oid` (or `regclass`, ...), not `int4`.
//! DataFusion keeps that metadata through a column reference, but not
//! through a CASE, a COALESCE, an aggregate or an array of oids
//! (`array_agg(atttypid)`): those columns were described as `int4` and
//! `int4[]`. asyncpg's type lookup returns such columns and knows `oid[]`
//! without asking, but not `int4[]`, which it would have to look up with
//! that same query. So a result's schema is read again off its plan, the
//! PostgreSQL way: a CASE or COALESCE has the type of its branches, a
//! `min` or `max` that of its argument, an `array_agg` or `ARRAY[...]` of
//! oids is `oid[]` (described through [`PG_TYPE_KEY`]).

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::common::DFSchema;
use datafusion::logical_expr::{Distinct, Expr, JoinType, LogicalPlan};

use crate::PG_TYPE_KEY;

/// arrow-pg's field metadata naming the oid type of an `Int32` column.
const OID_ALIAS_KEY: &str = "pg.oid_alias";

/// How a column holds oids.
#[derive(Debug, Clone, PartialEq)]
enum OidColumn {
    /// One oid of this kind (`oid`, `regclass`, ...).
    Scalar(String),
    /// An array of plain oids.
    Array,
}

/// `plan`'s schema with its oid columns marked as such.
pub fn described_schema(plan: &LogicalPlan) -> SchemaRef {
    let schema = plan.schema().inner();
    let columns = oid_columns(plan);
    let misplaced_mark = |field: &Arc<Field>| {
        field.data_type() != &DataType::Int32 && field.metadata().contains_key(OID_ALIAS_KEY)
    };
    if columns.iter().all(Option::is_none) && !schema.fields().iter().any(misplaced_mark) {
        return Arc::clone(schema);
    }
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .zip(columns)
        .map(|(field, column)| {
            let mut metadata = field.metadata().clone();
            // An oid cast to another type keeps the mark but is no oid.
            if field.data_type() != &DataType::Int32 {
                metadata.remove(OID_ALIAS_KEY);
            }
            match column {
                Some(OidColumn::Scalar(kind)) if field.data_type() == &DataType::Int32 => {
                    metadata.entry(OID_ALIAS_KEY.into()).or_insert(kind);
                }
                Some(OidColumn::Array) if is_int32_list(field.data_type()) => {
                    metadata.entry(PG_TYPE_KEY.into()).or_insert("oid[]".into());
                }
                _ => {}
            }
            field.as_ref().clone().with_metadata(metadata)
        })
        .collect();
    Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()))
}

fn is_int32_list(data_type: &DataType) -> bool {
    matches!(data_type, DataType::List(element) if element.data_type() == &DataType::Int32)
}

/// What each output column of `plan` holds, when it holds oids.
fn oid_columns(plan: &LogicalPlan) -> Vec<Option<OidColumn>> {
    let width = plan.schema().fields().len();
    let columns = match plan {
        LogicalPlan::Projection(projection) => {
            let input = Input::of(&projection.input);
            projection.expr.iter().map(|e| input.expr(e)).collect()
        }
        LogicalPlan::Aggregate(aggregate) => {
            let input = Input::of(&aggregate.input);
            aggregate
                .group_expr
                .iter()
                .chain(&aggregate.aggr_expr)
                .map(|e| input.expr(e))
                .collect()
        }
        LogicalPlan::Window(window) => {
            let input = Input::of(&window.input);
            let mut columns = input.columns.clone();
            columns.extend(window.window_expr.iter().map(|e| input.expr(e)));
            columns
        }
        LogicalPlan::Join(join) => match join.join_type {
            JoinType::Inner | JoinType::Left | JoinType::Right | JoinType::Full => {
                let mut columns = oid_columns(&join.left);
                columns.extend(oid_columns(&join.right));
                columns
            }
            JoinType::LeftSemi | JoinType::LeftAnti => oid_columns(&join.left),
            JoinType::RightSemi | JoinType::RightAnti => oid_columns(&join.right),
            _ => from_schema(plan.schema()),
        },
        LogicalPlan::Union(union) => {
            let mut columns = vec![None; width];
            for input in &union.inputs {
                for (column, found) in columns.iter_mut().zip(oid_columns(input)) {
                    if column.is_none() {
                        *column = found;
                    }
                }
            }
            columns
        }
        LogicalPlan::RecursiveQuery(recursive) => oid_columns(&recursive.static_term),
        LogicalPlan::Filter(filter) => oid_columns(&filter.input),
        LogicalPlan::Sort(sort) => oid_columns(&sort.input),
        LogicalPlan::Limit(limit) => oid_columns(&limit.input),
        LogicalPlan::SubqueryAlias(alias) => oid_columns(&alias.input),
        LogicalPlan::Repartition(repartition) => oid_columns(&repartition.input),
        LogicalPlan::Distinct(Distinct::All(input)) => oid_columns(input),
        _ => from_schema(plan.schema()),
    };
    if columns.len() == width {
        columns
    } else {
        from_schema(plan.schema())
    }
}

/// What a schema's own metadata says of its columns.
fn from_schema(schema: &DFSchema) -> Vec<Option<OidColumn>> {
    schema
        .fields()
        .iter()
        .map(|field| {
            let metadata = field.metadata();
            if let Some(kind) = metadata.get(OID_ALIAS_KEY) {
                Some(OidColumn::Scalar(kind.clone()))
            } else if metadata.get(PG_TYPE_KEY).map(String::as_str) == Some("oid[]") {
                Some(OidColumn::Array)
            } else {
                None
            }
        })
        .collect()
}

/// A node's input, whose columns its expressions read.
struct Input<'a> {
    schema: &'a DFSchema,
    columns: Vec<Option<OidColumn>>,
}

impl<'a> Input<'a> {
    fn of(plan: &'a LogicalPlan) -> Self {
        Self {
            schema: plan.schema(),
            columns: oid_columns(plan),
        }
    }

    /// What `expr`, over this input, holds.
    fn expr(&self, expr: &Expr) -> Option<OidColumn> {
        let first =
            |exprs: &mut dyn Iterator<Item = &Expr>| exprs.filter_map(|e| self.expr(e)).next();
        match expr {
            Expr::Alias(alias) => self.expr(&alias.expr),
            Expr::Column(column) => {
                let index = self.schema.index_of_column(column).ok()?;
                self.columns.get(index).cloned().flatten()
            }
            Expr::Case(case) => first(
                &mut case
                    .when_then_expr
                    .iter()
                    .map(|(_, then)| then.as_ref())
                    .chain(case.else_expr.as_deref()),
            ),
            Expr::Cast(cast) => same_type(&cast.expr, cast.field.data_type(), self),
            Expr::TryCast(cast) => same_type(&cast.expr, cast.field.data_type(), self),
            Expr::ScalarSubquery(subquery) => oid_columns(&subquery.subquery).first()?.clone(),
            Expr::AggregateFunction(function) => {
                let argument = function.params.args.first()?;
                match function.func.name() {
                    "array_agg" => as_array(self.expr(argument)),
                    "min" | "max" | "first_value" | "last_value" => self.expr(argument),
                    _ => None,
                }
            }
            Expr::ScalarFunction(function) => match function.func.name() {
                "coalesce" | "nullif" => first(&mut function.args.iter()),
                "make_array" => as_array(first(&mut function.args.iter())),
                _ => None,
            },
            _ => None,
        }
    }
}

/// A cast keeps oids oids when it casts them to the type they have.
fn same_type(expr: &Expr, to: &DataType, input: &Input) -> Option<OidColumn> {
    let column = input.expr(expr)?;
    let keeps = match column {
        OidColumn::Scalar(_) => to == &DataType::Int32,
        OidColumn::Array => is_int32_list(to),
    };
    keeps.then_some(column)
}

/// An array of the oids `element` holds: PostgreSQL's `oid[]`, whatever
/// alias of oid the elements are.
fn as_array(element: Option<OidColumn>) -> Option<OidColumn> {
    match element? {
        OidColumn::Scalar(_) => Some(OidColumn::Array),
        OidColumn::Array => None,
    }
}
