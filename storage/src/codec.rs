//! Row and key encodings of one table, both in Arrow's row format: keys are
//! memcomparable (byte order is value order, so RocksDB keeps rows sorted by
//! primary key) and rows decode back into columns a batch at a time.

use std::sync::Arc;

use arrow::array::ArrayRef;
use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use arrow::row::{RowConverter, Rows, SortField};

use crate::{Error, Result, TableKey, TableLayout};

pub(crate) struct TableCodec {
    pub layout: TableLayout,
    keys: Option<RowConverter>,
    rows: RowConverter,
}

fn converter(schema: &SchemaRef, columns: impl Iterator<Item = usize>) -> Result<RowConverter> {
    let fields = columns
        .map(|i| SortField::new(schema.field(i).data_type().clone()))
        .collect();
    Ok(RowConverter::new(fields)?)
}

impl TableCodec {
    pub fn new(layout: TableLayout) -> Result<Self> {
        let schema = &layout.schema;
        let keys = match &layout.key {
            TableKey::Primary(columns) => Some(converter(schema, columns.iter().copied())?),
            TableKey::RowId => None,
        };
        let rows = converter(schema, 0..schema.fields().len())?;
        Ok(Self { layout, keys, rows })
    }

    /// Whole rows of `batch` (which has the table's schema).
    pub fn encode_rows(&self, batch: &RecordBatch) -> Result<Rows> {
        Ok(self.rows.convert_columns(batch.columns())?)
    }

    /// Primary keys of `batch` (which has the table's schema); `None` for
    /// tables keyed by row id.
    pub fn encode_keys(&self, batch: &RecordBatch) -> Result<Option<Rows>> {
        let TableKey::Primary(columns) = &self.layout.key else {
            return Ok(None);
        };
        let key_columns: Vec<ArrayRef> = columns.iter().map(|&i| batch.column(i).clone()).collect();
        self.encode_key_columns(&key_columns).map(Some)
    }

    /// Encodes key values given as columns in primary-key order.
    pub fn encode_key_columns(&self, key_columns: &[ArrayRef]) -> Result<Rows> {
        let keys = self
            .keys
            .as_ref()
            .ok_or_else(|| Error::Internal("table has no primary key".into()))?;
        Ok(keys.convert_columns(key_columns)?)
    }

    /// Decodes stored rows into one batch with the table's schema.
    pub fn decode_rows<'a>(&self, rows: impl IntoIterator<Item = &'a [u8]>) -> Result<RecordBatch> {
        let parser = self.rows.parser();
        let parsed: Vec<_> = rows.into_iter().map(|bytes| parser.parse(bytes)).collect();
        let columns = self.rows.convert_rows(parsed)?;
        Ok(RecordBatch::try_new(
            Arc::clone(&self.layout.schema),
            columns,
        )?)
    }
}
