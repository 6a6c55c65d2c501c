//! Runtime of weir.
//!
//! Today this is the batch path: DataFusion [`TableProvider`]s over the
//! durable tables of `weir-storage`, through which SELECT reads and INSERT,
//! UPDATE and DELETE write (DESIGN §7). Streaming operators join it here.
//!
//! [`TableProvider`]: datafusion::catalog::TableProvider

pub mod batch;

pub use batch::StoredTable;
