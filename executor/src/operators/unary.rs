//! The loop shared by single-input operators that turn each input chunk
//! into at most one output chunk and act on barriers.

use datafusion::error::Result;
use futures::{StreamExt, stream};

use crate::message::{Barrier, Message, StreamChunk};
use crate::operator::BoxedMessageStream;

pub(crate) trait ChunkHandler: Send + 'static {
    /// Output before any input: e.g. the row of a global aggregate.
    fn start(&mut self) -> Result<Option<StreamChunk>> {
        Ok(None)
    }

    fn chunk(&mut self, chunk: StreamChunk) -> Result<Option<StreamChunk>>;

    /// Called before the barrier is forwarded: commit the epoch's state.
    fn barrier(&mut self, barrier: &Barrier) -> Result<()>;
}

/// Runs `handler` over `input`; ends with the input or the first error.
pub(crate) fn run_handler(
    input: BoxedMessageStream,
    handler: impl ChunkHandler,
) -> BoxedMessageStream {
    Box::pin(stream::unfold(
        Some((input, handler, false)),
        |state| async move {
            let (mut input, mut handler, started) = state?;
            if !started {
                match handler.start() {
                    Ok(Some(chunk)) => {
                        return Some((Ok(Message::Chunk(chunk)), Some((input, handler, true))));
                    }
                    Ok(None) => {}
                    Err(e) => return Some((Err(e), None)),
                }
            }
            loop {
                let output = match input.next().await? {
                    Ok(Message::Chunk(chunk)) => match handler.chunk(chunk) {
                        Ok(Some(chunk)) if !chunk.is_empty() => Ok(Message::Chunk(chunk)),
                        Ok(_) => continue,
                        Err(e) => Err(e),
                    },
                    Ok(Message::Barrier(barrier)) => handler
                        .barrier(&barrier)
                        .map(|()| Message::Barrier(barrier)),
                    other => other,
                };
                let next = output.is_ok().then_some((input, handler, true));
                return Some((output, next));
            }
        },
    ))
}
