//! `generate_series(a, b [, step])` in FROM over values that are not
//! constants (`generate_series(0, array_upper(pr.prattrs, 1))`, as
//! `pg_dump` asks for a publication's columns), as
//! `unnest(generate_series(a, b [, step]))`: DataFusion's table function
//! takes constants only, its array function any value. As in PostgreSQL,
//! a series aliased `s` without a column list has one column, also `s`.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    Expr, FunctionArg, FunctionArgExpr, Statement, TableAlias, TableAliasColumnDef, TableFactor,
    UnaryOperator, Value, VisitMut, VisitorMut,
};

use crate::function_call::function_call;

/// Rewrites each such series of `statement`.
pub fn rewrite_series_tables(statement: &mut Statement) {
    let _ = statement.visit(&mut SeriesTables);
}

struct SeriesTables;

impl VisitorMut for SeriesTables {
    type Break = ();

    fn post_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<()> {
        let TableFactor::Table {
            name,
            alias,
            args: Some(args),
            ..
        } = factor
        else {
            return ControlFlow::Continue(());
        };
        let is_series = name
            .0
            .last()
            .is_some_and(|part| part.to_string().eq_ignore_ascii_case("generate_series"));
        let bounds: Option<Vec<Expr>> = args
            .args
            .iter()
            .map(|arg| match arg {
                FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Some(e.clone()),
                _ => None,
            })
            .collect();
        let Some(bounds) = bounds.filter(|_| is_series) else {
            return ControlFlow::Continue(());
        };
        if bounds.iter().all(is_constant) {
            return ControlFlow::Continue(());
        }
        let alias = alias.take().map(|mut alias| {
            if alias.columns.is_empty() {
                alias.columns = vec![TableAliasColumnDef::from_name(alias.name.value.clone())];
            }
            alias
        });
        *factor = TableFactor::UNNEST {
            alias: alias.or_else(|| Some(series_alias())),
            array_exprs: vec![function_call("generate_series", bounds, vec![])],
            with_offset: false,
            with_offset_alias: None,
            with_ordinality: false,
        };
        ControlFlow::Continue(())
    }
}

/// PostgreSQL's name for an unaliased series and its column.
fn series_alias() -> TableAlias {
    TableAlias {
        explicit: true,
        name: "generate_series".into(),
        columns: vec![TableAliasColumnDef::from_name("generate_series")],
        at: None,
    }
}

/// Whether `expr` is a constant the table function takes.
fn is_constant(expr: &Expr) -> bool {
    match expr {
        Expr::Value(value) => !matches!(value.value, Value::Placeholder(_)),
        Expr::UnaryOp {
            op: UnaryOperator::Minus,
            expr,
        } => is_constant(expr),
        Expr::Cast { expr, .. } | Expr::Nested(expr) => is_constant(expr),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rewrite_tests::rewritten_by;

    #[test]
    fn a_series_over_values_is_an_unnested_array() {
        assert_eq!(
            rewritten_by(
                rewrite_series_tables,
                "SELECT s FROM generate_series(0, array_upper(t.a, 1)) s WHERE x = t.a[s]"
            ),
            "SELECT s FROM UNNEST(generate_series(0, array_upper(t.a, 1))) s (s) WHERE x = t.a[s]"
        );
        assert_eq!(
            rewritten_by(
                rewrite_series_tables,
                "SELECT * FROM generate_series(1, -3, -1)"
            ),
            "SELECT * FROM generate_series(1, -3, -1)"
        );
    }
}
