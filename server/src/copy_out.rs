//! The wire side of `COPY ... TO STDOUT`: each row a line of PostgreSQL's
//! text format (tab-separated, `\N` for NULL, backslash escapes) or of CSV,
//! in one CopyData message. A value's text is the one a query's text
//! result carries ([`crate::rows`]), so the two never disagree.

use std::sync::Arc;

use bytes::Bytes;
use datafusion::execution::SendableRecordBatchStream;
use futures::{StreamExt, stream};
use pgwire::api::portal::Format;
use pgwire::api::results::CopyResponse;
use pgwire::error::PgWireResult;
use pgwire::messages::copy::CopyData;
use pgwire::messages::data::DataRow;
use weir_planner::{CopyFormat, Error};

use crate::cancel::CancelSignal;
use crate::errors::to_pgwire;
use crate::pg_fields::pg_fields;
use crate::rows::{TextOptions, encode_batch};

/// Streams `rows` as COPY data in `format`, ending with `57014` if the
/// client cancels first.
pub(crate) fn copy_out(
    rows: SendableRecordBatchStream,
    format: CopyFormat,
    options: TextOptions,
    cancel: CancelSignal,
) -> PgWireResult<CopyResponse> {
    let schema = rows.schema();
    let field_format = if format.binary {
        Format::UnifiedBinary
    } else {
        Format::UnifiedText
    };
    let fields = Arc::new(pg_fields(&schema, &field_format)?);
    let columns = fields.len();
    if format.binary {
        return Ok(binary_copy_out(rows, fields, options, cancel));
    }
    let mut header = (format.csv && format.header).then(|| {
        let names: Vec<Option<&[u8]>> = fields.iter().map(|f| Some(f.name().as_bytes())).collect();
        line(&names, &format)
    });
    let lines = rows.flat_map(move |batch| {
        let lines: Vec<PgWireResult<Vec<u8>>> = match batch {
            Ok(batch) => encode_batch(&fields, &batch, options)
                .into_iter()
                .map(|row| row.map(|row| line(&values(&row), &format)))
                .collect(),
            Err(e) => vec![Err(to_pgwire(Error::DataFusion(e)))],
        };
        stream::iter(lines)
    });
    // The header goes with the first row, so that COPY counts rows only.
    let lines = lines.map(move |line| {
        line.map(|mut line| {
            if let Some(mut header) = header.take() {
                header.append(&mut line);
                line = header;
            }
            CopyData::new(Bytes::from(line))
        })
    });
    let cancellable = stream::unfold(Some((Box::pin(lines), cancel)), |state| async move {
        let (mut lines, mut cancel) = state?;
        tokio::select! {
            biased;
            e = cancel.cancelled() => Some((Err(e), None)),
            line = lines.next() => line.map(|line| (line, Some((lines, cancel)))),
        }
    });
    Ok(CopyResponse::new(0, columns, cancellable))
}

/// The start of binary COPY data: its signature, no flags, no extension.
const BINARY_HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";

/// Rows as binary COPY data: a DataRow in binary is already a COPY tuple
/// once its field count leads it. The header goes with the first row (a
/// COPY of no rows sends it alone); pgwire adds the trailer.
fn binary_copy_out(
    rows: SendableRecordBatchStream,
    fields: Arc<Vec<pgwire::api::results::FieldInfo>>,
    options: TextOptions,
    cancel: CancelSignal,
) -> CopyResponse {
    let columns = fields.len();
    let tuples = rows.flat_map(move |batch| {
        let tuples: Vec<PgWireResult<Vec<u8>>> = match batch {
            Ok(batch) => encode_batch(&fields, &batch, options)
                .into_iter()
                .map(|row| {
                    row.map(|row| {
                        let mut tuple = Vec::with_capacity(2 + row.data.len());
                        tuple.extend(row.field_count.to_be_bytes());
                        tuple.extend_from_slice(&row.data);
                        tuple
                    })
                })
                .collect(),
            Err(e) => vec![Err(to_pgwire(Error::DataFusion(e)))],
        };
        stream::iter(tuples)
    });
    let mut header = Some(BINARY_HEADER.to_vec());
    let tuples = tuples
        .map(Some)
        .chain(stream::once(async { None }))
        .filter_map(move |tuple| {
            let out = match (tuple, header.take()) {
                (Some(tuple), Some(mut first)) => Some(tuple.map(|t| {
                    first.extend(t);
                    first
                })),
                (Some(tuple), None) => Some(tuple),
                (None, Some(alone)) => Some(Ok(alone)),
                (None, None) => None,
            };
            async move { out.map(|bytes| bytes.map(|b| CopyData::new(Bytes::from(b)))) }
        });
    let cancellable = stream::unfold(Some((Box::pin(tuples), cancel)), |state| async move {
        let (mut tuples, mut cancel) = state?;
        tokio::select! {
            biased;
            e = cancel.cancelled() => Some((Err(e), None)),
            tuple = tuples.next() => tuple.map(|tuple| (tuple, Some((tuples, cancel)))),
        }
    });
    CopyResponse::new(1, columns, cancellable)
}

/// The fields of an encoded text row: each length-prefixed, -1 for NULL.
fn values(row: &DataRow) -> Vec<Option<&[u8]>> {
    let mut values = Vec::with_capacity(row.field_count as usize);
    let mut data = &row.data[..];
    for _ in 0..row.field_count {
        let Some((length, rest)) = data.split_first_chunk::<4>() else {
            break;
        };
        let length = i32::from_be_bytes(*length);
        if length < 0 {
            values.push(None);
            data = rest;
        } else {
            let (value, rest) = rest.split_at((length as usize).min(rest.len()));
            values.push(Some(value));
            data = rest;
        }
    }
    values
}

/// One line of COPY data, ending in a newline.
fn line(values: &[Option<&[u8]>], format: &CopyFormat) -> Vec<u8> {
    let mut line = Vec::new();
    for (i, value) in values.iter().enumerate() {
        if i > 0 {
            line.push(format.delimiter);
        }
        match value {
            None => line.extend_from_slice(format.null.as_bytes()),
            Some(value) if format.csv => csv_field(&mut line, value, format),
            Some(value) => text_field(&mut line, value, format.delimiter),
        }
    }
    line.push(b'\n');
    line
}

/// A value in the text format: backslash, newline, carriage return, tab
/// and the delimiter escaped.
fn text_field(line: &mut Vec<u8>, value: &[u8], delimiter: u8) {
    for &byte in value {
        match byte {
            b'\\' => line.extend_from_slice(b"\\\\"),
            b'\n' => line.extend_from_slice(b"\\n"),
            b'\r' => line.extend_from_slice(b"\\r"),
            b'\t' if delimiter == b'\t' => line.extend_from_slice(b"\\t"),
            byte if byte == delimiter => {
                line.push(b'\\');
                line.push(byte);
            }
            byte => line.push(byte),
        }
    }
}

/// A value in CSV: quoted when it holds the delimiter, the quote, a line
/// break, or could be read as the NULL string (an empty value, by default).
fn csv_field(line: &mut Vec<u8>, value: &[u8], format: &CopyFormat) {
    let needs_quotes = value == format.null.as_bytes()
        || value
            .iter()
            .any(|&b| b == format.delimiter || b == format.quote || b == b'\n' || b == b'\r');
    if !needs_quotes {
        line.extend_from_slice(value);
        return;
    }
    line.push(format.quote);
    for &byte in value {
        if byte == format.quote {
            line.push(byte);
        }
        line.push(byte);
    }
    line.push(format.quote);
}
