//! `TUMBLE`, `HOP` and `SESSION`: window table functions over a table or
//! source, rewritten into plain subqueries before planning, so batch
//! queries and views plan them alike. `SESSION` becomes a pair of window
//! functions ([`crate::session_windows`]).
//!
//! `TUMBLE(t, ts, size)` is `t` with `window_start` (`ts` binned to `size`)
//! and `window_end` added. `HOP(t, ts, slide, size)` puts each row in the
//! `size / slide` windows that hold it: one `TUMBLE`-like binning per
//! window phase (origins `slide` apart), unioned. Without an alias the
//! result keeps the table's name, so `t.col` still resolves.
//!
//! The time may be an expression rather than a column, as in
//! `TUMBLE(bid, proctime(), ...)`: it is then computed once per row, as a
//! column `window_time` beside the windows, so start and end agree.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    DateTimeField, Expr, FunctionArg, FunctionArgExpr, Interval, Statement, TableFactor, Value,
    ValueWithSpan, VisitMut, VisitorMut,
};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::Parser;
use weir_executor::checkpoint::parse_duration;

use crate::session_windows::{SESSION_END, SESSION_START};
use crate::{Error, Result};

/// How many windows `HOP` may put one row in: each is a branch of a
/// `UNION ALL`, so this is also the bound on the plan it makes.
pub const MAX_WINDOWS_PER_ROW: u64 = 1000;

/// Rewrites every `TUMBLE(...)`, `HOP(...)` and `SESSION(...)` in
/// `statement`.
pub fn rewrite_windows(statement: &mut Statement) -> Result<()> {
    let mut rewriter = WindowRewriter;
    match statement.visit(&mut rewriter) {
        ControlFlow::Continue(()) => Ok(()),
        ControlFlow::Break(e) => Err(e),
    }
}

struct WindowRewriter;

impl VisitorMut for WindowRewriter {
    type Break = Error;

    fn post_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<Error> {
        let TableFactor::Table {
            name,
            alias,
            args: Some(args),
            ..
        } = factor
        else {
            return ControlFlow::Continue(());
        };
        let function = name.to_string().to_ascii_lowercase();
        if !matches!(function.as_str(), "tumble" | "hop" | "session") {
            return ControlFlow::Continue(());
        }
        let args: Vec<&Expr> = args
            .args
            .iter()
            .filter_map(|arg| match arg {
                FunctionArg::Unnamed(FunctionArgExpr::Expr(expr)) => Some(expr),
                _ => None,
            })
            .collect();
        let alias = alias.as_ref().map(|a| a.name.to_string());
        match window_subquery(&function, &args, alias) {
            Ok(derived) => {
                *factor = derived;
                ControlFlow::Continue(())
            }
            Err(e) => ControlFlow::Break(e),
        }
    }
}

fn invalid(message: String) -> Error {
    Error::user("22023", message)
}

/// An interval literal's length in milliseconds: `INTERVAL '10' SECOND`,
/// `INTERVAL '2 minutes'`.
fn interval_ms(expr: &Expr) -> Result<u64> {
    let not_interval = || {
        invalid(format!(
            "window sizes are intervals like INTERVAL '10' SECOND, not {expr}"
        ))
    };
    let Expr::Interval(Interval {
        value,
        leading_field,
        ..
    }) = expr
    else {
        return Err(not_interval());
    };
    let Expr::Value(ValueWithSpan {
        value: Value::SingleQuotedString(text),
        ..
    }) = value.as_ref()
    else {
        return Err(not_interval());
    };
    let unit = match leading_field {
        None => "",
        Some(DateTimeField::Second | DateTimeField::Seconds) => "s",
        Some(DateTimeField::Minute | DateTimeField::Minutes) => "min",
        Some(DateTimeField::Hour | DateTimeField::Hours) => "h",
        Some(other) => {
            return Err(invalid(format!(
                "window sizes in {other} are not supported"
            )));
        }
    };
    let length = parse_duration(&format!("{text}{unit}")).ok_or_else(not_interval)?;
    match u64::try_from(length.as_millis()) {
        Ok(ms) if ms > 0 => Ok(ms),
        _ => Err(invalid(format!("window size {expr} must be positive"))),
    }
}

