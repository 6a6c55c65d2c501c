//! The formats a file source reads: CSV, JSON lines and Parquet. A file is
//! decoded whole into the source's declared columns: CSV by position, JSON
//! and Parquet by name (Parquet columns are cast to the declared types).

use std::io::Cursor;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, RecordBatch};
use datafusion::arrow::compute::{cast, concat_batches};
use datafusion::arrow::csv;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::json;
use datafusion::parquet::arrow::ProjectionMask;
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

/// Rows decoded per Arrow batch before a file's batches are joined.
const BATCH_ROWS: usize = 8192;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    Csv {
        header: bool,
        delimiter: u8,
    },
    /// One JSON object per line.
    Json,
    Parquet,
}

impl FileFormat {
    /// The format named `name` (`csv`, `json`, `parquet`), CSV with a
    /// header and commas.
    pub fn from_name(name: &str) -> Option<Self> {
        match name.to_ascii_lowercase().as_str() {
            "csv" => Some(Self::Csv {
                header: true,
                delimiter: b',',
            }),
            "json" | "jsonl" | "ndjson" => Some(Self::Json),
            "parquet" => Some(Self::Parquet),
            _ => None,
        }
    }

    /// Every row of a file's `contents`, as `schema`'s columns.
    ///
    /// # Errors
    /// What the decoder found wrong: a row or value that does not parse, a
    /// declared column the file lacks, a type that does not cast.
    pub fn decode(
        &self,
        contents: bytes::Bytes,
        schema: &SchemaRef,
    ) -> Result<RecordBatch, ArrowError> {
        let batches = match *self {
            Self::Csv { header, delimiter } => csv::ReaderBuilder::new(Arc::clone(schema))
                .with_header(header)
                .with_delimiter(delimiter)
                .with_batch_size(BATCH_ROWS)
                .build(Cursor::new(contents))?
                .collect::<Result<Vec<_>, _>>()?,
            Self::Json => json::ReaderBuilder::new(Arc::clone(schema))
                .with_batch_size(BATCH_ROWS)
                .build(Cursor::new(contents))?
                .collect::<Result<Vec<_>, _>>()?,
            Self::Parquet => return decode_parquet(contents, schema),
        };
        concat_batches(schema, &batches)
    }
}

/// A Parquet file's columns named in `schema`, cast to its types.
fn decode_parquet(contents: bytes::Bytes, schema: &SchemaRef) -> Result<RecordBatch, ArrowError> {
    let parquet_error =
        |e: datafusion::parquet::errors::ParquetError| ArrowError::ExternalError(Box::new(e));
    let builder = ParquetRecordBatchReaderBuilder::try_new(contents).map_err(parquet_error)?;
    let file_schema = Arc::clone(builder.schema());
    let mut roots = Vec::with_capacity(schema.fields().len());
    for field in schema.fields() {
        let index = file_schema.index_of(field.name()).map_err(|_| {
            ArrowError::SchemaError(format!("the file has no column \"{}\"", field.name()))
        })?;
        roots.push(index);
    }
    let mask = ProjectionMask::roots(builder.parquet_schema(), roots);
    let reader = builder
        .with_projection(mask)
        .with_batch_size(BATCH_ROWS)
        .build()
        .map_err(parquet_error)?;
    let mut batches = Vec::new();
    for batch in reader {
        let batch = batch?;
        let columns = schema
            .fields()
            .iter()
            .map(|field| {
                let column = batch.column_by_name(field.name()).ok_or_else(|| {
                    ArrowError::SchemaError(format!("the file has no column \"{}\"", field.name()))
                })?;
                cast(column, field.data_type())
            })
            .collect::<Result<Vec<ArrayRef>, _>>()?;
        batches.push(RecordBatch::try_new(Arc::clone(schema), columns)?);
    }
    concat_batches(schema, &batches)
}
