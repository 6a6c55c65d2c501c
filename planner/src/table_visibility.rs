//! `pg_table_is_visible(oid)`: true for the relations an unqualified name
//! finds (those of `public` and `pg_catalog`), false for those of
//! `weir_catalog` and `information_schema`, so psql's `\dt` lists the
//! user's tables only. Rewritten to `(oid) IN (subquery)` over
//! `pg_class` and `pg_namespace`: the function itself has no catalog.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    Expr, Function, FunctionArg, FunctionArgExpr, FunctionArguments, Statement, VisitMut,
    VisitorMut,
};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::Parser;

/// Rewrites each `pg_table_is_visible(x)` of `statement`.
pub fn rewrite_table_visibility(statement: &mut Statement) {
    let _ = statement.visit(&mut Visibility);
}

struct Visibility;

impl VisitorMut for Visibility {
    type Break = ();

    fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        let Expr::Function(Function {
            name,
            args: FunctionArguments::List(list),
            ..
        }) = expr
        else {
            return ControlFlow::Continue(());
        };
        let called = name
            .0
            .last()
            .map(|part| part.to_string().to_ascii_lowercase());
        if called.as_deref() != Some("pg_table_is_visible") {
            return ControlFlow::Continue(());
        }
        let [FunctionArg::Unnamed(FunctionArgExpr::Expr(oid))] = list.args.as_slice() else {
            return ControlFlow::Continue(());
        };
        // `oid` stays outside the subquery, so none of its names can bind
        // to the subquery's tables.
        let sql = format!(
            "(({oid}) IN (SELECT weir_visible_class.oid FROM pg_catalog.pg_class AS weir_visible_class \
             JOIN pg_catalog.pg_namespace AS weir_visible_schema \
             ON weir_visible_schema.oid = weir_visible_class.relnamespace \
             WHERE weir_visible_schema.nspname IN ('public', 'pg_catalog')))"
        );
        if let Ok(subquery) = Parser::new(&PostgreSqlDialect {})
            .try_with_sql(&sql)
            .and_then(|mut parser| parser.parse_expr())
        {
            *expr = subquery;
        }
        ControlFlow::Continue(())
    }
}
