//! Barrier alignment for operators with several inputs (join, union).
//!
//! Aligned mode (DESIGN §4): once barrier n has arrived on an input, that
//! input is not read again until barrier n has arrived on every input; then
//! the barrier is passed on, with the time the first input spent blocked.
//! So everything before the barrier, on every input, is processed before
//! it, and nothing after it.
//!
//! Unaligned barriers (at-least-once checkpoints) block nothing: inputs
//! that delivered the barrier are read on, and rows after it may be
//! processed before it is passed on. Only an input's next barrier waits.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use datafusion::error::{DataFusionError, Result};
use futures::future::select_all;
use futures::{FutureExt, Stream, StreamExt, stream};

use crate::message::{Barrier, Message, StreamChunk, Watermark};
use crate::operator::BoxedMessageStream;

/// A message of one of the inputs, or a barrier once all inputs had it.
#[derive(Debug)]
pub enum Aligned {
    Chunk(usize, StreamChunk),
    Watermark(usize, Watermark),
    Barrier(Barrier, Duration),
}

/// Time an operator's inputs spent aligning checkpoint barriers since it
/// was last taken: what a checkpoint reports as its alignment time. Clones
/// share the count.
#[derive(Debug, Clone, Default)]
pub struct AlignmentMeter(Arc<AtomicU64>);

impl AlignmentMeter {
    pub fn add(&self, waited: Duration) {
        let nanos = u64::try_from(waited.as_nanos()).unwrap_or(u64::MAX);
        self.0.fetch_add(nanos, Ordering::Relaxed);
    }

    pub fn take(&self) -> Duration {
        Duration::from_nanos(self.0.swap(0, Ordering::Relaxed))
    }
}

struct Aligner {
    identity: String,
    meter: AlignmentMeter,
    inputs: Vec<BoxedMessageStream>,
    /// Inputs not read until the barrier being aligned is passed on.
    blocked: Vec<bool>,
    /// Inputs that delivered the barrier being aligned.
    arrived: Vec<bool>,
    /// An input's next barrier, delivered while aligning (unaligned mode).
    held: Vec<Option<Barrier>>,
    barrier: Option<(Barrier, Instant)>,
    done: bool,
    /// The input asked first on the next read; it moves past each input
    /// that delivers, so inputs that are always ready take turns.
    first: usize,
}

impl Aligner {
    async fn next(&mut self) -> Option<Result<Aligned>> {
        while self.barrier.is_none() {
            let Some(input) = self.held.iter().position(Option::is_some) else {
                break;
            };
            let held = self.held[input].take()?;
            if let Some(aligned) = self.on_barrier(input, held) {
                return Some(aligned);
            }
        }
        while !self.done {
            let mut turns: Vec<(usize, &mut BoxedMessageStream)> = self
                .inputs
                .iter_mut()
                .enumerate()
                .filter(|(i, _)| !self.blocked[*i])
                .collect();
            let start = turns.iter().position(|(i, _)| *i >= self.first);
            turns.rotate_left(start.unwrap_or(0));
            let polls = turns
                .into_iter()
                .map(|(i, input)| input.next().map(move |m| (i, m)).boxed());
            let ((input, message), _, _) = select_all(polls).await;
            self.first = (input + 1) % self.inputs.len();
            match message {
                None => self.done = true,
                Some(Err(e)) => {
                    self.done = true;
                    return Some(Err(e));
                }
                Some(Ok(Message::Chunk(chunk))) => return Some(Ok(Aligned::Chunk(input, chunk))),
                Some(Ok(Message::Watermark(w))) => return Some(Ok(Aligned::Watermark(input, w))),
                Some(Ok(Message::Barrier(barrier))) => {
                    if let Some(aligned) = self.on_barrier(input, barrier) {
                        return Some(aligned);
                    }
                }
            }
        }
        None
    }

    fn on_barrier(&mut self, input: usize, barrier: Barrier) -> Option<Result<Aligned>> {
        if self.arrived[input] {
            // Its next barrier: it waits until the current one is passed on.
            self.blocked[input] = true;
            self.held[input] = Some(barrier);
            return None;
        }
        self.arrived[input] = true;
        self.blocked[input] = barrier.aligned;
        match &self.barrier {
            None => self.barrier = Some((barrier, Instant::now())),
            Some((first, _)) if first.epoch != barrier.epoch => {
                self.done = true;
                return Some(Err(DataFusionError::Internal(format!(
                    "{}: input {input} sent {} while aligning {}",
                    self.identity, barrier.epoch, first.epoch
                ))));
            }
            Some(_) => {}
        }
        if !self.arrived.iter().all(|b| *b) {
            return None;
        }
        self.arrived.iter_mut().for_each(|b| *b = false);
        self.blocked.iter_mut().for_each(|b| *b = false);
        let (barrier, since) = self.barrier.take()?;
        let waited = since.elapsed();
        // A checkpoint reports its own barrier's alignment; unaligned
        // barriers blocked no input.
        if barrier.aligned && barrier.is_checkpoint() {
            self.meter.add(waited);
        }
        Some(Ok(Aligned::Barrier(barrier, waited)))
    }
}

