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
