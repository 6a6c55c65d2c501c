//! SQL text to statements.
//!
//! sqlparser (Postgres dialect) does the parsing, behind
//! `datafusion-pg-catalog`'s compatibility layer that rewrites the catalog
//! queries psql and drivers send. weir's own syntax is a thin layer on top:
//! the `APPEND ONLY` clause that may end a `CREATE TABLE`, `FLUSH`,
//! weir's own [`Command`]s (`CHECKPOINT`, `ALTER SOURCE ... PAUSE`),
//! `ALTER SYSTEM` before `SET` and `RESET`,
//! `CREATE SOURCE` / `DROP SOURCE`, parsed as their `TABLE` forms,
//! `CREATE` / `ALTER` / `DROP USER` as their `ROLE` forms,
//! `WATERMARK FOR col AS expr` in a column list, and the
//! `EMIT ON WINDOW CLOSE` that may end a `CREATE MATERIALIZED VIEW`,
//! and `name AS OF SAVEPOINT sp` in a query. `ARRAY(subquery)` becomes
//! an aggregate subquery ([`crate::array_subquery`]).

use datafusion::sql::sqlparser::ast::{FlushType, Statement};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};
use datafusion_pg_catalog::sql::PostgresCompatibilityParser;

use crate::as_of_savepoint::rewrite_as_of_savepoint;
use crate::commands::{Command, parse_command};
use crate::nesting::check_nesting;
use crate::subqueries::protect_projection_subqueries;
use crate::tokens::{is_keyword, significant, to_sql};
use crate::watermarks::{WatermarkDecl, strip_watermark};
use crate::{Error, Result};

/// One statement of a query string.
#[derive(Debug, Clone)]
pub struct ParsedStatement {
    pub statement: Statement,
    /// `CREATE TABLE ... APPEND ONLY`: the table has no key and takes only inserts.
    pub append_only: bool,
    /// A statement only weir has; `statement` is then a FLUSH.
    pub command: Option<Command>,
    /// `ALTER SYSTEM SET|RESET`: only database settings may follow.
    pub alter_system: bool,
    /// `CREATE SOURCE` or `DROP SOURCE`, parsed as `CREATE TABLE` or
    /// `DROP TABLE`.
    pub source: bool,
    /// `WATERMARK FOR col AS expr` in a `CREATE TABLE` or `CREATE SOURCE`.
    pub watermark: Option<WatermarkDecl>,
    /// `CREATE MATERIALIZED VIEW ... EMIT ON WINDOW CLOSE`.
    pub emit_on_window_close: bool,
}

/// Parses SQL text into statements. Shared by every session.
#[derive(Debug, Default)]
pub struct StatementParser {
    compatible: PostgresCompatibilityParser,
}

fn syntax_error(e: impl std::fmt::Display) -> Error {
    Error::user("42601", format!("syntax error: {e}"))
}

