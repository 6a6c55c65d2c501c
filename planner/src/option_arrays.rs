//! `ARRAY(SELECT e FROM pg_options_to_table(a) [ORDER BY option_name])`,
//! how `pg_dump` and psql's `\d+` print a catalog's `name=value` options,
//! as `array_transform(a, option -> e)` (over `array_sort(a)` when
//! ordered), with `option_name` and `option_value` read off each element.
//! `a` is a column of the outer query, and a table function over it cannot
//! be planned. Sorting the `name=value` texts orders them by name unless
//! one name is a prefix of another followed by a character below `=`.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    BinaryOperator, Expr, FunctionArg, FunctionArgExpr, Ident, LambdaFunction,
    LambdaFunctionParameter, LambdaSyntax, OneOrManyWithParens, OrderByKind, Query, TableFactor,
    Value, VisitMut, VisitorMut,
};

use crate::array_subquery::single_mapping;
use crate::function_call::function_call;

/// The lambda's parameter: one `name=value` element.
const OPTION: &str = "option";

/// `array_transform` of `query`, if it is exactly `SELECT e FROM
/// pg_options_to_table(a) [ORDER BY option_name]`.
pub fn option_map(query: &Query) -> Option<Expr> {
    let (mut element, from) = single_mapping(query)?;
    let TableFactor::Table {
        name,
        args: Some(args),
        ..
    } = from
    else {
        return None;
    };
    let is_options_table = name
        .0
        .last()
        .is_some_and(|part| part.to_string().eq_ignore_ascii_case("pg_options_to_table"));
    let [FunctionArg::Unnamed(FunctionArgExpr::Expr(options))] = args.args.as_slice() else {
        return None;
    };
    if !is_options_table {
        return None;
    }
    let sorted = match &query.order_by {
        None => false,
        Some(order) => match &order.kind {
            OrderByKind::Expressions(by) => match by.as_slice() {
                [by] if is_column(&by.expr, "option_name") && by.options.asc != Some(false) => true,
                _ => return None,
            },
            OrderByKind::All(_) => return None,
        },
    };
    let _ = element.visit(&mut OptionColumns);
    let options = if sorted {
        function_call("array_sort", vec![options.clone()], vec![])
    } else {
        options.clone()
    };
    let lambda = Expr::Lambda(LambdaFunction {
        params: OneOrManyWithParens::One(LambdaFunctionParameter {
            name: Ident::new(OPTION),
            data_type: None,
        }),
        body: Box::new(element),
        syntax: LambdaSyntax::Arrow,
    });
    Some(function_call(
        "array_transform",
        vec![options, lambda],
        vec![],
    ))
}

/// Whether `expr` is the bare column `name`.
fn is_column(expr: &Expr, name: &str) -> bool {
    matches!(expr, Expr::Identifier(ident) if ident.value.eq_ignore_ascii_case(name))
}

/// Replaces `option_name` and `option_value` with the parts of the element.
struct OptionColumns;

impl VisitorMut for OptionColumns {
    type Break = ();

    fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        let option = || Expr::Identifier(Ident::new(OPTION));
        let equals = || Expr::Value(Value::SingleQuotedString("=".into()).into());
        if is_column(expr, "option_name") {
            *expr = function_call(
                "split_part",
                vec![
                    option(),
                    equals(),
                    Expr::Value(Value::Number("1".into(), false).into()),
                ],
                vec![],
            );
        } else if is_column(expr, "option_value") {
            let after_equals = Expr::BinaryOp {
                left: Box::new(function_call("strpos", vec![option(), equals()], vec![])),
                op: BinaryOperator::Plus,
                right: Box::new(Expr::Value(Value::Number("1".into(), false).into())),
            };
            *expr = function_call("substr", vec![option(), after_equals], vec![]);
        }
        ControlFlow::Continue(())
    }
}

#[cfg(test)]
mod tests {
    use crate::array_subquery::rewrite_array_subqueries;
    use crate::rewrite_tests::rewritten_by;

    #[test]
    fn options_become_a_transform_of_their_elements() {
        assert_eq!(
            rewritten_by(
                rewrite_array_subqueries,
                "SELECT ARRAY(SELECT quote_ident(option_name) || ' ' || option_value \
                 FROM pg_catalog.pg_options_to_table(a.opts) ORDER BY option_name) FROM a"
            ),
            "SELECT array_transform(array_sort(a.opts), option -> \
             quote_ident(split_part(option, '=', 1)) || ' ' || \
             substr(option, strpos(option, '=') + 1)) FROM a"
        );
    }
}
