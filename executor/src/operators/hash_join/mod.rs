//! Hash join: inner, left, right and full outer equi-joins, with an
//! optional residual predicate, under inserts and deletes on both sides.
//!
//! State: one table per side holding its rows keyed by join key then the
//! side's stream key (the join key alone picks the key group, so a key's
//! rows are one prefix scan), each with its degree: how many rows of the
//! other side it currently joins with. Degrees tell when an outer join's
//! row starts or stops being NULL-padded: a left row whose degree goes
//! 0 -> 1 retracts its padded row; 1 -> 0 brings it back.
//!
//! Rows with a NULL in the join key match nothing. Output columns are laid
//! out as both sides' visible columns first (the query's join schema),
//! then both sides' hidden key columns; the stream key is both sides'.
//! Inputs are barrier-aligned (see [`crate::align`]).
//!
//! With [`HashJoinOperator::with_time_band`], an interval join (the filter
//! bounds `left.t - right.t` to `[lower, upper]`) forgets rows the other
//! side's watermark has put out of reach: once the left watermark is `W`,
//! no later left row can join a right row older than `W - upper`, and once
//! the right watermark is `W`, no later right row can join a left row older
//! than `W + lower`. Such rows leave the state at the end of the epoch;
//! their output stays, and no message can retract them (a watermark means
//! no row behind it comes, inserted or deleted), so state holds only rows
//! inside the band.
//!
//! Watermarks on the band columns also pass on: an output row's left time
//! is at least the left watermark if the left row is new, or within the
//! band of a new right row otherwise, so the output's left time column
//! carries `min(W_left, W_right + lower)`, and its right time column
//! `min(W_right, W_left - upper)`. Other watermarks stop at the join.
//!
//! With [`HashJoinOperator::expire_after`] (`state_ttl`), a join key no row
//! of either side has changed for that long of processing time expires at
//! the end of an epoch: its rows on both sides are deleted as if retracted
//! (so every output row they made is retracted too) and leave the state.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, VecDeque};
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use datafusion::arrow::array::{
    Array, ArrayRef, BooleanArray, Int64Array, RecordBatch, UInt32Array, new_null_array,
};
use datafusion::arrow::compute::{cast, concat_batches, filter_record_batch, take};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::row::{RowConverter, SortField};
use datafusion::common::cast::as_int64_array;
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::JoinType;
use datafusion::physical_expr::PhysicalExpr;
use futures::{StreamExt, stream};
use weir_storage::StateStore;

use crate::aggregate::GroupExpiry;
use crate::align::{Aligned, AlignmentMeter, align};
use crate::message::{Barrier, Message, Op, StreamChunk, Watermark};
use crate::operator::{BoxedMessageStream, BoxedOperator, Operator, OperatorInfo};
use crate::state::{StateTable, StateTableId};

mod expiry;
mod time_band;

pub use time_band::TimeBand;

/// What the planner says about one input of a join.
pub struct JoinSide {
    pub input: BoxedOperator,
    pub keys: Vec<Arc<dyn PhysicalExpr>>,
    /// Leading columns of the input that the query sees; the rest are
    /// hidden key columns.
    pub visible: usize,
}

pub struct HashJoinOperator {
    info: OperatorInfo,
    inputs: [BoxedOperator; 2],
    join: Join,
    alignment: AlignmentMeter,
}

struct Side {
    keys: Vec<Arc<dyn PhysicalExpr>>,
    key_types: Vec<DataType>,
    width: usize,
    visible: usize,
    types: Vec<DataType>,
    /// Rows of this side are kept when unmatched (NULL-padded).
    preserved: bool,
    table: StateTable,
    /// Encodes this side's key types, to find a chunk's distinct keys.
    key_rows: RowConverter,
}

struct Join {
    sides: [Side; 2],
    filter: Option<Arc<dyn PhysicalExpr>>,
    schema: SchemaRef,
    /// Join keys by when they last changed, encoded in the right side's key
    /// types (the left side's keys are cast to them, as for probing).
    expiry: Option<GroupExpiry>,
    band: Option<TimeBand>,
    /// Each side's watermark on its band column, and the bound each side's
    /// rows were last cleaned to.
    watermarks: [Option<i64>; 2],
    cleaned: [Option<i64>; 2],
    /// The output watermarks last passed on, on the left and right band
    /// columns, and those waiting to go.
    emitted: [Option<i64>; 2],
    outgoing: VecDeque<Watermark>,
}

