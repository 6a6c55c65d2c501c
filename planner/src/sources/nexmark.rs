//! `connector = 'nexmark'`: Nexmark's three streams as relations `person`,
//! `auction` and `bid`; with `table = 'bid'` (or `person`, `auction`) the
//! source is that one stream, under the source's own name. Options: `seed`,
//! `event_rate` (events per second of event time), `max_events` (a bounded
//! run, which batch queries can also read).

use std::sync::Arc;

use datafusion::sql::sqlparser::ast::CreateTable;
use weir_executor::generated::GeneratedRows;
use weir_executor::nexmark::{NexmarkConfig, NexmarkRows, Stream};

use crate::options::{WithOptions, invalid};
use crate::{Error, Result};

/// The streams a nexmark source named `name` provides, by relation name.
pub(super) fn streams(
    name: &str,
    create: &CreateTable,
    mut options: WithOptions,
) -> Result<Vec<(String, Arc<dyn GeneratedRows>)>> {
    if !create.columns.is_empty() || !create.constraints.is_empty() {
        return Err(Error::not_supported(
            "the nexmark connector defines its own columns",
        ));
    }
    let table = options
        .take("table")
        .map(|text| {
            Stream::from_name(&text).ok_or_else(|| {
                invalid(format!(
                    "option table: \"{text}\" is not a nexmark stream (person, auction, bid)"
                ))
            })
        })
        .transpose()?;
    let defaults = NexmarkConfig::default();
    let config = NexmarkConfig {
        seed: options.take_number("seed", 0)?.unwrap_or(defaults.seed),
        event_rate: options
            .take_number("event_rate", 1)?
            .unwrap_or(defaults.event_rate),
        max_events: options.take_number("max_events", 0)?,
    };
    options.finish("connector 'nexmark'")?;
    let rows = |stream| Arc::new(NexmarkRows { config, stream }) as Arc<dyn GeneratedRows>;
    Ok(match table {
        Some(stream) => vec![(name.to_string(), rows(stream))],
        None => Stream::ALL
            .into_iter()
            .map(|s| (s.name().to_string(), rows(s)))
            .collect(),
    })
}
