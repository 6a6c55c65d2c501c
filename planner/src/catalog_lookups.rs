//! Catalog functions answered from the catalog tables, rewritten to
//! subqueries over them (a function itself sees no catalog): the
//! signatures of [`crate::function_signatures`], and
//! - `pg_table_is_visible(oid)`: true for the relations an unqualified
//!   name finds (those of `public` and `pg_catalog`), false for those of
//!   `weir_catalog` and `information_schema`, so psql's `\dt` lists the
//!   user's tables only: `(oid) IN (subquery)` over `pg_class` and
//!   `pg_namespace`;
//! - `pg_get_userbyid(oid)`: the role's name from `pg_roles` (NULL for an
//!   oid no role has), so psql shows each relation's owner; aggregated
//!   with `max`, as DataFusion plans a correlated scalar subquery only then,
//!   and named after the function, as its column would be;
//! - `pg_get_viewdef(oid [, pretty])`: the view's query, by its name in
//!   `pg_class` ([`crate::catalog_texts`]), aggregated and named likewise.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    Expr, Function, FunctionArg, FunctionArgExpr, FunctionArguments, Statement, VisitMut,
    VisitorMut,
};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::Parser;

use crate::function_signatures::signature_sql;

/// Rewrites each call of these functions in `statement`.
pub fn rewrite_catalog_lookups(statement: &mut Statement) {
    let _ = statement.visit(&mut Lookups);
}

struct Lookups;

impl VisitorMut for Lookups {
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
        // pg_get_viewdef's second argument (pretty) changes nothing here.
        let oid = match (called.as_deref(), list.args.as_slice()) {
            (_, [FunctionArg::Unnamed(FunctionArgExpr::Expr(oid))])
            | (Some("pg_get_viewdef"), [FunctionArg::Unnamed(FunctionArgExpr::Expr(oid)), _]) => {
                oid
            }
            _ => return ControlFlow::Continue(()),
        };
        // `oid` stays outside the subquery's FROM, so none of its names can
        // bind to the subquery's tables.
        let sql = match called.as_deref() {
            Some(function) if let Some(sql) = signature_sql(function, oid) => sql,
            Some("pg_table_is_visible") => format!(
                "(({oid}) IN (SELECT weir_visible_class.oid \
                 FROM pg_catalog.pg_class AS weir_visible_class \
                 JOIN pg_catalog.pg_namespace AS weir_visible_schema \
                 ON weir_visible_schema.oid = weir_visible_class.relnamespace \
                 WHERE weir_visible_schema.nspname IN ('public', 'pg_catalog')))"
            ),
            Some("pg_get_userbyid") => format!(
                "(SELECT max(weir_role.name) AS pg_get_userbyid FROM \
                 (SELECT oid AS role, rolname AS name FROM pg_catalog.pg_roles) AS weir_role \
                 WHERE weir_role.role = ({oid}))"
            ),
            Some("pg_get_viewdef") => format!(
                "(SELECT max(weir_view_definition(weir_view.relname)) AS pg_get_viewdef \
                 FROM pg_catalog.pg_class AS weir_view WHERE weir_view.oid = ({oid}))"
            ),
            _ => return ControlFlow::Continue(()),
        };
        if let Ok(subquery) = Parser::new(&PostgreSqlDialect {})
            .try_with_sql(&sql)
            .and_then(|mut parser| parser.parse_expr())
        {
            *expr = subquery;
        }
        ControlFlow::Continue(())
    }
}
