//! `CREATE SOURCE`: streams weir generates itself, replayable from any
//! offset.
//!
//! `connector = 'nexmark'` gives Nexmark's three streams as relations
//! `person`, `auction` and `bid`; with `table = 'bid'` (or `person`,
//! `auction`) the source is that one stream, under the source's own name.
//! Options: `seed`, `event_rate` (events per second of event time),
//! `max_events` (a bounded run, which batch queries can also read).

use datafusion::execution::SessionState;
use datafusion::sql::sqlparser::ast::{
    CreateTable, CreateTableOptions, Expr, SqlOption, Value, ValueWithSpan,
};
use weir_executor::nexmark::{NexmarkConfig, Stream};

use crate::ddl::{normalize, table_name};
use crate::watermarks::WatermarkDecl;
use crate::{Error, Result};

/// What a `CREATE SOURCE` declares.
#[derive(Debug, Clone)]
pub struct SourceSpec {
    pub name: String,
    pub config: NexmarkConfig,
    /// The relations it provides, by name.
    pub streams: Vec<(String, Stream)>,
    /// `WATERMARK FOR`, on every stream that has its column.
    pub watermark: Option<WatermarkDecl>,
}

fn invalid(message: String) -> Error {
    Error::user("22023", message)
}

/// An option's value as text: a string or a number.
fn option_text(value: &Expr) -> Option<String> {
    match value {
        Expr::Value(ValueWithSpan {
            value: Value::SingleQuotedString(text) | Value::Number(text, _),
            ..
        }) => Some(text.clone()),
        _ => None,
    }
}

/// Checks a `CREATE SOURCE` (parsed as `CREATE TABLE`) and derives what it
/// generates.
pub fn source_spec(create: &CreateTable) -> Result<SourceSpec> {
    let name = table_name(&create.name)?;
    let options = match &create.table_options {
        CreateTableOptions::With(options) => options.as_slice(),
        CreateTableOptions::None => &[],
        _ => return Err(Error::not_supported("source options go in WITH (...)")),
    };
    let mut connector = None;
    let mut table = None;
    let mut config = NexmarkConfig::default();
    for option in options {
        let SqlOption::KeyValue { key, value } = option else {
            return Err(Error::not_supported(format!(
                "source option {option} is not supported"
            )));
        };
        let key = normalize(key);
        let text = option_text(value)
            .ok_or_else(|| invalid(format!("option {key}: expected a string, not {value}")))?;
        let number = || {
            text.trim()
                .parse::<u64>()
                .map_err(|_| invalid(format!("option {key}: \"{text}\" is not a whole number")))
        };
        match key.as_str() {
            "connector" => connector = Some(text.to_ascii_lowercase()),
            "table" => {
                table = Some(Stream::from_name(&text).ok_or_else(|| {
                    invalid(format!(
                        "option table: \"{text}\" is not a nexmark stream (person, auction, bid)"
                    ))
                })?)
            }
            "seed" => config.seed = number()?,
            "event_rate" => {
                config.event_rate = number()?;
                if config.event_rate == 0 {
                    return Err(invalid("option event_rate: must be at least 1".into()));
                }
            }
            "max_events" => config.max_events = Some(number()?),
            _ => return Err(invalid(format!("unrecognized source option \"{key}\""))),
        }
    }
    match connector.as_deref() {
        Some("nexmark") => {}
        Some(other) => {
            return Err(Error::not_supported(format!(
                "connector '{other}' is not supported; weir generates 'nexmark'"
            )));
        }
        None => return Err(invalid("a source needs WITH (connector = '...')".into())),
    }
    if !create.columns.is_empty() || !create.constraints.is_empty() {
        return Err(Error::not_supported(
            "the nexmark connector defines its own columns",
        ));
    }
    let streams = match table {
        Some(stream) => vec![(name.clone(), stream)],
        None => Stream::ALL
            .into_iter()
            .map(|s| (s.name().to_string(), s))
            .collect(),
    };
    Ok(SourceSpec {
        name,
        config,
        streams,
        watermark: None,
    })
}

/// Checks a source's `WATERMARK FOR` on each of its streams that has the
/// column; at least one must.
pub fn source_watermark(
    state: &SessionState,
    spec: &SourceSpec,
    watermark: Option<WatermarkDecl>,
) -> Result<Option<WatermarkDecl>> {
    let Some(watermark) = watermark else {
        return Ok(None);
    };
    let mut found = false;
    for (_, stream) in &spec.streams {
        if stream.schema().index_of(&watermark.column).is_ok() {
            watermark.plan(state, stream.schema())?;
            found = true;
        }
    }
    if !found {
        return Err(Error::user(
            "42703",
            format!(
                "watermark column \"{}\" is not a column of source \"{}\"",
                watermark.column, spec.name
            ),
        ));
    }
    Ok(Some(watermark))
}

#[cfg(test)]
mod tests {
    use datafusion::sql::sqlparser::ast::Statement;

    use super::*;
    use crate::parser::StatementParser;

    fn spec(sql: &str) -> Result<SourceSpec> {
        let parsed = StatementParser::default().parse(sql)?;
        let Statement::CreateTable(create) = &parsed[0].statement else {
            panic!("not CREATE TABLE: {sql}");
        };
        source_spec(create)
    }

    #[test]
    fn one_stream_or_all_three() {
        let bid = spec(
            "CREATE SOURCE bids WITH (connector = 'nexmark', table = 'bid', seed = '7', \
             event_rate = 1000, max_events = '50000')",
        )
        .unwrap();
        assert_eq!(bid.streams, vec![("bids".to_string(), Stream::Bid)]);
        assert_eq!(
            bid.config,
            NexmarkConfig {
                seed: 7,
                event_rate: 1000,
                max_events: Some(50_000)
            }
        );
        let all = spec("CREATE SOURCE nexmark WITH (connector = 'nexmark')").unwrap();
        let names: Vec<&str> = all.streams.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["person", "auction", "bid"]);
    }

    #[test]
    fn bad_options_are_refused_with_their_sqlstate() {
        for (sql, code) in [
            ("CREATE SOURCE s WITH (connector = 'kafka')", "0A000"),
            ("CREATE SOURCE s WITH (table = 'bid')", "22023"),
            (
                "CREATE SOURCE s WITH (connector = 'nexmark', table = 'bids')",
                "22023",
            ),
            (
                "CREATE SOURCE s WITH (connector = 'nexmark', seed = 'x')",
                "22023",
            ),
            (
                "CREATE SOURCE s WITH (connector = 'nexmark', event_rate = 0)",
                "22023",
            ),
            (
                "CREATE SOURCE s WITH (connector = 'nexmark', colour = 'red')",
                "22023",
            ),
            (
                "CREATE SOURCE s (a INT) WITH (connector = 'nexmark')",
                "0A000",
            ),
        ] {
            let err = spec(sql).unwrap_err();
            let got = match &err {
                Error::User { code, .. } => *code,
                Error::NotSupported(_) => "0A000",
                _ => "other",
            };
            assert_eq!(got, code, "{sql}: {err}");
        }
    }
}
