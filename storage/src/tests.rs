//! Table store behaviour through its public API, on a real RocksDB.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, Int32Array, Int64Array, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;

use crate::*;

fn layout(id: u64, key: TableKey) -> TableLayout {
    TableLayout {
        id: TableId(id),
        name: format!("t{id}"),
        schema: Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int32, false),
            Field::new("name", DataType::Utf8, true),
            Field::new("amount", DataType::Int64, true),
        ])),
        key,
    }
}

fn rows(layout: &TableLayout, ids: &[i32], names: &[Option<&str>], amounts: &[i64]) -> RecordBatch {
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int32Array::from(ids.to_vec())),
        Arc::new(StringArray::from(names.to_vec())),
        Arc::new(Int64Array::from(amounts.to_vec())),
    ];
    RecordBatch::try_new(Arc::clone(&layout.schema), columns).unwrap()
}

fn insert(batch: RecordBatch) -> TableWrite {
    TableWrite {
        delete_keys: vec![],
        inserts: vec![batch],
    }
}

fn delete(ids: &[i32]) -> TableWrite {
    TableWrite {
        delete_keys: vec![Arc::new(Int32Array::from(ids.to_vec()))],
        inserts: vec![],
    }
}

async fn scan_ids(store: &TableStore, table: TableId) -> Vec<i32> {
    let mut receiver = store.scan(table, 2).unwrap();
    let mut ids = Vec::new();
    while let Some(batch) = receiver.recv().await {
        let batch = batch.unwrap();
        let column = batch
            .column(0)
            .as_any()
            .downcast_ref::<Int32Array>()
            .unwrap();
        ids.extend(column.values().iter().copied());
    }
    ids
}

#[tokio::test]
async fn writes_survive_reopen_and_scan_in_key_order() {
    let dir = tempfile::tempdir().unwrap();
    let t = layout(1, TableKey::Primary(vec![0]));
    {
        let store = TableStore::open(dir.path()).unwrap();
        store
            .create_table(t.clone(), b"catalog v1".to_vec())
            .await
            .unwrap();
        let outcome = store
            .write(
                t.id,
                insert(rows(
                    &t,
                    &[3, 1, 2],
                    &[Some("c"), None, Some("b")],
                    &[30, 10, 20],
                )),
            )
            .await
            .unwrap();
        assert_eq!(outcome.inserted, 3);
        assert_eq!(outcome.log_end, LogOffset(3));
    }
    let store = TableStore::open(dir.path()).unwrap();
    assert_eq!(
        store.catalog().unwrap().as_deref(),
        Some(&b"catalog v1"[..])
    );
    store.attach_table(t.clone()).unwrap();
    assert_eq!(scan_ids(&store, t.id).await, vec![1, 2, 3]);
    assert_eq!(
        store.log_bounds(t.id).unwrap(),
        (LogOffset(0), LogOffset(3))
    );
}

#[tokio::test]
async fn duplicate_key_refuses_the_whole_write() {
    let dir = tempfile::tempdir().unwrap();
    let store = TableStore::open(dir.path()).unwrap();
    let t = layout(1, TableKey::Primary(vec![0]));
    store.create_table(t.clone(), vec![]).await.unwrap();
    store
        .write(t.id, insert(rows(&t, &[1], &[None], &[1])))
        .await
        .unwrap();
    let err = store
        .write(t.id, insert(rows(&t, &[5, 1], &[None, None], &[5, 1])))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Constraint(ConstraintViolation::UniqueKey { .. })
        ),
        "{err}"
    );
    let err = store
        .write(t.id, insert(rows(&t, &[7, 7], &[None, None], &[7, 7])))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Constraint(ConstraintViolation::UniqueKey { .. })
        ),
        "{err}"
    );
    assert_eq!(scan_ids(&store, t.id).await, vec![1]);
    assert_eq!(store.log_bounds(t.id).unwrap().1, LogOffset(1));
}

