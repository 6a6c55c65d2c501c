//! `CREATE SOURCE`: streams weir generates itself, replayable from any
//! offset.
//!
//! - [`nexmark`]: Nexmark's person, auction and bid streams.
//! - [`datagen`]: rows of declared columns, one generator per column.
//!
//! Every source takes its options in `WITH (connector = '...', ...)`; an
//! option its connector does not know is refused.

mod datagen;
mod nexmark;

use std::sync::Arc;

use datafusion::execution::SessionState;
use datafusion::sql::sqlparser::ast::{CreateTable, CreateTableOptions};
use weir_executor::generated::GeneratedRows;

use crate::ddl::table_name;
use crate::options::{WithOptions, invalid};
use crate::watermarks::WatermarkDecl;
use crate::{Error, Result};

/// What a `CREATE SOURCE` declares.
#[derive(Debug, Clone)]
pub struct SourceSpec {
    pub name: String,
    /// The relations it provides, by name.
    pub streams: Vec<(String, Arc<dyn GeneratedRows>)>,
    /// `WATERMARK FOR`, on every stream that has its column.
    pub watermark: Option<WatermarkDecl>,
}

/// Checks a `CREATE SOURCE` (parsed as `CREATE TABLE`) and derives what it
/// generates.
pub fn source_spec(create: &CreateTable) -> Result<SourceSpec> {
    let name = table_name(&create.name)?;
    let mut options = WithOptions::parse(&create.table_options, "source")?;
    let connector = options
        .take("connector")
        .ok_or_else(|| invalid("a source needs WITH (connector = '...')".into()))?
        .to_ascii_lowercase();
    let streams = match connector.as_str() {
        "nexmark" => nexmark::streams(&name, create, options)?,
        "datagen" => vec![(name.clone(), datagen::rows(create, options)?)],
        other => {
            return Err(Error::not_supported(format!(
                "connector '{other}' is not supported; weir generates 'nexmark' and 'datagen'"
            )));
        }
    };
    Ok(SourceSpec {
        name,
        streams,
        watermark: None,
    })
}

/// Fixes what a source left to the moment of its creation, so that every
/// start plans it the same: a `datagen` source's `start_time`.
pub fn pin_creation_time(create: &mut CreateTable, now_nanos: i64) {
    if let CreateTableOptions::With(options) = &mut create.table_options
        && let Some(option) = datagen::start_time_option(options, now_nanos)
    {
        options.push(option);
    }
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
    for (_, rows) in &spec.streams {
        if rows.schema().index_of(&watermark.column).is_ok() {
            watermark.plan(state, rows.schema())?;
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

    use weir_executor::nexmark::{NexmarkConfig, NexmarkRows, Stream};

    use super::*;
    use crate::parser::StatementParser;

    /// 2026-01-01 00:00:00 UTC.
    const NEW_YEAR_NANOS: i64 = 1_767_225_600_000_000_000;

    fn spec(sql: &str) -> Result<SourceSpec> {
        let mut parsed = StatementParser::default().parse(sql)?;
        let Statement::CreateTable(create) = &mut parsed[0].statement else {
            panic!("not CREATE TABLE: {sql}");
        };
        pin_creation_time(create, NEW_YEAR_NANOS);
        source_spec(create)
    }

    #[test]
    fn datagen_makes_the_declared_columns_from_the_creation_time_on() {
        let sql = "CREATE SOURCE clicks (user_id BIGINT, url VARCHAR, ts TIMESTAMP) \
                   WITH (connector = 'datagen', rows_per_second = '10', \
                   'fields.user_id.max' = '1000', 'fields.url.length' = 3)";
        let mut parsed = StatementParser::default().parse(sql).unwrap();
        let Statement::CreateTable(create) = &mut parsed[0].statement else {
            panic!("not CREATE TABLE");
        };
        pin_creation_time(create, NEW_YEAR_NANOS);
        let stored = create.to_string();
        assert!(
            stored.contains("start_time = '2026-01-01 00:00:00'"),
            "{stored}"
        );
        // The stored statement plans the same at every start.
        let again = StatementParser::default().parse(&stored).unwrap();
        let Statement::CreateTable(create) = &again[0].statement else {
            panic!("not CREATE TABLE");
        };
        let clicks = source_spec(create).unwrap();
        let (name, rows) = &clicks.streams[0];
        assert_eq!(name, "clicks");
        assert_eq!(rows.end(), None);
        let (batch, _) = rows.rows(0..20).unwrap();
        let text = datafusion::arrow::util::pretty::pretty_format_batches(&[batch.slice(9, 2)])
            .unwrap()
            .to_string();
        assert!(text.contains("2026-01-01T00:00:00.900"), "{text}");
        assert!(text.contains("2026-01-01T00:00:01 "), "{text}");
    }

    #[test]
    fn one_stream_or_all_three() {
        let bid = spec(
            "CREATE SOURCE bids WITH (connector = 'nexmark', table = 'bid', seed = '7', \
             event_rate = 1000, max_events = '50000')",
        )
        .unwrap();
        let expected = NexmarkRows {
            config: NexmarkConfig {
                seed: 7,
                event_rate: 1000,
                max_events: Some(50_000),
            },
            stream: Stream::Bid,
        };
        assert_eq!(bid.streams.len(), 1);
        assert_eq!(bid.streams[0].0, "bids");
        assert_eq!(format!("{:?}", bid.streams[0].1), format!("{expected:?}"));
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
            ("CREATE SOURCE s WITH (connector = 'datagen')", "42P16"),
            (
                "CREATE SOURCE s (a INT) WITH (connector = 'datagen', 'fields.b.max' = 3)",
                "42703",
            ),
            (
                "CREATE SOURCE s (a INT) WITH (connector = 'datagen', 'fields.a.max' = 'x')",
                "22023",
            ),
            (
                "CREATE SOURCE s (a SMALLINT) WITH (connector = 'datagen', 'fields.a.max' = 40000)",
                "22023",
            ),
            (
                "CREATE SOURCE s (a INT) WITH (connector = 'datagen', 'fields.a.min' = 5, \
                 'fields.a.max' = 4)",
                "22023",
            ),
            (
                "CREATE SOURCE s (a INT) WITH (connector = 'datagen', 'fields.a.length' = 5)",
                "22023",
            ),
            (
                "CREATE SOURCE s (a BOOLEAN) WITH (connector = 'datagen', 'fields.a.kind' = 'sequence')",
                "22023",
            ),
            (
                "CREATE SOURCE s (a BYTEA) WITH (connector = 'datagen')",
                "0A000",
            ),
            (
                "CREATE SOURCE s (a INT) WITH (connector = 'datagen', start_time = 'soon')",
                "22023",
            ),
            (
                "CREATE SOURCE s (a INT) WITH (connector = 'datagen', rows_per_second = 0)",
                "22023",
            ),
            (
                "CREATE SOURCE s (a INT) WITH (connector = 'datagen', event_rate = 5)",
                "22023",
            ),
            (
                "CREATE SOURCE s (a INT PRIMARY KEY) WITH (connector = 'datagen')",
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