impl StatementParser {
    pub fn parse(&self, sql: &str) -> Result<Vec<ParsedStatement>> {
        let tokens = Tokenizer::new(&PostgreSqlDialect {}, sql)
            .tokenize()
            .map_err(syntax_error)?;
        let mut parsed = Vec::new();
        for mut tokens in tokens
            .split(|t| *t == Token::SemiColon)
            .map(<[Token]>::to_vec)
        {
            if tokens.iter().all(|t| matches!(t, Token::Whitespace(_))) {
                continue;
            }
            check_nesting(&tokens)?;
            let command = parse_command(&tokens)?;
            if command.is_some() || single_word(&tokens).as_deref() == Some("FLUSH") {
                parsed.push(ParsedStatement {
                    statement: flush_statement(),
                    append_only: false,
                    command,
                    alter_system: false,
                    source: false,
                    watermark: None,
                    emit_on_window_close: false,
                });
                continue;
            }
            let alter_system = strip_alter_system(&mut tokens);
            let append_only = strip_trailing(&mut tokens, &["APPEND", "ONLY"], "TABLE");
            let emit_on_window_close =
                strip_trailing(&mut tokens, &["EMIT", "ON", "WINDOW", "CLOSE"], "VIEW");
            let watermark = strip_watermark(&mut tokens)?;
            let source = source_as_table(&mut tokens);
            user_as_role(&mut tokens);
            copy_switches_as_booleans(&mut tokens);
            crate::array_casts::array_literal_casts(&mut tokens);
            crate::catalog_regclass::catalog_regclass_literals(&mut tokens);
            rewrite_as_of_savepoint(&mut tokens)?;
            let text = to_sql(&tokens);
            let text = protect_projection_subqueries(&tokens, &text).unwrap_or(text);
            for mut statement in self.compatible.parse(&text).map_err(syntax_error)? {
                crate::windows::rewrite_windows(&mut statement)?;
                crate::pg_catalog_schema::qualify_pg_tables(&mut statement);
                crate::array_subquery::rewrite_array_subqueries(&mut statement);
                crate::series_tables::rewrite_series_tables(&mut statement);
                crate::array_subscripts::rewrite_array_subscripts(&mut statement);
                crate::char_type::rewrite_char_casts(&mut statement);
                crate::regtype_text::rewrite_regtype_texts(&mut statement);
                crate::catalog_lookups::rewrite_catalog_lookups(&mut statement);
                crate::catalog_subqueries::aggregate_catalog_subqueries(&mut statement);
                crate::constants::rewrite_constants(&mut statement);
                crate::typed_text_functions::rewrite_typed_text_casts(&mut statement);
                if append_only && !matches!(statement, Statement::CreateTable(_)) {
                    return Err(syntax_error(
                        "APPEND ONLY is only allowed at the end of CREATE TABLE",
                    ));
                }
                let creates_view = match &statement {
                    Statement::Explain { statement, .. } => {
                        matches!(statement.as_ref(), Statement::CreateView(_))
                    }
                    other => matches!(other, Statement::CreateView(_)),
                };
                if emit_on_window_close && !creates_view {
                    return Err(syntax_error(
                        "EMIT ON WINDOW CLOSE is only allowed at the end of CREATE MATERIALIZED VIEW",
                    ));
                }
                if watermark.is_some() && !matches!(statement, Statement::CreateTable(_)) {
                    return Err(syntax_error(
                        "WATERMARK FOR belongs in the column list of CREATE TABLE or CREATE SOURCE",
                    ));
                }
                if alter_system && !matches!(statement, Statement::Set(_) | Statement::Reset(_)) {
                    return Err(syntax_error("ALTER SYSTEM is followed by SET or RESET"));
                }
                parsed.push(ParsedStatement {
                    statement,
                    append_only,
                    command: None,
                    alter_system,
                    source,
                    watermark: watermark.clone(),
                    emit_on_window_close,
                });
            }
        }
        Ok(parsed)
    }
}

/// The statement's only token, upper-cased, when it is one bare word, as
/// `FLUSH` is.
fn single_word(tokens: &[Token]) -> Option<String> {
    let mut words = tokens.iter().filter(|t| !matches!(t, Token::Whitespace(_)));
    match (words.next(), words.next()) {
        (Some(Token::Word(w)), None) if w.quote_style.is_none() => {
            Some(w.value.to_ascii_uppercase())
        }
        _ => None,
    }
}

/// Removes a leading `ALTER SYSTEM`.
fn strip_alter_system(tokens: &mut Vec<Token>) -> bool {
    let significant = significant(tokens);
    match significant.get(..2) {
        Some(&[alter, system])
            if is_keyword(&tokens[alter], "ALTER") && is_keyword(&tokens[system], "SYSTEM") =>
        {
            tokens.drain(..=system);
            true
        }
        _ => false,
    }
}