#[tokio::test]
async fn update_as_delete_then_insert_is_logged_with_old_rows() {
    let dir = tempfile::tempdir().unwrap();
    let store = TableStore::open(dir.path()).unwrap();
    let t = layout(1, TableKey::Primary(vec![0]));
    store.create_table(t.clone(), vec![]).await.unwrap();
    store
        .write(
            t.id,
            insert(rows(&t, &[1, 2], &[Some("a"), Some("b")], &[1, 2])),
        )
        .await
        .unwrap();
    let update = TableWrite {
        delete_keys: vec![Arc::new(Int32Array::from(vec![1, 2]))],
        inserts: vec![rows(&t, &[2, 3], &[Some("a"), Some("b")], &[1, 2])],
    };
    let outcome = store.write(t.id, update).await.unwrap();
    assert_eq!((outcome.deleted, outcome.inserted), (2, 2));
    assert_eq!(scan_ids(&store, t.id).await, vec![2, 3]);

    let entries = store.read_log(t.id, LogOffset(0), usize::MAX).unwrap();
    assert_eq!(entries.len(), 2);
    let ops: Vec<_> = entries[1].ops().unwrap().collect();
    use ChangeOp::*;
    assert_eq!(
        ops,
        vec![Some(Delete), Some(Delete), Some(Insert), Some(Insert)]
    );
    let deleted_names = entries[1]
        .chunk
        .column(2)
        .as_any()
        .downcast_ref::<StringArray>()
        .unwrap();
    assert_eq!(deleted_names.value(0), "a");

    // Reading from the middle of an entry starts exactly at that offset.
    let tail = store.read_log(t.id, LogOffset(3), usize::MAX).unwrap();
    assert_eq!(tail[0].first, LogOffset(3));
    assert_eq!(tail[0].chunk.num_rows(), 3);

    store.write(t.id, delete(&[3, 99])).await.unwrap();
    assert_eq!(scan_ids(&store, t.id).await, vec![2]);
}

#[tokio::test]
async fn truncation_drops_whole_entries_below_the_offset() {
    let dir = tempfile::tempdir().unwrap();
    let store = TableStore::open(dir.path()).unwrap();
    let t = layout(1, TableKey::RowId);
    store.create_table(t.clone(), vec![]).await.unwrap();
    for i in 0..4 {
        store
            .write(t.id, insert(rows(&t, &[i, i], &[None, None], &[0, 0])))
            .await
            .unwrap();
    }
    // Entries start at 0, 2, 4, 6; offset 5 is inside the entry at 4.
    store.truncate_log(t.id, LogOffset(5)).await.unwrap();
    let entries = store.read_log(t.id, LogOffset(0), usize::MAX).unwrap();
    assert_eq!(
        entries.iter().map(|e| e.first).collect::<Vec<_>>(),
        vec![LogOffset(4), LogOffset(6)]
    );
    assert_eq!(
        store.log_bounds(t.id).unwrap(),
        (LogOffset(5), LogOffset(8))
    );
    // Rows are untouched; append-only rows keep duplicates apart by row id.
    assert_eq!(scan_ids(&store, t.id).await, vec![0, 0, 1, 1, 2, 2, 3, 3]);
}

#[tokio::test]
async fn not_null_and_dropped_tables_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = TableStore::open(dir.path()).unwrap();
    let t = layout(1, TableKey::Primary(vec![0]));
    store.create_table(t.clone(), vec![]).await.unwrap();
    let nullable = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int32, true),
        Field::new("name", DataType::Utf8, true),
        Field::new("amount", DataType::Int64, true),
    ]));
    let with_null_id = RecordBatch::try_new(
        nullable,
        vec![
            Arc::new(Int32Array::from(vec![None::<i32>])),
            Arc::new(StringArray::from(vec![None::<&str>])),
            Arc::new(Int64Array::from(vec![None::<i64>])),
        ],
    )
    .unwrap();
    let err = store.write(t.id, insert(with_null_id)).await.unwrap_err();
    assert!(
        matches!(err, Error::Constraint(ConstraintViolation::NotNull { .. })),
        "{err}"
    );

    store
        .write(t.id, insert(rows(&t, &[1], &[None], &[1])))
        .await
        .unwrap();
    store.drop_table(t.id, b"empty".to_vec()).await.unwrap();
    let err = store
        .write(t.id, insert(rows(&t, &[2], &[None], &[1])))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NoSuchTable(_)), "{err}");
    // A table created again under a new id starts empty.
    let t2 = layout(2, TableKey::Primary(vec![0]));
    store.create_table(t2.clone(), vec![]).await.unwrap();
    assert!(scan_ids(&store, t2.id).await.is_empty());
    assert_eq!(
        store
            .get_rows(t2.id, &[Arc::new(Int32Array::from(vec![1]))])
            .unwrap()
            .num_rows(),
        0
    );
}

