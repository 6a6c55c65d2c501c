//! Streaming operators, one per file. Each module's doc states the
//! operator's state tables and how it treats retractions.

mod filter;
mod materialize;
mod project;
mod table_source;

pub use filter::FilterOperator;
pub use materialize::MaterializeOperator;
pub use project::ProjectOperator;
pub use table_source::TableSourceOperator;

#[cfg(test)]
mod barriers;
#[cfg(test)]
pub(crate) mod testing;
