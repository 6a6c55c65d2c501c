//! The operator trait: one method that turns an operator into a stream of
//! messages. What an operator is — its output schema, stream key and
//! identity — is plain data in [`OperatorInfo`] beside it.

use std::pin::Pin;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::error::Result;
use futures::Stream;

use crate::message::Message;

pub type BoxedMessageStream = Pin<Box<dyn Stream<Item = Result<Message>> + Send>>;
pub type BoxedOperator = Box<dyn Operator>;

/// What downstream needs to know of an operator's output.
#[derive(Debug, Clone)]
pub struct OperatorInfo {
    /// Unique and deterministic within the graph (view name + position).
    pub identity: String,
    pub schema: SchemaRef,
    /// Columns that identify a row for retraction.
    pub stream_key: Vec<usize>,
    /// The output carries only inserts.
    pub append_only: bool,
}

/// A streaming operator.
///
/// The stream it becomes ends after forwarding a barrier with a stop
/// mutation, or with the first error. Dropping the stream cancels the
/// operator; state not committed at a barrier is discarded.
pub trait Operator: Send + 'static {
    fn info(&self) -> &OperatorInfo;

    fn execute(self: Box<Self>) -> BoxedMessageStream;
}