#[tokio::test]
async fn concurrent_writers_all_commit_with_distinct_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(TableStore::open(dir.path()).unwrap());
    let t = layout(1, TableKey::Primary(vec![0]));
    store.create_table(t.clone(), vec![]).await.unwrap();
    let mut tasks = Vec::new();
    for writer in 0..8 {
        let (store, t) = (Arc::clone(&store), t.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0..50 {
                let id = writer * 1000 + i;
                store
                    .write(t.id, insert(rows(&t, &[id], &[None], &[1])))
                    .await
                    .unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(scan_ids(&store, t.id).await.len(), 400);
    let entries = store.read_log(t.id, LogOffset(0), usize::MAX).unwrap();
    let offsets: Vec<u64> = entries.iter().map(|e| e.first.0).collect();
    assert_eq!(offsets, (0..400).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_snapshot_is_the_rows_as_of_its_offset_with_row_ids() {
    let dir = tempfile::tempdir().unwrap();
    let store = TableStore::open(dir.path()).unwrap();
    let t = layout(1, TableKey::RowId);
    store.create_table(t.clone(), vec![]).await.unwrap();
    store
        .write(t.id, insert(rows(&t, &[7, 7], &[None, None], &[1, 2])))
        .await
        .unwrap();
    let mut snapshot = store.snapshot(t.id, 10).unwrap();
    // Written after the snapshot: in the log from its offset on, not in it.
    store
        .write(t.id, insert(rows(&t, &[8], &[None], &[3])))
        .await
        .unwrap();
    assert_eq!(snapshot.offset, LogOffset(2));
    let batch = snapshot.rows.recv().await.unwrap().unwrap();
    assert!(snapshot.rows.recv().await.is_none());
    assert_eq!(batch.num_rows(), 2);
    let row_ids = batch
        .column(3)
        .as_any()
        .downcast_ref::<Int64Array>()
        .unwrap();
    assert_eq!(row_ids.values().to_vec(), vec![0, 1]);
    let after = store.read_log(t.id, snapshot.offset, usize::MAX).unwrap();
    assert_eq!(
        after.iter().map(|e| e.first).collect::<Vec<_>>(),
        [LogOffset(2)]
    );
}

#[tokio::test]
async fn truncation_stops_at_the_lowest_live_reader() {
    let dir = tempfile::tempdir().unwrap();
    let store = TableStore::open(dir.path()).unwrap();
    let t = layout(1, TableKey::Primary(vec![0]));
    store.create_table(t.clone(), vec![]).await.unwrap();
    for i in 0..4 {
        store
            .write(t.id, insert(rows(&t, &[i], &[None], &[0])))
            .await
            .unwrap();
    }
    let reader = store.register_reader(t.id, LogOffset(1)).unwrap();
    store.truncate_log(t.id, LogOffset(3)).await.unwrap();
    assert_eq!(store.log_bounds(t.id).unwrap().0, LogOffset(1));
    reader.advance(LogOffset(2));
    store.truncate_log(t.id, LogOffset(3)).await.unwrap();
    assert_eq!(store.log_bounds(t.id).unwrap().0, LogOffset(2));
    drop(reader);
    store.truncate_log(t.id, LogOffset(3)).await.unwrap();
    assert_eq!(store.log_bounds(t.id).unwrap().0, LogOffset(3));
}
