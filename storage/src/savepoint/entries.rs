//! Key-value entries as Arrow IPC files: two binary columns, `key` and
//! `value`, in key order within a file. Independent of the state backend:
//! any store can be written out and any store filled back.
//!
//! Operator state keys start `table id (u32) | key group (u16)` (the
//! executor's `StateTable` layout); [`encode_store`] routes them into one
//! file per range of [`KEY_GROUPS_PER_FILE`] key groups, and keys outside
//! every key group (an operator's epoch marker) into a file of their own.

use std::io::Cursor;
use std::sync::Arc;

use arrow::array::{Array, ArrayBuilder, BinaryArray, BinaryBuilder};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::ipc::reader::FileReader;
use arrow::ipc::writer::FileWriter;
use arrow::record_batch::RecordBatch;

use crate::{Error, Result, StateStore};

/// Key groups per file of an operator store.
pub const KEY_GROUPS_PER_FILE: u16 = 16;
/// Entries per record batch.
const BATCH_ENTRIES: usize = 8192;
/// A file is closed once its batches pass this size; the next continues
/// the same range.
const FILE_BYTES: usize = 64 << 20;

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("key", DataType::Binary, false),
        Field::new("value", DataType::Binary, false),
    ]))
}

/// Entries being written as one IPC file.
struct EntryEncoder {
    writer: FileWriter<Vec<u8>>,
    keys: BinaryBuilder,
    values: BinaryBuilder,
    pending_bytes: usize,
    entries: u64,
}

impl EntryEncoder {
    fn new() -> Result<Self> {
        Ok(Self {
            writer: FileWriter::try_new(Vec::new(), &schema())?,
            keys: BinaryBuilder::new(),
            values: BinaryBuilder::new(),
            pending_bytes: 0,
            entries: 0,
        })
    }

    fn push(&mut self, key: &[u8], value: &[u8]) -> Result<()> {
        self.keys.append_value(key);
        self.values.append_value(value);
        self.pending_bytes += key.len() + value.len();
        self.entries += 1;
        if self.keys.len() >= BATCH_ENTRIES {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        if self.keys.is_empty() {
            return Ok(());
        }
        let batch = RecordBatch::try_new(
            schema(),
            vec![Arc::new(self.keys.finish()), Arc::new(self.values.finish())],
        )?;
        self.writer.write(&batch)?;
        self.pending_bytes = 0;
        Ok(())
    }

    /// Written bytes, counting entries not yet in a batch.
    fn size(&self) -> usize {
        self.writer.get_ref().len() + self.pending_bytes
    }

    fn finish(mut self) -> Result<(Vec<u8>, u64)> {
        self.flush()?;
        self.writer.finish()?;
        Ok((self.writer.into_inner()?, self.entries))
    }
}

/// One file of entries, encoded, before it is stored.
#[derive(Debug)]
pub struct EncodedFile {
    /// Its name within the store's directory of the savepoint.
    pub name: String,
    pub key_groups: Option<(u16, u16)>,
    pub entries: u64,
    pub bytes: Vec<u8>,
}

/// The entries of one key-group range (or of none), split into parts.
struct RangeFiles {
    key_groups: Option<(u16, u16)>,
    encoder: Option<EntryEncoder>,
    parts: u32,
}

impl RangeFiles {
    fn name(&self) -> String {
        match self.key_groups {
            Some((first, end)) => format!("kg-{first:03}-{end:03}.{}.arrow", self.parts),
            None => format!("other.{}.arrow", self.parts),
        }
    }

    fn push(
        &mut self,
        key: &[u8],
        value: &[u8],
        emit: &mut dyn FnMut(EncodedFile) -> Result<()>,
    ) -> Result<()> {
        let encoder = match &mut self.encoder {
            Some(encoder) => encoder,
            None => self.encoder.insert(EntryEncoder::new()?),
        };
        encoder.push(key, value)?;
        if encoder.size() >= FILE_BYTES {
            self.close(emit)?;
        }
        Ok(())
    }

