//! The directories SQL may name as `file://` locations.
//!
//! A file source's `path`, `SET checkpoint_storage` and `CREATE SAVEPOINT
//! ... TO` reach the server's file system with the server's rights, so a
//! client could read `/etc/shadow` through a source or have directories
//! created anywhere. Each such location must lie under one of the roots
//! the server was started with (its data directory, plus `--file-root`),
//! after symbolic links are resolved, and may not contain `..`. Refusals
//! are `42501`. `s3://` and `memory://` locations are not confined here.

use std::path::{Component, Path, PathBuf};

use datafusion::sql::sqlparser::ast::CreateTable;

use crate::options::WithOptions;
use crate::{Error, Result};

/// The roots, canonical.
#[derive(Debug, Clone, Default)]
pub struct FileRoots {
    roots: Vec<PathBuf>,
}

impl FileRoots {
    /// Roots from directories that exist; one that does not is skipped
    /// with a warning, so it confines rather than opens.
    pub fn new<'a>(dirs: impl IntoIterator<Item = &'a Path>) -> Self {
        let mut roots = Vec::new();
        for dir in dirs {
            match std::fs::canonicalize(dir) {
                Ok(root) => roots.push(root),
                Err(e) => tracing::warn!(root = %dir.display(), error = %e, "file root ignored"),
            }
        }
        Self { roots }
    }

    /// Adds the directories of `other`.
    pub fn extend(&mut self, other: FileRoots) {
        self.roots.extend(other.roots);
    }

    /// Refuses a `file://` URL outside every root, or with `..` in it.
    pub fn check(&self, url: &str) -> Result<()> {
        let Some(path) = url.strip_prefix("file://") else {
            return Ok(());
        };
        let path = Path::new(path);
        if path.is_relative() {
            // Object storage refuses it (22023), whoever's it would be.
            return Ok(());
        }
        if path.components().any(|c| c == Component::ParentDir) {
            return Err(forbidden(format!(
                "{url}: a file location may not contain \"..\""
            )));
        }
        let resolved = resolve(path);
        if self.roots.iter().any(|root| resolved.starts_with(root)) {
            return Ok(());
        }
        let roots: Vec<String> = self.roots.iter().map(|r| r.display().to_string()).collect();
        Err(forbidden(format!(
            "{url} is outside the directories weir may use ({}); start weir with --file-root to allow another",
            roots.join(", ")
        )))
    }

    /// Checks the `path` of a `CREATE SOURCE ... WITH (connector = 'file')`.
    pub fn check_source(&self, create: &CreateTable) -> Result<()> {
        let mut options = WithOptions::parse(&create.table_options, "source")?;
        match (options.take("connector").as_deref(), options.take("path")) {
            (Some("file"), Some(path)) => self.check(&path),
            _ => Ok(()),
        }
    }
}

/// Whether a `CREATE SOURCE` reads files or object storage (its
/// connector is `file`), which only superusers may do.
pub fn source_reads_storage(create: &CreateTable) -> Result<bool> {
    let mut options = WithOptions::parse(&create.table_options, "source")?;
    Ok(options.take("connector").as_deref() == Some("file"))
}

fn forbidden(message: String) -> Error {
    Error::user("42501", message)
}

/// `path` with symbolic links resolved as far as it exists; the rest, which
/// has no `..`, is appended as written.
fn resolve(path: &Path) -> PathBuf {
    let mut existing = path;
    let mut rest = Vec::new();
    loop {
        if let Ok(canonical) = std::fs::canonicalize(existing) {
            return rest.iter().rev().fold(canonical, |p, part| p.join(part));
        }
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_os_string());
                existing = parent;
            }
            _ => return path.to_path_buf(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_must_lie_under_a_root() {
        let root = tempfile::tempdir().unwrap();
        let roots = FileRoots::new([root.path()]);
        let inside = format!("file://{}/files/new/dir", root.path().display());
        roots.check(&inside).unwrap();
        roots.check("s3://bucket/anything").unwrap();
        for url in [
            "file:///etc/passwd".to_string(),
            format!("file://{}/../etc", root.path().display()),
            "file:///".to_string(),
        ] {
            let err = roots.check(&url).unwrap_err();
            assert!(
                matches!(err, Error::User { code: "42501", .. }),
                "{url}: {err}"
            );
        }
    }

    #[test]
    fn symbolic_links_out_of_a_root_are_refused() {
        let root = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("/etc", root.path().join("etc")).unwrap();
        let roots = FileRoots::new([root.path()]);
        let err = roots
            .check(&format!("file://{}/etc/passwd", root.path().display()))
            .unwrap_err();
        assert!(matches!(err, Error::User { code: "42501", .. }), "{err}");
    }
}
