//! The files of a file source, in the order their rows are numbered.
//!
//! Files are read in path order; row offsets run on from one file to the
//! next. A file's offsets are known once it has been decoded, so files are
//! counted in order as rows are asked for. A new listing may only add files
//! that sort after every file already known (as timestamped or numbered
//! names do), and a known file must not change: either would renumber rows
//! already emitted, and is refused rather than read.

use object_store::ObjectMeta;
use object_store::path::Path;

/// One file, and where its rows start once the files before it are counted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct KnownFile {
    pub path: Path,
    pub size: u64,
    /// Its rows, once decoded.
    pub rows: Option<u64>,
}

#[derive(Debug, Default)]
pub(super) struct Listing {
    pub files: Vec<KnownFile>,
}

/// Whether a listed object is data: not hidden (`.name`) nor a marker
/// (`_SUCCESS`, `_metadata`).
fn is_data(meta: &ObjectMeta) -> bool {
    meta.location
        .filename()
        .is_some_and(|name| !name.starts_with('.') && !name.starts_with('_'))
}

impl Listing {
    /// Adds what a new listing found; returns how many files are new.
    ///
    /// # Errors
    /// A message naming the file when a known one changed size or a new one
    /// sorts before a known one.
    pub fn merge(&mut self, listed: Vec<ObjectMeta>) -> Result<usize, String> {
        let mut listed: Vec<ObjectMeta> = listed.into_iter().filter(is_data).collect();
        listed.sort_by(|a, b| a.location.cmp(&b.location));
        let mut added = 0;
        for meta in listed {
            match self.files.iter().find(|f| f.path == meta.location) {
                Some(known) if known.size != meta.size => {
                    return Err(format!(
                        "file {} changed after it was read ({} bytes, now {}): files must not change once written",
                        meta.location, known.size, meta.size
                    ));
                }
                Some(_) => {}
                None => {
                    if let Some(last) = self.files.last()
                        && meta.location < last.path
                    {
                        return Err(format!(
                            "file {} appeared after {} was read: new files must sort after the files already read (name them by time or sequence)",
                            meta.location, last.path
                        ));
                    }
                    self.files.push(KnownFile {
                        path: meta.location,
                        size: meta.size,
                        rows: None,
                    });
                    added += 1;
                }
            }
        }
        Ok(added)
    }

    /// The first offset after the counted files, and the index of the first
    /// file not yet counted.
    pub fn counted(&self) -> (u64, usize) {
        let mut end = 0;
        for (index, file) in self.files.iter().enumerate() {
            match file.rows {
                Some(rows) => end += rows,
                None => return (end, index),
            }
        }
        (end, self.files.len())
    }

    /// The counted files holding offsets in `from..to`, each with the
    /// offset of its first row.
    pub fn covering(&self, from: u64, to: u64) -> Vec<(usize, u64)> {
        let mut first = 0;
        let mut covering = Vec::new();
        for (index, file) in self.files.iter().enumerate() {
            let Some(rows) = file.rows else { break };
            if first < to && from < first + rows {
                covering.push((index, first));
            }
            first += rows;
        }
        covering
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(path: &str, size: u64) -> ObjectMeta {
        ObjectMeta {
            location: Path::from(path),
            last_modified: Default::default(),
            size,
            e_tag: None,
            version: None,
        }
    }

    #[test]
    fn files_are_numbered_in_path_order_and_only_grow_at_the_end() {
        let mut listing = Listing::default();
        let added = listing
            .merge(vec![
                meta("b.csv", 5),
                meta("a.csv", 3),
                meta("_SUCCESS", 0),
                meta(".a.crc", 1),
            ])
            .unwrap();
        assert_eq!(added, 2);
        assert_eq!(listing.files[0].path, Path::from("a.csv"));
        assert_eq!(listing.counted(), (0, 0));
        listing.files[0].rows = Some(10);
        listing.files[1].rows = Some(4);
        assert_eq!(listing.counted(), (14, 2));
        assert_eq!(listing.covering(8, 12), vec![(0, 0), (1, 10)]);
        assert_eq!(listing.covering(10, 11), vec![(1, 10)]);

        assert_eq!(
            listing.merge(vec![meta("a.csv", 3), meta("c.csv", 1)]),
            Ok(1)
        );
        assert_eq!(listing.counted(), (14, 2));
        let late = listing.merge(vec![meta("a0.csv", 1)]).unwrap_err();
        assert!(late.contains("a0.csv appeared after c.csv"), "{late}");
        let changed = listing.merge(vec![meta("b.csv", 6)]).unwrap_err();
        assert!(changed.contains("b.csv changed"), "{changed}");
    }
}
