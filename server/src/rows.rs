//! Arrow batches to Postgres DataRows.
//!
//! Values are encoded by `arrow-pg`, but for the text of floats and times,
//! which is PostgreSQL's ([`crate::pg_text`]); NULLs are written here for
//! every type, because arrow-pg 0.16 encodes a NULL interval as whatever
//! bits its slot holds. Numerics are sent in binary by [`crate::pg_binary`]
//! (arrow-pg's binary numeric holds 28 digits). Errors while the query
//! streams keep their SQLSTATE.

use std::sync::Arc;

use arrow_pg::encoder::{Encoder, encode_value};
use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Decimal128Type, SchemaRef};
use datafusion::execution::SendableRecordBatchStream;
use datafusion::physical_plan::memory::MemoryStream;
use futures::{StreamExt, stream};
use pgwire::api::portal::Format;
use pgwire::api::results::{DataRowEncoder, FieldFormat, FieldInfo, QueryResponse};
use pgwire::error::PgWireResult;
use pgwire::messages::data::DataRow;
use tokio_postgres::types::Kind;
use weir_planner::{Error, PG_TYPE_KEY};

use crate::cancel::CancelSignal;
use crate::errors::to_pgwire;
use crate::pg_binary::{Encoded, Numeric};
use crate::pg_fields::pg_fields;
use crate::pg_text::{pg_text, vector_text};

/// How values are written as text: the session parameters that shape it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TextOptions {
    pub extra_float_digits: i8,
}

pub(crate) fn encode_batch(
    fields: &Arc<Vec<FieldInfo>>,
    batch: &RecordBatch,
    options: TextOptions,
) -> Vec<PgWireResult<DataRow>> {
    let schema = batch.schema();
    // The PostgreSQL type of each column kept as text, looked up once.
    let text_types: Vec<Option<&str>> = schema
        .fields()
        .iter()
        .map(|f| f.metadata().get(PG_TYPE_KEY).map(String::as_str))
        .collect();
    let mut encoder = DataRowEncoder::new(Arc::clone(fields));
    let mut rows = Vec::with_capacity(batch.num_rows());
    for row in 0..batch.num_rows() {
        for (i, (column, pg_field)) in batch.columns().iter().zip(fields.iter()).enumerate() {
            let text = match pg_field.format() {
                FieldFormat::Text if !column.is_null(row) => match text_types[i] {
                    Some("int2vector" | "oidvector") => vector_text(column, row),
                    _ => pg_text(column, row, options.extra_float_digits),
                },
                _ => None,
            };
            let encoded = if column.is_null(row) {
                Encoder::encode_field(&mut encoder, &None::<i8>, pg_field)
            } else if let Some(text) = text {
                // As it is: pgwire would quote the text of an array again.
                Encoder::encode_field(&mut encoder, &Encoded(text.into_bytes()), pg_field)
            } else if let Some(binary) = (pg_field.format() == FieldFormat::Binary)
                .then(|| binary_form(column, row, text_types[i], pg_field))
                .flatten()
            {
                Encoder::encode_field(&mut encoder, &binary, pg_field)
            } else if let DataType::Decimal128(_, scale) = column.data_type() {
                let value = column.as_primitive::<Decimal128Type>().value(row);
                let numeric = Numeric {
                    value,
                    scale: *scale,
                };
                Encoder::encode_field(&mut encoder, &numeric, pg_field)
            } else {
                encode_value(&mut encoder, column, row, schema.field(i), pg_field)
            };
            if let Err(e) = encoded {
                rows.push(Err(e));
                return rows;
            }
        }
        rows.push(Ok(encoder.take_row()));
    }
    rows
}

/// The binary form weir writes itself, where arrow-pg's differs: a uuid,
/// json or jsonb value (kept as text, `text_type` names which), and an
/// array of no elements, which postgres-types would send as one dimension
/// of length 0.
fn binary_form(
    column: &ArrayRef,
    row: usize,
    text_type: Option<&str>,
    pg_field: &FieldInfo,
) -> Option<Encoded> {
    if let Some(text_type) = text_type {
        return Encoded::of_text(text_type, column.as_string_opt::<i32>()?.value(row));
    }
    let list = column.as_list_opt::<i32>()?;
    if !list.value(row).is_empty() {
        return None;
    }
    match pg_field.datatype().kind() {
        Kind::Array(element) => Some(Encoded::empty_array(element)),
        _ => None,
    }
}

/// Like [`encode_rows`], for batches already computed.
pub(crate) fn encode_batches(
    batches: Vec<RecordBatch>,
    schema: SchemaRef,
    format: &Format,
    options: TextOptions,
    cancel: CancelSignal,
) -> PgWireResult<QueryResponse> {
    let rows = MemoryStream::try_new(batches, schema, None).map_err(|e| to_pgwire(e.into()))?;
    encode_rows(Box::pin(rows), format, options, cancel)
}

/// Streams `rows` to the client in `format`, ending with `57014` if the
/// client cancels first.
pub(crate) fn encode_rows(
    rows: SendableRecordBatchStream,
    format: &Format,
    options: TextOptions,
    cancel: CancelSignal,
) -> PgWireResult<QueryResponse> {
    let fields = Arc::new(pg_fields(&rows.schema(), format)?);
    let row_fields = Arc::clone(&fields);
    let data_rows = rows.flat_map(move |batch| match batch {
        Ok(batch) => stream::iter(encode_batch(&row_fields, &batch, options)),
        Err(e) => stream::iter(vec![Err(to_pgwire(Error::DataFusion(e)))]),
    });
    let cancellable = stream::unfold(Some((Box::pin(data_rows), cancel)), |state| async move {
        let (mut rows, mut cancel) = state?;
        tokio::select! {
            biased;
            e = cancel.cancelled() => Some((Err(e), None)),
            row = rows.next() => row.map(|row| (row, Some((rows, cancel)))),
        }
    });
    Ok(QueryResponse::new(fields, cancellable))
}
