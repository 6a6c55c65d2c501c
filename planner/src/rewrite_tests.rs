//! What the unit tests of the SQL rewrites share: a statement parsed as
//! PostgreSQL writes it, rewritten, and printed again.

use datafusion::sql::sqlparser::ast::Statement;
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::Parser;

/// `sql`'s first statement after `rewrite`, as SQL text.
pub fn rewritten_by(rewrite: impl FnOnce(&mut Statement), sql: &str) -> String {
    let mut statement = Parser::parse_sql(&PostgreSqlDialect {}, sql)
        .unwrap()
        .remove(0);
    rewrite(&mut statement);
    statement.to_string()
}
