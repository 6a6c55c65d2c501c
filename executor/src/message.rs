//! The messages that flow between streaming operators.
//!
//! A stream carries [`StreamChunk`]s (columnar rows, each with an [`Op`]),
//! [`Barrier`]s (which cut the stream into epochs: everything before a
//! barrier belongs to its epoch) and [`Watermark`]s (event-time progress).

use std::fmt;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, RecordBatch};
use datafusion::arrow::compute::concat_batches;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::common::ScalarValue;
use datafusion::error::{DataFusionError, Result};

/// A point in the stream's history, cut by barriers; strictly increasing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Epoch(pub u64);

impl Epoch {
    pub fn next(self) -> Epoch {
        Epoch(self.0 + 1)
    }
}

impl fmt::Display for Epoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "epoch {}", self.0)
    }
}

/// What happened to a row. An update is a pair: `UpdateDelete` of the old
/// row directly followed by `UpdateInsert` of the new one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    Insert,
    Delete,
    UpdateDelete,
    UpdateInsert,
}

impl Op {
    /// Whether the row is added (`true`) or retracted (`false`).
    pub fn is_insert(self) -> bool {
        matches!(self, Op::Insert | Op::UpdateInsert)
    }

    /// The plain form, without the update pairing.
    pub fn normalize(self) -> Op {
        if self.is_insert() {
            Op::Insert
        } else {
            Op::Delete
        }
    }
}

/// Rows with an op each. Append-only streams carry only inserts.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamChunk {
    ops: Arc<[Op]>,
    data: RecordBatch,
}

impl StreamChunk {
    pub fn new(ops: impl Into<Arc<[Op]>>, data: RecordBatch) -> Result<Self> {
        let ops = ops.into();
        if ops.len() != data.num_rows() {
            return Err(DataFusionError::Internal(format!(
                "chunk has {} ops for {} rows",
                ops.len(),
                data.num_rows()
            )));
        }
        Ok(Self { ops, data })
    }

    /// Every row inserted.
    pub fn inserts(data: RecordBatch) -> Self {
        let ops = vec![Op::Insert; data.num_rows()];
        Self {
            ops: ops.into(),
            data,
        }
    }

    /// A chunk from rows of values, each row matching `schema`.
    pub fn from_rows(schema: SchemaRef, ops: Vec<Op>, rows: Vec<Vec<ScalarValue>>) -> Result<Self> {
        let columns = (0..schema.fields().len())
            .map(|c| {
                let data_type = schema.field(c).data_type();
                if rows.is_empty() {
                    Ok(datafusion::arrow::array::new_empty_array(data_type))
                } else {
                    ScalarValue::iter_to_array(rows.iter().map(|row| row[c].clone()))
                        .and_then(|array| Ok(datafusion::arrow::compute::cast(&array, data_type)?))
                }
            })
            .collect::<Result<Vec<ArrayRef>>>()?;
        Self::new(ops, RecordBatch::try_new(schema, columns)?)
    }

    /// Row `row`'s values.
    pub fn row(&self, row: usize) -> Result<Vec<ScalarValue>> {
        self.data
            .columns()
            .iter()
            .map(|column| ScalarValue::try_from_array(column, row))
            .collect()
    }

    /// One chunk of `chunks`' rows, in order; `chunks` share a schema and
    /// there is at least one.
    pub fn concat(chunks: &[StreamChunk]) -> Result<Self> {
        let Some(first) = chunks.first() else {
            return Err(DataFusionError::Internal("no chunks to join".into()));
        };
        let ops: Vec<Op> = chunks
            .iter()
            .flat_map(|c| c.ops().iter().copied())
            .collect();
        let batches: Vec<RecordBatch> = chunks.iter().map(|c| c.data().clone()).collect();
        Self::new(ops, concat_batches(&first.schema(), &batches)?)
    }

    pub fn ops(&self) -> &[Op] {
        &self.ops
    }

    pub fn data(&self) -> &RecordBatch {
        &self.data
    }

