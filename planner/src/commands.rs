//! Statements only weir has, recognised from their tokens before sqlparser
//! sees them: `CHECKPOINT`, `ALTER SOURCE name PAUSE | RESUME`,
//! `ALTER MATERIALIZED VIEW name RESUME`, and
//! `CREATE SAVEPOINT name [TO 'url']`, `RESTORE SAVEPOINT name`,
//! `DROP SAVEPOINT [IF EXISTS] name`; and PostgreSQL's `VACUUM` and
//! `ANALYZE`, whose option forms sqlparser does not read.

use datafusion::sql::sqlparser::ast::{Ident, ObjectName};
use datafusion::sql::sqlparser::tokenizer::Token;

use crate::ddl::table_name;
use crate::tokens::{identifier, is_keyword};
use crate::{Error, Result};

/// A weir statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// A FLUSH that also returns only once a checkpoint is durable.
    Checkpoint,
    /// Stops (`PAUSE`) or restarts (`RESUME`) a source's rows; barriers,
    /// and so checkpoints, still pass.
    AlterSource { name: String, paused: bool },
    /// Takes a savepoint, into `location` (a directory URL) or, without,
    /// under checkpoint storage.
    CreateSavepoint {
        name: String,
        location: Option<String>,
    },
    /// Rewinds every view, table and source to a savepoint.
    RestoreSavepoint { name: String },
    /// Deletes a savepoint and its files.
    DropSavepoint { name: String, if_exists: bool },
    /// Restarts failed views (all views, from the newest checkpoint).
    ResumeView { name: String },
    /// `VACUUM` or `ANALYZE` (`command`) of `tables` (every table when
    /// empty), options and column lists read and set aside.
    Maintenance {
        command: &'static str,
        tables: Vec<String>,
    },
}

/// The command `tokens` spell, if they start like one.
pub fn parse_command(tokens: &[Token]) -> Result<Option<Command>> {
    let significant: Vec<&Token> = tokens
        .iter()
        .filter(|t| !matches!(t, Token::Whitespace(_)))
        .collect();
    let word = |i: usize, text: &str| significant.get(i).is_some_and(|t| is_keyword(t, text));
    if significant.len() == 1 && word(0, "CHECKPOINT") {
        return Ok(Some(Command::Checkpoint));
    }
    if word(0, "VACUUM") || word(0, "ANALYZE") || word(0, "ANALYSE") {
        return maintenance_command(&significant).map(Some);
    }
    if word(1, "SAVEPOINT") && (word(0, "CREATE") || word(0, "RESTORE") || word(0, "DROP")) {
        return savepoint_command(&significant).map(Some);
    }
    let last_is = |text: &str| significant.last().is_some_and(|t| is_keyword(t, text));
    if word(0, "ALTER") && word(1, "MATERIALIZED") && word(2, "VIEW") && last_is("RESUME") {
        let name = dotted_name(&significant[3..significant.len() - 1]).ok_or_else(|| {
            Error::user(
                "42601",
                "syntax error: expected ALTER MATERIALIZED VIEW name RESUME",
            )
        })??;
        return Ok(Some(Command::ResumeView { name }));
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
        Some(t) if is_keyword(t, "PAUSE") => true,
        Some(t) if is_keyword(t, "RESUME") => false,
        _ => return Err(syntax()),
    };
    let name = dotted_name(&significant[2..significant.len() - 1]).ok_or_else(syntax)??;
    Ok(Some(Command::AlterSource { name, paused }))
}

/// `VACUUM | ANALYZE [(options)] [FULL] [FREEZE] [VERBOSE] [ANALYZE]
/// [table [(columns)], ...]`, from its significant tokens.
fn maintenance_command(tokens: &[&Token]) -> Result<Command> {
    let command = if is_keyword(tokens[0], "VACUUM") {
        "VACUUM"
    } else {
        "ANALYZE"
    };
    let syntax = || {
        Error::user(
            "42601",
            format!("syntax error: expected {command} [(options)] [table [(columns)], ...]"),
        )
    };
    let mut at = 1;
    if tokens.get(at) == Some(&&Token::LParen) {
        at += tokens[at..]
            .iter()
            .position(|t| **t == Token::RParen)
            .ok_or_else(syntax)?
            + 1;
    }
    while tokens.get(at).is_some_and(|t| {
        ["FULL", "FREEZE", "VERBOSE", "ANALYZE", "ANALYSE"]
            .iter()
            .any(|w| is_keyword(t, w))
    }) {
        at += 1;
    }
    let rest = &tokens[at..];
    let mut tables = Vec::new();
    if rest.is_empty() {
        return Ok(Command::Maintenance { command, tables });
    }
    // Each target is a name, perhaps followed by `(columns)`, up to a
    // comma outside parentheses.
    let (mut name_end, mut depth, mut start) = (None, 0, 0);
    for (i, token) in rest.iter().chain([&&Token::Comma]).enumerate() {
        match token {
            Token::LParen if depth == 0 => {
                name_end.get_or_insert(i);
                depth += 1;
            }
            Token::LParen => depth += 1,
            Token::RParen if depth > 0 => depth -= 1,
            Token::Comma if depth == 0 => {
                let name = &rest[start..name_end.take().unwrap_or(i)];
                tables.push(dotted_name(name).ok_or_else(syntax)??);
                start = i + 1;
            }
            _ if depth == 0 && name_end.is_some() => return Err(syntax()),
            _ => {}
        }
    }
    Ok(Command::Maintenance { command, tables })
}

