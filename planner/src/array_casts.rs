//! `'{1,2,NULL}'::int[]` written as `CAST('{1,2,NULL}' AS int[])` before
//! the compatibility parser sees it: that parser turns a `::` cast of a
//! string to an array type into `ARRAY[...]` by splitting the string on
//! commas, which is wrong for quoted elements, NULL, dates and more. The
//! `CAST` form reaches [`crate::array_input`], which reads the literal as
//! PostgreSQL does. Catalog queries, for which that parser's reading was
//! written, keep it.

use datafusion::sql::sqlparser::tokenizer::{Token, Whitespace};

/// Rewrites every `'...'::type[]` in `tokens`, unless they name the catalog.
pub fn array_literal_casts(tokens: &mut Vec<Token>) {
    let names_catalog = tokens.iter().any(|t| {
        matches!(t, Token::Word(w) if {
            let word = w.value.to_ascii_lowercase();
            word.starts_with("pg_") || word == "information_schema"
        })
    });
    if names_catalog {
        return;
    }
    let mut i = 0;
    while i < tokens.len() {
        if let Some(end) = array_cast_end(tokens, i) {
            let literal = tokens[i].clone();
            let type_start = next_significant(tokens, i + 1).map_or(end, |c| c + 1);
            let mut cast = vec![
                Token::make_keyword("CAST"),
                Token::LParen,
                literal,
                Token::Whitespace(Whitespace::Space),
                Token::make_keyword("AS"),
                Token::Whitespace(Whitespace::Space),
            ];
            cast.extend(tokens[type_start..=end].iter().cloned());
            cast.push(Token::RParen);
            let added = cast.len();
            tokens.splice(i..=end, cast);
            i += added;
        } else {
            i += 1;
        }
    }
}

fn next_significant(tokens: &[Token], from: usize) -> Option<usize> {
    (from..tokens.len()).find(|&i| !matches!(tokens[i], Token::Whitespace(_)))
}

/// Where `'...'::type[]` starting at `start` ends (its `]`), if it does.
fn array_cast_end(tokens: &[Token], start: usize) -> Option<usize> {
    if !matches!(tokens[start], Token::SingleQuotedString(_)) {
        return None;
    }
    let colons = next_significant(tokens, start + 1)?;
    if tokens[colons] != Token::DoubleColon {
        return None;
    }
    // The type: words (`double precision`), then perhaps `(p, s)`.
    let mut at = next_significant(tokens, colons + 1)?;
    if !matches!(tokens[at], Token::Word(_)) {
        return None;
    }
    while let Some(next) = next_significant(tokens, at + 1) {
        match &tokens[next] {
            Token::Word(_) => at = next,
            Token::LParen => {
                let close = (next..tokens.len()).find(|&i| tokens[i] == Token::RParen)?;
                at = close;
            }
            _ => break,
        }
    }
    let open = next_significant(tokens, at + 1)?;
    let close = next_significant(tokens, open + 1)?;
    (tokens[open] == Token::LBracket && tokens[close] == Token::RBracket).then_some(close)
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
        array_literal_casts(&mut tokens);
        to_sql(&tokens)
    }

    #[test]
    fn array_literal_casts_become_cast() {
        assert_eq!(
            rewritten("SELECT '{1,NULL}'::int[], '{a}'::character varying(3) [], 'x'::text"),
            "SELECT CAST('{1,NULL}' AS int[]), CAST('{a}' AS character varying(3) []), 'x'::text"
        );
        let catalog = "SELECT relname FROM pg_class WHERE relkind = ANY('{r,v}'::char[])";
        assert_eq!(rewritten(catalog), catalog);
    }
}