    pub fn schema(&self) -> SchemaRef {
        self.data.schema()
    }

    pub fn num_rows(&self) -> usize {
        self.data.num_rows()
    }

    pub fn is_empty(&self) -> bool {
        self.num_rows() == 0
    }

    /// A chunk from the compact text format of tests: a first line of type
    /// letters (`I` Int64, `i` Int32, `F` Float64, `T` Utf8, `B` Boolean),
    /// then one row per line: an op (`+`, `-`, `U-`, `U+`) and the values,
    /// `.` for NULL.
    ///
    /// ```text
    ///   I T
    ///   + 1 a
    ///   - 2 .
    /// ```
    pub fn from_pretty(text: &str) -> Result<Self> {
        let bad = |msg: String| DataFusionError::Internal(format!("pretty chunk: {msg}"));
        let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
        let types: Vec<DataType> = lines
            .next()
            .ok_or_else(|| bad("no type line".into()))?
            .split_whitespace()
            .map(|t| match t {
                "I" => Ok(DataType::Int64),
                "i" => Ok(DataType::Int32),
                "F" => Ok(DataType::Float64),
                "T" => Ok(DataType::Utf8),
                "B" => Ok(DataType::Boolean),
                other => Err(bad(format!("unknown type {other}"))),
            })
            .collect::<Result<_>>()?;
        let mut ops = Vec::new();
        let mut columns: Vec<Vec<ScalarValue>> = vec![Vec::new(); types.len()];
        for line in lines {
            let mut words = line.split_whitespace();
            ops.push(match words.next() {
                Some("+") => Op::Insert,
                Some("-") => Op::Delete,
                Some("U-") => Op::UpdateDelete,
                Some("U+") => Op::UpdateInsert,
                other => return Err(bad(format!("unknown op {other:?}"))),
            });
            let values: Vec<&str> = words.collect();
            if values.len() != types.len() {
                return Err(bad(format!(
                    "row {line:?} does not have {} values",
                    types.len()
                )));
            }
            for ((value, data_type), column) in values.iter().zip(&types).zip(&mut columns) {
                column.push(match *value {
                    "." => ScalarValue::try_from(data_type)?,
                    text => ScalarValue::try_from_string(text.to_string(), data_type)?,
                });
            }
        }
        let fields: Vec<Field> = types
            .iter()
            .enumerate()
            .map(|(i, t)| Field::new(format!("c{i}"), t.clone(), true))
            .collect();
        let arrays = columns
            .into_iter()
            .zip(&types)
            .map(|(values, data_type)| {
                if values.is_empty() {
                    Ok(datafusion::arrow::array::new_empty_array(data_type))
                } else {
                    ScalarValue::iter_to_array(values)
                }
            })
            .collect::<Result<Vec<ArrayRef>>>()?;
        let data = RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays)?;
        Self::new(ops, data)
    }
}

/// What a checkpointing barrier also asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BarrierKind {
    /// Only advances visibility: views become readable at this epoch.
    Visibility,
    /// Also snapshots state, durably, for recovery.
    Checkpoint,
    /// Snapshots state like a checkpoint, for a savepoint to write out in
    /// its own format.
    Savepoint,
}

/// Identifies a materialized view, and the graph that maintains it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ViewId(pub u64);

/// A new reader of a view's changes: from the barrier that carries it on,
/// the view's materialize sends `sender` its rows as of that barrier, then
/// every change after it.
#[derive(Debug, Clone)]
pub struct Subscription {
    pub view: ViewId,
    pub sender: tokio::sync::mpsc::Sender<Message>,
    /// Send the view's rows as of the barrier first; `false` when the
    /// reader's state already holds them (restored from a checkpoint).
    pub backfill: bool,
}

/// A change to the running graph, carried by a barrier so that every
/// operator applies it at the same point of the stream.
#[derive(Debug, Clone)]
pub enum Mutation {
    /// The receivers stop after forwarding this barrier.
    Stop,
    /// New views start reading existing ones.
    Subscribe(Vec<Subscription>),
}

