//! `state_ttl` for a join: keys unchanged for the TTL are retracted and
//! forgotten (see the module above).

use std::sync::Arc;
use std::time::Instant;

use datafusion::arrow::array::{Array, ArrayRef};
use datafusion::arrow::compute::{cast, concat_batches};
use datafusion::arrow::datatypes::Schema;
use datafusion::error::Result;

use super::Join;
use crate::message::{Op, StreamChunk};

impl Join {
    /// Notes that the non-NULL keys `keys` (in the right side's key types)
    /// changed now.
    pub(super) fn touch(&mut self, keys: &[ArrayRef]) -> Result<()> {
        let Some(expiry) = &mut self.expiry else {
            return Ok(());
        };
        let encoded = self.sides[1].key_rows.convert_columns(keys)?;
        let rows = keys.first().map_or(0, |k| k.len());
        let present = (0..rows).filter(|&row| !keys.iter().any(|k| k.is_null(row)));
        expiry.touch(present.map(|row| encoded.row(row).data()), Instant::now());
        Ok(())
    }

    /// Counts every stored key of both sides as changed now: when they
    /// last changed is not kept across restarts.
    pub(super) fn restore_expiry(&mut self) -> Result<()> {
        if self.expiry.is_none() {
            return Ok(());
        }
        for s in 0..2 {
            let k = self.sides[s].key_types.len();
            let mut keys = Vec::new();
            self.sides[s].table.scan(4096, |batch| {
                keys.push(batch.columns()[..k].to_vec());
                Ok(true)
            })?;
            for columns in keys {
                let canonical = columns
                    .iter()
                    .zip(&self.sides[1].key_types)
                    .map(|(c, t)| Ok(cast(c, t)?))
                    .collect::<Result<Vec<ArrayRef>>>()?;
                self.touch(&canonical)?;
            }
        }
        Ok(())
    }

    /// Retracts and forgets the rows of keys unchanged for the TTL: each
    /// side's rows of those keys go through [`Join::apply`] as deletes.
    pub(super) fn expire(&mut self) -> Result<Option<StreamChunk>> {
        let Some(expiry) = &mut self.expiry else {
            return Ok(None);
        };
        let expired = expiry.expire(Instant::now());
        if expired.is_empty() {
            return Ok(None);
        }
        let parser = self.sides[1].key_rows.parser();
        let keys = self.sides[1]
            .key_rows
            .convert_rows(expired.iter().map(|key| parser.parse(key)))?;
        let mut retracted = Vec::new();
        for s in 0..2 {
            let side = &self.sides[s];
            let own_keys = keys
                .iter()
                .zip(&side.key_types)
                .map(|(c, t)| Ok(cast(c, t)?))
                .collect::<Result<Vec<ArrayRef>>>()?;
            let k = side.key_types.len();
            let mut rows = Vec::new();
            for i in 0..expired.len() {
                let key: Vec<ArrayRef> = own_keys.iter().map(|c| c.slice(i, 1)).collect();
                side.table.scan_prefix(&key, 4096, |batch| {
                    rows.push(batch.project(&(k..k + side.width).collect::<Vec<_>>())?);
                    Ok(true)
                })?;
            }
            let input_schema = Arc::new(Schema::new(
                side.table.schema().fields()[k..k + side.width].to_vec(),
            ));
            let rows = concat_batches(&input_schema, &rows)?;
            if rows.num_rows() == 0 {
                continue;
            }
            let deletes = StreamChunk::new(vec![Op::Delete; rows.num_rows()], rows)?;
            if let Some(chunk) = self.apply(s, &deletes)? {
                retracted.push(chunk);
            }
        }
        // The deletes touched the keys again; they are gone now.
        if let Some(expiry) = &mut self.expiry {
            expiry.forget(&expired);
        }
        match retracted.len() {
            0 => Ok(None),
            _ => StreamChunk::concat(&retracted).map(Some),
        }
    }
}
