//! [`PendingWrites`]: a transaction block's table writes, held back until
//! COMMIT.
//!
//! Each statement of the block is checked as it runs, against committed
//! rows with the block's own earlier writes on top, so it reads its own
//! writes and meets unique keys as a committed write would. COMMIT hands
//! everything to the commit thread as one request, which checks the keys
//! again against what other sessions committed meanwhile and writes every
//! table or none.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use arrow::array::BooleanArray;
use arrow::compute::filter_record_batch;
use arrow::record_batch::RecordBatch;

use crate::commit::{Changes, Request};
use crate::keys;
use crate::table_store::TableStore;
use crate::{ConstraintViolation, Error, Result, TableId, TableKey, TableWrite, WriteOutcome};

/// Every table a transaction wrote and what it wrote. Cheap to clone (a
/// SQL savepoint is a clone): tables are shared until written again.
#[derive(Debug, Clone, Default)]
pub struct PendingWrites {
    tables: BTreeMap<TableId, Arc<PendingTable>>,
}

/// One table's uncommitted rows.
#[derive(Debug, Clone, Default)]
pub struct PendingTable {
    /// Keyed tables: storage row key to the row's new state.
    keyed: BTreeMap<Vec<u8>, PendingRow>,
    /// Rows appended to an append-only table.
    appended: Vec<RecordBatch>,
}

#[derive(Debug, Clone)]
struct PendingRow {
    /// A committed row is under this key, which the transaction replaces.
    replaces_committed: bool,
    /// The encoded row; `None`: deleted.
    value: Option<Vec<u8>>,
}

impl PendingWrites {
    pub fn is_empty(&self) -> bool {
        self.tables.is_empty()
    }

    /// What the transaction wrote to `table`, if anything.
    pub fn table(&self, table: TableId) -> Option<Arc<PendingTable>> {
        self.tables.get(&table).cloned()
    }
}

impl TableStore {
    /// Checks `write` as [`TableStore::write`] would, but adds it to
    /// `pending` instead of committing it. A refused write leaves `pending`
    /// as it was.
    pub fn stage(
        &self,
        pending: &mut PendingWrites,
        table: TableId,
        write: TableWrite,
    ) -> Result<WriteOutcome> {
        let codec = self.shared().codec(table)?;
        let layout = &codec.layout;
        let before = pending.tables.get(&table);
        let mut staged: HashMap<Vec<u8>, PendingRow> = HashMap::new();
        let current = |staged: &HashMap<Vec<u8>, PendingRow>, key: &[u8]| -> Result<PendingRow> {
            if let Some(row) = staged
                .get(key)
                .or_else(|| before.and_then(|t| t.keyed.get(key)))
            {
                return Ok(row.clone());
            }
            let value = self.shared().engine.get(key)?;
            Ok(PendingRow {
                replaces_committed: value.is_some(),
                value,
            })
        };

        let mut deleted = 0u64;
        if !write.delete_keys.is_empty() {
            for key in codec.encode_key_columns(&write.delete_keys)?.iter() {
                let key = keys::row(table, key.as_ref());
                let row = current(&staged, &key)?;
                if row.value.is_some() {
                    deleted += 1;
                    staged.insert(key, PendingRow { value: None, ..row });
                }
            }
        }

        let mut appended = Vec::new();
        let mut inserted = 0u64;
        for batch in &write.inserts {
            let batch = crate::commit::conform(layout, batch)?;
            inserted += batch.num_rows() as u64;
            let Some(keys) = codec.encode_keys(&batch)? else {
                appended.push(batch);
                continue;
            };
            let encoded = codec.encode_rows(&batch)?;
            for i in 0..batch.num_rows() {
                let key = keys::row(table, keys.row(i).as_ref());
                let row = current(&staged, &key)?;
                if row.value.is_some() {
                    return Err(ConstraintViolation::UniqueKey {
                        table: layout.name.clone(),
                    }
                    .into());
                }
                staged.insert(
                    key,
                    PendingRow {
                        value: Some(encoded.row(i).as_ref().to_vec()),
                        ..row
                    },
                );
            }
        }

        let entry = Arc::make_mut(pending.tables.entry(table).or_default());
        entry.keyed.extend(staged);
        entry
            .appended
            .extend(appended.into_iter().filter(|b| b.num_rows() > 0));
        Ok(WriteOutcome {
            inserted,
            deleted,
            ..WriteOutcome::default()
        })
    }

    /// Commits every table's pending rows in one durable write; returns
    /// once it is durable.
    ///
    /// # Errors
    /// A key another session inserted meanwhile is a unique violation,
    /// and nothing of the transaction is written.
    pub async fn commit_pending(&self, pending: PendingWrites) -> Result<WriteOutcome> {
        let mut changes = Vec::new();
        for (table, written) in pending.tables {
            let codec = self.shared().codec(table)?;
            let mut deletes = Vec::new();
            let mut values = Vec::new();
            for (key, row) in &written.keyed {
                if row.replaces_committed {
                    deletes.push(key.clone());
                }
                if let Some(value) = &row.value {
                    values.push(value.as_slice());
                }
            }
            let mut inserts = written.appended.clone();
            if !values.is_empty() {
                inserts.push(codec.decode_rows(values)?);
            }
            if !deletes.is_empty() || !inserts.is_empty() {
                changes.push((table, Changes { deletes, inserts }));
            }
        }
        if changes.is_empty() {
            return Ok(WriteOutcome::default());
        }
        self.submit(|reply| Request::Transaction { changes, reply })
            .await
    }

    /// `batch`, committed rows of `table`, without those `pending`
    /// replaces or deletes.
    pub fn hide_pending(
        &self,
        table: TableId,
        pending: &PendingTable,
        batch: RecordBatch,
    ) -> Result<RecordBatch> {
        if pending.keyed.is_empty() {
            return Ok(batch);
        }
        let codec = self.shared().codec(table)?;
        let Some(keys) = codec.encode_keys(&batch)? else {
            return Ok(batch);
        };
        let visible: BooleanArray = (0..batch.num_rows())
            .map(|i| {
                Some(
                    !pending
                        .keyed
                        .contains_key(&keys::row(table, keys.row(i).as_ref())),
                )
            })
            .collect();
        Ok(filter_record_batch(&batch, &visible)?)
    }

    /// The rows `pending` adds to `table`, in the table's schema.
    pub fn pending_rows(&self, table: TableId, pending: &PendingTable) -> Result<Vec<RecordBatch>> {
        let codec = self.shared().codec(table)?;
        let values: Vec<&[u8]> = pending
            .keyed
            .values()
            .filter_map(|row| row.value.as_deref())
            .collect();
        let mut rows = Vec::new();
        if !values.is_empty() {
            rows.push(codec.decode_rows(values)?);
        }
        if matches!(codec.layout.key, TableKey::RowId) {
            rows.extend(pending.appended.iter().cloned());
        } else if !pending.appended.is_empty() {
            return Err(Error::Internal("appended rows in a keyed table".into()));
        }
        Ok(rows)
    }
}
