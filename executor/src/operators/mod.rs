//! Streaming operators, one per file. Each module's doc states the
//! operator's state tables and how it treats retractions.

mod filter;
mod generated_source;
mod hash_agg;
mod hash_join;
mod materialize;
mod partitions;
mod project;
mod session_window;
mod table_source;
mod top_n;
mod unary;
mod union;
mod view_source;
mod watermark_filter;

pub use filter::FilterOperator;
pub(crate) use filter::filter_chunk;
pub use generated_source::GeneratedSourceOperator;
pub use hash_agg::HashAggOperator;
pub use hash_join::{HashJoinOperator, JoinSide, TimeBand};
pub use materialize::{MaterializeOperator, Publication, view_table};
pub use project::ProjectOperator;
pub use session_window::{SessionBound, SessionWindowOperator, session_bounds};
pub use table_source::{ROW_ID_COLUMN, TableSourceOperator};
pub use top_n::{Limit, TopNOperator};
pub use union::UnionOperator;
pub use view_source::ViewSourceOperator;
pub use watermark_filter::WatermarkFilterOperator;

#[cfg(test)]
mod barriers;
#[cfg(test)]
pub(crate) mod testing;
