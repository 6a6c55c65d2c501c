//! `COPY table [(columns)] FROM STDIN`: rows sent by the client in
//! PostgreSQL's text or CSV format, written to a table in one statement
//! (all rows or none, inside a transaction block staged like an INSERT).
//! Each field is read as text and cast to its column's type as a string
//! literal would be; in the binary format each field is first read as its
//! column's binary form ([`super::copy_binary`]). `COPY table | (query) TO
//! STDOUT` sends a relation's rows in any of the three. COPY to or from a file or program is refused: the
//! client's side (`psql \copy`) reads and writes files.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::common::ScalarValue;
use datafusion::datasource::provider_as_source;
use datafusion::execution::context::SessionContext;
use datafusion::logical_expr::dml::InsertOp;
use datafusion::logical_expr::{Expr, LogicalPlanBuilder, cast, col, lit};
use datafusion::sql::sqlparser::ast::{
    CopyLegacyCsvOption, CopyLegacyOption, CopyOption, CopySource, CopyTarget, Statement,
};

use super::copy_binary::binary_rows;
use super::{Database, Prepared};
use crate::ddl::table_name;
use crate::{Error, Result};

/// How the rows of a COPY are written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyFormat {
    /// CSV, or else PostgreSQL's text format.
    pub csv: bool,
    /// PostgreSQL's binary format ([`super::copy_binary`]): the others
    /// then do not apply.
    pub binary: bool,
    pub delimiter: u8,
    /// The text that stands for NULL.
    pub null: String,
    /// Whether the first line names the columns (CSV only).
    pub header: bool,
    pub quote: u8,
}

impl CopyFormat {
    fn text() -> Self {
        Self {
            csv: false,
            binary: false,
            delimiter: b'\t',
            null: "\\N".into(),
            header: false,
            quote: b'"',
        }
    }

    fn csv() -> Self {
        Self {
            csv: true,
            delimiter: b',',
            null: String::new(),
            ..Self::text()
        }
    }
}

/// A `COPY ... FROM STDIN` about to receive its rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyIn {
    pub table: String,
    /// The columns the rows give, in their order.
    pub columns: Vec<String>,
    pub format: CopyFormat,
}

fn unsupported(what: &str) -> Error {
    Error::not_supported(format!("COPY {what} is not supported"))
}

fn single_byte(c: char, what: &str) -> Result<u8> {
    u8::try_from(c).ok().filter(u8::is_ascii).ok_or_else(|| {
        Error::user(
            "22023",
            format!("COPY {what} must be a single one-byte character"),
        )
    })
}

/// The format a COPY's options describe.
fn copy_format(options: &[CopyOption], legacy: &[CopyLegacyOption]) -> Result<CopyFormat> {
    let mut csv = legacy.iter().any(|o| matches!(o, CopyLegacyOption::Csv(_)));
    let mut binary = legacy.iter().any(|o| matches!(o, CopyLegacyOption::Binary));
    for option in options {
        if let CopyOption::Format(name) = option {
            match name.value.to_ascii_lowercase().as_str() {
                "csv" => (csv, binary) = (true, false),
                "text" => (csv, binary) = (false, false),
                "binary" => (csv, binary) = (false, true),
                other => return Err(unsupported(&format!("in format {other}"))),
            }
        }
    }
    if binary {
        let only_format = options.iter().all(|o| {
            matches!(
                o,
                CopyOption::Format(_) | CopyOption::Encoding(_) | CopyOption::Freeze(_)
            )
        }) && legacy.iter().all(|o| matches!(o, CopyLegacyOption::Binary));
        if !only_format {
            return Err(Error::user(
                "42601",
                "COPY in binary format takes no DELIMITER, NULL, HEADER or QUOTE",
            ));
        }
        return Ok(CopyFormat {
            binary: true,
            ..CopyFormat::text()
        });
    }
    let mut format = if csv {
        CopyFormat::csv()
    } else {
        CopyFormat::text()
    };
    for option in options {
        match option {
            CopyOption::Format(_) | CopyOption::Encoding(_) | CopyOption::Freeze(_) => {}
            CopyOption::Delimiter(c) => format.delimiter = single_byte(*c, "delimiter")?,
            CopyOption::Null(null) => format.null = null.clone(),
            CopyOption::Header(header) => format.header = *header,
            CopyOption::Quote(c) => format.quote = single_byte(*c, "quote")?,
            other => return Err(unsupported(&format!("option {other}"))),
        }
    }
    for option in legacy {
        match option {
            CopyLegacyOption::Delimiter(c) => format.delimiter = single_byte(*c, "delimiter")?,
            CopyLegacyOption::Null(null) => format.null = null.clone(),
            CopyLegacyOption::Header => format.header = true,
            CopyLegacyOption::Csv(csv_options) => {
                for option in csv_options {
                    match option {
                        CopyLegacyCsvOption::Header => format.header = true,
                        CopyLegacyCsvOption::Quote(c) => {
                            format.quote = single_byte(*c, "quote")?;
                        }
                        other => return Err(unsupported(&format!("option {other}"))),
                    }
                }
            }
            other => return Err(unsupported(&format!("option {other}"))),
        }
    }
    if format.header && !format.csv {
        return Err(Error::not_supported(
            "COPY HEADER is available only in CSV mode",
        ));
    }
    Ok(format)
}

