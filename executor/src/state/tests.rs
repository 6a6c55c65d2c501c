//! StateTable over both store backends.

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, Int64Array, RecordBatch, StringArray};
use weir_storage::{MemoryStateStore, RocksStateStore, StateStore};

use super::{StateTable, StateTableId};
use crate::message::{Epoch, StreamChunk};

fn rows(text: &str) -> RecordBatch {
    StreamChunk::from_pretty(text).unwrap().data().clone()
}

fn table(store: Arc<dyn StateStore>, id: u32) -> StateTable {
    let schema = rows("I T").schema();
    StateTable::new(store, StateTableId(id), schema, vec![0]).unwrap()
}

fn keys(ids: &[i64]) -> Vec<ArrayRef> {
    vec![Arc::new(Int64Array::from(ids.to_vec()))]
}

/// (id, name) of every row, sorted by id.
fn contents(table: &StateTable, batch_rows: usize) -> Vec<(i64, Option<String>)> {
    let mut all = Vec::new();
    table
        .scan(batch_rows, |batch| {
            assert!(batch.num_rows() <= batch_rows);
            let ids = batch
                .column(0)
                .as_any()
                .downcast_ref::<Int64Array>()
                .unwrap();
            let names = batch
                .column(1)
                .as_any()
                .downcast_ref::<StringArray>()
                .unwrap();
            for i in 0..batch.num_rows() {
                all.push((
                    ids.value(i),
                    (!names.is_null(i)).then(|| names.value(i).to_string()),
                ));
            }
            Ok(true)
        })
        .unwrap();
    all.sort();
    all
}

fn reads_its_own_writes_and_commits_them(store: Arc<dyn StateStore>) {
    let mut t = table(Arc::clone(&store), 1);
    t.insert(&rows("I T\n+ 1 a\n+ 2 b\n+ 3 .")).unwrap();
    let lookup = t.get(&keys(&[2, 9, 3])).unwrap();
    assert_eq!(lookup.found, vec![Some(0), None, Some(1)]);
    assert_eq!(lookup.rows.num_rows(), 2);
    assert!(t.is_dirty());
    t.commit(Epoch(1)).unwrap();
    assert!(!t.is_dirty());

    // Uncommitted changes on top of committed state.
    t.delete(&rows("I T\n+ 2 b")).unwrap();
    t.insert(&rows("I T\n+ 1 z\n+ 4 d")).unwrap();
    let expected = vec![(1, Some("z".into())), (3, None), (4, Some("d".into()))];
    assert_eq!(contents(&t, 2), expected);

    // A second handle on the store sees only committed state.
    let other = table(Arc::clone(&store), 1);
    assert_eq!(contents(&other, 10).len(), 3);
    t.commit(Epoch(2)).unwrap();
    assert_eq!(contents(&other, 10), expected);
    assert_eq!(other.committed_epoch().unwrap(), Some(Epoch(2)));
    assert!(t.commit(Epoch(2)).is_err(), "epochs must increase");

    // Tables sharing a store do not see each other.
    let mut neighbour = table(store, 2);
    assert!(contents(&neighbour, 10).is_empty());
    neighbour.insert(&rows("I T\n+ 1 n")).unwrap();
    neighbour.commit(Epoch(1)).unwrap();
    assert_eq!(contents(&t, 10), expected);
}

#[test]
fn memory_backend() {
    reads_its_own_writes_and_commits_them(Arc::new(MemoryStateStore::default()));
}

#[test]
fn rocksdb_backend_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let memory = weir_storage::SharedMemory::new(1 << 20, 1 << 20);
    reads_its_own_writes_and_commits_them(Arc::new(
        RocksStateStore::open(dir.path(), &memory).unwrap(),
    ));
    let reopened: Arc<dyn StateStore> =
        Arc::new(RocksStateStore::open(dir.path(), &memory).unwrap());
    let t = table(reopened, 1);
    assert_eq!(t.committed_epoch().unwrap(), Some(Epoch(2)));
    assert_eq!(contents(&t, 1).len(), 3);
}

#[test]
fn scans_merge_pending_writes_with_many_stored_rows() {
    let store: Arc<dyn StateStore> = Arc::new(MemoryStateStore::default());
    let mut t = table(store, 7);
    let mut model: BTreeMap<i64, Option<String>> = BTreeMap::new();
    let text: String = (0..2000).map(|i| format!("+ {i} v{i}\n")).collect();
    t.insert(&rows(&format!("I T\n{text}"))).unwrap();
    model.extend((0..2000).map(|i| (i, Some(format!("v{i}")))));
    t.commit(Epoch(1)).unwrap();
    // Delete every third row, rewrite every fifth, add new ones, uncommitted.
    let deletes: String = (0..2000).step_by(3).map(|i| format!("+ {i} x\n")).collect();
    t.delete(&rows(&format!("I T\n{deletes}"))).unwrap();
    let updates: String = (0..2500)
        .step_by(5)
        .map(|i| format!("+ {i} u{i}\n"))
        .collect();
    t.insert(&rows(&format!("I T\n{updates}"))).unwrap();
    for i in (0..2000).step_by(3) {
        model.remove(&i);
    }
    for i in (0..2500).step_by(5) {
        model.insert(i, Some(format!("u{i}")));
    }
    let expected: Vec<(i64, Option<String>)> = model.into_iter().collect();
    assert_eq!(contents(&t, 97), expected);
    t.commit(Epoch(2)).unwrap();
    assert_eq!(contents(&t, 1000), expected);
}

#[test]
fn key_groups_are_stable_and_spread() {
    // Fixed values: state written by one version must be found by the next.
    assert_eq!(super::key_group(b""), super::key_group(b""));
    let groups: std::collections::HashSet<u16> = (0u32..1000)
        .map(|i| super::key_group(&i.to_be_bytes()))
        .collect();
    assert!(
        groups.len() > 100,
        "1000 keys fell into {} groups",
        groups.len()
    );
    assert!(groups.iter().all(|&g| g < super::MAX_PARALLELISM));
}

#[test]
fn large_epochs_spill_to_the_store_but_snapshots_stay_at_their_barrier() {
    let store: Arc<dyn StateStore> = Arc::new(MemoryStateStore::default());
    let mut t = table(Arc::clone(&store), 3);
    t.insert(&rows("I T\n+ 0 first")).unwrap();
    t.commit(Epoch(1)).unwrap();
    let at_barrier = store.snapshot().unwrap();
    // More rows than an epoch buffers: most reach the store before the barrier.
    let many = super::state_table::MAX_PENDING as i64 + 500;
    let ids = Int64Array::from_iter_values(1..=many);
    let names = StringArray::from_iter_values((1..=many).map(|i| format!("n{i}")));
    let batch =
        RecordBatch::try_new(rows("I T").schema(), vec![Arc::new(ids), Arc::new(names)]).unwrap();
    t.insert(&batch).unwrap();
    t.delete(&rows("I T\n+ 0 x\n+ 7 x")).unwrap();
    assert!(t.is_dirty());
    let lookup = t.get(&keys(&[0, 7, 8, many])).unwrap();
    assert_eq!(lookup.found, vec![None, None, Some(0), Some(1)]);
    assert_eq!(contents(&t, 4096).len() as i64, many - 1);
    // The snapshot published at the last barrier still shows that epoch.
    assert_eq!(
        contents(&table(at_barrier, 3), 10),
        vec![(0, Some("first".into()))]
    );
    t.commit(Epoch(2)).unwrap();
    assert_eq!(contents(&table(store, 3), 4096).len() as i64, many - 1);
}
