//! A string literal beside an array reads as an array, as PostgreSQL reads
//! a literal of unknown type as the type its context asks for: the other
//! results of a `CASE` (`CASE WHEN ... THEN acldefault(...) ELSE '{}'
//! END`) or the other side of a comparison (`polroles = '{0}'`); `pg_dump`
//! asks both. DataFusion finds no common type for a list and text. The
//! literal is read by [`crate::array_input`], so bad input is `22P02`.
//! A comparison is typed as it is planned, so it is read then
//! ([`ArrayLiteralComparisons`]); a `CASE` when its types are coerced
//! ([`ArrayLiteralRewrite`]).

use std::sync::Arc;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::Transformed;
use datafusion::common::{DFSchema, Result, ScalarValue};
use datafusion::logical_expr::expr::{Case, ScalarFunction};
use datafusion::logical_expr::expr_rewriter::FunctionRewrite;
use datafusion::logical_expr::planner::{ExprPlanner, PlannerResult, RawBinaryExpr};
use datafusion::logical_expr::{Expr, ExprSchemable};
use datafusion::sql::sqlparser::ast::BinaryOperator;

use crate::array_input::pg_array_function;

/// Reads the text literals among a `CASE`'s results as arrays.
#[derive(Debug, Default)]
pub struct ArrayLiteralRewrite;

impl FunctionRewrite for ArrayLiteralRewrite {
    fn name(&self) -> &str {
        "array_literals"
    }

    fn rewrite(
        &self,
        expr: Expr,
        schema: &DFSchema,
        _config: &ConfigOptions,
    ) -> Result<Transformed<Expr>> {
        match expr {
            Expr::Case(case) => Ok(case_results_as_arrays(case, schema)),
            other => Ok(Transformed::no(other)),
        }
    }
}

/// Reads a text literal compared with an array as an array, as the
/// comparison is planned: DataFusion types it then, before any rewrite.
#[derive(Debug, Default)]
pub struct ArrayLiteralComparisons;

impl ExprPlanner for ArrayLiteralComparisons {
    fn plan_binary_op(
        &self,
        mut expr: RawBinaryExpr,
        schema: &DFSchema,
    ) -> Result<PlannerResult<RawBinaryExpr>> {
        use BinaryOperator::*;
        if !matches!(
            expr.op,
            Eq | NotEq | Lt | LtEq | Gt | GtEq | AtArrow | ArrowAt
        ) {
            return Ok(PlannerResult::Original(expr));
        }
        let (left, right) = (
            list_type(&expr.left, schema),
            list_type(&expr.right, schema),
        );
        for (list, literal) in [(left, &mut expr.right), (right, &mut expr.left)] {
            if let Some(array) = list.and_then(|list| as_array(literal, &list)) {
                *literal = array;
            }
        }
        Ok(PlannerResult::Original(expr))
    }
}

/// `case` with its text literal results read as the list type of its
/// other results, if one is a list.
fn case_results_as_arrays(mut case: Case, schema: &DFSchema) -> Transformed<Expr> {
    let results = case
        .when_then_expr
        .iter()
        .map(|(_, then)| then.as_ref())
        .chain(case.else_expr.as_deref());
    let Some(list) = results.filter_map(|e| list_type(e, schema)).next() else {
        return Transformed::no(Expr::Case(case));
    };
    let mut changed = false;
    let results = case
        .when_then_expr
        .iter_mut()
        .map(|(_, then)| then)
        .chain(case.else_expr.as_mut());
    for result in results {
        if let Some(array) = as_array(result, &list) {
            **result = array;
            changed = true;
        }
    }
    if changed {
        Transformed::yes(Expr::Case(case))
    } else {
        Transformed::no(Expr::Case(case))
    }
}

/// The type of `expr`, if it is a list.
fn list_type(expr: &Expr, schema: &DFSchema) -> Option<DataType> {
    expr.get_type(schema)
        .ok()
        .filter(|t| matches!(t, DataType::List(_)))
}

/// `expr` read as `list`, if it is a text literal.
fn as_array(expr: &Expr, list: &DataType) -> Option<Expr> {
    let (Expr::Literal(ScalarValue::Utf8(Some(_)), _), DataType::List(element)) = (expr, list)
    else {
        return None;
    };
    let read = Arc::new(pg_array_function(Arc::clone(element)));
    Some(Expr::ScalarFunction(ScalarFunction::new_udf(
        read,
        vec![expr.clone()],
    )))
}
