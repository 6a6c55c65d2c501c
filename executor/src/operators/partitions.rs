//! What the operators that keep every row of a partition share (top-N and
//! session windows): finding the partitions a chunk touches, and emitting
//! the difference between a partition's output rows before and after it.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, RecordBatch, UInt32Array};
use datafusion::arrow::compute::take;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::row::{RowConverter, SortField};
use datafusion::common::ScalarValue;
use datafusion::error::Result;

use crate::message::{Op, StreamChunk};

/// Encodes the values of `partition` columns of `schema`, to tell
/// partitions apart.
pub(super) fn partition_keys(schema: &SchemaRef, partition: &[usize]) -> Result<RowConverter> {
    Ok(RowConverter::new(
        partition
            .iter()
            .map(|&c| SortField::new(schema.field(c).data_type().clone()))
            .collect(),
    )?)
}

/// One key (as single-row arrays) per partition of `partition` columns
/// that `data` touches, in order of first appearance; one empty key when
/// there are no partition columns.
pub(super) fn touched_partitions(
    data: &RecordBatch,
    partition: &[usize],
    partition_keys: &RowConverter,
) -> Result<Vec<Vec<ArrayRef>>> {
    if partition.is_empty() {
        return Ok(vec![Vec::new()]);
    }
    let columns: Vec<ArrayRef> = partition
        .iter()
        .map(|&c| Arc::clone(data.column(c)))
        .collect();
    let encoded = partition_keys.convert_columns(&columns)?;
    let mut first: HashMap<&[u8], u32> = HashMap::new();
    for row in 0..data.num_rows() {
        first.entry(encoded.row(row).data()).or_insert(row as u32);
    }
    let mut rows: Vec<u32> = first.into_values().collect();
    rows.sort_unstable();
    let indices = UInt32Array::from(rows);
    let keys: Vec<ArrayRef> = columns
        .iter()
        .map(|c| Ok(take(c.as_ref(), &indices, None)?))
        .collect::<Result<_>>()?;
    Ok((0..indices.len())
        .map(|i| keys.iter().map(|k| k.slice(i, 1)).collect())
        .collect())
}

/// Output changes, gathered partition by partition.
#[derive(Default)]
pub(super) struct RowChanges {
    ops: Vec<Op>,
    rows: Vec<Vec<ScalarValue>>,
}

impl RowChanges {
    /// Retracts the rows of `before` not in `after`, then inserts the rows
    /// of `after` not in `before`.
    pub fn difference(&mut self, before: &[Vec<ScalarValue>], after: &[Vec<ScalarValue>]) {
        let kept: HashSet<&Vec<ScalarValue>> = after.iter().collect();
        let had: HashSet<&Vec<ScalarValue>> = before.iter().collect();
        for row in before.iter().filter(|r| !kept.contains(r)) {
            self.ops.push(Op::Delete);
            self.rows.push(row.clone());
        }
        for row in after.iter().filter(|r| !had.contains(r)) {
            self.ops.push(Op::Insert);
            self.rows.push(row.clone());
        }
    }

    /// The changes as one chunk of `schema`, if there are any.
    pub fn into_chunk(self, schema: &SchemaRef) -> Result<Option<StreamChunk>> {
        if self.rows.is_empty() {
            return Ok(None);
        }
        StreamChunk::from_rows(Arc::clone(schema), self.ops, self.rows).map(Some)
    }
}
