//! Test helpers: a source of given messages, and running an operator to
//! the end with its output in the compact text format.

use datafusion::common::ScalarValue;
use futures::{StreamExt, stream};

use crate::message::{Barrier, BarrierKind, Epoch, Message, Mutation, Op, StreamChunk};
use crate::operator::{BoxedMessageStream, BoxedOperator, Operator, OperatorInfo};

/// Emits its messages, then stops.
pub(crate) struct MessageSource {
    info: OperatorInfo,
    messages: Vec<Message>,
}

impl Operator for MessageSource {
    fn info(&self) -> &OperatorInfo {
        &self.info
    }

    fn execute(self: Box<Self>) -> BoxedMessageStream {
        Box::pin(stream::iter(self.messages.into_iter().map(Ok)))
    }
}

pub(crate) fn chunk(types: &str, rows: &str) -> StreamChunk {
    StreamChunk::from_pretty(&format!("{types}\n{rows}")).expect("valid pretty chunk")
}

pub(crate) fn barrier(epoch: u64) -> Message {
    Message::Barrier(Barrier::new(Epoch(epoch), BarrierKind::Checkpoint))
}

pub(crate) fn stop(epoch: u64) -> Message {
    Message::Barrier(
        Barrier::new(Epoch(epoch), BarrierKind::Checkpoint).with_mutation(Mutation::Stop),
    )
}

/// A source of these messages; its schema is the first chunk's, keyed by
/// its first column.
pub(crate) fn messages(types: &str, messages: Vec<Message>) -> BoxedOperator {
    let schema = chunk(types, "").schema();
    let info = OperatorInfo {
        identity: "source".into(),
        schema,
        stream_key: vec![0],
        append_only: false,
    };
    Box::new(MessageSource { info, messages })
}

/// As [`messages`], for an input that only inserts.
pub(crate) fn append_only_messages(types: &str, messages: Vec<Message>) -> BoxedOperator {
    let schema = chunk(types, "").schema();
    let info = OperatorInfo {
        identity: "source".into(),
        schema,
        stream_key: vec![0],
        append_only: true,
    };
    Box::new(MessageSource { info, messages })
}

/// A source of one chunk, then a stopping barrier.
pub(crate) fn source(types: &str, rows: &str) -> BoxedOperator {
    messages(types, vec![Message::Chunk(chunk(types, rows)), stop(1)])
}

/// Every message the operator emits, in order.
pub(crate) async fn collect(operator: BoxedOperator) -> Vec<Message> {
    operator
        .execute()
        .map(|m| m.expect("operator failed"))
        .collect()
        .await
}

/// The rows of the chunks the operator emits, one `op v1 v2` line each.
pub(crate) async fn run(operator: BoxedOperator) -> Vec<String> {
    let mut lines = Vec::new();
    for message in collect(operator).await {
        if let Message::Chunk(chunk) = message {
            lines.extend(pretty(&chunk));
        }
    }
    lines
}

pub(crate) fn pretty(chunk: &StreamChunk) -> Vec<String> {
    (0..chunk.num_rows())
        .map(|row| {
            let op = match chunk.ops()[row] {
                Op::Insert => "+",
                Op::Delete => "-",
                Op::UpdateDelete => "U-",
                Op::UpdateInsert => "U+",
            };
            let values: Vec<String> = chunk
                .data()
                .columns()
                .iter()
                .map(|column| match ScalarValue::try_from_array(column, row) {
                    Ok(v) if v.is_null() => ".".to_string(),
                    Ok(v) => v.to_string(),
                    Err(e) => format!("<{e}>"),
                })
                .collect();
            format!("{op} {}", values.join(" "))
        })
        .collect()
}

/// Lines of a pretty text, trimmed, for comparing with [`run`].
pub(crate) fn lines(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect()
}

/// Entries in `store`, whatever their table: how much state an operator
/// left behind.
pub(crate) fn stored_entries(store: &std::sync::Arc<dyn weir_storage::StateStore>) -> usize {
    let mut count = 0;
    store
        .scan(&[], &[0xff; 16], &mut |_, _| {
            count += 1;
            Ok(true)
        })
        .expect("a readable store");
    count
}