/// Turns `CREATE SOURCE` and `DROP SOURCE` into `CREATE TABLE` and
/// `DROP TABLE`; `true` if it did.
fn source_as_table(tokens: &mut [Token]) -> bool {
    let mut words = tokens
        .iter_mut()
        .filter(|t| !matches!(t, Token::Whitespace(_)))
        .take(2);
    let (Some(Token::Word(verb)), Some(Token::Word(object))) = (words.next(), words.next()) else {
        return false;
    };
    let bare = |w: &datafusion::sql::sqlparser::tokenizer::Word, word: &str| {
        w.quote_style.is_none() && w.value.eq_ignore_ascii_case(word)
    };
    if !(bare(verb, "CREATE") || bare(verb, "DROP")) || !bare(object, "SOURCE") {
        return false;
    }
    object.value = "TABLE".into();
    object.keyword = datafusion::sql::sqlparser::keywords::Keyword::TABLE;
    true
}

/// Turns `CREATE USER`, `ALTER USER` and `DROP USER` into their `ROLE`
/// forms, as PostgreSQL has them; a created user logs in unless it says
/// `NOLOGIN`.
fn user_as_role(tokens: &mut Vec<Token>) {
    let significant = significant(tokens);
    let (Some(&verb), Some(&object)) = (significant.first(), significant.get(1)) else {
        return;
    };
    let creates = is_keyword(&tokens[verb], "CREATE");
    if !(creates || is_keyword(&tokens[verb], "ALTER") || is_keyword(&tokens[verb], "DROP"))
        || !is_keyword(&tokens[object], "USER")
    {
        return;
    }
    tokens[object] = Token::make_keyword("ROLE");
    let says_login = significant
        .iter()
        .any(|&i| is_keyword(&tokens[i], "LOGIN") || is_keyword(&tokens[i], "NOLOGIN"));
    if creates && !says_login {
        tokens.push(Token::Whitespace(
            datafusion::sql::sqlparser::tokenizer::Whitespace::Space,
        ));
        tokens.push(Token::make_keyword("LOGIN"));
    }
}

/// `COPY ... WITH (FREEZE ON, HEADER OFF)`: PostgreSQL takes `on` and
/// `off` for a boolean option (`pgbench -i` sends `freeze on`); sqlparser
/// only `true` and `false`.
fn copy_switches_as_booleans(tokens: &mut [Token]) {
    let significant = significant(tokens);
    if !significant
        .first()
        .is_some_and(|&i| is_keyword(&tokens[i], "COPY"))
    {
        return;
    }
    for pair in significant.windows(2) {
        let (option, value) = (pair[0], pair[1]);
        let boolean_option = ["FREEZE", "HEADER"]
            .iter()
            .any(|name| is_keyword(&tokens[option], name));
        if !boolean_option {
            continue;
        }
        if is_keyword(&tokens[value], "ON") {
            tokens[value] = Token::make_keyword("TRUE");
        } else if is_keyword(&tokens[value], "OFF") {
            tokens[value] = Token::make_keyword("FALSE");
        }
    }
}

/// How a parsed `FLUSH` is represented: sqlparser's FLUSH statement.
fn flush_statement() -> Statement {
    Statement::Flush {
        object_type: FlushType::Tables,
        location: None,
        channel: None,
        read_lock: false,
        export: false,
        tables: Vec::new(),
    }
}