/// The inputs merged, barriers aligned, the time each aligned checkpoint
/// barrier waited for the last input added to `meter`. Ends when any input ends (inputs end
/// together after a stopping barrier) or with the first error.
pub fn align(
    inputs: Vec<BoxedMessageStream>,
    identity: String,
    meter: AlignmentMeter,
) -> impl Stream<Item = Result<Aligned>> + Send {
    let blocked = vec![false; inputs.len()];
    let aligner = Aligner {
        identity,
        meter,
        done: inputs.is_empty(),
        first: 0,
        arrived: blocked.clone(),
        held: vec![None; inputs.len()],
        inputs,
        blocked,
        barrier: None,
    };
    stream::unfold(aligner, |mut aligner| async move {
        let item = aligner.next().await?;
        Some((item, aligner))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::operator::BoxedOperator;
    use crate::operators::testing::{barrier, chunk, messages, stop};

    fn describe(item: Aligned) -> String {
        match item {
            Aligned::Chunk(i, c) => format!("{i}:{}", c.num_rows()),
            Aligned::Watermark(i, _) => format!("{i}:wm"),
            Aligned::Barrier(b, _) => format!("b{}", b.epoch.0),
        }
    }

    /// Every item of the two inputs aligned, described.
    async fn aligned(left: BoxedOperator, right: BoxedOperator) -> Vec<String> {
        align(
            vec![left.execute(), right.execute()],
            "join".into(),
            AlignmentMeter::default(),
        )
        .map(|item| describe(item.unwrap()))
        .collect()
        .await
    }

    #[tokio::test]
    async fn post_barrier_data_waits_for_the_other_input() {
        let t = "I";
        let left = messages(
            t,
            vec![barrier(1), Message::Chunk(chunk(t, "+ 1\n+ 2")), stop(2)],
        );
        let right = messages(
            t,
            vec![
                Message::Chunk(chunk(t, "+ 3")),
                Message::Chunk(chunk(t, "+ 4")),
                barrier(1),
                stop(2),
            ],
        );
        let out = aligned(left, right).await;
        // Left's two-row chunk follows barrier 1 although it was ready first.
        assert_eq!(out, vec!["1:1", "1:1", "b1", "0:2", "b2"]);
    }

    #[tokio::test]
    async fn inputs_that_are_always_ready_take_turns() {
        let t = "I";
        let chunks = |n: usize| -> Vec<Message> {
            (0..n)
                .map(|_| Message::Chunk(chunk(t, "+ 1")))
                .chain([stop(1)])
                .collect()
        };
        let out = aligned(messages(t, chunks(3)), messages(t, chunks(3))).await;
        assert_eq!(out, vec!["0:1", "1:1", "0:1", "1:1", "0:1", "1:1", "b1"]);
    }

    #[tokio::test]
    async fn unaligned_barriers_block_nothing_but_the_next_barrier() {
        let t = "I";
        let mut loose = Barrier::new(
            crate::message::Epoch(1),
            crate::message::BarrierKind::Visibility,
        );
        loose.aligned = false;
        let loose = Message::Barrier(loose);
        let left = messages(
            t,
            vec![loose.clone(), Message::Chunk(chunk(t, "+ 1\n+ 2")), stop(2)],
        );
        let right = messages(
            t,
            vec![
                Message::Chunk(chunk(t, "+ 3")),
                Message::Chunk(chunk(t, "+ 4")),
                Message::Chunk(chunk(t, "+ 5")),
                loose,
                stop(2),
            ],
        );
        let out = aligned(left, right).await;
        // Left's chunk after barrier 1 is read before barrier 1 passes; its
        // barrier 2 waits for barrier 1.
        assert!(
            out.iter().position(|m| m == "0:2") < out.iter().position(|m| m == "b1"),
            "{out:?}"
        );
        assert_eq!(
            out.iter()
                .filter(|m| m.starts_with('b'))
                .collect::<Vec<_>>(),
            ["b1", "b2"]
        );
    }

    #[tokio::test]
    async fn the_meter_adds_up_what_every_barrier_waited() {
        let t = "I";
        let left = messages(t, vec![barrier(1), stop(2)]);
        let right = messages(
            t,
            vec![Message::Chunk(chunk(t, "+ 1")), barrier(1), stop(2)],
        );
        let meter = AlignmentMeter::default();
        let waits: Vec<Duration> = align(
            vec![left.execute(), right.execute()],
            "join".into(),
            meter.clone(),
        )
        .filter_map(|item| async move {
            match item.unwrap() {
                Aligned::Barrier(_, waited) => Some(waited),
                _ => None,
            }
        })
        .collect()
        .await;
        assert_eq!(waits.len(), 2);
        let total: Duration = waits.iter().sum();
        let taken = meter.take();
        assert_eq!(total, taken);
        assert_eq!(meter.take(), Duration::ZERO);
    }
}
