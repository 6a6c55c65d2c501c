//! Scalar subqueries of catalog queries, aggregated so DataFusion plans
//! them. Drivers reflect a table with queries like SQLAlchemy's
//! `CASE WHEN a.atthasdef THEN (SELECT pg_get_expr(d.adbin, d.adrelid)
//! FROM pg_attrdef d WHERE d.adrelid = a.attrelid AND d.adnum = a.attnum)
//! END`: a correlated subquery that finds at most one row by the catalog's
//! keys, which DataFusion refuses unless it is aggregated. In a statement
//! that reads only catalog tables, each scalar subquery that selects one
//! plain expression selects `max` of it instead:
//! the same answer over the one row or none. A condition on the outer row
//! alone moves out, into a CASE around the subquery; a subquery over the
//! catalog tables weir never fills (`pg_sequence`, `pg_attrdef`) is NULL.
//! A statement that reads a user table is left as written, so more than
//! one row is `21000` there.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::helpers::attached_token::AttachedToken;
use datafusion::sql::sqlparser::ast::{
    BinaryOperator, CaseWhen, Expr, GroupByExpr, Query, SelectItem, SetExpr, Statement,
    TableFactor, TableWithJoins, Value, Visit, VisitMut, Visitor, VisitorMut, visit_relations,
};

use crate::function_call::function_call;
use crate::subqueries::is_catalog_relation;

/// Aggregates the scalar subqueries of `statement`, if it reads only the
/// catalog.
pub fn aggregate_catalog_subqueries(statement: &mut Statement) {
    if !reads_only_catalog(statement) {
        return;
    }
    let _ = statement.visit(&mut CatalogSubqueries);
}

/// Whether every relation `node` names is a catalog table.
fn reads_only_catalog<T: Visit>(node: &T) -> bool {
    let mut any = false;
    let user_table = visit_relations(node, |name| {
        any = true;
        if is_catalog_relation(name) {
            ControlFlow::Continue(())
        } else {
            ControlFlow::Break(())
        }
    })
    .is_break();
    any && !user_table
}

struct CatalogSubqueries;

impl VisitorMut for CatalogSubqueries {
    type Break = ();

    fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        if let Expr::Subquery(query) = expr
            && reads_only_empty_tables(query)
        {
            *expr = Expr::Value(Value::Null.with_empty_span());
            return ControlFlow::Continue(());
        }
        if let Expr::Subquery(query) = expr
            && let Some(outer_conditions) = aggregate(query)
            && !outer_conditions.is_empty()
        {
            // DataFusion cannot plan a condition on the outer row alone
            // inside the subquery; the same condition outside it asks the
            // same: when it does not hold, the subquery finds no row.
            let condition = outer_conditions
                .into_iter()
                .reduce(|a, b| Expr::BinaryOp {
                    left: Box::new(a),
                    op: BinaryOperator::And,
                    right: Box::new(b),
                })
                .unwrap_or(Expr::Value(Value::Boolean(true).with_empty_span()));
            let subquery = std::mem::replace(expr, Expr::Value(Value::Null.with_empty_span()));
            *expr = Expr::Case {
                case_token: AttachedToken::empty(),
                end_token: AttachedToken::empty(),
                operand: None,
                conditions: vec![CaseWhen {
                    condition,
                    result: subquery,
                }],
                else_result: None,
            };
        }
        ControlFlow::Continue(())
    }
}

/// Catalog tables that have no rows in weir, which has no sequences and
/// no column defaults.
const EMPTY_TABLES: &[&str] = &["pg_sequence", "pg_attrdef"];

