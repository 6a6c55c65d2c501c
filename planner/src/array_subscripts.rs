//! The set-returning functions over an array's subscripts that catalog
//! queries use to take an index's key apart, and the field access they
//! are read with, in the forms DataFusion plans:
//! - `generate_subscripts(a, 1)` is `unnest(generate_series(1,
//!   cardinality(a)))`: one row per element, beside an `unnest(a)` of the
//!   same select list (SQLAlchemy reflects a primary key this way);
//! - `information_schema._pg_expandarray(a)`, a `(x, n)` row per element
//!   and its position, is `named_struct('x', unnest(a), 'n',
//!   unnest(generate_series(1, cardinality(a))))` (pgjdbc's
//!   `getPrimaryKeys`);
//! - `(composite).field` is `composite['field']`, as DataFusion reads a
//!   struct's field.
//!
//! weir's arrays have one dimension, so the dimension argument of
//! `generate_subscripts` is not read.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    AccessExpr, Expr, Function, FunctionArg, FunctionArgExpr, FunctionArguments, Statement,
    Subscript, Value, VisitMut, VisitorMut,
};

use crate::function_call::function_call;

/// Rewrites the calls and field accesses described above in `statement`.
pub fn rewrite_array_subscripts(statement: &mut Statement) {
    let _ = statement.visit(&mut Subscripts);
}

struct Subscripts;

impl VisitorMut for Subscripts {
    type Break = ();

    fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        match expr {
            Expr::CompoundFieldAccess { root, access_chain }
                if matches!(**root, Expr::Nested(_)) =>
            {
                for access in access_chain.iter_mut() {
                    if let AccessExpr::Dot(Expr::Identifier(field)) = access {
                        let name = Value::SingleQuotedString(field.value.clone());
                        *access = AccessExpr::Subscript(Subscript::Index {
                            index: Expr::value(name),
                        });
                    }
                }
            }
            Expr::Function(Function {
                name,
                args: FunctionArguments::List(list),
                ..
            }) => {
                let called = name
                    .0
                    .last()
                    .map(|part| part.to_string().to_ascii_lowercase());
                let array = match list.args.as_slice() {
                    [FunctionArg::Unnamed(FunctionArgExpr::Expr(array)), ..] => array.clone(),
                    _ => return ControlFlow::Continue(()),
                };
                match (called.as_deref(), list.args.len()) {
                    (Some("generate_subscripts"), 2) => *expr = positions(array),
                    (Some("_pg_expandarray"), 1) => {
                        *expr = function_call(
                            "named_struct",
                            vec![
                                Expr::value(Value::SingleQuotedString("x".into())),
                                function_call("unnest", vec![array.clone()], Vec::new()),
                                Expr::value(Value::SingleQuotedString("n".into())),
                                positions(array),
                            ],
                            Vec::new(),
                        );
                    }
                    _ => {}
                }
            }
            _ => {}
        }
        ControlFlow::Continue(())
    }
}

/// `unnest(generate_series(1, cardinality(array)))`: the positions of
/// `array`'s elements, one row each.
fn positions(array: Expr) -> Expr {
    let one = Expr::value(Value::Number("1".into(), false));
    let count = function_call("cardinality", vec![array], Vec::new());
    let series = function_call("generate_series", vec![one, count], Vec::new());
    function_call("unnest", vec![series], Vec::new())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rewrite_tests::rewritten_by;

    fn rewritten(sql: &str) -> String {
        rewritten_by(rewrite_array_subscripts, sql)
    }

    #[test]
    fn subscripts_are_positions() {
        assert_eq!(
            rewritten("SELECT unnest(k), generate_subscripts(k, 1) FROM i"),
            "SELECT unnest(k), unnest(generate_series(1, cardinality(k))) FROM i"
        );
    }

    #[test]
    fn expanded_arrays_are_structs_read_by_field() {
        assert_eq!(
            rewritten("SELECT (information_schema._pg_expandarray(k)).n, (r.keys).x FROM i"),
            "SELECT (named_struct('x', unnest(k), 'n', unnest(generate_series(1, cardinality(k)))))['n'], \
             (r.keys)['x'] FROM i"
        );
    }
}
