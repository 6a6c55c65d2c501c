//! The Nexmark benchmark's events (NEXMARK.md): an online auction's people,
//! auctions and bids, generated deterministically.
//!
//! Every event is a pure function of (seed, event number), so a source can
//! start at any event number and produce exactly what it produced before:
//! its checkpointed offset is the next event number. [`event`] builds one
//! event; [`Stream::batch`] builds the rows of one stream over a range of
//! event numbers as an Arrow batch; [`NexmarkRows`] is one stream as a
//! [`GeneratedRows`].

mod columns;
mod generator;

use std::ops::Range;
use std::sync::{Arc, OnceLock};

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::error::Result;

use crate::generated::GeneratedRows;

pub use generator::{Auction, Bid, Event, Person, event};

/// 2015-07-15 00:00:00 UTC, where event time starts: runs are reproducible.
pub const BASE_TIME_MS: i64 = 1_436_918_400_000;

/// How events are generated.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NexmarkConfig {
    pub seed: u64,
    /// Events per second of event time: event n happens `n / event_rate`
    /// seconds after [`BASE_TIME_MS`].
    pub event_rate: u64,
    /// Where a bounded run stops; `None`: never.
    pub max_events: Option<u64>,
}

impl Default for NexmarkConfig {
    fn default() -> Self {
        Self {
            seed: 42,
            event_rate: 10_000_000,
            max_events: None,
        }
    }
}

impl NexmarkConfig {
    /// Nanoseconds of event time between two events.
    pub fn inter_event_nanos(&self) -> i64 {
        (1_000_000_000 / self.event_rate.max(1)).max(1) as i64
    }

    /// Event time of event `n`, in nanoseconds since the epoch.
    pub fn event_time(&self, n: u64) -> i64 {
        BASE_TIME_MS * 1_000_000 + n as i64 * self.inter_event_nanos()
    }
}

/// One of Nexmark's three streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stream {
    Person,
    Auction,
    Bid,
}

impl Stream {
    pub const ALL: [Stream; 3] = [Stream::Person, Stream::Auction, Stream::Bid];

    pub fn name(self) -> &'static str {
        match self {
            Stream::Person => "person",
            Stream::Auction => "auction",
            Stream::Bid => "bid",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|s| s.name().eq_ignore_ascii_case(name.trim()))
    }

    /// The stream's columns (NEXMARK.md), built once.
    pub fn schema(self) -> &'static SchemaRef {
        static SCHEMAS: OnceLock<[SchemaRef; 3]> = OnceLock::new();
        let schemas = SCHEMAS.get_or_init(|| Stream::ALL.map(Stream::build_schema));
        // `ALL` lists the streams in declaration order.
        &schemas[self as usize]
    }

    fn build_schema(self) -> SchemaRef {
        let int = |name: &str| Field::new(name, DataType::Int64, false);
        let text = |name: &str| Field::new(name, DataType::Utf8, false);
        let time =
            |name: &str| Field::new(name, DataType::Timestamp(TimeUnit::Nanosecond, None), false);
        let fields = match self {
            Stream::Person => vec![
                int("id"),
                text("name"),
                text("email_address"),
                text("credit_card"),
                text("city"),
                text("state"),
                time("date_time"),
                text("extra"),
            ],
            Stream::Auction => vec![
                int("id"),
                text("item_name"),
                text("description"),
                int("initial_bid"),
                int("reserve"),
                time("date_time"),
                time("expires"),
                int("seller"),
                int("category"),
                text("extra"),
            ],
            Stream::Bid => vec![
                int("auction"),
                int("bidder"),
                int("price"),
                text("channel"),
                text("url"),
                time("date_time"),
                text("extra"),
            ],
        };
        Arc::new(Schema::new(fields))
    }

    /// Whether event number `n` belongs to this stream.
    pub fn holds(self, n: u64) -> bool {
        generator::stream_of(n) == self
    }
}

/// One Nexmark stream of a configured run: offsets are event numbers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NexmarkRows {
    pub config: NexmarkConfig,
    pub stream: Stream,
}

impl GeneratedRows for NexmarkRows {
    fn schema(&self) -> &SchemaRef {
        self.stream.schema()
    }

    fn rows(&self, offsets: Range<u64>) -> Result<(RecordBatch, Vec<u64>)> {
        self.stream.batch(&self.config, offsets)
    }

    fn end(&self) -> Option<u64> {
        self.config.max_events
    }

    fn operator_name(&self) -> &'static str {
        "NexmarkSource"
    }
}
