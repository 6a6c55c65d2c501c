//! How deeply a statement nests, bounded before anything parses it.
//!
//! sqlparser reads `a + b + c ...` and `q UNION ALL q ...` in a loop, but
//! the tree it builds is as deep as the chain is long, and every later pass
//! over that tree (pg_catalog's rewrites, DataFusion's planner and
//! optimizer, expression evaluation, even dropping it) recurses once per
//! level. A chain long enough overflows a thread's stack, which aborts the
//! process. So each statement's tokens are measured first, and a statement
//! that could nest deeper than [`MAX_NESTING`] levels is refused with
//! `54001`, as PostgreSQL refuses one past its stack depth limit.
//!
//! The measure is an upper bound of the tree's depth: one level per open
//! parenthesis or bracket, plus, at each open level, one per operator since
//! the last separator (a comma, or a keyword that starts a clause or a CASE
//! arm) and one per set operation or join. Siblings in a list do not add
//! up; a chain of operators or of `UNION`s does.

use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::tokenizer::Token;

use crate::{Error, Result};

/// The deepest a statement may nest. The server's threads have stacks
/// sized for statements this deep (`weir_server::runtime`).
pub const MAX_NESTING: usize = 1000;

/// Refuses, with `54001`, tokens of one statement that could nest deeper
/// than [`MAX_NESTING`].
pub fn check_nesting(tokens: &[Token]) -> Result<()> {
    let depth = nesting_bound(tokens);
    if depth > MAX_NESTING {
        return Err(Error::user(
            "54001",
            format!(
                "statement too complex: it nests up to {depth} levels deep (operators in one chain, \
                 parentheses, set operations), more than the {MAX_NESTING} allowed"
            ),
        ));
    }
    Ok(())
}

/// What one open parenthesis (or the statement itself) holds so far.
#[derive(Default)]
struct Level {
    /// Operators since the last separator.
    operators: usize,
    /// Set operations and joins: queries nest through these whatever
    /// clauses come between.
    queries: usize,
}

/// The upper bound described in the module docs.
fn nesting_bound(tokens: &[Token]) -> usize {
    let mut levels = vec![Level::default()];
    // Parentheses open, plus every level's operators and queries.
    let mut total = 0usize;
    let mut deepest = 0usize;
    for token in tokens {
        let level = levels.len() - 1;
        match token {
            Token::LParen | Token::LBracket => {
                levels.push(Level::default());
                total += 1;
            }
            Token::RParen | Token::RBracket if level > 0 => {
                let closed = levels.pop().unwrap_or_default();
                total -= closed.operators + closed.queries + 1;
            }
            Token::Comma => total -= std::mem::take(&mut levels[level].operators),
            Token::Word(w) if w.quote_style.is_none() && is_separator(w.keyword) => {
                total -= std::mem::take(&mut levels[level].operators);
            }
            Token::Word(w) if w.quote_style.is_none() && is_set_operation(w.keyword) => {
                levels[level].queries += 1;
                total += 1;
            }
            Token::Word(w) if w.quote_style.is_none() && is_infix(w.keyword) => {
                levels[level].operators += 1;
                total += 1;
            }
            t if is_operator(t) => {
                levels[level].operators += 1;
                total += 1;
            }
            _ => {}
        }
        deepest = deepest.max(total);
    }
    deepest
}

/// Keywords after which a new, unrelated expression starts.
fn is_separator(keyword: Keyword) -> bool {
    matches!(
        keyword,
        Keyword::SELECT
            | Keyword::FROM
            | Keyword::WHERE
            | Keyword::HAVING
            | Keyword::BY
            | Keyword::ON
            | Keyword::USING
            | Keyword::LIMIT
            | Keyword::OFFSET
            | Keyword::VALUES
            | Keyword::SET
            | Keyword::RETURNING
            | Keyword::WHEN
            | Keyword::THEN
            | Keyword::ELSE
            | Keyword::END
    )
}

/// Keywords that join two expressions or queries into one deeper node.
fn is_infix(keyword: Keyword) -> bool {
    matches!(
        keyword,
        Keyword::AND
            | Keyword::OR
            | Keyword::XOR
            | Keyword::IS
            | Keyword::IN
            | Keyword::BETWEEN
            | Keyword::LIKE
            | Keyword::ILIKE
            | Keyword::SIMILAR
            | Keyword::COLLATE
            | Keyword::AT
    )
}

/// Keywords that join two queries or tables into one deeper node.
fn is_set_operation(keyword: Keyword) -> bool {
    matches!(
        keyword,
        Keyword::UNION | Keyword::EXCEPT | Keyword::INTERSECT | Keyword::JOIN
    )
}

/// Tokens that are operators: everything but words, literals, separators
/// and punctuation that names (`a.b`).
fn is_operator(token: &Token) -> bool {
    !matches!(
        token,
        Token::Word(_)
            | Token::Number(..)
            | Token::Char(_)
            | Token::SingleQuotedString(_)
            | Token::DoubleQuotedString(_)
            | Token::DollarQuotedString(_)
            | Token::NationalStringLiteral(_)
            | Token::EscapedStringLiteral(_)
            | Token::UnicodeStringLiteral(_)
            | Token::HexStringLiteral(_)
            | Token::SingleQuotedByteStringLiteral(_)
            | Token::DoubleQuotedByteStringLiteral(_)
            | Token::Whitespace(_)
            | Token::Period
            | Token::Comma
            | Token::SemiColon
            | Token::Placeholder(_)
            | Token::EOF
    )
}

#[cfg(test)]
mod tests {
    use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
    use datafusion::sql::sqlparser::tokenizer::Tokenizer;

    use super::*;

    fn bound(sql: &str) -> usize {
        nesting_bound(
            &Tokenizer::new(&PostgreSqlDialect {}, sql)
                .tokenize()
                .unwrap(),
        )
    }

    #[test]
    fn chains_count_and_lists_do_not() {
        let chain = format!("SELECT 1{}", " + 1".repeat(2000));
        assert_eq!(bound(&chain), 2000);
        let values = format!("INSERT INTO t VALUES (-1, -2){}", ", (-1, -2)".repeat(5000));
        assert!(bound(&values) <= 3, "{}", bound(&values));
        let cases = format!(
            "SELECT CASE {} END FROM t",
            (0..3000)
                .map(|i| format!("WHEN a = {i} THEN {i}"))
                .collect::<Vec<_>>()
                .join(" ")
        );
        assert!(bound(&cases) <= 2);
        let unions = format!("SELECT 1{}", " UNION ALL SELECT 1".repeat(2500));
        assert_eq!(bound(&unions), 2500);
        assert_eq!(bound("SELECT ((((1))))"), 4);
    }

    #[test]
    fn too_deep_is_54001() {
        let chain = format!("SELECT 1{}", " OR true".repeat(MAX_NESTING + 1));
        let tokens = Tokenizer::new(&PostgreSqlDialect {}, &chain)
            .tokenize()
            .unwrap();
        let err = check_nesting(&tokens).unwrap_err();
        assert!(matches!(err, Error::User { code: "54001", .. }), "{err}");
        let fine = format!("SELECT 1{}", " OR true".repeat(MAX_NESTING));
        let tokens = Tokenizer::new(&PostgreSqlDialect {}, &fine)
            .tokenize()
            .unwrap();
        check_nesting(&tokens).unwrap();
    }
}
