//! `ARRAY(SELECT e FROM ... [ORDER BY ...])`, PostgreSQL's array of a
//! subquery's rows, which DataFusion does not plan, as the scalar subquery
//! `(SELECT array_agg(e [ORDER BY ...]) FROM ...)`. psql's `\du` asks for
//! each role's memberships this way. Over no rows it gives NULL where
//! PostgreSQL gives `{}`.
//!
//! A subquery that only maps the elements of an array,
//! `ARRAY(SELECT e(x) FROM unnest(a) AS x)`, is `array_transform(a, x ->
//! e(x))` instead: `a` is most often a column of the outer query (psql's
//! `\d+` and `pg_dump` ask for options this way), and DataFusion cannot
//! correlate a subquery over a function of it. So is one over a
//! catalog's options ([`crate::option_arrays`]).

use std::ops::ControlFlow;

use crate::function_call::function_call;
use crate::option_arrays::option_map;
use datafusion::sql::sqlparser::ast::{
    Expr, Function, FunctionArg, FunctionArgExpr, FunctionArgumentClause, FunctionArguments,
    GroupByExpr, LambdaFunction, LambdaFunctionParameter, LambdaSyntax, OneOrManyWithParens,
    OrderByKind, Query, SelectItem, SetExpr, Statement, TableFactor, VisitMut, VisitorMut,
};

/// Rewrites every `ARRAY(subquery)` of `statement` whose subquery selects
/// one expression.
pub fn rewrite_array_subqueries(statement: &mut Statement) {
    let _ = statement.visit(&mut ArraySubqueries);
}

struct ArraySubqueries;

impl VisitorMut for ArraySubqueries {
    type Break = ();

    fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        let Expr::Function(Function {
            name,
            args: FunctionArguments::Subquery(query),
            ..
        }) = expr
        else {
            return ControlFlow::Continue(());
        };
        if !name.to_string().eq_ignore_ascii_case("array") {
            return ControlFlow::Continue(());
        }
        if let Some(mapped) = element_map(query).or_else(|| option_map(query)) {
            *expr = mapped;
            return ControlFlow::Continue(());
        }
        let mut query = query.clone();
        let SetExpr::Select(select) = query.body.as_mut() else {
            return ControlFlow::Continue(());
        };
        let [item] = select.projection.as_mut_slice() else {
            return ControlFlow::Continue(());
        };
        let element = match item {
            SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => e.clone(),
            _ => return ControlFlow::Continue(()),
        };
        let mut clauses = Vec::new();
        if let Some(order_by) = query.order_by.take()
            && let OrderByKind::Expressions(order) = order_by.kind
        {
            clauses.push(FunctionArgumentClause::OrderBy(order));
        }
        *item = SelectItem::UnnamedExpr(function_call("array_agg", vec![element], clauses));
        *expr = Expr::Subquery(query);
        ControlFlow::Continue(())
    }
}

/// The one expression `query` selects and its one FROM item, if it is a
/// plain `SELECT e FROM x`: no WHERE, grouping, DISTINCT, LIMIT or join.
/// Its ORDER BY is the caller's to read.
pub(crate) fn single_mapping(query: &Query) -> Option<(Expr, &TableFactor)> {
    let SetExpr::Select(select) = query.body.as_ref() else {
        return None;
    };
    let plain = query.limit_clause.is_none()
        && select.selection.is_none()
        && select.having.is_none()
        && select.distinct.is_none()
        && matches!(&select.group_by, GroupByExpr::Expressions(e, _) if e.is_empty());
    let ([item], [from]) = (select.projection.as_slice(), select.from.as_slice()) else {
        return None;
    };
    if !plain || !from.joins.is_empty() {
        return None;
    }
    match item {
        SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => {
            Some((e.clone(), &from.relation))
        }
        _ => None,
    }
}

/// `array_transform(a, x -> e)` for a query that is exactly
/// `SELECT e FROM unnest(a) [AS] x` (or `AS t(x)`).
fn element_map(query: &Query) -> Option<Expr> {
    if query.order_by.is_some() {
        return None;
    }
    let (element, from) = single_mapping(query)?;
    let (array, alias) = match from {
        TableFactor::UNNEST {
            alias,
            array_exprs,
            with_offset: false,
            with_ordinality: false,
            ..
        } => match array_exprs.as_slice() {
            [array] => (array.clone(), alias.as_ref()?),
            _ => return None,
        },
        TableFactor::Table {
            name,
            alias,
            args: Some(args),
            ..
        } if name
            .0
            .last()
            .is_some_and(|part| part.to_string().eq_ignore_ascii_case("unnest")) =>
        {
            match args.args.as_slice() {
                [FunctionArg::Unnamed(FunctionArgExpr::Expr(array))] => {
                    (array.clone(), alias.as_ref()?)
                }
                _ => return None,
            }
        }
        _ => return None,
    };
    let parameter = match alias.columns.as_slice() {
        [] => alias.name.clone(),
        [column] => column.name.clone(),
        _ => return None,
    };
    let lambda = Expr::Lambda(LambdaFunction {
        params: OneOrManyWithParens::One(LambdaFunctionParameter {
            name: parameter,
            data_type: None,
        }),
        body: Box::new(element),
        syntax: LambdaSyntax::Arrow,
    });
    Some(function_call(
        "array_transform",
        vec![array, lambda],
        vec![],
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rewrite_tests::rewritten_by;

    fn rewritten(sql: &str) -> String {
        rewritten_by(rewrite_array_subqueries, sql)
    }

    #[test]
    fn an_array_of_a_subquery_becomes_an_aggregate_subquery() {
        assert_eq!(
            rewritten(
                "SELECT ARRAY(SELECT b.name FROM t AS b WHERE b.x = r.x ORDER BY 1) AS m FROM r"
            ),
            "SELECT (SELECT array_agg(b.name ORDER BY 1) FROM t AS b WHERE b.x = r.x) AS m FROM r"
        );
        assert_eq!(rewritten("SELECT ARRAY[1, 2]"), "SELECT ARRAY[1, 2]");
    }

    #[test]
    fn an_array_of_mapped_elements_becomes_a_transform() {
        assert_eq!(
            rewritten("SELECT ARRAY(SELECT 'toast.' || x FROM unnest(tc.opts) x) FROM tc"),
            "SELECT array_transform(tc.opts, x -> 'toast.' || x) FROM tc"
        );
        assert_eq!(
            rewritten("SELECT array(select quote_literal(x) from unnest(tags) as t(x))"),
            "SELECT array_transform(tags, x -> quote_literal(x))"
        );
    }
}
