//! Project: computes output columns from each input row.
//!
//! Stateless; ops pass through unchanged, so retractions retract the same
//! computed values. A watermark goes on to every output column computed
//! from its column by an expression that never decreases as the column
//! grows (see [`crate::watermark`]), and is dropped otherwise.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, RecordBatch};
use datafusion::arrow::datatypes::{Field, Schema};
use datafusion::error::{DataFusionError, Result};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::expressions::Column;
use futures::{StreamExt, stream};

use crate::message::{Message, StreamChunk, Watermark};
use crate::operator::{BoxedMessageStream, BoxedOperator, Operator, OperatorInfo};
use crate::watermark::WatermarkDerivation;

pub struct ProjectOperator {
    info: OperatorInfo,
    input: BoxedOperator,
    exprs: Vec<Arc<dyn PhysicalExpr>>,
    watermarks: Vec<WatermarkDerivation>,
}

/// The output position of input column `input`, if projected as is.
fn output_of(exprs: &[Arc<dyn PhysicalExpr>], input: usize) -> Option<usize> {
    exprs.iter().position(|e| {
        e.downcast_ref::<Column>()
            .is_some_and(|c| c.index() == input)
    })
}

impl ProjectOperator {
    /// # Errors
    /// When an expression does not type-check against the input, or the
    /// input's stream key is not among the outputs (the planner keeps it).
    pub fn new(
        input: BoxedOperator,
        exprs: Vec<(Arc<dyn PhysicalExpr>, String)>,
        identity: String,
    ) -> Result<Self> {
        let input_schema = Arc::clone(&input.info().schema);
        let fields = exprs
            .iter()
            .map(|(expr, name)| {
                Ok(Field::new(
                    name,
                    expr.data_type(&input_schema)?,
                    expr.nullable(&input_schema)?,
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        let exprs: Vec<Arc<dyn PhysicalExpr>> = exprs.into_iter().map(|(e, _)| e).collect();
        let stream_key = input
            .info()
            .stream_key
            .iter()
            .map(|&k| {
                output_of(&exprs, k).ok_or_else(|| {
                    DataFusionError::Internal(format!(
                        "{identity}: stream key column {k} is not projected"
                    ))
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let info = OperatorInfo {
            identity,
            schema: Arc::new(Schema::new(fields)),
            stream_key,
            append_only: input.info().append_only,
        };
        let watermarks = WatermarkDerivation::all(&exprs, &input_schema, None);
        Ok(Self {
            info,
            input,
            exprs,
            watermarks,
        })
    }
}

/// The output watermarks an input watermark gives.
fn derived(watermarks: &[WatermarkDerivation], input: &Watermark) -> Result<Vec<Message>> {
    watermarks
        .iter()
        .filter(|d| d.input == input.column)
        .map(|d| {
            Ok(Message::Watermark(Watermark {
                column: d.output,
                value: d.derive(&input.value)?,
            }))
        })
        .collect()
}

impl Operator for ProjectOperator {
    fn info(&self) -> &OperatorInfo {
        &self.info
    }

    fn execute(self: Box<Self>) -> BoxedMessageStream {
        let Self {
            info,
            input,
            exprs,
            watermarks,
        } = *self;
        let schema = info.schema;
        let messages = input.execute().flat_map(move |message| {
            let projected = match message {
                Ok(Message::Chunk(chunk)) => {
                    let rows = chunk.num_rows();
                    let columns: Result<Vec<ArrayRef>> = exprs
                        .iter()
                        .map(|e| e.evaluate(chunk.data())?.into_array(rows))
                        .collect();
                    columns
                        .and_then(|columns| Ok(RecordBatch::try_new(Arc::clone(&schema), columns)?))
                        .and_then(|data| StreamChunk::new(chunk.ops().to_vec(), data))
                        .map(|chunk| vec![Message::Chunk(chunk)])
                }
                Ok(Message::Watermark(w)) => derived(&watermarks, &w),
                Ok(other) => Ok(vec![other]),
                Err(e) => Err(e),
            };
            let projected: Vec<Result<Message>> = match projected {
                Ok(messages) => messages.into_iter().map(Ok).collect(),
                Err(e) => vec![Err(e)],
            };
            stream::iter(projected)
        });
        Box::pin(messages)
    }
}

#[cfg(test)]
mod tests {
    use datafusion::logical_expr::Operator as BinaryOp;
    use datafusion::physical_expr::expressions::{BinaryExpr, col, lit};

    use super::*;
    use crate::operators::testing::{lines, run, source};

    #[tokio::test]
    async fn computes_columns_and_keeps_ops() {
        let input = source(
            "I I",
            "+ 1 10
             - 2 .
             U- 3 30
             U+ 3 31",
        );
        let schema = Arc::clone(&input.info().schema);
        let doubled = Arc::new(BinaryExpr::new(
            col("c1", &schema).unwrap(),
            BinaryOp::Multiply,
            lit(2i64),
        ));
        let exprs = vec![
            (col("c0", &schema).unwrap(), "id".into()),
            (doubled as _, "doubled".into()),
        ];
        let project = ProjectOperator::new(input, exprs, "project".into()).unwrap();
        assert_eq!(project.info().stream_key, vec![0]);
        assert_eq!(project.info().schema.field(1).name(), "doubled");
        let output = run(Box::new(project)).await;
        assert_eq!(output, lines("+ 1 20\n- 2 .\nU- 3 60\nU+ 3 62"));
    }

    #[test]
    fn dropping_the_stream_key_is_refused() {
        let input = source("I I", "+ 1 2");
        let schema = Arc::clone(&input.info().schema);
        let exprs = vec![(col("c1", &schema).unwrap(), "other".into())];
        assert!(ProjectOperator::new(input, exprs, "project".into()).is_err());
    }
}