/// A relation's name spelled by `name` (`a` or `schema.a`, quoted or
/// not), or `None` if the tokens spell none.
fn dotted_name(name: &[&Token]) -> Option<Result<String>> {
    let mut parts = Vec::new();
    for (i, token) in name.iter().enumerate() {
        match (i % 2, token) {
            (0, Token::Word(w)) => parts.push(match w.quote_style {
                Some(quote) => Ident::with_quote(quote, w.value.clone()),
                None => Ident::new(w.value.clone()),
            }),
            (1, Token::Period) => {}
            _ => return None,
        }
    }
    if parts.is_empty() || name.len().is_multiple_of(2) {
        return None;
    }
    Some(table_name(&ObjectName::from(parts)))
}

/// A savepoint's name: one identifier.
fn savepoint_name(token: Option<&&Token>) -> Option<String> {
    match token {
        Some(Token::Word(w)) => Some(identifier(w)),
        _ => None,
    }
}

/// `CREATE | RESTORE | DROP SAVEPOINT ...`, from its significant tokens.
fn savepoint_command(tokens: &[&Token]) -> Result<Command> {
    let word = |i: usize, text: &str| tokens.get(i).is_some_and(|t| is_keyword(t, text));
    let syntax =
        |expected: &str| Error::user("42601", format!("syntax error: expected {expected}"));
    if word(0, "CREATE") {
        let expected = "CREATE SAVEPOINT name [TO 'url']";
        let name = savepoint_name(tokens.get(2)).ok_or_else(|| syntax(expected))?;
        return match (tokens.len(), tokens.get(4)) {
            (3, _) => Ok(Command::CreateSavepoint {
                name,
                location: None,
            }),
            (5, Some(Token::SingleQuotedString(url))) if word(3, "TO") => {
                Ok(Command::CreateSavepoint {
                    name,
                    location: Some(url.clone()),
                })
            }
            _ => Err(syntax(expected)),
        };
    }
    if word(0, "RESTORE") {
        let name = savepoint_name(tokens.get(2)).filter(|_| tokens.len() == 3);
        return name
            .map(|name| Command::RestoreSavepoint { name })
            .ok_or_else(|| syntax("RESTORE SAVEPOINT name"));
    }
    let if_exists = word(2, "IF") && word(3, "EXISTS");
    let at = if if_exists { 4 } else { 2 };
    savepoint_name(tokens.get(at))
        .filter(|_| tokens.len() == at + 1)
        .map(|name| Command::DropSavepoint { name, if_exists })
        .ok_or_else(|| syntax("DROP SAVEPOINT [IF EXISTS] name"))
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
        assert_eq!(
            command("ALTER MATERIALIZED VIEW Totals RESUME").unwrap(),
            Some(Command::ResumeView {
                name: "totals".into()
            })
        );
        assert!(command("ALTER MATERIALIZED VIEW RESUME").is_err());
        assert_eq!(
            command("vacuum analyze pgbench_branches").unwrap(),
            Some(Command::Maintenance {
                command: "VACUUM",
                tables: vec!["pgbench_branches".into()]
            })
        );
        assert_eq!(
            command("VACUUM (VERBOSE, ANALYZE) a (x, y), public.\"B\"").unwrap(),
            Some(Command::Maintenance {
                command: "VACUUM",
                tables: vec!["a".into(), "B".into()]
            })
        );
        assert_eq!(
            command("ANALYZE").unwrap(),
            Some(Command::Maintenance {
                command: "ANALYZE",
                tables: vec![]
            })
        );
        assert!(command("VACUUM a b").is_err());
        assert_eq!(command(" CHECKPOINT ").unwrap(), Some(Command::Checkpoint));
        assert_eq!(command("ALTER TABLE t ADD COLUMN c INT").unwrap(), None);
        assert_eq!(command("CHECKPOINT now").unwrap(), None);
        assert_eq!(
            command("SAVEPOINT a").unwrap(),
            None,
            "a transaction savepoint"
        );
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

    #[test]
    fn savepoint_statements() {
        assert_eq!(
            command("create savepoint Nightly").unwrap(),
            Some(Command::CreateSavepoint {
                name: "nightly".into(),
                location: None
            })
        );
        assert_eq!(
            command("CREATE SAVEPOINT \"Off\" TO 's3://backups/weir/'").unwrap(),
            Some(Command::CreateSavepoint {
                name: "Off".into(),
                location: Some("s3://backups/weir/".into())
            })
        );
        assert_eq!(
            command("RESTORE SAVEPOINT nightly").unwrap(),
            Some(Command::RestoreSavepoint {
                name: "nightly".into()
            })
        );
        assert_eq!(
            command("DROP SAVEPOINT IF EXISTS nightly").unwrap(),
            Some(Command::DropSavepoint {
                name: "nightly".into(),
                if_exists: true
            })
        );
        for bad in [
            "CREATE SAVEPOINT",
            "CREATE SAVEPOINT a TO b",
            "CREATE SAVEPOINT a 'x'",
            "RESTORE SAVEPOINT a b",
            "DROP SAVEPOINT IF EXISTS",
            "DROP SAVEPOINT 'a'",
        ] {
            let err = command(bad).unwrap_err();
            assert!(
                matches!(err, Error::User { code: "42601", .. }),
                "{bad}: {err}"
            );
        }
    }
}
