//! [`CheckpointStorage`]: an `object_store` location holding checkpoints.

use std::path::Path as LocalPath;
use std::sync::Arc;

use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

use super::metadata::{CHECKPOINT_FORMAT, CheckpointMetadata, StoredFile};
use crate::object_url::open_object_store;
use crate::{Error, Result};

const METADATA: &str = "_metadata";
const SHARED: &str = "shared";
/// zstd level for `checkpoint_compression`: fast, as checkpoints are frequent.
const ZSTD_LEVEL: i32 = 1;

/// Checkpoints under one object storage URL.
#[derive(Debug, Clone)]
pub struct CheckpointStorage {
    url: String,
    store: Arc<dyn ObjectStore>,
    /// The root directory of a `file://` location: object stores leave
    /// empty directories behind, which are removed with their checkpoint.
    local_root: Option<std::path::PathBuf>,
}

fn storage_error(context: &str, e: impl std::fmt::Display) -> Error {
    Error::Storage(format!("{context}: {e}"))
}

/// The checkpoint directory of checkpoint `id`.
pub fn checkpoint_dir(id: u64) -> String {
    format!("chk-{id}")
}

impl CheckpointStorage {
    /// Opens `file:///absolute/path`, `memory://name` or
    /// `s3://bucket/prefix`. An S3 location takes its endpoint, region and
    /// credentials from the standard `AWS_*` environment variables
    /// (`AWS_ENDPOINT`, `AWS_REGION`, `AWS_ACCESS_KEY_ID`, ...); nothing is
    /// contacted until the first checkpoint.
    ///
    /// # Errors
    /// `Error::Storage` for another scheme, a relative path, a directory
    /// that cannot be created, or an S3 URL or configuration that does not
    /// parse.
    pub fn open(url: &str) -> Result<Self> {
        let local_root = url.strip_prefix("file://").map(std::path::PathBuf::from);
        let store = open_object_store(url, true)?;
        Ok(Self {
            url: url.to_string(),
            store,
            local_root,
        })
    }

    /// The `file://` URL of a local directory.
    pub fn file_url(dir: &LocalPath) -> String {
        format!("file://{}", dir.display())
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    fn path(&self, key: &str) -> Result<Path> {
        Path::parse(key).map_err(|e| storage_error(key, e))
    }

    /// Uploads a local file as `key`; returns what the checkpoint records.
    pub async fn upload(
        &self,
        local: &LocalPath,
        key: String,
        compress: bool,
        shared: bool,
    ) -> Result<StoredFile> {
        let contents = tokio::fs::read(local)
            .await
            .map_err(|e| storage_error(&local.display().to_string(), e))?;
        let name = local
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let size = contents.len() as u64;
        let checksum = twox_hash::XxHash64::oneshot(0, &contents);
        let stored: Vec<u8> = if compress {
            tokio::task::spawn_blocking(move || zstd::bulk::compress(&contents, ZSTD_LEVEL))
                .await
                .map_err(|e| storage_error("compression", e))?
                .map_err(|e| storage_error("compression", e))?
        } else {
            contents
        };
        let stored_size = stored.len() as u64;
        self.store
            .put(&self.path(&key)?, PutPayload::from(stored))
            .await
            .map_err(|e| storage_error(&key, e))?;
        Ok(StoredFile {
            name,
            key,
            size,
            stored_size,
            checksum,
            compressed: compress,
            shared,
        })
    }

    /// Downloads `file` into `dir`, checking its size and checksum.
    ///
    /// # Errors
    /// `Error::Corrupt` when the contents are not what was uploaded.
    pub async fn download(&self, file: &StoredFile, dir: &LocalPath) -> Result<()> {
        let stored = self
            .store
            .get(&self.path(&file.key)?)
            .await
            .map_err(|e| storage_error(&file.key, e))?
            .bytes()
            .await
            .map_err(|e| storage_error(&file.key, e))?;
        let contents = if file.compressed {
            zstd::bulk::decompress(&stored, file.size as usize)
                .map_err(|e| Error::Corrupt(format!("{}: {e}", file.key)))?
        } else {
            stored.to_vec()
        };
        if contents.len() as u64 != file.size
            || twox_hash::XxHash64::oneshot(0, &contents) != file.checksum
        {
            return Err(Error::Corrupt(format!(
                "{}: contents differ from what was uploaded (size or checksum)",
                file.key
            )));
        }
        let target = dir.join(&file.name);
        tokio::fs::write(&target, contents)
            .await
            .map_err(|e| storage_error(&target.display().to_string(), e))
    }

    /// Writes a checkpoint's `_metadata`: the checkpoint exists from now on.
    pub async fn write_metadata(&self, metadata: &CheckpointMetadata) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(metadata)
            .map_err(|e| Error::Internal(format!("checkpoint metadata: {e}")))?;
        let key = format!("{}/{METADATA}", checkpoint_dir(metadata.id));
        self.store
            .put(&self.path(&key)?, PutPayload::from(bytes))
            .await
            .map_err(|e| storage_error(&key, e))?;
        Ok(())
    }

