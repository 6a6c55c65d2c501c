//! The weir server: Postgres wire protocol (pgwire) in front of a weir
//! database.
//!
//! Every connection gets its own [`connection::Connection`] — a session
//! with its own parameters and DataFusion context — over the one shared
//! [`weir_planner::Database`]. Statements arrive through the simple or the
//! extended query protocol and take the same path: parse, prepare, execute,
//! encode rows with `arrow-pg`. Errors become ErrorResponses with a SQLSTATE
//! ([`errors`]); a broken frame ends only its own connection.

mod authentication;
pub mod bench;
mod cancel;
mod checkpoint_bench;
pub mod config;
mod connection;
mod copy_in;
mod copy_out;
mod describe;
mod errors;
mod hangup;
mod message_cap;
mod nexmark_bench;
mod oid_parameters;
mod parameters;
mod pg_binary;
mod pg_fields;
pub use weir_planner::pg_text;
mod rows;
mod savepoint_bench;
mod server;
mod session;
mod session_functions;
mod sql_prepare;
mod tls;
mod transaction_block;
mod view_bench;
mod wire;

pub use config::Config;
pub use server::{RunningServer, shutdown_signal};

/// Stack of every thread that runs statements. A statement may nest
/// [`weir_planner::MAX_NESTING`] levels deep, and parsing, planning,
/// optimizing and evaluating it each recurse once per level; these stacks
/// hold that with room to spare (they are reserved, not used, until a
/// deep statement needs them).
pub const THREAD_STACK_BYTES: usize = 64 << 20;

/// The tokio runtime weir serves on: its threads have stacks of
/// [`THREAD_STACK_BYTES`].
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_stack_size(THREAD_STACK_BYTES)
        .build()
}