    fn close(&mut self, emit: &mut dyn FnMut(EncodedFile) -> Result<()>) -> Result<()> {
        let Some(encoder) = self.encoder.take() else {
            return Ok(());
        };
        let name = self.name();
        self.parts += 1;
        let (bytes, entries) = encoder.finish()?;
        emit(EncodedFile {
            name,
            key_groups: self.key_groups,
            entries,
            bytes,
        })
    }
}

/// Writes every entry of `store` out as files handed to `emit` as each
/// is complete. With `max_parallelism`, keys are operator state keys and
/// are split by key-group range; without, they go to one range.
pub fn encode_store(
    store: &dyn StateStore,
    max_parallelism: Option<u16>,
    emit: &mut dyn FnMut(EncodedFile) -> Result<()>,
) -> Result<()> {
    let groups = max_parallelism.unwrap_or(0);
    let mut ranges: Vec<RangeFiles> = (0..groups.div_ceil(KEY_GROUPS_PER_FILE))
        .map(|i| {
            let first = i * KEY_GROUPS_PER_FILE;
            RangeFiles {
                key_groups: Some((first, (first + KEY_GROUPS_PER_FILE).min(groups))),
                encoder: None,
                parts: 0,
            }
        })
        .collect();
    ranges.push(RangeFiles {
        key_groups: None,
        encoder: None,
        parts: 0,
    });
    let other = ranges.len() - 1;
    store.scan(&[], &[u8::MAX; 16], &mut |key, value| {
        let range = match key.get(4..6) {
            Some(&[high, low]) if u16::from_be_bytes([high, low]) < groups => {
                usize::from(u16::from_be_bytes([high, low]) / KEY_GROUPS_PER_FILE)
            }
            _ => other,
        };
        ranges[range].push(key, value, emit)?;
        Ok(true)
    })?;
    for range in &mut ranges {
        range.close(emit)?;
    }
    Ok(())
}

/// Called with each key and value read back.
pub type EntryVisitor<'a> = dyn FnMut(&[u8], &[u8]) -> Result<()> + 'a;

/// Visits every entry of an IPC file written by [`encode_store`].
///
/// # Errors
/// `Error::Corrupt` when the bytes are not such a file.
pub fn decode_entries(bytes: Vec<u8>, visit: &mut EntryVisitor<'_>) -> Result<()> {
    let corrupt = |e: arrow::error::ArrowError| Error::Corrupt(format!("savepoint entries: {e}"));
    let reader = FileReader::try_new(Cursor::new(bytes), None).map_err(corrupt)?;
    for batch in reader {
        let batch = batch.map_err(corrupt)?;
        let column = |i: usize| {
            batch
                .column(i)
                .as_any()
                .downcast_ref::<BinaryArray>()
                .ok_or_else(|| Error::Corrupt("savepoint entries: not binary columns".into()))
        };
        let (keys, values) = (column(0)?, column(1)?);
        for i in 0..batch.num_rows() {
            visit(keys.value(i), values.value(i))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemoryStateStore;

    fn state_key(table: u32, group: u16, key: &[u8]) -> Vec<u8> {
        let mut full = table.to_be_bytes().to_vec();
        full.extend_from_slice(&group.to_be_bytes());
        full.extend_from_slice(key);
        full
    }

    #[test]
    fn splits_by_key_group_range_and_reads_back_every_entry() {
        let store = MemoryStateStore::default();
        let mut written = vec![
            (state_key(1, 0, b"a"), b"1".to_vec()),
            (state_key(1, 17, b"b"), b"2".to_vec()),
            (state_key(2, 127, b"c"), vec![]),
            (state_key(1, u16::MAX, b""), b"epoch".to_vec()),
            (b"\x00".to_vec(), b"short".to_vec()),
        ];
        store
            .write(
                written
                    .iter()
                    .map(|(k, v)| (k.clone(), Some(v.clone())))
                    .collect(),
            )
            .unwrap();
        let mut files = Vec::new();
        encode_store(&store, Some(128), &mut |file| {
            files.push(file);
            Ok(())
        })
        .unwrap();
        let groups: Vec<_> = files.iter().map(|f| (f.key_groups, f.entries)).collect();
        assert_eq!(
            groups,
            vec![
                (Some((0, 16)), 1),
                (Some((16, 32)), 1),
                (Some((112, 128)), 1),
                (None, 2)
            ]
        );
        let mut read = Vec::new();
        for file in files {
            decode_entries(file.bytes, &mut |k, v| {
                read.push((k.to_vec(), v.to_vec()));
                Ok(())
            })
            .unwrap();
        }
        read.sort();
        written.sort();
        assert_eq!(read, written);
        assert!(matches!(
            decode_entries(b"not arrow".to_vec(), &mut |_, _| Ok(())),
            Err(Error::Corrupt(_))
        ));
    }
}