    /// Reads checkpoint `id`'s `_metadata`.
    ///
    /// # Errors
    /// `Error::Corrupt` when it cannot be decoded or has another format.
    pub async fn read_metadata(&self, id: u64) -> Result<CheckpointMetadata> {
        let key = format!("{}/{METADATA}", checkpoint_dir(id));
        let bytes = self
            .store
            .get(&self.path(&key)?)
            .await
            .map_err(|e| storage_error(&key, e))?
            .bytes()
            .await
            .map_err(|e| storage_error(&key, e))?;
        let metadata: CheckpointMetadata =
            serde_json::from_slice(&bytes).map_err(|e| Error::Corrupt(format!("{key}: {e}")))?;
        if metadata.format != CHECKPOINT_FORMAT || metadata.id != id {
            return Err(Error::Corrupt(format!(
                "{key}: format {} of checkpoint {}, expected format {CHECKPOINT_FORMAT} of {id}",
                metadata.format, metadata.id
            )));
        }
        Ok(metadata)
    }

    /// Ids of every checkpoint that has its `_metadata`, ascending.
    pub async fn completed(&self) -> Result<Vec<u64>> {
        Ok(self
            .checkpoint_dirs()
            .await?
            .into_iter()
            .filter_map(|(id, complete)| complete.then_some(id))
            .collect())
    }

    /// The highest checkpoint id with anything stored, complete or not.
    pub async fn highest_id(&self) -> Result<Option<u64>> {
        Ok(self
            .checkpoint_dirs()
            .await?
            .into_iter()
            .map(|(id, _)| id)
            .max())
    }

    /// Checkpoint directories: (id, whether it has its `_metadata`).
    async fn checkpoint_dirs(&self) -> Result<Vec<(u64, bool)>> {
        let mut dirs: std::collections::BTreeMap<u64, bool> = Default::default();
        for key in self.list("").await? {
            let Some((dir, rest)) = key.split_once('/') else {
                continue;
            };
            if let Some(id) = dir.strip_prefix("chk-").and_then(|n| n.parse().ok()) {
                *dirs.entry(id).or_default() |= rest == METADATA;
            }
        }
        Ok(dirs.into_iter().collect())
    }

    /// Deletes the files of checkpoints that never got their `_metadata`
    /// (left by a crash or a failure).
    pub async fn delete_incomplete(&self) -> Result<()> {
        for (id, complete) in self.checkpoint_dirs().await? {
            if !complete {
                tracing::warn!(
                    checkpoint = id,
                    storage = %self.url,
                    "deleting checkpoint without _metadata (incomplete or damaged)"
                );
                self.delete_checkpoint(id).await?;
            }
        }
        Ok(())
    }

    /// Every object key under `prefix` ("" for all).
    async fn list(&self, prefix: &str) -> Result<Vec<String>> {
        let prefix = (!prefix.is_empty()).then(|| Path::from(prefix));
        let objects: Vec<_> = self
            .store
            .list(prefix.as_ref())
            .try_collect()
            .await
            .map_err(|e| storage_error(&self.url, e))?;
        Ok(objects
            .into_iter()
            .map(|o| o.location.to_string())
            .collect())
    }

    /// Stores `bytes` as `key`.
    pub async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<()> {
        self.store
            .put(&self.path(key)?, PutPayload::from(bytes))
            .await
            .map_err(|e| storage_error(key, e))?;
        Ok(())
    }

    /// The object `key`, or `None` when there is none.
    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let object = match self.store.get(&self.path(key)?).await {
            Ok(object) => object,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(storage_error(key, e)),
        };
        let bytes = object.bytes().await.map_err(|e| storage_error(key, e))?;
        Ok(Some(bytes.to_vec()))
    }

    /// Whether no object at all is stored under the location.
    pub async fn is_empty(&self) -> Result<bool> {
        Ok(self.list("").await?.is_empty())
    }

    /// Removes the location's local directories that hold nothing, deepest
    /// first, and the location's own if it ends up empty; any directory
    /// with something in it stays. Nothing to do for object stores.
    pub fn remove_empty_dirs(&self) {
        fn remove(dir: &std::path::Path) {
            if let Ok(entries) = std::fs::read_dir(dir) {
                for entry in entries.flatten() {
                    if entry.file_type().is_ok_and(|t| t.is_dir()) {
                        remove(&entry.path());
                    }
                }
            }
            // Fails, as it should, while the directory holds anything.
            let _ = std::fs::remove_dir(dir);
        }
        if let Some(root) = &self.local_root {
            remove(root);
        }
    }

    /// Every shared object key.
    pub async fn shared_keys(&self) -> Result<Vec<String>> {
        self.list(SHARED).await
    }

    /// Removes checkpoint `id`: its `_metadata` first, so it stops existing
    /// before its files go.
    pub async fn delete_checkpoint(&self, id: u64) -> Result<()> {
        let dir = checkpoint_dir(id);
        let _ = self.delete(&format!("{dir}/{METADATA}")).await;
        for key in self.list(&dir).await? {
            self.delete(&key).await?;
        }
        if let Some(root) = &self.local_root {
            let _ = std::fs::remove_dir_all(root.join(&dir));
        }
        Ok(())
    }

    /// Deletes one object; a missing one is not an error.
    pub async fn delete(&self, key: &str) -> Result<()> {
        match self.store.delete(&self.path(key)?).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(storage_error(key, e)),
        }
    }

    /// The key a checkpoint file goes to.
    pub fn file_key(checkpoint: Option<u64>, view: u64, position: u32, name: &str) -> String {
        match checkpoint {
            None => format!("{SHARED}/{view}/{position}/{name}"),
            Some(id) => format!("{}/{view}/{position}/{name}", checkpoint_dir(id)),
        }
    }
}