impl HashJoinOperator {
    /// Joins `left` and `right` on their key expressions (pairwise equal)
    /// and `filter` (over the output layout). State tables get ids
    /// `first_table` (left) and `first_table + 1` (right).
    pub fn new(
        left: JoinSide,
        right: JoinSide,
        join_type: JoinType,
        filter: Option<Arc<dyn PhysicalExpr>>,
        store: Arc<dyn StateStore>,
        first_table: u32,
        identity: String,
    ) -> Result<Self> {
        let (left_preserved, right_preserved) = match join_type {
            JoinType::Inner => (false, false),
            JoinType::Left => (true, false),
            JoinType::Right => (false, true),
            JoinType::Full => (true, true),
            other => {
                return Err(DataFusionError::NotImplemented(format!(
                    "{other} joins are not maintained incrementally"
                )));
            }
        };
        if left.keys.len() != right.keys.len() {
            return Err(DataFusionError::Internal(format!(
                "{identity}: join keys do not pair up"
            )));
        }
        let field = |f: &Arc<Field>| f.as_ref().clone().with_nullable(true);
        let (l, r) = (left.input.info(), right.input.info());
        let mut fields: Vec<Field> = Vec::new();
        fields.extend(l.schema.fields()[..left.visible].iter().map(field));
        fields.extend(r.schema.fields()[..right.visible].iter().map(field));
        fields.extend(l.schema.fields()[left.visible..].iter().map(field));
        fields.extend(r.schema.fields()[right.visible..].iter().map(field));
        let lw = l.schema.fields().len();
        let layout = Layout {
            left_visible: left.visible,
            right_visible: right.visible,
            left_width: lw,
        };
        let mut stream_key: Vec<usize> = l.stream_key.iter().map(|&c| layout.left(c)).collect();
        stream_key.extend(r.stream_key.iter().map(|&c| layout.right(c)));
        // Only an inner join of inputs that only insert never retracts.
        let info = OperatorInfo {
            identity: identity.clone(),
            schema: Arc::new(Schema::new(fields)),
            stream_key,
            append_only: join_type == JoinType::Inner && l.append_only && r.append_only,
        };
        let side = |side: &JoinSide, preserved: bool, table: u32| -> Result<Side> {
            let info = side.input.info();
            let key_types = side
                .keys
                .iter()
                .map(|k| k.data_type(&info.schema))
                .collect::<Result<Vec<_>>>()?;
            let mut fields: Vec<Field> = key_types
                .iter()
                .enumerate()
                .map(|(i, t)| Field::new(format!("_key_{i}"), t.clone(), true))
                .collect();
            fields.extend(info.schema.fields().iter().map(field));
            fields.push(Field::new("_degree", DataType::Int64, false));
            let k = key_types.len();
            let mut key_columns: Vec<usize> = (0..k).collect();
            key_columns.extend(info.stream_key.iter().map(|&c| k + c));
            let order = vec![Default::default(); key_columns.len()];
            Ok(Side {
                keys: side.keys.clone(),
                width: info.schema.fields().len(),
                visible: side.visible,
                types: info
                    .schema
                    .fields()
                    .iter()
                    .map(|f| f.data_type().clone())
                    .collect(),
                preserved,
                table: StateTable::with_layout(
                    Arc::clone(&store),
                    StateTableId(table),
                    Arc::new(Schema::new(fields)),
                    key_columns,
                    order,
                    k,
                )?,
                key_rows: RowConverter::new(
                    key_types
                        .iter()
                        .map(|t| SortField::new(t.clone()))
                        .collect(),
                )?,
                key_types,
            })
        };
        let sides = [
            side(&left, left_preserved, first_table)?,
            side(&right, right_preserved, first_table + 1)?,
        ];
        Ok(Self {
            join: Join {
                sides,
                filter,
                schema: Arc::clone(&info.schema),
                expiry: None,
                band: None,
                watermarks: [None; 2],
                cleaned: [None; 2],
                emitted: [None; 2],
                outgoing: VecDeque::new(),
            },
            info,
            inputs: [left.input, right.input],
            alignment: AlignmentMeter::default(),
        })
    }

