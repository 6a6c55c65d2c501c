//! A `regtype` as text is the type's name: `23::regtype::text` is
//! `integer`. weir's `regtype` is the oid's integer, whose text is the
//! number, so a cast of a `regtype` to text is planned as `format_type`,
//! which names the type as PostgreSQL's `regtype` output does (asyncpg's
//! type lookup reads its element types' names so).

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    DataType as SqlType, Expr, Statement, Value, VisitMut, VisitorMut,
};

use crate::function_call::function_call;

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
            *expr = function_call("format_type", vec![oid, Expr::value(Value::Null)], vec![]);
        }
        ControlFlow::Continue(())
    }
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
