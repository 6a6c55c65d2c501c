//! Small readers of sqlparser tokens, for the syntax weir adds on top of
//! sqlparser's (commands, `ALTER SYSTEM`, `WATERMARK FOR`, `AS OF SAVEPOINT`).

use datafusion::sql::sqlparser::tokenizer::{Token, Word};

/// Positions of the tokens that are not whitespace.
pub fn significant(tokens: &[Token]) -> Vec<usize> {
    tokens
        .iter()
        .enumerate()
        .filter(|(_, t)| !matches!(t, Token::Whitespace(_)))
        .map(|(i, _)| i)
        .collect()
}

/// Whether `token` is the unquoted word `text`, in any case.
pub fn is_keyword(token: &Token, text: &str) -> bool {
    matches!(token, Token::Word(w) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case(text))
}

/// An identifier as SQL names it: folded to lower case unless quoted.
pub fn identifier(word: &Word) -> String {
    match word.quote_style {
        Some(_) => word.value.clone(),
        None => word.value.to_lowercase(),
    }
}

/// Tokens back to SQL text that parses to the same tokens. sqlparser's own
/// `Display` writes a string or quoted identifier without re-escaping its
/// quotes (`'it''s'` would come back as `'it's'`), so those are written here.
pub fn to_sql(tokens: &[Token]) -> String {
    let mut sql = String::new();
    for token in tokens {
        match token {
            Token::SingleQuotedString(s)
            | Token::EscapedStringLiteral(s)
            | Token::UnicodeStringLiteral(s) => push_quoted(&mut sql, s, '\''),
            Token::NationalStringLiteral(s) => {
                sql.push('N');
                push_quoted(&mut sql, s, '\'');
            }
            Token::Word(w) if w.quote_style == Some('"') => push_quoted(&mut sql, &w.value, '"'),
            other => sql.push_str(&other.to_string()),
        }
    }
    sql
}

/// `text` between `quote`s, each `quote` inside doubled. The tokenizer has
/// already turned escapes (`E'\n'`, `U&'\0041'`) into the characters they
/// stand for, so a plain literal carries them as they are.
fn push_quoted(sql: &mut String, text: &str, quote: char) {
    sql.push(quote);
    for c in text.chars() {
        sql.push(c);
        if c == quote {
            sql.push(quote);
        }
    }
    sql.push(quote);
}

#[cfg(test)]
mod tests {
    use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
    use datafusion::sql::sqlparser::tokenizer::Tokenizer;

    use super::*;

    fn tokens(sql: &str) -> Vec<Token> {
        Tokenizer::new(&PostgreSqlDialect {}, sql)
            .tokenize()
            .unwrap()
    }

    #[test]
    fn quotes_inside_strings_and_identifiers_survive() {
        for (sql, expected) in [
            ("SELECT 'it''s'", "SELECT 'it''s'"),
            ("SELECT E'a\\'b\\\\c'", "SELECT 'a''b\\c'"),
            ("SELECT N'O''Brien'", "SELECT N'O''Brien'"),
            (
                "SELECT 1 AS \"say \"\"hi\"\"\"",
                "SELECT 1 AS \"say \"\"hi\"\"\"",
            ),
            ("SELECT $$it's$$", "SELECT $$it's$$"),
        ] {
            let text = to_sql(&tokens(sql));
            assert_eq!(text, expected);
            assert_eq!(to_sql(&tokens(&text)), text, "{sql}");
        }
    }
}
