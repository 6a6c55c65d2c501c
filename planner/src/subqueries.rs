//! Keeps the scalar subqueries of a SELECT list as written.
//!
//! `datafusion-pg-catalog`'s compatibility parser, written for the catalog
//! queries psql and drivers send, replaces every SELECT-list subquery that
//! names a table it did not see aliased in that subquery's FROM with NULL,
//! and gives every other one a `LIMIT 1`. That is a silent wrong answer
//! (`SELECT a, (SELECT count(*) FROM t AS x WHERE x.b < t.b) FROM t` came
//! back all NULL, and so did `(SELECT n.nspname FROM pg_namespace n WHERE
//! n.oid = c.relnamespace)` over `pg_class c`). So each such subquery is
//! wrapped in parentheses, which that rewrite does not match and DataFusion
//! plans as the same subquery; one DataFusion cannot decorrelate runs once
//! per outer row ([`crate::row_subqueries`]).

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    Expr, ObjectName, Query, SelectItem, SetExpr, Value, VisitMut, VisitorMut,
};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::parser::Parser;
use datafusion::sql::sqlparser::tokenizer::Token;

/// `sql` (one statement, whose `tokens` are given) with the scalar
/// subqueries of its SELECT lists protected; `None` when nothing needs it.
pub fn protect_projection_subqueries(tokens: &[Token], sql: &str) -> Option<String> {
    if !has_subquery(tokens) {
        return None;
    }
    // A statement sqlparser cannot read as it stands is left to the
    // compatibility parser, which reports the error or rewrites it.
    let mut statements = Parser::parse_sql(&PostgreSqlDialect {}, sql).ok()?;
    let mut wrapped = false;
    for statement in &mut statements {
        let mut wrapper = WrapSubqueries::default();
        let _ = statement.visit(&mut wrapper);
        wrapped |= wrapper.wrapped;
    }
    wrapped.then(|| {
        statements
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ")
    })
}

/// Whether a parenthesis opens a query somewhere in `tokens`.
fn has_subquery(tokens: &[Token]) -> bool {
    let mut words = tokens.iter().filter(|t| !matches!(t, Token::Whitespace(_)));
    let mut previous = words.next();
    for token in words {
        if matches!(previous, Some(Token::LParen))
            && matches!(token, Token::Word(w) if matches!(w.keyword, Keyword::SELECT | Keyword::WITH))
        {
            return true;
        }
        previous = Some(token);
    }
    false
}

/// Whether `name` is a table of `pg_catalog` or `information_schema`,
/// qualified or not.
pub fn is_catalog_relation(name: &ObjectName) -> bool {
    let first = name
        .0
        .first()
        .and_then(|part| part.as_ident())
        .map(|ident| ident.value.to_ascii_lowercase())
        .unwrap_or_default();
    first == "pg_catalog" || first == "information_schema" || first.starts_with("pg_")
}

#[derive(Default)]
struct WrapSubqueries {
    wrapped: bool,
}

impl VisitorMut for WrapSubqueries {
    type Break = ();

    fn pre_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
        if let SetExpr::Select(select) = query.body.as_mut() {
            for item in &mut select.projection {
                let expr = match item {
                    SelectItem::UnnamedExpr(expr) | SelectItem::ExprWithAlias { expr, .. } => expr,
                    _ => continue,
                };
                if matches!(expr, Expr::Subquery(_)) {
                    let subquery =
                        std::mem::replace(expr, Expr::Value(Value::Null.with_empty_span()));
                    *expr = Expr::Nested(Box::new(subquery));
                    self.wrapped = true;
                }
            }
        }
        ControlFlow::Continue(())
    }
}

#[cfg(test)]
mod tests {
    use datafusion::sql::sqlparser::tokenizer::Tokenizer;

    use super::*;

    fn protect(sql: &str) -> Option<String> {
        let tokens = Tokenizer::new(&PostgreSqlDialect {}, sql)
            .tokenize()
            .unwrap();
        protect_projection_subqueries(&tokens, sql)
    }

    #[test]
    fn select_list_subqueries_are_wrapped() {
        assert_eq!(
            protect("SELECT a, (SELECT count(*) FROM t AS x WHERE x.b < t.b) AS n FROM t")
                .as_deref(),
            Some("SELECT a, ((SELECT count(*) FROM t AS x WHERE x.b < t.b)) AS n FROM t")
        );
        assert_eq!(
            protect("SELECT a FROM t WHERE a IN (SELECT b FROM u)"),
            None
        );
        assert_eq!(protect("SELECT 1"), None);
        assert_eq!(
            protect(
                "SELECT c.relname, (SELECT 1 FROM pg_catalog.pg_namespace n WHERE n.oid = c.relnamespace) FROM pg_class c"
            )
            .as_deref(),
            Some(
                "SELECT c.relname, ((SELECT 1 FROM pg_catalog.pg_namespace n WHERE n.oid = c.relnamespace)) FROM pg_class c"
            )
        );
    }
}
