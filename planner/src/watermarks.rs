//! `WATERMARK FOR col AS expr`: a table's or source's event-time
//! watermark, declared in its column list.
//!
//! sqlparser does not know the clause, so the statement parser lifts it
//! out of the token stream ([`strip_watermark`]) before parsing the rest;
//! the catalog stores it beside the statement. Planned against the
//! relation's columns it becomes the expression a watermark filter
//! evaluates on every row.

use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::DFSchema;
use datafusion::execution::SessionState;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::Parser;
use datafusion::sql::sqlparser::tokenizer::Token;
use serde::{Deserialize, Serialize};

use crate::tokens::{is_keyword, significant};
use crate::{Error, Result};

/// A declared watermark: no row with `column` below `expr` of the rows
/// seen so far is expected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatermarkDecl {
    pub column: String,
    /// The expression, as SQL over the relation's columns.
    pub expr: String,
}

impl std::fmt::Display for WatermarkDecl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "WATERMARK FOR {} AS {}", self.column, self.expr)
    }
}

fn syntax_error(message: impl std::fmt::Display) -> Error {
    Error::user("42601", format!("syntax error: {message}"))
}

/// Lifts `WATERMARK FOR col AS expr` out of a `CREATE TABLE` or
/// `CREATE SOURCE` column list, with its separating comma (and the list's
/// parentheses when nothing else was in it).
pub fn strip_watermark(tokens: &mut Vec<Token>) -> Result<Option<WatermarkDecl>> {
    let significant = significant(tokens);
    if !significant
        .first()
        .is_some_and(|&i| is_keyword(&tokens[i], "CREATE"))
    {
        return Ok(None);
    }
    // Find WATERMARK FOR at depth 1, remembering where the list opened.
    let mut depth = 0usize;
    let mut list_open = None;
    let mut clause = None;
    for (n, &i) in significant.iter().enumerate() {
        match &tokens[i] {
            Token::LParen => {
                depth += 1;
                if depth == 1 && list_open.is_none() {
                    list_open = Some(n);
                }
            }
            Token::RParen => depth = depth.saturating_sub(1),
            token
                if depth == 1
                    && is_keyword(token, "WATERMARK")
                    && significant
                        .get(n + 1)
                        .is_some_and(|&next| is_keyword(&tokens[next], "FOR")) =>
            {
                clause = Some(n);
                break;
            }
            _ => {}
        }
    }
    let (Some(start), Some(list_open)) = (clause, list_open) else {
        return Ok(None);
    };
    let column = match significant.get(start + 2).map(|&i| &tokens[i]) {
        Some(Token::Word(w)) => match w.quote_style {
            Some(_) => w.value.clone(),
            None => w.value.to_lowercase(),
        },
        _ => return Err(syntax_error("WATERMARK FOR is followed by a column name")),
    };
    if !significant
        .get(start + 3)
        .is_some_and(|&i| is_keyword(&tokens[i], "AS"))
    {
        return Err(syntax_error(format!(
            "expected AS after WATERMARK FOR {column}"
        )));
    }
    // The expression runs to the comma or parenthesis that ends the clause.
    let mut depth = 0usize;
    let mut end = None;
    for (n, &i) in significant.iter().enumerate().skip(start + 4) {
        match &tokens[i] {
            Token::LParen => depth += 1,
            Token::RParen if depth == 0 => {
                end = Some(n);
                break;
            }
            Token::RParen => depth -= 1,
            Token::Comma if depth == 0 => {
                end = Some(n);
                break;
            }
            _ => {}
        }
    }
    let end = end.ok_or_else(|| syntax_error("WATERMARK FOR ... is not closed"))?;
    let text: String = tokens[significant[start + 3] + 1..significant[end]]
        .iter()
        .map(ToString::to_string)
        .collect();
    let expr = Parser::new(&PostgreSqlDialect {})
        .try_with_sql(&text)
        .and_then(|mut parser| parser.parse_expr())
        .map_err(|e| syntax_error(format!("in WATERMARK FOR {column}: {e}")))?;
    let before = significant[start - 1];
    let removed = if matches!(tokens[before], Token::Comma) {
        before..significant[end]
    } else if matches!(tokens[significant[end]], Token::Comma) {
        significant[start]..significant[end] + 1
    } else {
        // The only item: the parentheses go too.
        significant[list_open]..significant[end] + 1
    };
    tokens.drain(removed);
    Ok(Some(WatermarkDecl {
        column,
        expr: expr.to_string(),
    }))
}

