//! Key layout of the table store. Every key starts with a one-byte space tag,
//! then the table id (big-endian, so a table's keys are contiguous):
//!
//! | space   | key                                   | value                         |
//! |---------|---------------------------------------|-------------------------------|
//! | catalog | `00`                                  | catalog document (opaque)     |
//! | meta    | `01 table`                            | next log offset, log start    |
//! | log     | `02 table first-offset`               | one [`crate::LogEntry`]       |
//! | row     | `03 table memcomparable-key`          | the row                       |

use crate::{LogOffset, TableId};

const CATALOG: u8 = 0x00;
const META: u8 = 0x01;
const LOG: u8 = 0x02;
const ROW: u8 = 0x03;

pub(crate) fn catalog() -> Vec<u8> {
    vec![CATALOG]
}

fn prefix(space: u8, table: TableId) -> Vec<u8> {
    let mut key = Vec::with_capacity(9);
    key.push(space);
    key.extend_from_slice(&table.0.to_be_bytes());
    key
}

pub(crate) fn meta(table: TableId) -> Vec<u8> {
    prefix(META, table)
}

pub(crate) fn log(table: TableId, first: LogOffset) -> Vec<u8> {
    let mut key = prefix(LOG, table);
    key.extend_from_slice(&first.0.to_be_bytes());
    key
}

/// The offset a log key starts at.
pub(crate) fn log_offset(key: &[u8]) -> Option<LogOffset> {
    let bytes: [u8; 8] = key.get(9..17)?.try_into().ok()?;
    Some(LogOffset(u64::from_be_bytes(bytes)))
}

pub(crate) fn row(table: TableId, row_key: &[u8]) -> Vec<u8> {
    let mut key = prefix(ROW, table);
    key.extend_from_slice(row_key);
    key
}

/// `[from, to)` covering every row key of `table`.
pub(crate) fn row_range(table: TableId) -> (Vec<u8>, Vec<u8>) {
    (prefix(ROW, table), prefix(ROW, TableId(table.0 + 1)))
}

/// `[from, to)` covering every key of every space.
pub(crate) fn all() -> (Vec<u8>, Vec<u8>) {
    (vec![CATALOG], vec![ROW + 1])
}

/// `[from, to)` covering every log key of `table`.
pub(crate) fn log_range(table: TableId) -> (Vec<u8>, Vec<u8>) {
    (prefix(LOG, table), prefix(LOG, TableId(table.0 + 1)))
}

/// What a table's meta key holds: the offset the next row gets, and the first
/// offset still in the log (everything below was truncated).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct LogBounds {
    pub start: LogOffset,
    pub end: LogOffset,
}

impl LogBounds {
    pub fn encode(&self) -> [u8; 16] {
        let mut out = [0u8; 16];
        out[..8].copy_from_slice(&self.end.0.to_be_bytes());
        out[8..].copy_from_slice(&self.start.0.to_be_bytes());
        out
    }

    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let end = u64::from_be_bytes(bytes.get(..8)?.try_into().ok()?);
        let start = u64::from_be_bytes(bytes.get(8..16)?.try_into().ok()?);
        Some(Self {
            start: LogOffset(start),
            end: LogOffset(end),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_keys_sort_by_table_then_offset() {
        let a = log(TableId(1), LogOffset(300));
        let b = log(TableId(1), LogOffset(1000));
        let c = log(TableId(2), LogOffset(0));
        assert!(a < b && b < c);
        assert_eq!(log_offset(&b), Some(LogOffset(1000)));
        let (from, to) = log_range(TableId(1));
        assert!(from <= a && b < to && c >= to);
    }

    #[test]
    fn row_keys_stay_inside_their_table_range() {
        let (from, to) = row_range(TableId(7));
        let key = row(TableId(7), &[0xff, 0xff, 0xff]);
        assert!(from <= key && key < to);
        assert!(row(TableId(8), &[]) >= to);
    }

    #[test]
    fn log_bounds_round_trip() {
        let bounds = LogBounds {
            start: LogOffset(5),
            end: LogOffset(42),
        };
        assert_eq!(LogBounds::decode(&bounds.encode()), Some(bounds));
        assert_eq!(LogBounds::decode(&[1, 2]), None);
    }
}
