//! One record of a table's change log: the rows one statement changed, with
//! an op per row, as an Arrow IPC stream (a stable, self-describing format,
//! so the log outlives the process that wrote it).

use std::io::Cursor;
use std::sync::Arc;

use arrow::array::{Array, Int8Array};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::ipc::reader::StreamReader;
use arrow::ipc::writer::StreamWriter;
use arrow::record_batch::RecordBatch;

use crate::{Error, LogOffset, Result};

/// Name of the first column of a log entry's chunk: one [`ChangeOp`] per row.
pub const CHANGE_OP_COLUMN: &str = "__op";

/// What happened to a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i8)]
pub enum ChangeOp {
    Insert = 1,
    Delete = 2,
}

impl ChangeOp {
    pub fn from_code(code: i8) -> Option<Self> {
        match code {
            1 => Some(Self::Insert),
            2 => Some(Self::Delete),
            _ => None,
        }
    }
}

/// Rows `first .. first + chunk.num_rows()` of a table's log. `chunk` has the
/// op column first, then the table's columns.
#[derive(Debug, Clone, PartialEq)]
pub struct LogEntry {
    pub first: LogOffset,
    pub chunk: RecordBatch,
}

impl LogEntry {
    /// Builds the chunk for `rows` (in the table's schema), all with `op`.
    pub fn chunk_of(op: ChangeOp, rows: &RecordBatch) -> Result<RecordBatch> {
        let mut fields = vec![Arc::new(Field::new(
            CHANGE_OP_COLUMN,
            DataType::Int8,
            false,
        ))];
        fields.extend(rows.schema().fields().iter().cloned());
        let schema: SchemaRef = Arc::new(Schema::new(fields));
        let ops = Int8Array::from(vec![op as i8; rows.num_rows()]);
        let mut columns: Vec<Arc<dyn Array>> = vec![Arc::new(ops)];
        columns.extend(rows.columns().iter().cloned());
        Ok(RecordBatch::try_new(schema, columns)?)
    }

    /// The end offset (exclusive).
    pub fn end(&self) -> LogOffset {
        LogOffset(self.first.0 + self.chunk.num_rows() as u64)
    }

    pub fn ops(&self) -> Result<impl Iterator<Item = Option<ChangeOp>> + '_> {
        let ops = self
            .chunk
            .column(0)
            .as_any()
            .downcast_ref::<Int8Array>()
            .ok_or_else(|| Error::Corrupt("log entry has no op column".into()))?;
        Ok(ops.values().iter().map(|&code| ChangeOp::from_code(code)))
    }

    pub fn encode_chunk(chunk: &RecordBatch) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        let mut writer = StreamWriter::try_new(&mut out, &chunk.schema())?;
        writer.write(chunk)?;
        writer.finish()?;
        drop(writer);
        Ok(out)
    }

    pub fn decode(first: LogOffset, bytes: &[u8]) -> Result<Self> {
        let corrupt = |e: arrow::error::ArrowError| Error::Corrupt(format!("log entry: {e}"));
        let mut reader = StreamReader::try_new(Cursor::new(bytes), None).map_err(corrupt)?;
        let chunk = reader
            .next()
            .ok_or_else(|| Error::Corrupt("empty log entry".into()))?
            .map_err(corrupt)?;
        Ok(Self { first, chunk })
    }
}
