//! The pure decisions of incremental checkpoints: which files to upload,
//! which checkpoints to keep, which shared files nothing references.

use std::collections::{BTreeMap, HashMap, HashSet};

use super::metadata::{CheckpointMetadata, StoredFile};

/// Whether a store file is immutable once written, so that one upload can
/// serve every later checkpoint that still has it: RocksDB's SST and
/// OPTIONS files (numbered, never rewritten; the MANIFEST grows).
pub fn is_shareable(name: &str) -> bool {
    name.ends_with(".sst") || name.starts_with("OPTIONS-")
}

/// A snapshot's files split into those already uploaded (by an earlier
/// checkpoint of the same store) and those to upload now.
#[derive(Debug, Default, PartialEq)]
pub struct UploadPlan {
    pub reused: Vec<StoredFile>,
    pub upload: Vec<String>,
}

/// Plans a store's upload: shareable files uploaded before are reused when
/// `incremental`; everything else is uploaded.
pub fn plan_upload(
    files: &[String],
    uploaded: &HashMap<String, StoredFile>,
    incremental: bool,
) -> UploadPlan {
    let mut plan = UploadPlan::default();
    for name in files {
        match uploaded.get(name) {
            Some(file) if incremental && is_shareable(name) => plan.reused.push(file.clone()),
            _ => plan.upload.push(name.clone()),
        }
    }
    plan
}

/// The completed checkpoints (ids, any order) that retention removes:
/// all but the newest `retained` (at least one is always kept).
pub fn checkpoints_to_delete(completed: &[u64], retained: usize) -> Vec<u64> {
    let mut ids = completed.to_vec();
    ids.sort_unstable_by(|a, b| b.cmp(a));
    ids.into_iter().skip(retained.max(1)).collect()
}

/// Shared object keys that no kept checkpoint and no live store references.
pub fn unreferenced<'a>(
    shared: impl IntoIterator<Item = &'a str>,
    kept: &[CheckpointMetadata],
    live: &HashSet<String>,
) -> Vec<String> {
    let referenced: HashSet<&str> = kept.iter().flat_map(CheckpointMetadata::keys).collect();
    shared
        .into_iter()
        .filter(|key| !referenced.contains(key) && !live.contains(*key))
        .map(str::to_string)
        .collect()
}

/// Per table, the lowest log offset any kept checkpoint resumes a source
/// from: the log below it is needed by none of them. Tables no kept
/// checkpoint reads are absent (a new reader starts from a snapshot).
pub fn log_floors(kept: &[CheckpointMetadata]) -> BTreeMap<u64, u64> {
    let mut floors = BTreeMap::new();
    for source in kept.iter().flat_map(|c| &c.views).flat_map(|v| &v.sources) {
        floors
            .entry(source.table)
            .and_modify(|floor: &mut u64| *floor = (*floor).min(source.offset))
            .or_insert(source.offset);
    }
    floors
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::metadata::{SourceOffset, StoreCheckpoint, ViewCheckpoint};

    fn file(name: &str, key: &str) -> StoredFile {
        StoredFile {
            name: name.into(),
            key: key.into(),
            size: 1,
            stored_size: 1,
            checksum: 0,
            compressed: false,
            shared: true,
        }
    }

    fn checkpoint(id: u64, keys: &[&str]) -> CheckpointMetadata {
        CheckpointMetadata {
            format: 1,
            id,
            epoch: id,
            triggered_at_ms: 0,
            views: vec![ViewCheckpoint {
                view: 1,
                name: "v".into(),
                stores: vec![StoreCheckpoint {
                    position: 1,
                    identity: "v.1".into(),
                    files: keys.iter().map(|k| file(k, k)).collect(),
                }],
                sources: vec![],
            }],
        }
    }

    #[test]
    fn uploads_each_sst_once_and_private_files_every_time() {
        let uploaded: HashMap<String, StoredFile> = [(
            "000007.sst".to_string(),
            file("000007.sst", "shared/1/1/a-000007.sst"),
        )]
        .into();
        let files = ["000007.sst", "000009.sst", "MANIFEST-000005", "CURRENT"].map(String::from);
        let plan = plan_upload(&files, &uploaded, true);
        assert_eq!(
            plan.reused,
            vec![file("000007.sst", "shared/1/1/a-000007.sst")]
        );
        assert_eq!(plan.upload, ["000009.sst", "MANIFEST-000005", "CURRENT"]);

        let full = plan_upload(&files, &uploaded, false);
        assert!(full.reused.is_empty());
        assert_eq!(
            full.upload.len(),
            4,
            "without incremental every file goes up"
        );
    }

    #[test]
    fn keeps_the_newest_checkpoints() {
        assert_eq!(checkpoints_to_delete(&[3, 1, 4, 2], 2), vec![2, 1]);
        assert_eq!(checkpoints_to_delete(&[1, 2], 3), Vec::<u64>::new());
        assert_eq!(
            checkpoints_to_delete(&[1, 2], 0),
            vec![1],
            "one is always kept"
        );
    }

    #[test]
    fn deletes_only_files_nothing_references() {
        let kept = [
            checkpoint(4, &["s/a", "s/b"]),
            checkpoint(5, &["s/b", "s/c"]),
        ];
        let live: HashSet<String> = ["s/d".to_string()].into();
        let shared = ["s/a", "s/b", "s/c", "s/d", "s/old", "s/failed"];
        assert_eq!(unreferenced(shared, &kept, &live), ["s/old", "s/failed"]);
    }

    #[test]
    fn log_floors_are_the_lowest_offset_any_kept_checkpoint_resumes_from() {
        let with_sources = |id, sources: &[(u64, u64)]| {
            let mut c = checkpoint(id, &[]);
            c.views[0].sources = sources
                .iter()
                .enumerate()
                .map(|(i, &(table, offset))| SourceOffset {
                    position: i as u32,
                    table,
                    offset,
                })
                .collect();
            c
        };
        let kept = [
            with_sources(4, &[(1, 100), (2, 50), (1, 80)]),
            with_sources(5, &[(1, 120), (2, 40)]),
        ];
        assert_eq!(log_floors(&kept), BTreeMap::from([(1, 80), (2, 40)]));
        assert!(log_floors(&[]).is_empty());
    }
}
