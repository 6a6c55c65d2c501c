//! A `regtype` as text is the type's name: `23::regtype::text` is
//! `integer`. weir's `regtype` is the oid's integer, whose text is the
//! number, so a cast of a `regtype` to text is planned as `format_type`,
//! which names the type as PostgreSQL's `regtype` output does (asyncpg's
//! type lookup reads its element types' names so).

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    DataType as SqlType, Expr, Function, FunctionArg, FunctionArgExpr, FunctionArgumentList,
    FunctionArguments, Ident, ObjectName, Statement, Value, VisitMut, VisitorMut,
};

/// Casts of a cast to `regtype` to text in `statement` become
/// `format_type(x, NULL)`.
pub fn rewrite_regtype_texts(statement: &mut Statement) {
    let _ = statement.visit(&mut RegtypeTexts);
}

struct RegtypeTexts;

impl VisitorMut for RegtypeTexts {
    type Break = ();

    fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        if let Expr::Cast {
            expr: inner,
            data_type,
            ..
        } = expr
            && matches!(data_type, SqlType::Text | SqlType::Varchar(None))
            && let Expr::Cast {
                expr: oid,
                data_type: SqlType::Custom(name, modifiers),
                ..
            } = inner.as_mut()
            && modifiers.is_empty()
            && name.to_string().eq_ignore_ascii_case("regtype")
        {
            let oid = std::mem::replace(oid.as_mut(), Expr::value(Value::Null));
            *expr = format_type(oid);
        }
        ControlFlow::Continue(())
    }
}

fn format_type(oid: Expr) -> Expr {
    let arg = |e: Expr| FunctionArg::Unnamed(FunctionArgExpr::Expr(e));
    Expr::Function(Function {
        name: ObjectName::from(vec![Ident::new("format_type")]),
        uses_odbc_syntax: false,
        parameters: FunctionArguments::None,
        args: FunctionArguments::List(FunctionArgumentList {
            duplicate_treatment: None,
            args: vec![arg(oid), arg(Expr::value(Value::Null))],
            clauses: vec![],
        }),
        filter: None,
        null_treatment: None,
        over: None,
        within_group: vec![],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rewrite_tests::rewritten_by;

    #[test]
    fn regtype_as_text_is_its_name() {
        assert_eq!(
            rewritten_by(
                rewrite_regtype_texts,
                "SELECT elemtype::regtype::text, 23::regtype, 23::int::text FROM t"
            ),
            "SELECT format_type(elemtype, NULL), 23::regtype, 23::INT::TEXT FROM t"
        );
    }
}
