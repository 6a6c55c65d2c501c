//! Keyed operator state.
//!
//! Operators declare their state as [`StateTable`]s and reach state only
//! through them. A table's rows live in a `StateStore` under
//! `table id | key group | memcomparable key`; the key group
//! (hash of the key, modulo the maximum parallelism) lets state be split
//! among parallel instances and re-split on restore.

mod cache;
mod state_table;

pub use state_table::{Lookup, StateTable, StateTableId, key_group};

/// Key groups per state table (Flink's `max_parallelism`): the most
/// instances an operator's state can ever be split into.
pub const MAX_PARALLELISM: u16 = 128;

#[cfg(test)]
mod tests;
