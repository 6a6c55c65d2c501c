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
//! - [`runtime`]: running views, barrier injection, `FLUSH`, and the
//!   per-epoch snapshots SELECT reads views at.
//! - [`checkpoint`]: the checkpoint coordinator, state freezing and
//!   upload, checkpoint history and recovery.
//! - [`generated`] and [`nexmark`]: streams weir generates itself, as
//!   sources replayable from any offset; [`files`]: files in object
//!   storage, as the same kind of source.
//! - [`json`]: JSON text parsed, normalized and looked into, for `json`
//!   and `jsonb` columns.
//! - [`aggregate`] and [`align`]: aggregate calls with retraction, and
//!   barrier alignment of multi-input operators.
//!
//! [`TableProvider`]: datafusion::catalog::TableProvider

pub mod aggregate;
pub mod align;
pub mod batch;
pub mod checkpoint;
pub mod files;
pub mod generated;
pub mod json;
pub mod message;
pub mod nexmark;
pub mod operator;
pub mod operators;
pub mod runtime;
pub mod state;
pub mod watermark;

pub use batch::{Committing, StoredTable, Transaction};
