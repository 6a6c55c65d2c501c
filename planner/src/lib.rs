//! Statement parsing, the catalog and query planning of weir.
//!
//! SQL text is parsed by sqlparser (Postgres dialect, with psql/driver
//! compatibility rewrites and weir's own syntax layered on top, see
//! [`parser`]). DDL is handled here against the durable [`catalog`];
//! queries and INSERT/UPDATE/DELETE are planned by DataFusion, with the
//! catalog as its schema provider, and executed over stored tables.

mod array_casts;
mod array_input;
mod array_literals;
mod array_subquery;
mod array_subscripts;
mod as_of_savepoint;
mod attribute_typmods;
mod backends;
mod bytea_input;
pub mod catalog;
mod catalog_arrays;
mod catalog_lookups;
mod catalog_regclass;
mod catalog_rows;
mod catalog_subqueries;
mod catalog_texts;
mod char_type;
mod column_names;
mod commands;
mod constants;
mod database;
mod ddl;
mod empty_catalogs;
mod error;
mod file_roots;
mod format_type;
mod function_call;
mod function_signatures;
mod functions;
mod interval_input;
mod json_build_object;
mod json_operators;
mod name_subscripts;
mod namespaces;
mod nesting;
mod oid_columns;
mod option_arrays;
mod options;
pub mod parser;
mod pg_casts;
mod pg_catalog_schema;
mod pg_functions;
mod pg_keys;
mod pg_roles;
pub mod pg_text;
mod proc_columns;
mod regtype_text;
#[cfg(test)]
mod rewrite_tests;
pub mod roles;
mod row_subqueries;
mod savepoint_registry;
mod series_tables;
mod session_windows;
mod sources;
mod statement;
pub mod stream;
mod subqueries;
mod system_tables;
mod text_cast;
mod tokens;
mod typed_text_functions;
mod types;
mod udf_shape;
mod views;
mod watermarks;
mod weir_extension;
mod windows;

pub use backends::{BackendEntry, BackendStart, Backends, RunningQuery, TransactionStatus};
pub use column_names::DISPLAY_NAME_KEY;
pub use database::{CopyFormat, CopyIn, Database, InBlock, Outcome, Prepared};
pub use error::{Error, Result, io_code};
pub use nesting::MAX_NESTING;
pub use oid_columns::described_schema;
pub use pg_functions::{SERVER_VERSION, SERVER_VERSION_NUM};
pub use statement::{IsolationLevel, SessionStatement, TransactionModes};
pub use watermarks::WatermarkDecl;
pub use weir_executor::batch::typed_text::PG_TYPE_KEY;
pub use weir_executor::checkpoint::{CheckpointSettings, RestartStrategy, parse_duration};
