//! The weir server: Postgres wire protocol (pgwire) in front of a weir
//! database.
//!
//! Every connection gets its own [`connection::Connection`] — a session
//! with its own parameters and DataFusion context — over the one shared
//! [`weir_planner::Database`]. Statements arrive through the simple or the
//! extended query protocol and take the same path: parse, prepare, execute,
//! encode rows with `arrow-pg`. Errors become ErrorResponses with a SQLSTATE
//! ([`errors`]); a broken frame ends only its own connection.

pub mod bench;
mod cancel;
mod checkpoint_bench;
pub mod config;
mod connection;
mod errors;
mod nexmark_bench;
mod rows;
mod savepoint_bench;
mod server;
mod session;
mod startup;
mod view_bench;

pub use config::Config;
pub use server::{RunningServer, shutdown_signal};