    /// Forgets rows outside `band` of the other side's watermark.
    pub fn with_time_band(mut self, band: TimeBand) -> Self {
        self.join.band = Some(band);
        self
    }

    /// Expires join keys no row has changed for `ttl`; expiry retracts,
    /// so the output is no longer append-only.
    pub fn expire_after(mut self, ttl: Duration) -> Self {
        self.join.expiry = Some(GroupExpiry::new(ttl));
        self.info.append_only = false;
        self
    }

    pub fn state_ttl(&self) -> Option<Duration> {
        self.join.expiry.as_ref().map(GroupExpiry::ttl)
    }

    /// Adds the time barriers wait for each other to `meter`.
    #[must_use]
    pub fn with_alignment_meter(mut self, meter: AlignmentMeter) -> Self {
        self.alignment = meter;
        self
    }
}

/// Where each side's columns go in the output.
struct Layout {
    left_visible: usize,
    right_visible: usize,
    left_width: usize,
}

impl Layout {
    fn left(&self, column: usize) -> usize {
        if column < self.left_visible {
            column
        } else {
            self.right_visible + column
        }
    }

    fn right(&self, column: usize) -> usize {
        if column < self.right_visible {
            self.left_visible + column
        } else {
            self.left_width + column
        }
    }
}

/// The other side's stored rows that share a chunk's join keys: each
/// distinct key scanned once.
struct Probe {
    /// Per chunk row, the rows of `stored` with its key (none for NULL keys).
    matches: Vec<Range<usize>>,
    /// Matched rows in the other side's state layout (keys, row, degree).
    stored: RecordBatch,
}

/// Output rows as positions: a chunk row, a stored row, or NULLs for either.
#[derive(Default)]
struct Pairs {
    ops: Vec<Op>,
    this: Vec<Option<u32>>,
    other: Vec<Option<u32>>,
}

impl Pairs {
    fn push(&mut self, op: Op, this: Option<usize>, other: Option<usize>) {
        self.ops.push(op);
        self.this.push(this.map(|r| r as u32));
        self.other.push(other.map(|r| r as u32));
    }
}

impl Join {
    /// The stored rows of side `other` matching `keys` (in its key types).
    fn probe(&self, other: usize, keys: &[ArrayRef], rows: usize) -> Result<Probe> {
        let side = &self.sides[other];
        let encoded = side.key_rows.convert_columns(keys)?;
        let mut scanned: HashMap<&[u8], Range<usize>> = HashMap::new();
        let mut batches = Vec::new();
        let mut total = 0;
        let mut matches = Vec::with_capacity(rows);
        for row in 0..rows {
            if keys.iter().any(|k| k.is_null(row)) {
                matches.push(0..0);
                continue;
            }
            let range = match scanned.entry(encoded.row(row).data()) {
                Entry::Occupied(entry) => entry.get().clone(),
                Entry::Vacant(entry) => {
                    let key: Vec<ArrayRef> = keys.iter().map(|k| k.slice(row, 1)).collect();
                    let start = total;
                    side.table.scan_prefix(&key, 1024, |batch| {
                        total += batch.num_rows();
                        batches.push(batch);
                        Ok(true)
                    })?;
                    entry.insert(start..total).clone()
                }
            };
            matches.push(range);
        }
        Ok(Probe {
            matches,
            stored: concat_batches(side.table.schema(), &batches)?,
        })
    }

    /// Output columns for pairs of rows: side `s`'s from `this` (a chunk),
    /// the other side's from `stored`; absent positions become NULLs.
    fn columns(
        &self,
        s: usize,
        this: &RecordBatch,
        this_rows: &UInt32Array,
        stored: &RecordBatch,
        stored_rows: &UInt32Array,
    ) -> Result<Vec<ArrayRef>> {
        let other = &self.sides[1 - s];
        let this_columns = this
            .columns()
            .iter()
            .map(|c| Ok(take(c, this_rows, None)?))
            .collect::<Result<Vec<_>>>()?;
        let k = other.key_types.len();
        let other_columns = (0..other.width)
            .map(|c| {
                if stored.num_rows() == 0 {
                    Ok(new_null_array(&other.types[c], stored_rows.len()))
                } else {
                    Ok(take(stored.column(k + c), stored_rows, None)?)
                }
            })
            .collect::<Result<Vec<_>>>()?;
        let (left, right) = if s == 0 {
            (this_columns, other_columns)
        } else {
            (other_columns, this_columns)
        };
        let (lv, rv) = (self.sides[0].visible, self.sides[1].visible);
        let mut columns = Vec::with_capacity(left.len() + right.len());
        columns.extend_from_slice(&left[..lv]);
        columns.extend_from_slice(&right[..rv]);
        columns.extend_from_slice(&left[lv..]);
        columns.extend_from_slice(&right[rv..]);
        Ok(columns)
    }

