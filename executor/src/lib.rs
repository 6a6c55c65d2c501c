//! Runtime of weir.
//!
//! - [`batch`]: DataFusion [`TableProvider`]s over the durable tables of
//!   `weir-storage`, through which SELECT reads and INSERT, UPDATE and
//!   DELETE write (DESIGN §7).
//! - [`message`]: what streaming operators exchange: chunks of changed
//!   rows, barriers that cut the stream into epochs, watermarks.
//! - [`operator`] and [`operators`]: the operator trait, and one file per
//!   operator.
//! - [`state`]: keyed operator state over a `StateStore`, written per epoch.
//!
//! [`TableProvider`]: datafusion::catalog::TableProvider

pub mod batch;
pub mod message;
pub mod operator;
pub mod operators;
pub mod state;

pub use batch::StoredTable;
