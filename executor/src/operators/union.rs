//! Union: `UNION ALL` of inputs with the same columns.
//!
//! Stateless. Inputs are barrier-aligned (see [`crate::align`]) and their
//! chunks forwarded under one schema. The planner makes each input carry
//! its branch number and its own stream key in columns of their own, so
//! the output's stream key (those columns) is unique across branches.
//! A column's watermark is the smallest of the inputs' latest.

use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{Field, Schema};
use datafusion::error::{DataFusionError, Result};
use futures::StreamExt;

use crate::align::{Aligned, AlignmentMeter, align};
use crate::message::{Message, StreamChunk};
use crate::operator::{BoxedMessageStream, BoxedOperator, Operator, OperatorInfo};
use crate::watermark::MergedWatermarks;

pub struct UnionOperator {
    info: OperatorInfo,
    inputs: Vec<BoxedOperator>,
    alignment: AlignmentMeter,
}

impl UnionOperator {
    /// # Errors
    /// When the inputs' column types differ.
    pub fn new(
        inputs: Vec<BoxedOperator>,
        stream_key: Vec<usize>,
        identity: String,
    ) -> Result<Self> {
        let first = inputs
            .first()
            .ok_or_else(|| DataFusionError::Internal(format!("{identity}: no inputs")))?;
        let schema = Arc::clone(&first.info().schema);
        for input in &inputs[1..] {
            let types = |s: &Schema| {
                s.fields()
                    .iter()
                    .map(|f| f.data_type().clone())
                    .collect::<Vec<_>>()
            };
            if types(&input.info().schema) != types(&schema) {
                return Err(DataFusionError::Internal(format!(
                    "{identity}: inputs have different column types"
                )));
            }
        }
        let fields: Vec<Field> = schema
            .fields()
            .iter()
            .map(|f| f.as_ref().clone().with_nullable(true))
            .collect();
        let info = OperatorInfo {
            identity,
            schema: Arc::new(Schema::new(fields)),
            stream_key,
            append_only: inputs.iter().all(|i| i.info().append_only),
        };
        Ok(Self {
            info,
            inputs,
            alignment: AlignmentMeter::default(),
        })
    }

    /// Adds the time barriers wait for each other to `meter`.
    #[must_use]
    pub fn with_alignment_meter(mut self, meter: AlignmentMeter) -> Self {
        self.alignment = meter;
        self
    }
}

impl Operator for UnionOperator {
    fn info(&self) -> &OperatorInfo {
        &self.info
    }

    fn execute(self: Box<Self>) -> BoxedMessageStream {
        let Self {
            info,
            inputs,
            alignment,
        } = *self;
        let inputs: Vec<_> = inputs.into_iter().map(|i| i.execute()).collect();
        let schema = info.schema;
        let mut watermarks = MergedWatermarks::new(inputs.len());
        Box::pin(
            align(inputs, info.identity, alignment).filter_map(move |item| {
                let message = match item {
                    Ok(Aligned::Chunk(_, chunk)) => {
                        RecordBatch::try_new(Arc::clone(&schema), chunk.data().columns().to_vec())
                            .map_err(DataFusionError::from)
                            .and_then(|data| StreamChunk::new(chunk.ops().to_vec(), data))
                            .map(|chunk| Some(Message::Chunk(chunk)))
                    }
                    Ok(Aligned::Watermark(input, watermark)) => {
                        Ok(watermarks.update(input, watermark).map(Message::Watermark))
                    }
                    Ok(Aligned::Barrier(barrier, _)) => Ok(Some(Message::Barrier(barrier))),
                    Err(e) => Err(e),
                };
                futures::future::ready(message.transpose())
            }),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::operators::testing::{lines, run, source};

    #[tokio::test]
    async fn forwards_every_input() {
        let union = UnionOperator::new(
            vec![source("I T", "+ 1 a"), source("I T", "- 2 b")],
            vec![0],
            "union".into(),
        )
        .unwrap();
        let mut out = run(Box::new(union)).await;
        out.sort();
        assert_eq!(out, lines("+ 1 a\n- 2 b"));
    }
}