    /// Per candidate pair (each chunk row with each of its matches, in
    /// order), whether it passes the residual predicate.
    fn passing(&self, s: usize, data: &RecordBatch, probe: &Probe) -> Result<Vec<bool>> {
        let pairs: usize = probe.matches.iter().map(|m| m.len()).sum();
        let Some(filter) = &self.filter else {
            return Ok(vec![true; pairs]);
        };
        if pairs == 0 {
            return Ok(Vec::new());
        }
        let (mut this, mut stored) = (Vec::with_capacity(pairs), Vec::with_capacity(pairs));
        for (row, matches) in probe.matches.iter().enumerate() {
            for m in matches.clone() {
                this.push(row as u32);
                stored.push(m as u32);
            }
        }
        let columns = self.columns(
            s,
            data,
            &UInt32Array::from(this),
            &probe.stored,
            &UInt32Array::from(stored),
        )?;
        let batch = RecordBatch::try_new(Arc::clone(&self.schema), columns)?;
        let result = filter.evaluate(&batch)?.into_array(pairs)?;
        let result = result
            .as_any()
            .downcast_ref::<BooleanArray>()
            .ok_or_else(|| DataFusionError::Internal("join filter is not boolean".into()))?;
        Ok((0..pairs)
            .map(|i| result.is_valid(i) && result.value(i))
            .collect())
    }

    fn apply(&mut self, s: usize, chunk: &StreamChunk) -> Result<Option<StreamChunk>> {
        let other = 1 - s;
        let data = chunk.data();
        let rows = data.num_rows();
        let keys: Vec<ArrayRef> = self.sides[s]
            .keys
            .iter()
            .map(|k| k.evaluate(data)?.into_array(rows))
            .collect::<Result<_>>()?;
        let probe_keys = keys
            .iter()
            .zip(&self.sides[other].key_types)
            .map(|(k, t)| Ok(cast(k, t)?))
            .collect::<Result<Vec<ArrayRef>>>()?;
        let probe = self.probe(other, &probe_keys, rows)?;
        let passing = self.passing(s, data, &probe)?;
        if self.expiry.is_some() {
            // Keys in the right side's types: the probe keys from the left,
            // the keys themselves from the right.
            let canonical = if s == 0 { &probe_keys } else { &keys };
            self.touch(canonical)?;
        }

        // Rows in order, so repeated keys in one chunk see each other's
        // effect on the stored rows' degrees.
        let k = self.sides[other].key_types.len();
        let degree_column = as_int64_array(probe.stored.column(k + self.sides[other].width))?;
        let mut degrees: Vec<i64> = degree_column.values().to_vec();
        let mut changed = vec![false; degrees.len()];
        let (this_preserved, other_preserved) =
            (self.sides[s].preserved, self.sides[other].preserved);
        let mut pairs = Pairs::default();
        let mut own_degrees = Vec::with_capacity(rows);
        let mut candidate = 0;
        for (row, matches) in probe.matches.iter().enumerate() {
            let inserting = chunk.ops()[row].is_insert();
            let mut degree = 0;
            for m in matches.clone() {
                candidate += 1;
                if !passing[candidate - 1] {
                    continue;
                }
                degree += 1;
                changed[m] = true;
                if inserting {
                    if other_preserved && degrees[m] == 0 {
                        pairs.push(Op::Delete, None, Some(m));
                    }
                    pairs.push(Op::Insert, Some(row), Some(m));
                    degrees[m] += 1;
                } else {
                    pairs.push(Op::Delete, Some(row), Some(m));
                    if other_preserved && degrees[m] == 1 {
                        pairs.push(Op::Insert, None, Some(m));
                    }
                    degrees[m] -= 1;
                }
            }
            if degree == 0 && this_preserved {
                let op = if inserting { Op::Insert } else { Op::Delete };
                pairs.push(op, Some(row), None);
            }
            own_degrees.push(degree);
        }

        // This side's rows, with their degrees.
        let mut stored_columns = keys;
        stored_columns.extend(data.columns().iter().cloned());
        stored_columns.push(Arc::new(Int64Array::from(own_degrees)));
        let own = &mut self.sides[s].table;
        let stored = RecordBatch::try_new(Arc::clone(own.schema()), stored_columns)?;
        own.apply_chunk(&StreamChunk::new(chunk.ops().to_vec(), stored)?)?;
        // Degrees decide NULL-padding only on a preserved side.
        if other_preserved && changed.contains(&true) {
            let mut columns = probe.stored.columns().to_vec();
            columns[k + self.sides[other].width] = Arc::new(Int64Array::from(degrees));
            let updated = RecordBatch::try_new(probe.stored.schema(), columns)?;
            let updated = filter_record_batch(&updated, &BooleanArray::from(changed))?;
            self.sides[other].table.insert(&updated)?;
        }

        if pairs.ops.is_empty() {
            return Ok(None);
        }
        let columns = self.columns(
            s,
            data,
            &UInt32Array::from(pairs.this),
            &probe.stored,
            &UInt32Array::from(pairs.other),
        )?;
        StreamChunk::new(
            pairs.ops,
            RecordBatch::try_new(Arc::clone(&self.schema), columns)?,
        )
        .map(Some)
    }
}