impl PartialEq for Mutation {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Mutation::Stop, Mutation::Stop) => true,
            (Mutation::Subscribe(a), Mutation::Subscribe(b)) => {
                a.len() == b.len()
                    && a.iter()
                        .zip(b)
                        .all(|(a, b)| a.view == b.view && a.sender.same_channel(&b.sender))
            }
            _ => false,
        }
    }
}

/// Cuts the stream: everything before it belongs to `epoch`.
#[derive(Debug, Clone, PartialEq)]
pub struct Barrier {
    pub epoch: Epoch,
    pub kind: BarrierKind,
    pub mutation: Option<Arc<Mutation>>,
    /// Multi-input operators block inputs that delivered it until every
    /// input has (exactly-once); when `false` they read on (at-least-once).
    pub aligned: bool,
}

impl Barrier {
    pub fn new(epoch: Epoch, kind: BarrierKind) -> Self {
        Self {
            epoch,
            kind,
            mutation: None,
            aligned: true,
        }
    }

    /// Whether operators snapshot their state at it (a checkpoint or a
    /// savepoint).
    pub fn is_checkpoint(&self) -> bool {
        matches!(self.kind, BarrierKind::Checkpoint | BarrierKind::Savepoint)
    }

    pub fn with_mutation(mut self, mutation: Mutation) -> Self {
        self.mutation = Some(Arc::new(mutation));
        self
    }

    pub fn is_stop(&self) -> bool {
        matches!(self.mutation.as_deref(), Some(Mutation::Stop))
    }

    /// The subscriptions to `view` this barrier carries.
    pub fn subscriptions_to(&self, view: ViewId) -> impl Iterator<Item = &Subscription> {
        let all: &[Subscription] = match self.mutation.as_deref() {
            Some(Mutation::Subscribe(subscriptions)) => subscriptions,
            _ => &[],
        };
        all.iter().filter(move |s| s.view == view)
    }
}

/// No row with `column` below `value` will follow.
#[derive(Debug, Clone, PartialEq)]
pub struct Watermark {
    pub column: usize,
    pub value: ScalarValue,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    Chunk(StreamChunk),
    Barrier(Barrier),
    Watermark(Watermark),
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Array, Int64Array, StringArray};

    #[test]
    fn pretty_chunks_parse_ops_values_and_nulls() {
        let chunk = StreamChunk::from_pretty(
            "I T
             + 1 a
             - 2 .
             U- 3 b
             U+ 3 c",
        )
        .unwrap();
        assert_eq!(
            chunk.ops(),
            &[Op::Insert, Op::Delete, Op::UpdateDelete, Op::UpdateInsert]
        );
        let ids = chunk
            .data()
            .column(0)
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap();
        assert_eq!(ids.values(), &[1, 2, 3, 3]);
        let names = chunk
            .data()
            .column(1)
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap();
        assert!(names.is_null(1));
        assert_eq!(names.value(3), "c");
    }

    #[test]
    fn bad_pretty_chunks_are_refused() {
        assert!(StreamChunk::from_pretty("I\n+ 1 2").is_err());
        assert!(StreamChunk::from_pretty("I\n* 1").is_err());
        assert!(StreamChunk::from_pretty("X\n+ 1").is_err());
        assert!(StreamChunk::from_pretty("I\n+ x").is_err());
        assert!(StreamChunk::from_pretty("I").unwrap().is_empty());
    }

    #[test]
    fn ops_and_epochs() {
        assert!(Op::UpdateInsert.is_insert() && !Op::UpdateDelete.is_insert());
        assert_eq!(Op::UpdateDelete.normalize(), Op::Delete);
        assert!(Epoch(1) < Epoch(1).next());
        let stop = Barrier::new(Epoch(3), BarrierKind::Checkpoint).with_mutation(Mutation::Stop);
        assert!(stop.is_stop() && !Barrier::new(Epoch(3), BarrierKind::Visibility).is_stop());
    }
}