/// Whether `query` reads only [`EMPTY_TABLES`]: as a scalar subquery it is
/// NULL. (SQLAlchemy's identity-column subquery over `pg_sequence` names
/// the outer row in its select list, which DataFusion cannot plan.)
fn reads_only_empty_tables(query: &Query) -> bool {
    let mut any = false;
    let other = visit_relations(query, |name| {
        any = true;
        let table = name.0.last().map(|p| p.to_string().to_ascii_lowercase());
        if table.is_some_and(|t| EMPTY_TABLES.contains(&t.as_str())) {
            ControlFlow::Continue(())
        } else {
            ControlFlow::Break(())
        }
    })
    .is_break();
    any && !other
}

/// `query` selecting `max(e)` where it selected `e`, when that keeps its
/// answer: one plain item, no grouping, limit, distinct or set operation.
/// The conditions of its WHERE that name only the outer query's tables
/// are taken out and returned; `None` when the query is left as it was.
fn aggregate(query: &mut Query) -> Option<Vec<Expr>> {
    if query.limit_clause.is_some() || query.fetch.is_some() {
        return None;
    }
    let SetExpr::Select(select) = query.body.as_mut() else {
        return None;
    };
    let ungrouped = matches!(&select.group_by, GroupByExpr::Expressions(e, _) if e.is_empty());
    if !ungrouped || select.distinct.is_some() || select.having.is_some() {
        return None;
    }
    let inner = inner_names(&select.from);
    let [item] = select.projection.as_mut_slice() else {
        return None;
    };
    let selected = match item {
        SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => e,
        _ => return None,
    };
    if has_aggregate(selected) {
        return None;
    }
    *selected = function_call("max", vec![selected.clone()], Vec::new());
    let (outer, kept): (Vec<Expr>, Vec<Expr>) = select
        .selection
        .take()
        .map(conjuncts)
        .unwrap_or_default()
        .into_iter()
        .partition(|c| names_only_outer(c, &inner));
    select.selection = kept.into_iter().reduce(|a, b| Expr::BinaryOp {
        left: Box::new(a),
        op: BinaryOperator::And,
        right: Box::new(b),
    });
    Some(outer)
}

/// `a AND b AND c` as `[a, b, c]`.
fn conjuncts(expr: Expr) -> Vec<Expr> {
    match expr {
        Expr::BinaryOp {
            left,
            op: BinaryOperator::And,
            right,
        } => {
            let mut all = conjuncts(*left);
            all.extend(conjuncts(*right));
            all
        }
        Expr::Nested(inner)
            if matches!(
                *inner,
                Expr::BinaryOp {
                    op: BinaryOperator::And,
                    ..
                }
            ) =>
        {
            conjuncts(*inner)
        }
        other => vec![other],
    }
}

/// The names the subquery's own tables go by: aliases, and each table's
/// name in full and unqualified, lower-cased.
fn inner_names(from: &[TableWithJoins]) -> Vec<String> {
    let mut names = Vec::new();
    let mut add = |factor: &TableFactor| {
        if let TableFactor::Table { name, alias, .. } = factor {
            names.push(name.to_string().to_ascii_lowercase());
            if let Some(last) = name.0.last() {
                names.push(last.to_string().to_ascii_lowercase());
            }
            if let Some(alias) = alias {
                names.push(alias.name.value.to_ascii_lowercase());
            }
        } else if let TableFactor::Derived {
            alias: Some(alias), ..
        } = factor
        {
            names.push(alias.name.value.to_ascii_lowercase());
        }
    };
    for table in from {
        add(&table.relation);
        for join in &table.joins {
            add(&join.relation);
        }
    }
    names
}