/// Removes trailing `words` (`APPEND ONLY`, `EMIT ON WINDOW CLOSE`) from
/// a `CREATE` statement that names `object` (`TABLE`, `VIEW`) among its
/// first words; whether it did.
fn strip_trailing(tokens: &mut Vec<Token>, words: &[&str], object: &str) -> bool {
    // Each significant token as an upper-cased bare word ("" for anything else).
    let significant: Vec<(usize, String)> = tokens
        .iter()
        .enumerate()
        .filter_map(|(i, t)| match t {
            Token::Whitespace(_) => None,
            Token::Word(w) if w.quote_style.is_none() => Some((i, w.value.to_ascii_uppercase())),
            _ => Some((i, String::new())),
        })
        .collect();
    // `EXPLAIN CREATE ...` counts as a `CREATE`.
    let explained = significant.first().is_some_and(|(_, w)| w == "EXPLAIN");
    let create = usize::from(explained);
    let starts_create = significant.get(create).is_some_and(|(_, w)| w == "CREATE");
    let names_object = significant
        .iter()
        .skip(create)
        .take(4)
        .any(|(_, w)| w == object);
    if !starts_create || !names_object || significant.len() < words.len() {
        return false;
    }
    let tail = &significant[significant.len() - words.len()..];
    if tail.iter().zip(words).all(|((_, w), word)| w == word) {
        tokens.truncate(tail[0].0);
        return true;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_statements_and_skips_empty_ones() {
        let parsed = StatementParser::default()
            .parse("SELECT 1; ;; SELECT ';'")
            .unwrap();
        assert_eq!(parsed.len(), 2);
        assert!(parsed.iter().all(|p| !p.append_only));
    }

    #[test]
    fn append_only_marks_create_table() {
        let parsed = StatementParser::default()
            .parse("CREATE TABLE t (a INT) APPEND ONLY; CREATE TABLE u (a INT)")
            .unwrap();
        assert!(parsed[0].append_only);
        assert!(!parsed[1].append_only);
        assert!(matches!(parsed[0].statement, Statement::CreateTable(_)));
    }

    #[test]
    fn sources_parse_as_tables() {
        let parsed = StatementParser::default()
            .parse(
                "CREATE SOURCE bid WITH (connector = 'nexmark', table = 'bid'); \
                 DROP SOURCE IF EXISTS bid; CREATE TABLE source (a INT)",
            )
            .unwrap();
        assert!(parsed[0].source && matches!(parsed[0].statement, Statement::CreateTable(_)));
        assert!(parsed[1].source && matches!(parsed[1].statement, Statement::Drop { .. }));
        assert!(!parsed[2].source);
    }

    #[test]
    fn watermarks_and_emit_on_window_close() {
        let parsed = StatementParser::default()
            .parse(
                "CREATE TABLE t (ts TIMESTAMP, WATERMARK FOR ts AS ts - INTERVAL '1' SECOND) APPEND ONLY; \
                 CREATE MATERIALIZED VIEW v AS SELECT 1 FROM t EMIT ON WINDOW CLOSE",
            )
            .unwrap();
        assert!(parsed[0].append_only && parsed[0].watermark.is_some());
        assert!(parsed[1].emit_on_window_close && parsed[1].watermark.is_none());
        let err = StatementParser::default()
            .parse("SELECT 1 EMIT ON WINDOW CLOSE")
            .unwrap_err();
        assert!(matches!(err, Error::User { code: "42601", .. }), "{err}");
    }

    #[test]
    fn checkpoint_and_alter_system() {
        let parsed = StatementParser::default()
            .parse("checkpoint; FLUSH; ALTER SYSTEM SET checkpoint_interval = '5s'; SET a = 1")
            .unwrap();
        assert_eq!(parsed[0].command, Some(Command::Checkpoint));
        assert_eq!(parsed[1].command, None);
        assert!(matches!(parsed[1].statement, Statement::Flush { .. }));
        assert!(parsed[2].alter_system && matches!(parsed[2].statement, Statement::Set(_)));
        assert!(!parsed[3].alter_system);
        let err = StatementParser::default()
            .parse("ALTER SYSTEM SELECT 1")
            .unwrap_err();
        assert!(matches!(err, Error::User { code: "42601", .. }), "{err}");
    }

    #[test]
    fn syntax_errors_carry_42601() {
        let err = StatementParser::default().parse("SELEC 1").unwrap_err();
        assert!(matches!(err, Error::User { code: "42601", .. }), "{err}");
        let err = StatementParser::default()
            .parse("SELECT 'unterminated")
            .unwrap_err();
        assert!(matches!(err, Error::User { code: "42601", .. }), "{err}");
        let err = StatementParser::default()
            .parse("SELECT 1 APPEND ONLY")
            .unwrap_err();
        assert!(matches!(err, Error::User { code: "42601", .. }), "{err}");
    }
}