/// The subquery `SESSION` stands for (see [`crate::session_windows`]).
fn session_subquery(args: &[&Expr], alias: Option<String>) -> Result<String> {
    let [table, time, gap, keys @ ..] = args else {
        return Err(Error::user(
            "42883",
            "session windows are SESSION(table, time_column, gap [, key_column ...])",
        ));
    };
    let is_column = |e: &Expr| matches!(e, Expr::Identifier(_) | Expr::CompoundIdentifier(_));
    if !is_column(time) || !keys.iter().all(|k| is_column(k)) {
        return Err(invalid(
            "SESSION takes a time column and key columns, not expressions".into(),
        ));
    }
    let gap = interval_ms(gap)?;
    let partition = match keys {
        [] => String::new(),
        keys => format!(
            "PARTITION BY {} ",
            keys.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let over = format!("OVER ({partition}ORDER BY {time})");
    let alias = alias.unwrap_or_else(|| table.to_string());
    Ok(format!(
        "(SELECT *, {SESSION_START}({time}, {gap}) {over} AS window_start, \
         {SESSION_END}({time}, {gap}) {over} AS window_end FROM {table}) AS {alias}"
    ))
}

/// The subquery a window function stands for, as a derived table.
fn window_subquery(function: &str, args: &[&Expr], alias: Option<String>) -> Result<TableFactor> {
    let sql = if function == "session" {
        session_subquery(args, alias)?
    } else {
        binned_subquery(function, args, alias)?
    };
    Parser::new(&PostgreSqlDialect {})
        .try_with_sql(&sql)
        .and_then(|mut parser| parser.parse_table_factor())
        .map_err(|e| Error::Internal(format!("window rewrite {sql} did not parse: {e}")))
}

/// The subquery `TUMBLE` or `HOP` stands for.
fn binned_subquery(function: &str, args: &[&Expr], alias: Option<String>) -> Result<String> {
    let (table, time, slide, size) = match (function, args) {
        ("tumble", [table, time, size]) => (table, time, interval_ms(size)?, interval_ms(size)?),
        ("hop", [table, time, slide, size]) => {
            (table, time, interval_ms(slide)?, interval_ms(size)?)
        }
        _ => {
            return Err(Error::user(
                "42883",
                "windows are TUMBLE(table, time_column, size) and HOP(table, time_column, slide, size)",
            ));
        }
    };
    if size % slide != 0 {
        return Err(invalid(format!(
            "HOP: the size ({size} ms) must be a multiple of the slide ({slide} ms)"
        )));
    }
    if size / slide > MAX_WINDOWS_PER_ROW {
        return Err(Error::user(
            "54000",
            format!(
                "HOP puts each row in {} windows (size / slide); at most {MAX_WINDOWS_PER_ROW} are allowed",
                size / slide
            ),
        ));
    }
    let is_column = matches!(time, Expr::Identifier(_) | Expr::CompoundIdentifier(_));
    let (source, time) = if is_column {
        (table.to_string(), time.to_string())
    } else {
        (
            format!("(SELECT *, {time} AS window_time FROM {table}) AS {table}"),
            "window_time".to_string(),
        )
    };
    let phases: Vec<String> = (0..size / slide)
        .map(|phase| {
            let origin = format!(
                "TIMESTAMP '1970-01-01 00:00:00' + INTERVAL '{} milliseconds'",
                phase * slide
            );
            let start = format!("date_bin(INTERVAL '{size} milliseconds', {time}, {origin})");
            format!(
                "SELECT *, {start} AS window_start, {start} + INTERVAL '{size} milliseconds' AS window_end FROM {source}"
            )
        })
        .collect();
    let alias = alias.unwrap_or_else(|| table.to_string());
    Ok(format!("({}) AS {alias}", phases.join(" UNION ALL ")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parser::StatementParser;

    fn rewritten(sql: &str) -> Result<String> {
        let mut parsed = StatementParser::default().parse(sql)?;
        rewrite_windows(&mut parsed[0].statement)?;
        Ok(parsed[0].statement.to_string())
    }

    #[test]
    fn tumble_bins_and_hop_unions_its_phases() {
        let tumble =
            rewritten("SELECT window_start, count(*) FROM TUMBLE(bid, date_time, INTERVAL '10' SECOND) GROUP BY 1")
                .unwrap();
        assert!(
            tumble.contains("date_bin(INTERVAL '10000 milliseconds', date_time"),
            "{tumble}"
        );
        assert!(tumble.contains(") AS bid"), "{tumble}");
        let hop = rewritten(
            "SELECT * FROM HOP(bid, date_time, INTERVAL '2' SECOND, INTERVAL '10' SECOND) AS h",
        )
        .unwrap();
        assert_eq!(hop.matches("UNION ALL").count(), 4, "{hop}");
        assert!(hop.contains("INTERVAL '8000 milliseconds'"), "{hop}");
        assert!(hop.ends_with("AS h"), "{hop}");
        let processing = rewritten(
            "SELECT window_start, count(*) FROM TUMBLE(bid, proctime(), INTERVAL '10' SECOND) GROUP BY 1",
        )
        .unwrap();
        assert!(
            processing.contains("FROM (SELECT *, proctime() AS window_time FROM bid) AS bid"),
            "{processing}"
        );
        assert!(
            processing.contains("date_bin(INTERVAL '10000 milliseconds', window_time"),
            "{processing}"
        );
    }

    #[test]
    fn bad_windows_are_refused() {
        for sql in [
            "SELECT * FROM TUMBLE(bid, date_time)",
            "SELECT * FROM TUMBLE(bid, date_time, 10)",
            "SELECT * FROM HOP(bid, date_time, INTERVAL '3' SECOND, INTERVAL '10' SECOND)",
            "SELECT * FROM TUMBLE(bid, date_time, INTERVAL '1' DAY)",
            "SELECT * FROM HOP(bid, date_time, INTERVAL '1' SECOND, INTERVAL '100000000' SECOND)",
        ] {
            assert!(matches!(rewritten(sql), Err(Error::User { .. })), "{sql}");
        }
        assert_eq!(
            rewritten("SELECT * FROM bid").unwrap(),
            "SELECT * FROM bid",
            "other tables are left alone"
        );
    }
}