impl Database {
    /// A COPY statement, if `statement` is one weir runs.
    pub(super) async fn prepare_copy(
        &self,
        ctx: &SessionContext,
        statement: &Statement,
    ) -> Result<Prepared> {
        if let Statement::Copy {
            source,
            to: true,
            target: CopyTarget::Stdout,
            options,
            legacy_options,
            ..
        } = statement
        {
            let query = match source {
                CopySource::Query(query) => Statement::Query(query.clone()),
                CopySource::Table {
                    table_name,
                    columns,
                } => {
                    let columns = if columns.is_empty() {
                        "*".to_string()
                    } else {
                        columns
                            .iter()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                            .join(", ")
                    };
                    let sql = format!("SELECT {columns} FROM {table_name}");
                    let mut parsed = self.parser.parse(&sql)?;
                    match parsed.pop() {
                        Some(parsed) => parsed.statement,
                        None => return Err(Error::Internal(format!("{sql} did not parse"))),
                    }
                }
            };
            return Ok(Prepared::CopyOut {
                plan: self.plan(ctx, query).await?,
                format: copy_format(options, legacy_options)?,
            });
        }
        Ok(Prepared::CopyIn(self.copy_target(ctx, statement).await?))
    }

    /// The table and columns of a `COPY ... FROM STDIN`.
    async fn copy_target(&self, ctx: &SessionContext, statement: &Statement) -> Result<CopyIn> {
        let Statement::Copy {
            source,
            to,
            target,
            options,
            legacy_options,
            ..
        } = statement
        else {
            return Err(Error::Internal("not a COPY".into()));
        };
        let (
            CopySource::Table {
                table_name: name,
                columns,
            },
            false,
            CopyTarget::Stdin,
        ) = (source, to, target)
        else {
            return Err(unsupported(
                "with a file or program (psql's \\copy reads and writes client files)",
            ));
        };
        let table = table_name(name)?;
        let provider = ctx
            .table_provider(table.as_str())
            .await
            .map_err(|_| Error::user("42P01", format!("relation \"{table}\" does not exist")))?;
        let schema = provider.schema();
        let columns = if columns.is_empty() {
            schema.fields().iter().map(|f| f.name().clone()).collect()
        } else {
            let mut named = Vec::new();
            for column in columns {
                let name = column.value.clone();
                if schema.field_with_name(&name).is_err() {
                    return Err(Error::user(
                        "42703",
                        format!("column \"{name}\" of relation \"{table}\" does not exist"),
                    ));
                }
                named.push(name);
            }
            named
        };
        Ok(CopyIn {
            table,
            columns,
            format: copy_format(options, legacy_options)?,
        })
    }