impl Join {
    /// Makes the epoch `barrier` ends durable and passes it on.
    fn commit(&mut self, barrier: Barrier) -> Result<Message> {
        self.forget_out_of_band()?;
        self.sides[0].table.commit(barrier.epoch)?;
        self.sides[1].table.commit(barrier.epoch)?;
        Ok(Message::Barrier(barrier))
    }
}

impl Operator for HashJoinOperator {
    fn info(&self) -> &OperatorInfo {
        &self.info
    }

    fn execute(self: Box<Self>) -> BoxedMessageStream {
        let Self {
            info,
            inputs,
            join,
            alignment,
        } = *self;
        let [left, right] = inputs;
        let aligned = align(
            vec![left.execute(), right.execute()],
            info.identity.clone(),
            alignment,
        );
        Box::pin(stream::unfold(
            Some((Box::pin(aligned), join, None::<Barrier>, false)),
            |state| async move {
                let (mut aligned, mut join, mut pending, mut started) = state?;
                if !std::mem::replace(&mut started, true)
                    && let Err(e) = join.restore_expiry()
                {
                    return Some((Err(e), None));
                }
                // A second output watermark from one input watermark.
                if let Some(watermark) = join.outgoing.pop_front() {
                    let next = Some((aligned, join, pending, started));
                    return Some((Ok(Message::Watermark(watermark)), next));
                }
                // A barrier held back while its epoch's expired rows went out.
                if let Some(barrier) = pending.take() {
                    let output = join.commit(barrier);
                    let next = output.is_ok().then_some((aligned, join, None, started));
                    return Some((output, next));
                }
                loop {
                    let output = match aligned.next().await? {
                        Ok(Aligned::Chunk(side, chunk)) => match join.apply(side, &chunk) {
                            Ok(Some(chunk)) => Ok(Message::Chunk(chunk)),
                            Ok(None) => continue,
                            Err(e) => Err(e),
                        },
                        Ok(Aligned::Watermark(side, watermark)) => {
                            match join.watermark(side, &watermark) {
                                Ok(()) => match join.outgoing.pop_front() {
                                    Some(watermark) => Ok(Message::Watermark(watermark)),
                                    None => continue,
                                },
                                Err(e) => Err(e),
                            }
                        }
                        Ok(Aligned::Barrier(barrier, waited)) => {
                            tracing::trace!(epoch = barrier.epoch.0, ?waited, "join aligned");
                            match join.expire() {
                                Ok(Some(chunk)) => {
                                    pending = Some(barrier);
                                    Ok(Message::Chunk(chunk))
                                }
                                Ok(None) => join.commit(barrier),
                                Err(e) => Err(e),
                            }
                        }
                        Err(e) => Err(e),
                    };
                    let next = output.is_ok().then_some((aligned, join, pending, started));
                    return Some((output, next));
                }
            },
        ))
    }
}

#[cfg(test)]
mod tests;
