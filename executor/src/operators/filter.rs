//! Filter: keeps the rows for which a predicate is true.
//!
//! Stateless. Retractions pass through like inserts (a deleted row passes
//! the same predicate it passed when inserted). When only one half of an
//! update pair passes, that half becomes a plain insert or delete.

use std::sync::Arc;

use datafusion::arrow::array::{Array, BooleanArray};
use datafusion::arrow::compute::filter_record_batch;
use datafusion::common::cast::as_boolean_array;
use datafusion::error::Result;
use datafusion::physical_expr::PhysicalExpr;
use futures::StreamExt;

use crate::message::{Message, Op, StreamChunk};
use crate::operator::{BoxedMessageStream, BoxedOperator, Operator, OperatorInfo};

pub struct FilterOperator {
    info: OperatorInfo,
    input: BoxedOperator,
    predicate: Arc<dyn PhysicalExpr>,
}

impl FilterOperator {
    pub fn new(input: BoxedOperator, predicate: Arc<dyn PhysicalExpr>, identity: String) -> Self {
        let info = OperatorInfo {
            identity,
            ..input.info().clone()
        };
        Self {
            info,
            input,
            predicate,
        }
    }
}

/// The rows of `chunk` where `keep` is true (NULL drops the row).
pub(crate) fn filter_chunk(chunk: &StreamChunk, keep: &BooleanArray) -> Result<StreamChunk> {
    let ops = chunk.ops();
    let passes = |i: usize| keep.is_valid(i) && keep.value(i);
    let mut kept_ops = Vec::with_capacity(ops.len());
    for (i, &op) in ops.iter().enumerate() {
        if !passes(i) {
            continue;
        }
        kept_ops.push(match op {
            Op::UpdateDelete if !(i + 1 < ops.len() && passes(i + 1)) => Op::Delete,
            Op::UpdateInsert if !(i > 0 && passes(i - 1)) => Op::Insert,
            op => op,
        });
    }
    let selection = BooleanArray::from_iter((0..ops.len()).map(|i| Some(passes(i))));
    StreamChunk::new(kept_ops, filter_record_batch(chunk.data(), &selection)?)
}

impl Operator for FilterOperator {
    fn info(&self) -> &OperatorInfo {
        &self.info
    }

    fn execute(self: Box<Self>) -> BoxedMessageStream {
        let predicate = self.predicate;
        Box::pin(self.input.execute().map(move |message| match message? {
            Message::Chunk(chunk) => {
                let keep = predicate
                    .evaluate(chunk.data())?
                    .into_array(chunk.num_rows())?;
                Ok(Message::Chunk(filter_chunk(
                    &chunk,
                    as_boolean_array(&keep)?,
                )?))
            }
            other => Ok(other),
        }))
    }
}

#[cfg(test)]
mod tests {
    use datafusion::logical_expr::Operator as BinaryOp;
    use datafusion::physical_expr::expressions::{BinaryExpr, col, lit};

    use super::*;
    use crate::operators::testing::{lines, run, source};

    #[tokio::test]
    async fn keeps_matching_rows_and_splits_update_pairs() {
        let input = source(
            "I T",
            "+ 1 a
             + 7 b
             - 9 c
             U- 2 d
             U+ 8 d
             U- 9 e
             U+ 3 e
             U- 6 f
             U+ 7 f",
        );
        let schema = input.info().schema.clone();
        let predicate = Arc::new(BinaryExpr::new(
            col("c0", &schema).unwrap(),
            BinaryOp::Gt,
            lit(5i64),
        ));
        let output = run(Box::new(FilterOperator::new(
            input,
            predicate,
            "filter".into(),
        )))
        .await;
        let expected = lines(
            "+ 7 b
             - 9 c
             + 8 d
             - 9 e
             U- 6 f
             U+ 7 f",
        );
        assert_eq!(output, expected);
    }
}