impl WatermarkDecl {
    /// The time column's position in `schema` and the watermark expression
    /// over it, which must have the column's type.
    pub fn plan(
        &self,
        state: &SessionState,
        schema: &SchemaRef,
    ) -> Result<(usize, Arc<dyn PhysicalExpr>)> {
        let column = schema.index_of(&self.column).map_err(|_| {
            Error::user(
                "42703",
                format!("watermark column \"{}\" does not exist", self.column),
            )
        })?;
        let df_schema = DFSchema::try_from(schema.as_ref().clone())?;
        let logical = state.create_logical_expr(&self.expr, &df_schema)?;
        let expr = state.create_physical_expr(logical, &df_schema)?;
        let column_type = schema.field(column).data_type();
        let expr_type = expr.data_type(schema)?;
        if expr_type != *column_type {
            return Err(Error::user(
                "42804",
                format!(
                    "the watermark of \"{}\" ({}) must have its column's type {column_type}, not {expr_type}",
                    self.column, self.expr
                ),
            ));
        }
        if !column_type.is_temporal() && !column_type.is_numeric() {
            return Err(Error::user(
                "42804",
                format!(
                    "watermark column \"{}\" is {column_type}: a time or number is needed",
                    self.column
                ),
            ));
        }
        Ok((column, expr))
    }
}

#[cfg(test)]
mod tests {
    use datafusion::sql::sqlparser::tokenizer::Tokenizer;

    use super::*;

    fn stripped(sql: &str) -> (String, Option<WatermarkDecl>) {
        let mut tokens = Tokenizer::new(&PostgreSqlDialect {}, sql)
            .tokenize()
            .unwrap();
        let decl = strip_watermark(&mut tokens).unwrap();
        (tokens.iter().map(ToString::to_string).collect(), decl)
    }

    #[test]
    fn the_clause_is_lifted_out_of_the_column_list() {
        let (rest, decl) = stripped(
            "CREATE TABLE t (a INT, ts TIMESTAMP, WATERMARK FOR ts AS ts - INTERVAL '5' SECOND) APPEND ONLY",
        );
        assert_eq!(rest, "CREATE TABLE t (a INT, ts TIMESTAMP) APPEND ONLY");
        let decl = decl.unwrap();
        assert_eq!(decl.column, "ts");
        assert_eq!(decl.expr, "ts - INTERVAL '5' SECOND");
        assert_eq!(
            decl.to_string(),
            "WATERMARK FOR ts AS ts - INTERVAL '5' SECOND"
        );
        let (rest, decl) = stripped(
            "CREATE TABLE t (WATERMARK FOR \"Ts\" AS date_bin(INTERVAL '1' SECOND, \"Ts\"), \"Ts\" TIMESTAMP)",
        );
        assert_eq!(rest, "CREATE TABLE t ( \"Ts\" TIMESTAMP)");
        assert_eq!(decl.unwrap().column, "Ts");
        let (rest, decl) = stripped(
            "CREATE SOURCE bid (WATERMARK FOR date_time AS date_time) WITH (connector = 'nexmark')",
        );
        assert_eq!(rest, "CREATE SOURCE bid  WITH (connector = 'nexmark')");
        assert!(decl.is_some());
        let (rest, decl) = stripped("CREATE TABLE watermark (watermark INT)");
        assert_eq!(rest, "CREATE TABLE watermark (watermark INT)");
        assert!(decl.is_none());
    }

    #[test]
    fn malformed_clauses_are_syntax_errors() {
        for sql in [
            "CREATE TABLE t (ts TIMESTAMP, WATERMARK FOR ts ts)",
            "CREATE TABLE t (ts TIMESTAMP, WATERMARK FOR ts AS ts -)",
            "CREATE TABLE t (ts TIMESTAMP, WATERMARK FOR ts AS ts",
            "CREATE TABLE t (ts TIMESTAMP, WATERMARK FOR 'ts' AS ts)",
        ] {
            let mut tokens = Tokenizer::new(&PostgreSqlDialect {}, sql)
                .tokenize()
                .unwrap();
            let err = strip_watermark(&mut tokens).unwrap_err();
            assert!(
                matches!(err, Error::User { code: "42601", .. }),
                "{sql}: {err}"
            );
        }
    }
}
