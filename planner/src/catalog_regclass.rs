//! `'pg_extension'::regclass`, a catalog table's name cast to `regclass`,
//! as the fixed oid PostgreSQL gives that table (3079), which is also what
//! each of its rows' `tableoid` holds. The compatibility parser looks such
//! a name up in `public` only, where no catalog table is, so `pg_dump`'s
//! `refclassid = 'pg_extension'::regclass` matched nothing. Rewritten in
//! the tokens, before that parser's own rewrite of `regclass` casts.

use datafusion::sql::sqlparser::tokenizer::{Token, Whitespace};

use crate::pg_catalog_schema::catalog_table_oid;
use crate::tokens::is_keyword;

/// Rewrites every `'<catalog table>'::regclass` of `tokens`.
pub fn catalog_regclass_literals(tokens: &mut Vec<Token>) {
    let mut i = 0;
    while i < tokens.len() {
        match regclass_literal(tokens, i) {
            Some((oid, end)) => {
                let cast = vec![
                    Token::make_keyword("CAST"),
                    Token::LParen,
                    Token::Number(oid.to_string(), false),
                    Token::Whitespace(Whitespace::Space),
                    Token::make_keyword("AS"),
                    Token::Whitespace(Whitespace::Space),
                    Token::make_word("oid", None),
                    Token::RParen,
                ];
                let added = cast.len();
                tokens.splice(i..=end, cast);
                i += added;
            }
            None => i += 1,
        }
    }
}

/// The oid of the catalog table that `'name'::[pg_catalog.]regclass` at
/// `start` names, and where the cast ends.
fn regclass_literal(tokens: &[Token], start: usize) -> Option<(i32, usize)> {
    let Token::SingleQuotedString(name) = &tokens[start] else {
        return None;
    };
    let name = name.to_ascii_lowercase();
    let oid = catalog_table_oid(name.strip_prefix("pg_catalog.").unwrap_or(&name))?;
    let next =
        |from: usize| (from..tokens.len()).find(|&i| !matches!(tokens[i], Token::Whitespace(_)));
    let colons = next(start + 1)?;
    if tokens[colons] != Token::DoubleColon {
        return None;
    }
    let mut at = next(colons + 1)?;
    if is_keyword(&tokens[at], "pg_catalog") {
        let dot = next(at + 1)?;
        if tokens[dot] != Token::Period {
            return None;
        }
        at = next(dot + 1)?;
    }
    is_keyword(&tokens[at], "regclass").then_some((oid, at))
}

#[cfg(test)]
mod tests {
    use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
    use datafusion::sql::sqlparser::tokenizer::Tokenizer;

    use super::*;
    use crate::tokens::to_sql;

    fn rewritten(sql: &str) -> String {
        let mut tokens = Tokenizer::new(&PostgreSqlDialect {}, sql)
            .tokenize()
            .unwrap();
        catalog_regclass_literals(&mut tokens);
        to_sql(&tokens)
    }

    #[test]
    fn catalog_table_names_are_their_fixed_oids() {
        assert_eq!(
            rewritten(
                "SELECT 1 WHERE c = 'pg_extension'::regclass OR d = 'pg_catalog.pg_class'::pg_catalog.regclass"
            ),
            "SELECT 1 WHERE c = CAST(3079 AS oid) OR d = CAST(1259 AS oid)"
        );
        assert_eq!(
            rewritten("SELECT 'accounts'::regclass"),
            "SELECT 'accounts'::regclass"
        );
    }
}
