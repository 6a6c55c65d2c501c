//! PostgreSQL's one-byte `"char"` type (`pg_class.relkind`, `pg_type.typtype`
//! and the like), which catalog queries cast literals to (`'r'::"char"`):
//! weir's catalog holds those columns as text, so a cast to `"char"` is a
//! cast to text. Only the quoted name means this type; an unquoted `char`
//! is SQL's `character(1)`, which DataFusion plans itself.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    DataType as SqlType, Expr, ObjectNamePart, Statement, VisitMut, VisitorMut,
};

/// Casts to `"char"` in `statement` become casts to text.
pub fn rewrite_char_casts(statement: &mut Statement) {
    let _ = statement.visit(&mut CharCasts);
}

struct CharCasts;

impl VisitorMut for CharCasts {
    type Break = ();

    fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        if let Expr::Cast { data_type, .. } = expr
            && is_quoted_char(data_type)
        {
            *data_type = SqlType::Text;
        }
        ControlFlow::Continue(())
    }
}

fn is_quoted_char(data_type: &SqlType) -> bool {
    let SqlType::Custom(name, modifiers) = data_type else {
        return false;
    };
    modifiers.is_empty()
        && matches!(name.0.as_slice(), [.., ObjectNamePart::Identifier(ident)]
            if ident.quote_style == Some('"') && ident.value == "char")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rewrite_tests::rewritten_by;

    fn rewritten(sql: &str) -> String {
        rewritten_by(rewrite_char_casts, sql)
    }

    #[test]
    fn quoted_char_is_text() {
        assert_eq!(
            rewritten(r#"SELECT 'r'::"char", 'x'::pg_catalog."char""#),
            "SELECT 'r'::TEXT, 'x'::TEXT"
        );
    }

    #[test]
    fn unquoted_char_is_left() {
        assert_eq!(rewritten("SELECT 'r'::char"), "SELECT 'r'::CHAR");
    }
}
