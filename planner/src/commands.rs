//! Statements only weir has, recognised from their tokens before sqlparser
//! sees them: `CHECKPOINT` and `ALTER SOURCE name PAUSE | RESUME`.

use datafusion::sql::sqlparser::ast::{Ident, ObjectName};
use datafusion::sql::sqlparser::tokenizer::{Token, Word};

use crate::ddl::table_name;
use crate::{Error, Result};

/// A weir statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// A FLUSH that also returns only once a checkpoint is durable.
    Checkpoint,
    /// Stops (`PAUSE`) or restarts (`RESUME`) a source's rows; barriers,
    /// and so checkpoints, still pass.
    AlterSource { name: String, paused: bool },
}

fn is_bare(word: &Word, text: &str) -> bool {
    word.quote_style.is_none() && word.value.eq_ignore_ascii_case(text)
}

/// The command `tokens` spell, if they start like one.
pub fn parse_command(tokens: &[Token]) -> Result<Option<Command>> {
    let significant: Vec<&Token> = tokens
        .iter()
        .filter(|t| !matches!(t, Token::Whitespace(_)))
        .collect();
    let word = |i: usize, text: &str| matches!(significant.get(i), Some(Token::Word(w)) if is_bare(w, text));
    if significant.len() == 1 && word(0, "CHECKPOINT") {
        return Ok(Some(Command::Checkpoint));
    }
    if !(word(0, "ALTER") && word(1, "SOURCE")) {
        return Ok(None);
    }
    let syntax = || {
        Error::user(
            "42601",
            "syntax error: expected ALTER SOURCE name PAUSE | RESUME",
        )
    };
    let paused = match significant.last() {
        Some(Token::Word(w)) if is_bare(w, "PAUSE") => true,
        Some(Token::Word(w)) if is_bare(w, "RESUME") => false,
        _ => return Err(syntax()),
    };
    let name = &significant[2..significant.len() - 1];
    let mut parts = Vec::new();
    for (i, token) in name.iter().enumerate() {
        match (i % 2, token) {
            (0, Token::Word(w)) => parts.push(match w.quote_style {
                Some(quote) => Ident::with_quote(quote, w.value.clone()),
                None => Ident::new(w.value.clone()),
            }),
            (1, Token::Period) => {}
            _ => return Err(syntax()),
        }
    }
    if parts.is_empty() || name.len().is_multiple_of(2) {
        return Err(syntax());
    }
    let name = table_name(&ObjectName::from(parts))?;
    Ok(Some(Command::AlterSource { name, paused }))
}

#[cfg(test)]
mod tests {
    use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
    use datafusion::sql::sqlparser::tokenizer::Tokenizer;

    use super::*;

    fn command(sql: &str) -> Result<Option<Command>> {
        let tokens = Tokenizer::new(&PostgreSqlDialect {}, sql)
            .tokenize()
            .unwrap();
        parse_command(&tokens)
    }

    #[test]
    fn alter_source_names_a_source_and_pause_or_resume() {
        assert_eq!(
            command("alter source Clicks pause").unwrap(),
            Some(Command::AlterSource {
                name: "clicks".into(),
                paused: true
            })
        );
        assert_eq!(
            command("ALTER SOURCE public.\"Bid\" RESUME").unwrap(),
            Some(Command::AlterSource {
                name: "Bid".into(),
                paused: false
            })
        );
        assert_eq!(command(" CHECKPOINT ").unwrap(), Some(Command::Checkpoint));
        assert_eq!(command("ALTER TABLE t ADD COLUMN c INT").unwrap(), None);
        assert_eq!(command("CHECKPOINT now").unwrap(), None);
        for bad in [
            "ALTER SOURCE clicks",
            "ALTER SOURCE PAUSE",
            "ALTER SOURCE a b PAUSE",
            "ALTER SOURCE a. PAUSE",
            "ALTER SOURCE clicks STOP",
        ] {
            let err = command(bad).unwrap_err();
            assert!(
                matches!(err, Error::User { code: "42601", .. }),
                "{bad}: {err}"
            );
        }
    }
}