    /// Writes the rows of a finished `COPY ... FROM STDIN`; how many.
    pub async fn copy_in(&self, ctx: &SessionContext, copy: &CopyIn, data: &[u8]) -> Result<u64> {
        let provider = ctx.table_provider(copy.table.as_str()).await?;
        let target = provider.schema();
        let rows = if copy.format.binary {
            let fields: Vec<&Field> = copy
                .columns
                .iter()
                .filter_map(|name| target.field_with_name(name).ok())
                .collect();
            binary_rows(data, &fields)?
        } else {
            parse_rows(&copy.format, data, copy.columns.len())?
        };
        let count = rows.len() as u64;
        if rows.is_empty() {
            return Ok(0);
        }
        let text_columns: Vec<ArrayRef> = (0..copy.columns.len())
            .map(|i| {
                Arc::new(StringArray::from_iter(
                    rows.iter().map(|row| row[i].as_deref()),
                )) as ArrayRef
            })
            .collect();
        let fields: Vec<Field> = copy
            .columns
            .iter()
            .map(|name| Field::new(name, DataType::Utf8, true))
            .collect();
        let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), text_columns)
            .map_err(|e| Error::Internal(format!("COPY rows: {e}")))?;
        // Every column of the table, in its order: given ones cast from
        // their text, the others NULL.
        let projection: Vec<Expr> = target
            .fields()
            .iter()
            .map(|field| {
                let value = if copy.columns.contains(field.name()) {
                    cast(
                        col(format!("\"{}\"", field.name())),
                        field.data_type().clone(),
                    )
                } else {
                    cast(lit(ScalarValue::Null), field.data_type().clone())
                };
                value.alias(field.name())
            })
            .collect();
        let input = ctx
            .read_batch(batch)?
            .select(projection)?
            .into_unoptimized_plan();
        let plan = LogicalPlanBuilder::insert_into(
            input,
            copy.table.as_str(),
            provider_as_source(provider),
            InsertOp::Append,
        )?
        .build()?;
        ctx.execute_logical_plan(plan).await?.collect().await?;
        Ok(count)
    }
}

/// The rows of COPY data: each a field per column, `None` for NULL.
pub fn parse_rows(
    format: &CopyFormat,
    data: &[u8],
    columns: usize,
) -> Result<Vec<Vec<Option<String>>>> {
    let rows = if format.csv {
        csv_rows(format, data)?
    } else {
        text_rows(format, data)?
    };
    for (line, row) in rows.iter().enumerate() {
        if row.len() != columns {
            return Err(Error::user(
                "22P04",
                format!(
                    "COPY row {} has {} fields, the table takes {columns}",
                    line + 1,
                    row.len()
                ),
            ));
        }
    }
    Ok(rows)
}

fn bad_data(message: String) -> Error {
    Error::user("22P04", message)
}

/// PostgreSQL's text format: a line per row, fields split by the
/// delimiter, `\N` for NULL, backslash escapes; `\.` alone ends the data.
fn text_rows(format: &CopyFormat, data: &[u8]) -> Result<Vec<Vec<Option<String>>>> {
    let text = std::str::from_utf8(data)
        .map_err(|e| Error::user("22021", format!("COPY data is not UTF-8: {e}")))?;
    let delimiter = char::from(format.delimiter);
    let mut rows = Vec::new();
    let text = text.strip_suffix('\n').unwrap_or(text);
    if text.is_empty() {
        return Ok(rows);
    }
    for line in text.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line == "\\." {
            break;
        }
        let row = line
            .split(delimiter)
            .map(|field| {
                if field == format.null {
                    Ok(None)
                } else {
                    unescape(field).map(Some)
                }
            })
            .collect::<Result<Vec<_>>>()?;
        rows.push(row);
    }
    Ok(rows)
}

