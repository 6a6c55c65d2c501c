use std::sync::Arc;
use std::time::Duration;

use datafusion::arrow::array::{Int64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::parquet::arrow::ArrowWriter;
use object_store::{ObjectStoreExt, PutPayload};

use super::*;

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("name", DataType::Utf8, true),
    ]))
}

fn location(name: &str) -> FileLocation {
    let url = format!("memory://files-{name}");
    FileLocation {
        store: weir_storage::open_object_store(&url, false).unwrap(),
        url,
        file: None,
    }
}

async fn put(location: &FileLocation, path: &str, contents: impl Into<PutPayload>) {
    location
        .store
        .put(&Path::from(path), contents.into())
        .await
        .unwrap();
}

fn ids(batch: &RecordBatch) -> Vec<i64> {
    let ids = batch
        .column(0)
        .as_any()
        .downcast_ref::<Int64Array>()
        .unwrap();
    ids.values().to_vec()
}

#[tokio::test]
async fn rows_run_on_across_files_in_path_order() {
    let at = location("order");
    put(&at, "2.csv", "id,name\n4,d\n5,\n").await;
    put(&at, "1.csv", "id,name\n1,a\n2,b\n3,c\n").await;
    put(&at, "_SUCCESS", "").await;
    let rows = FileRows::new(at, FileFormat::from_name("csv").unwrap(), schema(), None);
    assert_eq!(rows.end(), Some(5));
    let (batch, offsets) = rows.rows(2..5).unwrap();
    assert_eq!(ids(&batch), [3, 4, 5]);
    assert_eq!(offsets, [2, 3, 4]);
    assert!(batch.column(1).is_null(2), "an empty CSV field is NULL");
    // Asked again from the start, as a restored source would be.
    let (batch, _) = rows.rows(0..2).unwrap();
    assert_eq!(ids(&batch), [1, 2]);
    let (batch, offsets) = rows.rows(5..9).unwrap();
    assert_eq!((batch.num_rows(), offsets.len()), (0, 0));
}

#[tokio::test]
async fn a_watched_directory_picks_up_new_files() {
    let at = location("watched");
    put(&at, "a.json", "{\"id\": 1, \"name\": \"x\"}\n{\"id\": 2}\n").await;
    let rows = FileRows::new(at.clone(), FileFormat::Json, schema(), Some(Duration::ZERO));
    assert_eq!(rows.end(), None);
    assert_eq!(rows.available(0..100).unwrap(), 2);
    assert_eq!(rows.available(2..100).unwrap(), 2, "nothing new yet");
    put(&at, "b.json", "{\"id\": 3, \"name\": \"z\"}\n").await;
    assert_eq!(rows.available(2..100).unwrap(), 3);
    let (batch, _) = rows.rows(1..3).unwrap();
    assert_eq!(ids(&batch), [2, 3]);

    put(&at, "0.json", "{\"id\": 0}\n").await;
    let late = rows.available(3..100).unwrap_err().to_string();
    assert!(late.contains("0.json appeared after b.json"), "{late}");
}

#[tokio::test]
async fn parquet_columns_are_read_by_name_and_cast() {
    let at = location("parquet");
    let written = Arc::new(Schema::new(vec![
        Field::new("name", DataType::Utf8, true),
        Field::new("extra", DataType::Utf8, true),
        Field::new("id", DataType::Int32, false),
    ]));
    let batch = RecordBatch::try_new(
        Arc::clone(&written),
        vec![
            Arc::new(StringArray::from(vec!["p", "q"])),
            Arc::new(StringArray::from(vec!["-", "-"])),
            Arc::new(datafusion::arrow::array::Int32Array::from(vec![7, 8])),
        ],
    )
    .unwrap();
    let mut bytes = Vec::new();
    let mut writer = ArrowWriter::try_new(&mut bytes, written, None).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
    put(&at, "part-0.parquet", bytes).await;
    let rows = FileRows::new(at, FileFormat::Parquet, schema(), None);
    let (batch, _) = rows.rows(0..10).unwrap();
    assert_eq!(ids(&batch), [7, 8]);
    assert_eq!(batch.schema(), schema());
}

#[tokio::test]
async fn a_file_that_does_not_parse_is_named_in_the_error() {
    let at = location("broken");
    put(&at, "a.csv", "id,name\n1,a\nnot a number,b\n").await;
    let rows = FileRows::new(at, FileFormat::from_name("csv").unwrap(), schema(), None);
    assert_eq!(rows.end(), None, "the end is unknown until the file reads");
    let error = rows.rows(0..10).unwrap_err().to_string();
    assert!(
        error.contains("memory://files-broken") && error.contains("a.csv"),
        "{error}"
    );
}
