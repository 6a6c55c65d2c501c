//! Closing windows in a hash aggregate grouped by a watermarked column.
//!
//! When one group column carries the input's watermark (`window_start`
//! of `TUMBLE`/`HOP`), every group below the watermark is complete: no
//! later row can reach it. [`WindowClose`] keeps the open groups indexed
//! by that column, hands the aggregate the groups a watermark closes, and
//! drops rows that arrive for closed groups (counted as late). The
//! aggregate then emits their final rows (`EMIT ON WINDOW CLOSE`) or just
//! forgets them; either way its state holds open windows only.
//!
//! The index is memory only: a restored aggregate rebuilds it from its
//! groups table, which holds just the open groups.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use datafusion::arrow::array::ArrayRef;
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::row::{RowConverter, Rows, SortField};
use datafusion::error::Result;
use weir_storage::StateStore;

use crate::message::{Epoch, StreamChunk, Watermark};
use crate::state::{StateTable, StateTableId};
use crate::watermark::{KeptWatermark, WatermarkDerivation, WatermarkProgress};

pub struct WindowClose {
    /// How the window column's watermark follows the input's; its
    /// `output` is the window's position among the group columns.
    derivation: WatermarkDerivation,
    /// Emit closed groups' final rows; otherwise emit as rows change.
    pub emit_on_close: bool,
    kept: KeptWatermark,
    /// Orders window values as bytes.
    windows: RowConverter,
    /// Open groups (their encoded group keys) by window, in window order.
    open: BTreeMap<Vec<u8>, BTreeSet<Vec<u8>>>,
}

impl WindowClose {
    /// Closes windows of group column `derivation.output`; keeps its
    /// watermark in table `table` of `store`.
    pub fn new(
        derivation: WatermarkDerivation,
        emit_on_close: bool,
        window_type: &DataType,
        store: Arc<dyn StateStore>,
        table: StateTableId,
        progress: WatermarkProgress,
    ) -> Result<Self> {
        Ok(Self {
            derivation,
            emit_on_close,
            kept: KeptWatermark::new(store, table, window_type, progress)?,
            windows: RowConverter::new(vec![SortField::new(window_type.clone())])?,
            open: BTreeMap::new(),
        })
    }

    /// The window's position among the group columns (and output columns).
    pub fn group_column(&self) -> usize {
        self.derivation.output
    }

    /// The input column whose watermark closes windows.
    pub fn input_column(&self) -> usize {
        self.derivation.input
    }

    /// Loads the kept watermark and indexes the stored groups, whose keys
    /// are columns `key_columns` of `groups`' rows.
    pub fn restore(
        &mut self,
        groups: &StateTable,
        group_keys: &RowConverter,
        key_columns: &[usize],
    ) -> Result<()> {
        self.kept.load()?;
        groups.scan(4096, |batch| {
            let keys: Vec<ArrayRef> = key_columns
                .iter()
                .map(|&c| Arc::clone(batch.column(c)))
                .collect();
            let encoded = group_keys.convert_columns(&keys)?;
            self.open_groups(&keys[self.group_column()], &encoded, 0..batch.num_rows())?;
            Ok(true)
        })
    }

    /// `chunk` without the rows whose window (`windows`) has closed,
    /// which are counted as late.
    pub fn drop_late(&mut self, chunk: StreamChunk, windows: &ArrayRef) -> Result<StreamChunk> {
        self.kept.drop_late(chunk, windows)
    }

    /// Indexes groups `new` (row numbers into `windows` and `keys`).
    pub fn open_groups(
        &mut self,
        windows: &ArrayRef,
        keys: &Rows,
        new: impl IntoIterator<Item = usize>,
    ) -> Result<()> {
        let encoded = self.windows.convert_columns(&[Arc::clone(windows)])?;
        for g in new {
            self.open
                .entry(encoded.row(g).as_ref().to_vec())
                .or_default()
                .insert(keys.row(g).as_ref().to_vec());
        }
        Ok(())
    }

    /// Takes an input watermark. When it moves the window column's, returns
    /// that watermark and the groups it closes (encoded group keys).
    pub fn advance(&mut self, watermark: &Watermark) -> Result<Option<(Watermark, Vec<Vec<u8>>)>> {
        if watermark.column != self.derivation.input {
            return Ok(None);
        }
        let value = self.derivation.derive(&watermark.value)?;
        if !self.kept.advance(value.clone()) {
            return Ok(None);
        }
        let bound = self
            .windows
            .convert_columns(&[value.to_array_of_size(1)?])?
            .row(0)
            .as_ref()
            .to_vec();
        let still_open = self.open.split_off(&bound);
        let closed = std::mem::replace(&mut self.open, still_open);
        let window = Watermark {
            column: self.group_column(),
            value,
        };
        Ok(Some((window, closed.into_values().flatten().collect())))
    }

    pub fn commit(&mut self, epoch: Epoch) -> Result<()> {
        let open = self.open.values().map(|groups| groups.len() as u64).sum();
        self.kept.report_open_groups(open);
        self.kept.commit(epoch)
    }
}
