//! Object storage by URL: `file:///absolute/path`, `memory://name` or
//! `s3://bucket/prefix`, each opened as a store rooted at that location.
//! Checkpoints, savepoints and file sources all name their storage this way.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use object_store::ObjectStore;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::prefix::PrefixStore;

use crate::{Error, Result};

fn storage_error(context: &str, e: impl std::fmt::Display) -> Error {
    Error::Storage(format!("{context}: {e}"))
}

/// `memory://` stores live as long as the process, shared by name, so a
/// database reopened in the same process finds what it wrote.
fn memory_store(name: &str) -> Arc<dyn ObjectStore> {
    static STORES: OnceLock<Mutex<HashMap<String, Arc<InMemory>>>> = OnceLock::new();
    let mut stores = STORES
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    let store = stores
        .entry(name.to_string())
        .or_insert_with(|| Arc::new(InMemory::new()));
    Arc::clone(store) as Arc<dyn ObjectStore>
}

/// The bucket of `s3://bucket/prefix`, with keys under `prefix`.
fn s3_store(url: &str, location: &str) -> Result<Arc<dyn ObjectStore>> {
    let (bucket, prefix) = location.split_once('/').unwrap_or((location, ""));
    if bucket.is_empty() {
        return Err(Error::Storage(format!(
            "{url}: an s3:// location needs a bucket, like s3://bucket/weir"
        )));
    }
    let bucket = AmazonS3Builder::from_env()
        .with_bucket_name(bucket)
        .build()
        .map_err(|e| storage_error(url, e))?;
    let prefix = prefix.trim_matches('/');
    Ok(if prefix.is_empty() {
        Arc::new(bucket)
    } else {
        let prefix = Path::parse(prefix).map_err(|e| storage_error(url, e))?;
        Arc::new(PrefixStore::new(bucket, prefix))
    })
}

/// Opens the store rooted at `url`. An S3 location takes its endpoint,
/// region and credentials from the standard `AWS_*` environment variables
/// (`AWS_ENDPOINT`, `AWS_REGION`, `AWS_ACCESS_KEY_ID`, ...); nothing is
/// contacted until it is first used. With `create`, a `file://` directory
/// is created when missing.
///
/// # Errors
/// `Error::Storage` for another scheme, a relative path, a directory that
/// is missing (or cannot be created), or an S3 URL or configuration that
/// does not parse.
pub fn open_object_store(url: &str, create: bool) -> Result<Arc<dyn ObjectStore>> {
    if let Some(path) = url.strip_prefix("file://") {
        if !path.starts_with('/') {
            return Err(Error::Storage(format!(
                "{url}: a file:// location needs an absolute path, like file:///var/lib/weir"
            )));
        }
        if create {
            std::fs::create_dir_all(path).map_err(|e| storage_error(url, e))?;
        }
        Ok(Arc::new(
            LocalFileSystem::new_with_prefix(path).map_err(|e| storage_error(url, e))?,
        ))
    } else if let Some(name) = url.strip_prefix("memory://") {
        Ok(memory_store(name))
    } else if let Some(location) = url.strip_prefix("s3://") {
        s3_store(url, location)
    } else {
        Err(Error::Storage(format!(
            "{url}: not a file://, memory:// or s3:// URL"
        )))
    }
}
