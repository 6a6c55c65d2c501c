//! Streaming plans: from a view's SQL to the operator graph that keeps it
//! up to date (DESIGN §3).
//!
//! The query is planned and optimized by DataFusion like any SELECT; the
//! [`builder`] then maps each logical node to an operator, and refuses
//! (SQLSTATE 0A000, naming the construct) what it cannot maintain
//! incrementally. The same builder, run with throwaway state, gives
//! `EXPLAIN CREATE MATERIALIZED VIEW` its text.

pub mod builder;
pub mod explain;
mod row_number;
mod session_window;
mod time_band;

pub use builder::{Built, GraphBuilder, StoreOpener, describe_key};
pub use explain::ExplainNode;
