//! [`SavepointLocation`]: where one savepoint's files live.

use super::entries::EncodedFile;
use super::manifest::{EntryFile, MANIFEST, SAVEPOINT_FORMAT, SavepointManifest};
use crate::checkpoint::CheckpointStorage;
use crate::{Error, Result};

/// One savepoint's directory in object storage: any URL checkpoint
/// storage takes (`file://`, `s3://`, `memory://`).
#[derive(Debug, Clone)]
pub struct SavepointLocation {
    storage: CheckpointStorage,
}

impl SavepointLocation {
    /// # Errors
    /// `Error::Storage` for a URL checkpoint storage refuses.
    pub fn open(url: &str) -> Result<Self> {
        Ok(Self {
            storage: CheckpointStorage::open(url.trim_end_matches('/'))?,
        })
    }

    /// The location `name` under `parent` (a directory URL).
    pub fn child_url(parent: &str, name: &str) -> String {
        format!("{}/{name}", parent.trim_end_matches('/'))
    }

    pub fn url(&self) -> &str {
        self.storage.url()
    }

    /// Stores an encoded file under `dir`; returns what the manifest records.
    pub async fn put(&self, dir: &str, file: EncodedFile) -> Result<EntryFile> {
        let key = format!("{dir}/{}", file.name);
        let size = file.bytes.len() as u64;
        let checksum = twox_hash::XxHash64::oneshot(0, &file.bytes);
        self.storage.put(&key, file.bytes).await?;
        Ok(EntryFile {
            key,
            key_groups: file.key_groups,
            entries: file.entries,
            size,
            checksum,
        })
    }

    /// A file's contents, checked against the manifest.
    ///
    /// # Errors
    /// `Error::Corrupt` when it is missing or differs from what was written.
    pub async fn read(&self, file: &EntryFile) -> Result<Vec<u8>> {
        let bytes = self.storage.get(&file.key).await?.ok_or_else(|| {
            Error::Corrupt(format!("{}: file {} is missing", self.url(), file.key))
        })?;
        if bytes.len() as u64 != file.size
            || twox_hash::XxHash64::oneshot(0, &bytes) != file.checksum
        {
            return Err(Error::Corrupt(format!(
                "{}: file {} differs from what was written (size or checksum)",
                self.url(),
                file.key
            )));
        }
        Ok(bytes)
    }

    /// Writes the manifest: the savepoint exists from now on.
    pub async fn write_manifest(&self, manifest: &SavepointManifest) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(manifest)
            .map_err(|e| Error::Internal(format!("savepoint manifest: {e}")))?;
        self.storage.put(MANIFEST, bytes).await
    }

    /// The manifest, or `None` when there is no savepoint here.
    ///
    /// # Errors
    /// `Error::Corrupt` when it cannot be decoded or has another format.
    pub async fn read_manifest(&self) -> Result<Option<SavepointManifest>> {
        let Some(bytes) = self.storage.get(MANIFEST).await? else {
            return Ok(None);
        };
        let manifest: SavepointManifest = serde_json::from_slice(&bytes)
            .map_err(|e| Error::Corrupt(format!("{}/{MANIFEST}: {e}", self.url())))?;
        if manifest.format != SAVEPOINT_FORMAT {
            return Err(Error::Corrupt(format!(
                "{}/{MANIFEST}: format {}, this weir reads format {SAVEPOINT_FORMAT}",
                self.url(),
                manifest.format
            )));
        }
        Ok(Some(manifest))
    }

    /// Whether nothing at all is stored here yet: a savepoint goes only
    /// into a new or empty location, so that dropping it later deletes
    /// nothing that was there before.
    pub async fn is_empty(&self) -> Result<bool> {
        self.storage.is_empty().await
    }

    /// Deletes the savepoint: its manifest first, so it stops existing
    /// before its files go, then the files the manifest lists and the
    /// directories they leave empty. Anything else stored there stays; so
    /// do the files of a savepoint whose manifest cannot be read.
    pub async fn delete(&self) -> Result<()> {
        let manifest = self.read_manifest().await.ok().flatten();
        self.storage.delete(MANIFEST).await?;
        if let Some(manifest) = manifest {
            for file in manifest.files() {
                self.storage.delete(&file.key).await?;
            }
        }
        self.storage.remove_empty_dirs();
        Ok(())
    }
}
