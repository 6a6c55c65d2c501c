//! The time band of an interval join: forgetting rows the watermarks put
//! out of reach, and passing watermarks on (see the module above).

use datafusion::arrow::array::BooleanArray;
use datafusion::arrow::compute::{cast, filter_record_batch};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::ScalarValue;
use datafusion::common::cast::as_int64_array;
use datafusion::error::Result;

use super::Join;
use crate::message::Watermark;
use crate::watermark::time_number;

/// What an interval join's filter says of the two sides' times:
/// `left.t - right.t` lies within `[lower, upper]`, in the columns' unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeBand {
    /// The time column among the left input's columns.
    pub left: usize,
    /// The time column among the right input's columns.
    pub right: usize,
    pub lower: i64,
    pub upper: i64,
}

impl Join {
    /// Notes side `s`'s watermark, if it is on its band column, and queues
    /// the output watermarks that moved.
    pub(super) fn watermark(&mut self, s: usize, watermark: &Watermark) -> Result<()> {
        let Some(band) = self.band else { return Ok(()) };
        let column = if s == 0 { band.left } else { band.right };
        if watermark.column != column {
            return Ok(());
        }
        let Some(value) = time_number(&watermark.value) else {
            return Ok(());
        };
        self.watermarks[s] = Some(self.watermarks[s].map_or(value, |w| w.max(value)));
        let [Some(left), Some(right)] = self.watermarks else {
            return Ok(());
        };
        let carried = [
            left.min(right.saturating_add(band.lower)),
            right.min(left.saturating_sub(band.upper)),
        ];
        let columns = [band.left, self.sides[0].visible + band.right];
        for (side, value) in carried.into_iter().enumerate() {
            if self.emitted[side].is_some_and(|emitted| emitted >= value) {
                continue;
            }
            self.emitted[side] = Some(value);
            let time = if side == 0 { band.left } else { band.right };
            let value = ScalarValue::Int64(Some(value)).cast_to(&self.sides[side].types[time])?;
            self.outgoing.push_back(Watermark {
                column: columns[side],
                value,
            });
        }
        Ok(())
    }

    /// Deletes the rows no later row of the other side can join, by the
    /// time band and the other side's watermark.
    pub(super) fn forget_out_of_band(&mut self) -> Result<()> {
        let Some(band) = self.band else {
            return Ok(());
        };
        let limits = [
            self.watermarks[1].map(|w| w.saturating_add(band.lower)),
            self.watermarks[0].map(|w| w.saturating_sub(band.upper)),
        ];
        for (s, limit) in limits.into_iter().enumerate() {
            let Some(limit) = limit else { continue };
            if self.cleaned[s] == Some(limit) {
                continue;
            }
            self.cleaned[s] = Some(limit);
            let side = &mut self.sides[s];
            let time = side.key_types.len() + if s == 0 { band.left } else { band.right };
            let mut behind = Vec::new();
            side.table.scan(4096, |batch| {
                let times = cast(batch.column(time), &DataType::Int64)?;
                let times = as_int64_array(&times)?;
                let old: BooleanArray = times
                    .iter()
                    .map(|t| Some(t.is_some_and(|t| t < limit)))
                    .collect();
                let old = filter_record_batch(&batch, &old)?;
                if old.num_rows() > 0 {
                    behind.push(old);
                }
                Ok(true)
            })?;
            for rows in behind {
                side.table.delete(&rows)?;
            }
        }
        Ok(())
    }
}
