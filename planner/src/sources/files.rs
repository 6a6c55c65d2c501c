//! `connector = 'file'`: rows of CSV, JSON-lines or Parquet files, with
//! the columns the source declares.
//!
//! Options:
//! - `path` (required): a `file://`, `s3://` or `memory://` URL. One ending
//!   in `/` (or a local directory) reads every file under it, in path
//!   order, skipping names that start with `.` or `_`; another reads one
//!   file.
//! - `format` (required): `csv`, `json` (one object per line) or `parquet`.
//!   CSV columns are taken by position, JSON and Parquet columns by name.
//! - `'csv.header'` (`true` by default) and `'csv.delimiter'` (one
//!   character, `,` by default).
//! - `discovery_interval` (`1s` by default): how often a directory is
//!   listed again for new files once its rows are read; `off` reads the
//!   files present when the source is first read, a bounded run that
//!   batch queries can also read.

use std::sync::Arc;
use std::time::Duration;

use datafusion::arrow::datatypes::Schema;
use datafusion::sql::sqlparser::ast::CreateTable;
use object_store::path::Path;
use weir_executor::checkpoint::settings::parse_duration;
use weir_executor::files::{FileFormat, FileLocation, FileRows};
use weir_executor::generated::GeneratedRows;

use super::declared_columns;
use crate::Result;
use crate::options::{WithOptions, invalid};

const DEFAULT_DISCOVERY: Duration = Duration::from_secs(1);

/// The rows a file source declared by `create` reads.
pub(super) fn rows(
    create: &CreateTable,
    mut options: WithOptions,
) -> Result<Arc<dyn GeneratedRows>> {
    let schema = Arc::new(Schema::new(declared_columns(create, "file", true)?));
    let url = options.take("path").ok_or_else(|| {
        invalid("a file source needs WITH (path = 'file:///...' or 's3://...')".into())
    })?;
    let location = location(&url)?;
    let format = format(&mut options)?;
    let discovery = match options.take("discovery_interval") {
        None => Some(DEFAULT_DISCOVERY),
        Some(text) if text.trim().eq_ignore_ascii_case("off") => None,
        Some(text) => Some(parse_duration(&text).ok_or_else(|| {
            invalid(format!(
                "option discovery_interval: \"{text}\" is not a duration (e.g. '1s', '500ms') or off"
            ))
        })?),
    };
    options.finish("connector 'file'")?;
    Ok(Arc::new(FileRows::new(location, format, schema, discovery)))
}

/// The store and file a `path` names.
fn location(url: &str) -> Result<FileLocation> {
    let directory = url.ends_with('/')
        || url
            .strip_prefix("file://")
            .is_some_and(|path| std::path::Path::new(path).is_dir());
    let (root, file) = if directory {
        (url.trim_end_matches('/'), None)
    } else {
        match url.rsplit_once('/') {
            Some((parent, name)) if !name.is_empty() && parent.contains("://") => {
                (parent, Some(name))
            }
            _ => {
                return Err(invalid(format!(
                    "option path: \"{url}\" names no file or directory"
                )));
            }
        }
    };
    let store = weir_storage::open_object_store(root, false)
        .map_err(|e| invalid(format!("option path: {e}")))?;
    let file = file
        .map(Path::parse)
        .transpose()
        .map_err(|e| invalid(format!("option path: {e}")))?;
    Ok(FileLocation {
        url: url.to_string(),
        store,
        file,
    })
}

fn format(options: &mut WithOptions) -> Result<FileFormat> {
    let name = options.take("format").ok_or_else(|| {
        invalid("a file source needs WITH (format = 'csv', 'json' or 'parquet')".into())
    })?;
    let format = FileFormat::from_name(&name).ok_or_else(|| {
        invalid(format!(
            "option format: \"{name}\" is not csv, json or parquet"
        ))
    })?;
    let header = options.take("csv.header");
    let delimiter = options.take("csv.delimiter");
    let FileFormat::Csv { .. } = format else {
        if header.is_some() || delimiter.is_some() {
            return Err(invalid(format!(
                "csv options do not apply to format '{name}'"
            )));
        }
        return Ok(format);
    };
    let header = match header.map(|h| h.trim().to_ascii_lowercase()) {
        None => true,
        Some(h) if matches!(h.as_str(), "true" | "on" | "yes" | "1") => true,
        Some(h) if matches!(h.as_str(), "false" | "off" | "no" | "0") => false,
        Some(h) => {
            return Err(invalid(format!(
                "option csv.header: \"{h}\" is not true or false"
            )));
        }
    };
    let delimiter = match delimiter.as_deref().map(str::as_bytes) {
        None => b',',
        Some([byte]) if byte.is_ascii() => *byte,
        Some(_) => {
            return Err(invalid(
                "option csv.delimiter: must be one ASCII character".into(),
            ));
        }
    };
    Ok(FileFormat::Csv { header, delimiter })
}
