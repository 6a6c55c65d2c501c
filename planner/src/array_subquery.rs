//! `ARRAY(SELECT e FROM ... [ORDER BY ...])`, PostgreSQL's array of a
//! subquery's rows, which DataFusion does not plan, as the scalar subquery
//! `(SELECT array_agg(e [ORDER BY ...]) FROM ...)`. psql's `\du` asks for
//! each role's memberships this way. Over no rows it gives NULL where
//! PostgreSQL gives `{}`.

use std::ops::ControlFlow;

use crate::function_call::function_call;
use datafusion::sql::sqlparser::ast::{
    Expr, Function, FunctionArgumentClause, FunctionArguments, OrderByKind, SelectItem, SetExpr,
    Statement, VisitMut, VisitorMut,
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

#[cfg(test)]
mod tests {
    use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
    use datafusion::sql::sqlparser::parser::Parser;

    use super::*;

    fn rewritten(sql: &str) -> String {
        let mut statement = Parser::parse_sql(&PostgreSqlDialect {}, sql)
            .unwrap()
            .remove(0);
        rewrite_array_subqueries(&mut statement);
        statement.to_string()
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
}