/// Whether `condition` names columns, each qualified by a table that is
/// not one of the subquery's: a condition on the outer row alone. An
/// unqualified column is taken as the subquery's own, and a condition with
/// a subquery of its own is left where it is.
fn names_only_outer(condition: &Expr, inner: &[String]) -> bool {
    struct Columns<'a> {
        inner: &'a [String],
        outer: usize,
        other: bool,
    }
    impl Visitor for Columns<'_> {
        type Break = ();
        fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<()> {
            match expr {
                Expr::CompoundIdentifier(parts) if parts.len() > 1 => {
                    let qualifier = parts[..parts.len() - 1]
                        .iter()
                        .map(|p| p.value.to_ascii_lowercase())
                        .collect::<Vec<_>>()
                        .join(".");
                    if self.inner.contains(&qualifier) {
                        self.other = true;
                    } else {
                        self.outer += 1;
                    }
                }
                Expr::Identifier(_) | Expr::Subquery(_) | Expr::Exists { .. } => {
                    self.other = true;
                }
                _ => {}
            }
            if self.other {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        }
    }
    let mut columns = Columns {
        inner,
        outer: 0,
        other: false,
    };
    let _ = condition.visit(&mut columns);
    columns.outer > 0 && !columns.other
}

const AGGREGATES: &[&str] = &[
    "count",
    "sum",
    "min",
    "max",
    "avg",
    "array_agg",
    "string_agg",
    "bool_and",
    "bool_or",
    "every",
    "json_agg",
    "jsonb_agg",
    "json_object_agg",
];

/// Whether `expr` calls an aggregate (outside nested subqueries too: those
/// are aggregated on their own).
fn has_aggregate(expr: &Expr) -> bool {
    struct Finder(bool);
    impl Visitor for Finder {
        type Break = ();
        fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<()> {
            if let Expr::Function(f) = expr {
                let name = f.name.0.last().map(|p| p.to_string().to_ascii_lowercase());
                if name.is_some_and(|n| AGGREGATES.contains(&n.as_str())) {
                    self.0 = true;
                    return ControlFlow::Break(());
                }
            }
            ControlFlow::Continue(())
        }
    }
    let mut finder = Finder(false);
    let _ = expr.visit(&mut finder);
    finder.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rewrite_tests::rewritten_by;

    fn rewritten(sql: &str) -> String {
        rewritten_by(aggregate_catalog_subqueries, sql)
    }

    #[test]
    fn catalog_subqueries_are_aggregated() {
        assert_eq!(
            rewritten(
                "SELECT CASE WHEN a.attnum > 0 THEN (SELECT t.typname FROM pg_catalog.pg_type t \
                 WHERE t.oid = a.atttypid) END FROM pg_catalog.pg_attribute a"
            ),
            "SELECT CASE WHEN a.attnum > 0 THEN (SELECT max(t.typname) FROM pg_catalog.pg_type t \
             WHERE t.oid = a.atttypid) END FROM pg_catalog.pg_attribute a"
        );
        // A condition on the outer row alone moves out of the subquery.
        assert_eq!(
            rewritten(
                "SELECT (SELECT t.typname FROM pg_catalog.pg_type t \
                 WHERE a.attnum > 0 AND t.oid = a.atttypid) FROM pg_catalog.pg_attribute a"
            ),
            "SELECT CASE WHEN a.attnum > 0 THEN (SELECT max(t.typname) FROM pg_catalog.pg_type t \
             WHERE t.oid = a.atttypid) END FROM pg_catalog.pg_attribute a"
        );
        // weir has no sequences: a subquery over pg_sequence is NULL.
        assert_eq!(
            rewritten(
                "SELECT (SELECT s.seqstart FROM pg_catalog.pg_sequence s \
                 WHERE s.seqrelid = a.attrelid) FROM pg_catalog.pg_attribute a"
            ),
            "SELECT NULL FROM pg_catalog.pg_attribute a"
        );
        // Already aggregated, or over a user table: as written.
        for sql in [
            "SELECT (SELECT count(*) FROM pg_class c WHERE c.oid = a.attrelid) FROM pg_attribute AS a",
            "SELECT (SELECT x.b FROM t AS x WHERE x.a = a.attrelid) FROM pg_attribute AS a",
            "SELECT (SELECT x.b FROM t AS x WHERE x.a = t.a) FROM t",
        ] {
            assert_eq!(rewritten(sql), sql);
        }
    }
}
