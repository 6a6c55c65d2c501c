//! Watermark filter: derives the event-time watermark of a table or source
//! from its rows (`WATERMARK FOR ts AS ts - INTERVAL '5' SECOND`), and
//! drops the rows that arrive behind it.
//!
//! After each chunk the watermark becomes the largest value of the
//! watermark expression seen so far, and follows the chunk downstream.
//! A row whose time column is below the watermark when it arrives is late:
//! it is dropped and counted. Rows with a NULL time are never late.
//!
//! State: one row (the watermark and the late-row count), so a restored
//! filter drops exactly what it would have dropped without the restart.

use std::sync::Arc;

use datafusion::arrow::array::Array;
use datafusion::error::{DataFusionError, Result};
use datafusion::functions_aggregate::min_max::MaxAccumulator;
use datafusion::logical_expr::Accumulator;
use datafusion::physical_expr::PhysicalExpr;
use weir_storage::StateStore;

use super::unary::{ChunkHandler, Emitted, run_handler};
use crate::message::{Barrier, StreamChunk, Watermark};
use crate::operator::{BoxedMessageStream, BoxedOperator, Operator, OperatorInfo};
use crate::state::StateTableId;
use crate::watermark::{KeptWatermark, WatermarkProgress};

pub struct WatermarkFilterOperator {
    info: OperatorInfo,
    input: BoxedOperator,
    filter: LateRows,
}

struct LateRows {
    /// The time column the watermark is for.
    column: usize,
    /// The watermark a row implies: `ts - INTERVAL '5' SECOND`.
    expr: Arc<dyn PhysicalExpr>,
    kept: KeptWatermark,
}

impl WatermarkFilterOperator {
    /// Watermarks `column` by `expr`, which must have the column's type;
    /// keeps its state in `store`.
    pub fn new(
        input: BoxedOperator,
        column: usize,
        expr: Arc<dyn PhysicalExpr>,
        store: Arc<dyn StateStore>,
        progress: WatermarkProgress,
        identity: String,
    ) -> Result<Self> {
        let schema = Arc::clone(&input.info().schema);
        let column_type = schema.field(column).data_type();
        let expr_type = expr.data_type(&schema)?;
        if expr_type != *column_type {
            return Err(DataFusionError::Plan(format!(
                "the watermark of {} is {expr_type}, not {column_type}",
                schema.field(column).name()
            )));
        }
        let kept = KeptWatermark::new(store, StateTableId(1), column_type, progress)?;
        let info = OperatorInfo {
            identity,
            ..input.info().clone()
        };
        Ok(Self {
            info,
            input,
            filter: LateRows { column, expr, kept },
        })
    }
}

impl ChunkHandler for LateRows {
    fn start(&mut self) -> Result<Option<StreamChunk>> {
        self.kept.load()?;
        Ok(None)
    }

    fn chunk(&mut self, chunk: StreamChunk) -> Result<Emitted> {
        let times = Arc::clone(chunk.data().column(self.column));
        let chunk = self.kept.drop_late(chunk, &times)?;
        if chunk.is_empty() {
            return Ok((None, None));
        }
        let implied = self
            .expr
            .evaluate(chunk.data())?
            .into_array(chunk.num_rows())?;
        let mut max = MaxAccumulator::try_new(implied.data_type())?;
        max.update_batch(&[implied])?;
        let watermark = self
            .kept
            .advance(max.evaluate()?)
            .then(|| self.kept.value().cloned())
            .flatten()
            .map(|value| Watermark {
                column: self.column,
                value,
            });
        Ok((Some(chunk), watermark))
    }

    fn barrier(&mut self, barrier: &Barrier) -> Result<()> {
        self.kept.commit(barrier.epoch)
    }
}

impl Operator for WatermarkFilterOperator {
    fn info(&self) -> &OperatorInfo {
        &self.info
    }

    fn execute(self: Box<Self>) -> BoxedMessageStream {
        let Self { input, filter, .. } = *self;
        run_handler(input.execute(), filter)
    }
}

#[cfg(test)]
mod tests {
    use datafusion::logical_expr::Operator as BinaryOp;
    use datafusion::physical_expr::expressions::{BinaryExpr, col, lit};
    use weir_storage::MemoryStateStore;

    use super::*;
    use crate::message::Message;
    use crate::operators::testing::{barrier, chunk, collect, messages, stop};

    fn filter(
        store: Arc<dyn StateStore>,
        progress: WatermarkProgress,
        input: Vec<Message>,
    ) -> Vec<Message> {
        let input = messages("I I", input);
        let schema = Arc::clone(&input.info().schema);
        let delayed = Arc::new(BinaryExpr::new(
            col("c1", &schema).unwrap(),
            BinaryOp::Minus,
            lit(5i64),
        ));
        let operator =
            WatermarkFilterOperator::new(input, 1, delayed, store, progress, "wm".into()).unwrap();
        futures::executor::block_on(collect(Box::new(operator)))
    }

    fn watermark(value: i64) -> Message {
        Message::Watermark(Watermark {
            column: 1,
            value: datafusion::common::ScalarValue::Int64(Some(value)),
        })
    }

    #[test]
    fn rows_behind_the_watermark_are_dropped_counted_and_remembered() {
        let store: Arc<dyn StateStore> = Arc::new(MemoryStateStore::default());
        let progress = WatermarkProgress::default();
        let output = filter(
            Arc::clone(&store),
            progress.clone(),
            vec![
                Message::Chunk(chunk("I I", "+ 1 10\n+ 2 20")),
                // 14 is behind the watermark 15; 16 is not.
                Message::Chunk(chunk("I I", "+ 3 14\n+ 4 16\n+ 5 .")),
                Message::Chunk(chunk("I I", "+ 6 3")),
                stop(1),
            ],
        );
        assert_eq!(
            output,
            vec![
                Message::Chunk(chunk("I I", "+ 1 10\n+ 2 20")),
                watermark(15),
                Message::Chunk(chunk("I I", "+ 4 16\n+ 5 .")),
                stop(1),
            ]
        );
        assert_eq!(progress.get().late_rows, 2);
        // Restored, it still knows the watermark: 12 stays late.
        let output = filter(
            store,
            progress.clone(),
            vec![Message::Chunk(chunk("I I", "+ 7 12\n+ 8 30")), barrier(2)],
        );
        assert_eq!(
            output,
            vec![
                Message::Chunk(chunk("I I", "+ 8 30")),
                watermark(25),
                barrier(2)
            ]
        );
        assert_eq!(progress.get().late_rows, 3);
    }
}