/// A text-format field with its backslash escapes resolved.
fn unescape(field: &str) -> Result<String> {
    if !field.contains('\\') {
        return Ok(field.to_string());
    }
    let mut out = String::with_capacity(field.len());
    let mut chars = field.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('b') => out.push('\u{8}'),
            Some('f') => out.push('\u{c}'),
            Some('v') => out.push('\u{b}'),
            Some(other) => out.push(other),
            None => return Err(bad_data("COPY field ends in a lone backslash".into())),
        }
    }
    Ok(out)
}

/// CSV: quoted fields may hold delimiters, quotes (doubled) and newlines;
/// an unquoted field equal to the NULL string is NULL, a quoted one never.
fn csv_rows(format: &CopyFormat, data: &[u8]) -> Result<Vec<Vec<Option<String>>>> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(format.header)
        .delimiter(format.delimiter)
        .quote(format.quote)
        .flexible(true)
        .from_reader(data);
    let mut rows = Vec::new();
    let mut record = csv::ByteRecord::new();
    loop {
        match reader.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => return Err(bad_data(format!("COPY data is not valid CSV: {e}"))),
        }
        if record.len() == 1 && record.get(0) == Some(b"\\.") {
            break;
        }
        let quoted = raw_quoted_fields(&record, reader.position(), data, format);
        let row = record
            .iter()
            .enumerate()
            .map(|(i, field)| {
                let text = std::str::from_utf8(field)
                    .map_err(|e| Error::user("22021", format!("COPY data is not UTF-8: {e}")))?;
                let is_quoted = quoted.get(i).copied().unwrap_or(false);
                Ok(if !is_quoted && text == format.null {
                    None
                } else {
                    Some(text.to_string())
                })
            })
            .collect::<Result<Vec<_>>>()?;
        rows.push(row);
    }
    Ok(rows)
}

/// Which fields of the record that ends at `end` were quoted in `data`:
/// the csv reader gives their text only, and `""` (quoted empty) is an
/// empty string where the bare empty field is NULL.
fn raw_quoted_fields(
    record: &csv::ByteRecord,
    end: &csv::Position,
    data: &[u8],
    format: &CopyFormat,
) -> Vec<bool> {
    let Some(start) = record.position().map(|p| p.byte() as usize) else {
        return Vec::new();
    };
    let end = (end.byte() as usize).min(data.len());
    let raw = &data[start.min(end)..end];
    let mut quoted = Vec::new();
    let mut at_field_start = true;
    let mut in_quotes = false;
    for &byte in raw {
        if at_field_start {
            quoted.push(byte == format.quote);
            at_field_start = false;
            if byte == format.quote {
                in_quotes = true;
                continue;
            }
        }
        if byte == format.quote {
            in_quotes = !in_quotes;
        } else if !in_quotes && byte == format.delimiter {
            at_field_start = true;
        } else if !in_quotes && (byte == b'\n' || byte == b'\r') {
            break;
        }
    }
    if at_field_start {
        quoted.push(false);
    }
    quoted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_rows_split_unescape_and_stop_at_the_end_marker() {
        let rows = parse_rows(
            &CopyFormat::text(),
            b"1\tone\\ttab\n2\t\\N\n\\.\nignored\n",
            2,
        )
        .unwrap();
        assert_eq!(
            rows,
            vec![
                vec![Some("1".into()), Some("one\ttab".into())],
                vec![Some("2".into()), None],
            ]
        );
        assert!(parse_rows(&CopyFormat::text(), b"1\t2\t3\n", 2).is_err());
    }

    #[test]
    fn csv_rows_keep_quoted_text_and_read_bare_empty_as_null() {
        let format = CopyFormat {
            header: true,
            ..CopyFormat::csv()
        };
        let rows = parse_rows(
            &format,
            b"k,s\n1,\"a,b\"\n2,\n3,\"\"\n4,\"say \"\"hi\"\"\"\n",
            2,
        )
        .unwrap();
        assert_eq!(
            rows,
            vec![
                vec![Some("1".into()), Some("a,b".into())],
                vec![Some("2".into()), None],
                vec![Some("3".into()), Some(String::new())],
                vec![Some("4".into()), Some("say \"hi\"".into())],
            ]
        );
    }
}
