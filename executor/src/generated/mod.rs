//! Streams weir generates itself: Nexmark's events and `datagen` rows.
//!
//! A generated stream is a pure function of an offset: the rows at offsets
//! `a..b` are the same whenever they are asked for. So a source's position
//! is one number, checkpointed at each barrier, and a restored source
//! regenerates exactly what followed it; a bounded run can also be read in
//! batch, to check a view against DataFusion's answer over the same rows.
//!
//! - [`GeneratedRows`]: what a source operator and a batch scan need of a
//!   generator.
//! - [`Pace`]: when offsets fall due in wall-clock time, for generators
//!   that follow the clock rather than run as fast as they are pulled.
//! - [`datagen`]: rows from per-column generators.

pub mod datagen;

use std::fmt;
use std::ops::Range;
use std::time::Duration;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::error::Result;

/// A replayable stream of rows, addressed by offset.
pub trait GeneratedRows: fmt::Debug + Send + Sync {
    /// Its visible columns (the hidden row id is the offset).
    fn schema(&self) -> &SchemaRef;

    /// Its rows among offsets `offsets`, in order, with each row's offset.
    /// An offset may hold no row of this stream (Nexmark's three streams
    /// share one event sequence).
    fn rows(&self, offsets: Range<u64>) -> Result<(RecordBatch, Vec<u64>)>;

    /// Where a bounded run ends: the first offset it never reaches.
    fn end(&self) -> Option<u64>;

    /// How far among `wanted` rows exist yet: at least `wanted.start`, at
    /// most `wanted.end`. A generator has them all; a stream that grows
    /// (new files) may have fewer.
    fn available(&self, wanted: Range<u64>) -> Result<u64> {
        Ok(wanted.end)
    }

    /// How long to wait before asking again when no row was available.
    fn recheck_after(&self) -> Duration {
        Duration::from_secs(1)
    }

    /// When offsets fall due; `None`: as fast as they are pulled.
    fn pace(&self) -> Option<Pace> {
        None
    }

    /// The operator's name in EXPLAIN.
    fn operator_name(&self) -> &'static str;
}

/// Offsets falling due at a fixed rate from a start instant: offset `n` is
/// due `n / per_second` seconds after `start_nanos` (since the epoch).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pace {
    pub start_nanos: i64,
    pub per_second: u64,
}

const NANOS_PER_SECOND: i128 = 1_000_000_000;

impl Pace {
    /// When offset `n` falls due, in nanoseconds since the epoch.
    pub fn due_at(&self, n: u64) -> i64 {
        let after = i128::from(n) * NANOS_PER_SECOND / i128::from(self.per_second.max(1));
        (i128::from(self.start_nanos) + after).min(i128::from(i64::MAX)) as i64
    }

    /// How many offsets are due at `now_nanos`: the first not yet due.
    pub fn due_by(&self, now_nanos: i64) -> u64 {
        if now_nanos < self.start_nanos {
            return 0;
        }
        let elapsed = i128::from(now_nanos) - i128::from(self.start_nanos);
        let due = elapsed * i128::from(self.per_second.max(1)) / NANOS_PER_SECOND + 1;
        due.min(i128::from(u64::MAX)) as u64
    }
}

/// Wall-clock time, in nanoseconds since the epoch: what a [`Pace`] is
/// measured against.
pub fn now_nanos() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

/// SplitMix64's output function: a well-mixed 64-bit value from any input.
pub(crate) fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_offset_is_due_once_its_instant_has_come() {
        let pace = Pace {
            start_nanos: 1_000,
            per_second: 4,
        };
        assert_eq!(pace.due_at(0), 1_000);
        assert_eq!(pace.due_at(4), 1_000_001_000);
        assert_eq!(pace.due_by(999), 0);
        assert_eq!(pace.due_by(1_000), 1);
        assert_eq!(pace.due_by(250_000_999), 1);
        assert_eq!(pace.due_by(250_001_000), 2);
        for n in [0, 1, 7, 1_000_003] {
            assert_eq!(pace.due_by(pace.due_at(n)), n + 1, "offset {n}");
            assert_eq!(pace.due_by(pace.due_at(n) - 1), n, "offset {n}");
        }
    }
}
