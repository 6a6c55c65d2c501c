//! The loop shared by single-input operators that turn each input message
//! into at most one output chunk and one watermark, and act on barriers.

use datafusion::error::Result;
use futures::{StreamExt, stream};

use crate::message::{Barrier, Message, StreamChunk, Watermark};
use crate::operator::BoxedMessageStream;

/// What one input message gave: a chunk, then a watermark.
pub(crate) type Emitted = (Option<StreamChunk>, Option<Watermark>);

pub(crate) trait ChunkHandler: Send + 'static {
    /// Output before any input: e.g. the row of a global aggregate.
    fn start(&mut self) -> Result<Option<StreamChunk>> {
        Ok(None)
    }

    fn chunk(&mut self, chunk: StreamChunk) -> Result<Emitted>;

    /// An input watermark; dropped unless the handler carries it.
    fn watermark(&mut self, _watermark: Watermark) -> Result<Emitted> {
        Ok((None, None))
    }

    /// Output at the end of an epoch, before its barrier: e.g. the
    /// retractions of groups whose state expired.
    fn epoch_end(&mut self) -> Result<Option<StreamChunk>> {
        Ok(None)
    }

    /// Called before the barrier is forwarded: commit the epoch's state.
    fn barrier(&mut self, barrier: &Barrier) -> Result<()>;
}

struct Running<H> {
    input: BoxedMessageStream,
    handler: H,
    started: bool,
    /// A watermark to send after the chunk just sent.
    pending: Option<Watermark>,
    /// A barrier to act on after the epoch's last chunk, just sent.
    barrier: Option<Barrier>,
}

/// Runs `handler` over `input`; ends with the input or the first error.
pub(crate) fn run_handler(
    input: BoxedMessageStream,
    handler: impl ChunkHandler,
) -> BoxedMessageStream {
    let running = Running {
        input,
        handler,
        started: false,
        pending: None,
        barrier: None,
    };
    Box::pin(stream::unfold(Some(running), |state| async move {
        let mut running = state?;
        if let Some(watermark) = running.pending.take() {
            return Some((Ok(Message::Watermark(watermark)), Some(running)));
        }
        if !std::mem::replace(&mut running.started, true) {
            match running.handler.start() {
                Ok(Some(chunk)) => return Some((Ok(Message::Chunk(chunk)), Some(running))),
                Ok(None) => {}
                Err(e) => return Some((Err(e), None)),
            }
        }
        if let Some(barrier) = running.barrier.take() {
            return Some(forward_barrier(running, barrier));
        }
        loop {
            let emitted = match running.input.next().await? {
                Ok(Message::Chunk(chunk)) => running.handler.chunk(chunk),
                Ok(Message::Watermark(watermark)) => running.handler.watermark(watermark),
                Ok(Message::Barrier(barrier)) => match running.handler.epoch_end() {
                    Ok(Some(chunk)) if !chunk.is_empty() => {
                        running.barrier = Some(barrier);
                        return Some((Ok(Message::Chunk(chunk)), Some(running)));
                    }
                    Ok(_) => return Some(forward_barrier(running, barrier)),
                    Err(e) => return Some((Err(e), None)),
                },
                Err(e) => Err(e),
            };
            match emitted {
                Ok((Some(chunk), watermark)) if !chunk.is_empty() => {
                    running.pending = watermark;
                    return Some((Ok(Message::Chunk(chunk)), Some(running)));
                }
                Ok((_, Some(watermark))) => {
                    return Some((Ok(Message::Watermark(watermark)), Some(running)));
                }
                Ok((_, None)) => continue,
                Err(e) => return Some((Err(e), None)),
            }
        }
    }))
}

/// Commits the epoch `barrier` ends and passes the barrier on.
fn forward_barrier<H: ChunkHandler>(
    mut running: Running<H>,
    barrier: Barrier,
) -> (Result<Message>, Option<Running<H>>) {
    let output = running
        .handler
        .barrier(&barrier)
        .map(|()| Message::Barrier(barrier));
    let next = output.is_ok().then_some(running);
    (output, next)
}
