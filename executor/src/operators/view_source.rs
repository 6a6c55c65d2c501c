//! View source: another view's changes, as its materialize sends them.
//!
//! No state. The upstream view's materialize sends, at the barrier that
//! subscribed this source, the view's rows as of that barrier (as inserts)
//! and the barrier, then every chunk and barrier after it: a consistent
//! backfill followed by exactly the changes since.

use tokio::sync::mpsc;

use crate::message::Message;
use crate::operator::{BoxedMessageStream, Operator, OperatorInfo};

pub struct ViewSourceOperator {
    info: OperatorInfo,
    receiver: mpsc::Receiver<Message>,
}

impl ViewSourceOperator {
    /// `info` is the upstream view's output as the planner knows it.
    pub fn new(info: OperatorInfo, receiver: mpsc::Receiver<Message>) -> Self {
        Self { info, receiver }
    }
}

impl Operator for ViewSourceOperator {
    fn info(&self) -> &OperatorInfo {
        &self.info
    }

    fn execute(self: Box<Self>) -> BoxedMessageStream {
        Box::pin(futures::stream::unfold(
            self.receiver,
            |mut receiver| async move {
                let message = receiver.recv().await?;
                Some((Ok(message), receiver))
            },
        ))
    }
}
