//! Hash aggregate: `GROUP BY` with aggregate calls, kept up to date under
//! inserts and deletes.
//!
//! State: a groups table keyed by the group columns holding the group's
//! row count and each call's partial values (for min, max, bool_and and
//! bool_or: the current extreme), and one multiset table per call that
//! needs one (see [`crate::aggregate`]), keyed by group then value,
//! holding the value's multiplicity. Only deleting a group's extreme
//! reads its multiset, to find the next one. A global aggregate (no
//! `GROUP BY`) keys its single group by a constant.
//!
//! Output: keyed by the group columns. A changed group is retracted and
//! re-emitted as an update pair; a group whose last row goes is deleted;
//! a global aggregate always has its one row (`count` 0 on no input).
//!
//! Grouped by a watermarked column (a window), groups below the watermark
//! are closed (see [`crate::aggregate::WindowClose`]): their state goes,
//! and late rows for them are dropped. With `EMIT ON WINDOW CLOSE` the
//! output is append-only: each group's final row, once, when it closes.
//!
//! With a state TTL (see [`crate::aggregate::GroupExpiry`]), a group no
//! row has changed for that long is retracted at the end of an epoch and
//! its state deleted.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use datafusion::arrow::array::{
    Array, ArrayRef, BooleanArray, Int8Array, Int64Array, RecordBatch, UInt32Array,
};
use datafusion::arrow::compute::{SortOptions, cast, take};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::row::{RowConverter, SortField};
use datafusion::common::ScalarValue;
use datafusion::common::cast::as_int64_array;
use datafusion::error::{DataFusionError, Result};
use datafusion::physical_expr::PhysicalExpr;
use weir_storage::StateStore;

use super::unary::{ChunkHandler, Emitted, run_handler};
use crate::aggregate::{AggCall, GroupExpiry, WindowClose};
use crate::message::{Barrier, Op, StreamChunk, Watermark};
use crate::operator::{BoxedMessageStream, BoxedOperator, Operator, OperatorInfo};
use crate::state::{StateTable, StateTableId};
use crate::watermark::{WatermarkDerivation, WatermarkProgress};

pub struct HashAggOperator {
    info: OperatorInfo,
    input: BoxedOperator,
    aggregation: Aggregation,
}

struct Aggregation {
    group_exprs: Vec<Arc<dyn PhysicalExpr>>,
    calls: Vec<AggCall>,
    input_schema: SchemaRef,
    output_schema: SchemaRef,
    /// Types of the state's group columns (a constant Int8 when global).
    group_types: Vec<DataType>,
    group_keys: RowConverter,
    groups: StateTable,
    /// Per call, its multiset table if it has one.
    multisets: Vec<Option<StateTable>>,
    /// The id of the first state table; the others follow it.
    first_table: u32,
    /// Closes groups below the watermark, when grouped by a window.
    window: Option<WindowClose>,
    /// Expires groups unchanged for a while, with a state TTL.
    expiry: Option<GroupExpiry>,
}

/// One group's state while a chunk is applied.
struct Group {
    rows: i64,
    partials: Vec<Vec<ScalarValue>>,
    existed: bool,
}

impl HashAggOperator {
    /// Groups by `group_exprs` (named by the output schema's first fields)
    /// and computes `calls`. State tables get ids `first_table` onward.
    pub fn new(
        input: BoxedOperator,
        group_exprs: Vec<(Arc<dyn PhysicalExpr>, String)>,
        calls: Vec<AggCall>,
        store: Arc<dyn StateStore>,
        first_table: u32,
        identity: String,
    ) -> Result<Self> {
        let input_schema = Arc::clone(&input.info().schema);
        let mut fields = Vec::new();
        for (expr, name) in &group_exprs {
            fields.push(Field::new(
                name,
                expr.data_type(&input_schema)?,
                expr.nullable(&input_schema)?,
            ));
        }
        let global = group_exprs.is_empty();
        let group_types: Vec<DataType> = if global {
            vec![DataType::Int8]
        } else {
            fields.iter().map(|f| f.data_type().clone()).collect()
        };
        let group_fields: Vec<Field> = group_types
            .iter()
            .enumerate()
            .map(|(i, t)| Field::new(format!("_group_{i}"), t.clone(), true))
            .collect();
        let group_len = group_fields.len();
        let mut state_fields = group_fields.clone();
        state_fields.push(Field::new("_rows", DataType::Int64, false));
        for (i, call) in calls.iter().enumerate() {
            state_fields.extend(call.partial_fields(i, &input_schema)?);
        }
        let groups = StateTable::new(
            Arc::clone(&store),
            StateTableId(first_table),
            Arc::new(Schema::new(state_fields)),
            (0..group_len).collect(),
        )?;
        let mut multisets = Vec::new();
        for (i, call) in calls.iter().enumerate() {
            let Some(arg) = call.arg.as_ref().filter(|_| call.needs_multiset()) else {
                multisets.push(None);
                continue;
            };
            let mut fields = group_fields.clone();
            fields.push(Field::new("_value", arg.data_type(&input_schema)?, true));
            fields.push(Field::new("_times", DataType::Int64, false));
            let mut order = vec![SortOptions::default(); group_len];
            order.push(SortOptions {
                descending: call.kind.descending(),
                nulls_first: false,
            });
            multisets.push(Some(StateTable::with_layout(
                Arc::clone(&store),
                StateTableId(first_table + 1 + i as u32),
                Arc::new(Schema::new(fields)),
                (0..=group_len).collect(),
                order,
                group_len,
            )?));
        }
        for call in &calls {
            fields.push(call.output.clone());
        }
        let output_schema = Arc::new(Schema::new(fields));
        let group_keys = RowConverter::new(
            group_types
                .iter()
                .map(|t| SortField::new(t.clone()))
                .collect(),
        )?;
        let info = OperatorInfo {
            identity,
            schema: Arc::clone(&output_schema),
            stream_key: (0..group_exprs.len()).collect(),
            append_only: false,
        };
        let aggregation = Aggregation {
            group_exprs: group_exprs.into_iter().map(|(e, _)| e).collect(),
            calls,
            input_schema,
            output_schema,
            group_types,
            group_keys,
            groups,
            multisets,
            first_table,
            window: None,
            expiry: None,
        };
        Ok(Self {
            info,
            input,
            aggregation,
        })
    }

    /// The group (and output) column whose windows close, if any.
    pub fn window_column(&self) -> Option<usize> {
        self.aggregation
            .window
            .as_ref()
            .map(WindowClose::group_column)
    }

    /// Closes windows: the first group column that carries a watermark of
    /// the input's `watermarked` columns is the window. With
    /// `emit_on_close`, output is each group's final row as it closes.
    /// Without a window column, nothing changes.
    pub fn close_windows(
        mut self,
        watermarked: &[usize],
        emit_on_close: bool,
        store: Arc<dyn StateStore>,
        progress: WatermarkProgress,
    ) -> Result<Self> {
        let aggregation = &mut self.aggregation;
        let derivation = WatermarkDerivation::all(
            &aggregation.group_exprs,
            &aggregation.input_schema,
            Some(watermarked),
        )
        .into_iter()
        .next();
        let Some(derivation) = derivation else {
            return Ok(self);
        };
        let window_type = aggregation.group_types[derivation.output].clone();
        let table = StateTableId(aggregation.first_table + 1 + aggregation.calls.len() as u32);
        aggregation.window = Some(WindowClose::new(
            derivation,
            emit_on_close,
            &window_type,
            store,
            table,
            progress,
        )?);
        self.info.append_only = emit_on_close;
        Ok(self)
    }

    /// Expires groups no row has changed for `ttl`. A global aggregate
    /// keeps its one row.
    pub fn expire_after(mut self, ttl: Duration) -> Self {
        if !self.aggregation.is_global() {
            self.aggregation.expiry = Some(GroupExpiry::new(ttl));
        }
        self
    }

    pub fn state_ttl(&self) -> Option<Duration> {
        self.aggregation.expiry.as_ref().map(GroupExpiry::ttl)
    }
}

fn int64(value: &ScalarValue) -> Result<i64> {
    match value {
        ScalarValue::Int64(Some(n)) => Ok(*n),
        other => Err(DataFusionError::Internal(format!(
            "expected a count, got {other:?}"
        ))),
    }
}

impl Aggregation {
    fn is_global(&self) -> bool {
        self.group_exprs.is_empty()
    }

    /// The state's group columns for `rows` rows of `batch`.
    fn group_columns(
        &self,
        batch: &datafusion::arrow::array::RecordBatch,
    ) -> Result<Vec<ArrayRef>> {
        if self.is_global() {
            return Ok(vec![Arc::new(Int8Array::from(vec![0i8; batch.num_rows()]))]);
        }
        self.group_exprs
            .iter()
            .map(|e| e.evaluate(batch)?.into_array(batch.num_rows()))
            .collect()
    }

    fn empty_group(&self) -> Result<Group> {
        Ok(Group {
            rows: 0,
            partials: self
                .calls
                .iter()
                .map(|c| c.empty_partials(&self.input_schema))
                .collect::<Result<_>>()?,
            existed: false,
        })
    }

    /// Loads the groups with these keys (one row per group).
    fn load(&self, keys: &[ArrayRef]) -> Result<Vec<Group>> {
        let lookup = self.groups.get(keys)?;
        let mut groups = Vec::with_capacity(lookup.found.len());
        for found in &lookup.found {
            let Some(row) = found else {
                groups.push(self.empty_group()?);
                continue;
            };
            let mut column = self.group_types.len();
            let rows = int64(&ScalarValue::try_from_array(
                lookup.rows.column(column),
                *row,
            )?)?;
            column += 1;
            let mut partials = Vec::new();
            for call in &self.calls {
                let width = call.partial_fields(0, &self.input_schema)?.len();
                let values = (column..column + width)
                    .map(|c| ScalarValue::try_from_array(lookup.rows.column(c), *row))
                    .collect::<Result<Vec<_>>>()?;
                column += width;
                partials.push(values);
            }
            groups.push(Group {
                rows,
                partials,
                existed: true,
            });
        }
        Ok(groups)
    }

    /// A multiset's first `limit` values (with multiplicities) for a group.
    fn multiset_values(
        &self,
        table: &StateTable,
        key: &[ArrayRef],
        limit: usize,
    ) -> Result<Vec<(ScalarValue, i64)>> {
        let mut values = Vec::new();
        let value_column = self.group_types.len();
        table.scan_prefix(key, limit.min(1024), |batch| {
            let times = as_int64_array(batch.column(value_column + 1))?;
            for row in 0..batch.num_rows() {
                if values.len() >= limit {
                    return Ok(false);
                }
                let value = ScalarValue::try_from_array(batch.column(value_column), row)?;
                values.push((value, times.value(row)));
            }
            Ok(values.len() < limit)
        })?;
        Ok(values)
    }

    /// The output row of a group (`None` if the group has no rows).
    fn output_row(
        &self,
        group: &Group,
        key: &[ArrayRef],
        key_row: &[ScalarValue],
    ) -> Result<Option<Vec<ScalarValue>>> {
        if group.rows == 0 && !self.is_global() {
            return Ok(None);
        }
        let mut row = if self.is_global() {
            Vec::new()
        } else {
            key_row.to_vec()
        };
        for ((call, partials), multiset) in
            self.calls.iter().zip(&group.partials).zip(&self.multisets)
        {
            let values = match multiset {
                Some(table) if call.kind.reads_multiset() && !call.kind.keeps_extreme() => {
                    self.multiset_values(table, key, call.values_needed())?
                }
                _ => Vec::new(),
            };
            row.push(call.result(partials, &values)?);
        }
        Ok(Some(row))
    }

    /// Stores the groups' new state; groups left without rows go.
    fn write_groups(&mut self, keys: &[Vec<ScalarValue>], groups: &[Group]) -> Result<()> {
        let (mut ops, mut rows) = (Vec::new(), Vec::new());
        for (key, group) in keys.iter().zip(groups) {
            let emptied = group.rows == 0 && !self.is_global();
            if emptied && !group.existed {
                continue;
            }
            let mut row = key.clone();
            row.push(ScalarValue::Int64(Some(group.rows)));
            row.extend(group.partials.iter().flatten().cloned());
            ops.push(if emptied { Op::Delete } else { Op::Insert });
            rows.push(row);
        }
        if rows.is_empty() {
            return Ok(());
        }
        let changes = StreamChunk::from_rows(Arc::clone(self.groups.schema()), ops, rows)?;
        self.groups.apply_chunk(&changes)
    }

    fn apply(&mut self, chunk: &StreamChunk) -> Result<Option<StreamChunk>> {
        let data = chunk.data();
        let keys = self.group_columns(data)?;
        let encoded = self.group_keys.convert_columns(&keys)?;
        // Each row's group, numbered in order of first appearance.
        let mut numbering: HashMap<&[u8], usize> = HashMap::new();
        let mut first_rows: Vec<u32> = Vec::new();
        let row_group: Vec<usize> = (0..data.num_rows())
            .map(|row| {
                *numbering.entry(encoded.row(row).data()).or_insert_with(|| {
                    first_rows.push(row as u32);
                    first_rows.len() - 1
                })
            })
            .collect();
        if let Some(expiry) = &mut self.expiry {
            expiry.touch(numbering.keys().copied(), Instant::now());
        }
        let first_rows = UInt32Array::from(first_rows);
        let group_keys: Vec<ArrayRef> = keys
            .iter()
            .map(|k| Ok(take(k.as_ref(), &first_rows, None)?))
            .collect::<Result<_>>()?;
        let key_rows: Vec<Vec<ScalarValue>> = (0..first_rows.len())
            .map(|g| {
                group_keys
                    .iter()
                    .map(|k| ScalarValue::try_from_array(k, g))
                    .collect()
            })
            .collect::<Result<_>>()?;
        let key_of =
            |g: usize| -> Vec<ArrayRef> { group_keys.iter().map(|k| k.slice(g, 1)).collect() };
        let mut groups = self.load(&group_keys)?;
        if let Some(window) = &mut self.window {
            let encoded = self.group_keys.convert_columns(&group_keys)?;
            let new = groups.iter().enumerate().filter(|(_, g)| !g.existed);
            window.open_groups(
                &group_keys[window.group_column()],
                &encoded,
                new.map(|(g, _)| g),
            )?;
        }
        let emit_changes = !self.window.as_ref().is_some_and(|w| w.emit_on_close);
        let old: Vec<Option<Vec<ScalarValue>>> = groups
            .iter()
            .enumerate()
            .map(|(g, group)| {
                if group.existed && emit_changes {
                    self.output_row(group, &key_of(g), &key_rows[g])
                } else {
                    Ok(None)
                }
            })
            .collect::<Result<_>>()?;

        for (row, &g) in row_group.iter().enumerate() {
            groups[g].rows += if chunk.ops()[row].is_insert() { 1 } else { -1 };
        }
        for c in 0..self.calls.len() {
            let deltas = self.call_deltas(c, chunk, &row_group)?;
            if self.multisets[c].is_none() {
                // Direct partials: a sign per row was summed into `sign`.
                let call = &self.calls[c];
                for ((g, value), sign) in deltas {
                    for _ in 0..sign.abs() {
                        call.apply(&mut groups[g].partials[c], &value, sign.signum())?;
                    }
                }
                continue;
            }
            let counts = self.update_multiset(c, &group_keys, &deltas)?;
            let call = &self.calls[c];
            if call.kind.keeps_extreme() {
                for g in self.update_extremes(c, &mut groups, &deltas, &counts) {
                    let first = self.multiset_values(self.multiset(c)?, &key_of(g), 1)?;
                    groups[g].partials[c][0] = match first.into_iter().next() {
                        Some((value, _)) => value,
                        None => ScalarValue::try_from(groups[g].partials[c][0].data_type())?,
                    };
                }
            }
            if !call.distinct {
                continue;
            }
            for (((g, value), _), (before, after)) in deltas.iter().zip(counts) {
                if (before == 0) != (after == 0) {
                    let sign = if after > 0 { 1 } else { -1 };
                    call.apply(&mut groups[*g].partials[c], value, sign)?;
                }
            }
        }

        if !emit_changes {
            self.write_groups(&key_rows, &groups)?;
            return Ok(None);
        }
        let mut ops = Vec::new();
        let mut rows = Vec::new();
        for (g, group) in groups.iter().enumerate() {
            let new = self.output_row(group, &key_of(g), &key_rows[g])?;
            match (old[g].as_ref(), new) {
                (Some(old), Some(new)) if *old != new => {
                    ops.extend([Op::UpdateDelete, Op::UpdateInsert]);
                    rows.extend([old.clone(), new]);
                }
                (Some(_), Some(_)) => {}
                (None, Some(new)) => {
                    ops.push(Op::Insert);
                    rows.push(new);
                }
                (Some(old), None) => {
                    ops.push(Op::Delete);
                    rows.push(old.clone());
                }
                (None, None) => {}
            }
        }
        self.write_groups(&key_rows, &groups)?;
        if rows.is_empty() {
            return Ok(None);
        }
        StreamChunk::from_rows(Arc::clone(&self.output_schema), ops, rows).map(Some)
    }

    /// Removes groups (encoded group keys) and their multisets; with
    /// `emit`, returns their current rows with that op: their final rows
    /// as windows close, their retractions as they expire.
    fn drop_groups(
        &mut self,
        dropped: &[Vec<u8>],
        emit: Option<Op>,
    ) -> Result<Option<StreamChunk>> {
        let mut rows = Vec::new();
        for batch in dropped.chunks(4096) {
            let parser = self.group_keys.parser();
            let keys = self
                .group_keys
                .convert_rows(batch.iter().map(|k| parser.parse(k)))?;
            let groups = self.load(&keys)?;
            let mut present = Vec::new();
            for (g, group) in groups.iter().enumerate() {
                if !group.existed {
                    continue;
                }
                if emit.is_some() {
                    let key: Vec<ArrayRef> = keys.iter().map(|k| k.slice(g, 1)).collect();
                    let key_row = keys
                        .iter()
                        .map(|k| ScalarValue::try_from_array(k, g))
                        .collect::<Result<Vec<_>>>()?;
                    rows.extend(self.output_row(group, &key, &key_row)?);
                }
                present.push(g as u32);
            }
            let present = UInt32Array::from(present);
            let keys: Vec<ArrayRef> = keys
                .iter()
                .map(|k| Ok(take(k.as_ref(), &present, None)?))
                .collect::<Result<_>>()?;
            self.groups.delete_keys(&keys)?;
            for table in self.multisets.iter_mut().flatten() {
                for g in 0..present.len() {
                    let prefix: Vec<ArrayRef> = keys.iter().map(|k| k.slice(g, 1)).collect();
                    let mut values = Vec::new();
                    table.scan_prefix(&prefix, 1024, |batch| {
                        values.push(batch);
                        Ok(true)
                    })?;
                    for batch in &values {
                        table.delete(batch)?;
                    }
                }
            }
        }
        let Some(op) = emit.filter(|_| !rows.is_empty()) else {
            return Ok(None);
        };
        let ops = vec![op; rows.len()];
        StreamChunk::from_rows(Arc::clone(&self.output_schema), ops, rows).map(Some)
    }

    /// The net change per (group, argument value) that call `c` sees in
    /// `chunk`; for calls without multiset, nulls are skipped and
    /// `count(*)` counts rows.
    fn call_deltas(
        &self,
        c: usize,
        chunk: &StreamChunk,
        row_group: &[usize],
    ) -> Result<Vec<((usize, ScalarValue), i64)>> {
        let call = &self.calls[c];
        let data = chunk.data();
        let rows = data.num_rows();
        let selected: Option<BooleanArray> = match &call.filter {
            Some(filter) => Some(
                filter
                    .evaluate(data)?
                    .into_array(rows)?
                    .as_any()
                    .downcast_ref::<BooleanArray>()
                    .cloned()
                    .ok_or_else(|| DataFusionError::Internal("FILTER is not boolean".into()))?,
            ),
            None => None,
        };
        let args = match &call.arg {
            Some(arg) => Some(arg.evaluate(data)?.into_array(rows)?),
            None => None,
        };
        let mut deltas: HashMap<(usize, ScalarValue), i64> = HashMap::new();
        let mut order = Vec::new();
        for (row, &g) in row_group.iter().enumerate() {
            if let Some(selected) = &selected
                && !(selected.is_valid(row) && selected.value(row))
            {
                continue;
            }
            let value = match &args {
                Some(args) if args.is_null(row) => continue,
                Some(args) => ScalarValue::try_from_array(args, row)?,
                None => ScalarValue::Int64(Some(1)),
            };
            let sign = if chunk.ops()[row].is_insert() { 1 } else { -1 };
            let key = (g, value);
            if !deltas.contains_key(&key) {
                order.push(key.clone());
            }
            *deltas.entry(key).or_default() += sign;
        }
        Ok(order
            .into_iter()
            .map(|key| {
                let sign = deltas[&key];
                (key, sign)
            })
            .collect())
    }

    fn multiset(&self, c: usize) -> Result<&StateTable> {
        self.multisets[c]
            .as_ref()
            .ok_or_else(|| DataFusionError::Internal("aggregate call has no multiset".into()))
    }

    /// Moves call `c`'s kept extremes past the values that arrived; returns
    /// the groups whose extreme left, which must read their multiset.
    fn update_extremes(
        &self,
        c: usize,
        groups: &mut [Group],
        deltas: &[((usize, ScalarValue), i64)],
        counts: &[(i64, i64)],
    ) -> Vec<usize> {
        let kind = &self.calls[c].kind;
        let mut lost = Vec::new();
        for (((g, value), _), (_, after)) in deltas.iter().zip(counts) {
            let extreme = &mut groups[*g].partials[c][0];
            if *after <= 0 && value == extreme {
                lost.push(*g);
            } else if *after > 0 && kind.better(value, extreme) {
                *extreme = value.clone();
            }
        }
        lost.sort_unstable();
        lost.dedup();
        lost
    }

    /// Changes the multiplicities of call `c`'s values by `deltas` (one
    /// entry per group and value); returns each one's before and after.
    fn update_multiset(
        &mut self,
        c: usize,
        group_keys: &[ArrayRef],
        deltas: &[((usize, ScalarValue), i64)],
    ) -> Result<Vec<(i64, i64)>> {
        if deltas.is_empty() {
            return Ok(Vec::new());
        }
        let table = self.multisets[c]
            .as_mut()
            .ok_or_else(|| DataFusionError::Internal("aggregate call has no multiset".into()))?;
        let schema = Arc::clone(table.schema());
        let group_len = group_keys.len();
        let groups = UInt32Array::from_iter_values(deltas.iter().map(|((g, _), _)| *g as u32));
        let mut columns: Vec<ArrayRef> = group_keys
            .iter()
            .map(|k| Ok(take(k.as_ref(), &groups, None)?))
            .collect::<Result<_>>()?;
        let values = ScalarValue::iter_to_array(deltas.iter().map(|((_, v), _)| v.clone()))?;
        columns.push(cast(&values, schema.field(group_len).data_type())?);
        let lookup = table.get(&columns)?;
        let stored = as_int64_array(lookup.rows.column(group_len + 1))?;
        let counts: Vec<(i64, i64)> = lookup
            .found
            .iter()
            .zip(deltas)
            .map(|(found, (_, delta))| {
                let before = found.map_or(0, |row| stored.value(row));
                (before, before + delta)
            })
            .collect();
        columns.push(Arc::new(Int64Array::from_iter_values(
            counts.iter().map(|(_, after)| *after),
        )));
        let ops: Vec<Op> = counts
            .iter()
            .map(|(_, after)| if *after > 0 { Op::Insert } else { Op::Delete })
            .collect();
        let changes = StreamChunk::new(ops, RecordBatch::try_new(schema, columns)?)?;
        table.apply_chunk(&changes)?;
        Ok(counts)
    }
}

impl ChunkHandler for Aggregation {
    fn start(&mut self) -> Result<Option<StreamChunk>> {
        if let Some(window) = &mut self.window {
            let key_columns: Vec<usize> = (0..self.group_types.len()).collect();
            window.restore(&self.groups, &self.group_keys, &key_columns)?;
        }
        if let Some(expiry) = &mut self.expiry {
            let key_len = self.group_types.len();
            expiry.restore(&self.groups, &self.group_keys, key_len, Instant::now())?;
        }
        if !self.is_global() {
            return Ok(None);
        }
        let key: Vec<ArrayRef> = vec![Arc::new(Int8Array::from(vec![0i8]))];
        let group = self.load(&key)?.remove(0);
        if group.existed {
            return Ok(None);
        }
        let key_row = vec![ScalarValue::Int8(Some(0))];
        self.write_groups(std::slice::from_ref(&key_row), std::slice::from_ref(&group))?;
        let row = self.output_row(&group, &key, &key_row)?;
        let rows: Vec<Vec<ScalarValue>> = row.into_iter().collect();
        StreamChunk::from_rows(
            Arc::clone(&self.output_schema),
            vec![Op::Insert; rows.len()],
            rows,
        )
        .map(Some)
    }

    fn chunk(&mut self, chunk: StreamChunk) -> Result<Emitted> {
        let Some(window) = &mut self.window else {
            return Ok((self.apply(&chunk)?, None));
        };
        let windows = self.group_exprs[window.group_column()]
            .evaluate(chunk.data())?
            .into_array(chunk.num_rows())?;
        let chunk = window.drop_late(chunk, &windows)?;
        if chunk.is_empty() {
            return Ok((None, None));
        }
        Ok((self.apply(&chunk)?, None))
    }

    fn watermark(&mut self, watermark: Watermark) -> Result<Emitted> {
        let Some(window) = &mut self.window else {
            return Ok((None, None));
        };
        let Some((watermark, closed)) = window.advance(&watermark)? else {
            return Ok((None, None));
        };
        let emit = window.emit_on_close.then_some(Op::Insert);
        Ok((self.drop_groups(&closed, emit)?, Some(watermark)))
    }

    fn epoch_end(&mut self) -> Result<Option<StreamChunk>> {
        let Some(expiry) = &mut self.expiry else {
            return Ok(None);
        };
        let expired = expiry.expire(Instant::now());
        if expired.is_empty() {
            return Ok(None);
        }
        // Rows emitted only as windows close have nothing to retract.
        let emitting_changes = !self.window.as_ref().is_some_and(|w| w.emit_on_close);
        self.drop_groups(&expired, emitting_changes.then_some(Op::Delete))
    }

    fn barrier(&mut self, barrier: &Barrier) -> Result<()> {
        if let Some(window) = &mut self.window {
            window.commit(barrier.epoch)?;
        }
        self.groups.commit(barrier.epoch)?;
        for table in self.multisets.iter_mut().flatten() {
            table.commit(barrier.epoch)?;
        }
        Ok(())
    }
}

impl Operator for HashAggOperator {
    fn info(&self) -> &OperatorInfo {
        &self.info
    }

    fn execute(self: Box<Self>) -> BoxedMessageStream {
        let Self {
            input, aggregation, ..
        } = *self;
        run_handler(input.execute(), aggregation)
    }
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::datatypes::DataType;
    use datafusion::physical_expr::expressions::col;
    use weir_storage::MemoryStateStore;

    use super::*;
    use crate::aggregate::AggKind;
    use crate::message::Message;
    use crate::operators::testing::{chunk, collect, lines, messages, pretty, run, source, stop};

    fn call(
        kind: AggKind,
        arg: Option<&str>,
        schema: &Schema,
        output: DataType,
        distinct: bool,
    ) -> AggCall {
        AggCall {
            kind,
            arg: arg.map(|a| col(a, schema).unwrap()),
            distinct,
            filter: None,
            output: Field::new("out", output, true),
        }
    }

    fn aggregate(
        types: &str,
        rows: &str,
        grouped: bool,
        calls: impl Fn(&Schema) -> Vec<AggCall>,
    ) -> Vec<String> {
        let input = source(types, rows);
        let schema = Arc::clone(&input.info().schema);
        let groups = if grouped {
            vec![(col("c0", &schema).unwrap(), "k".to_string())]
        } else {
            Vec::new()
        };
        let store: Arc<dyn StateStore> = Arc::new(MemoryStateStore::default());
        let operator =
            HashAggOperator::new(input, groups, calls(&schema), store, 1, "agg".into()).unwrap();
        futures::executor::block_on(run(Box::new(operator)))
    }

    #[test]
    fn counts_sums_and_extremes_survive_retractions() {
        let out = aggregate(
            "I I",
            "+ 1 10
             + 1 30
             + 2 5
             - 1 30
             + 1 20",
            true,
            |s| {
                vec![
                    call(AggKind::Count, None, s, DataType::Int64, false),
                    call(AggKind::Sum, Some("c1"), s, DataType::Int64, false),
                    call(AggKind::Max, Some("c1"), s, DataType::Int64, false),
                ]
            },
        );
        // One chunk: every group's net change only.
        assert_eq!(out, lines("+ 1 2 30 20\n+ 2 1 5 5"));
    }

    #[test]
    fn groups_emptied_are_deleted_and_global_rows_stay() {
        let out = aggregate("I I", "+ 1 10\n- 1 10", true, |s| {
            vec![call(AggKind::Count, None, s, DataType::Int64, false)]
        });
        assert!(out.is_empty(), "{out:?}");
        let out = aggregate("I I", "+ 1 10\n+ 2 10\n+ 3 7", false, |s| {
            vec![
                call(AggKind::Count, Some("c1"), s, DataType::Int64, true),
                call(AggKind::Min, Some("c1"), s, DataType::Int64, false),
            ]
        });
        assert_eq!(out, lines("+ 0 .\nU- 0 .\nU+ 2 7"));
    }

    fn watermark(value: i64) -> Message {
        Message::Watermark(Watermark {
            column: 0,
            value: ScalarValue::Int64(Some(value)),
        })
    }

    /// Counts rows per window `c0` over `input`, closing windows.
    fn windowed_count(emit_on_close: bool, input: Vec<Message>) -> Vec<Message> {
        let input = messages("I I", input);
        let schema = Arc::clone(&input.info().schema);
        let store: Arc<dyn StateStore> = Arc::new(MemoryStateStore::default());
        let groups = vec![(col("c0", &schema).unwrap(), "window".to_string())];
        let count = vec![call(AggKind::Count, None, &schema, DataType::Int64, false)];
        let operator =
            HashAggOperator::new(input, groups, count, Arc::clone(&store), 1, "agg".into())
                .unwrap()
                .close_windows(&[0], emit_on_close, store, WatermarkProgress::default())
                .unwrap();
        assert_eq!(operator.info().append_only, emit_on_close);
        futures::executor::block_on(collect(Box::new(operator)))
    }

    fn rows(text: &str) -> Message {
        Message::Chunk(chunk("I I", text))
    }

    /// Each message as a line: a chunk's rows, a watermark, a barrier.
    fn shown(output: &[Message]) -> Vec<String> {
        output
            .iter()
            .map(|m| match m {
                Message::Chunk(c) => pretty(c).join(", "),
                Message::Watermark(w) => format!("watermark {}", w.value),
                Message::Barrier(_) => "barrier".into(),
            })
            .collect()
    }

    #[test]
    fn windows_close_once_at_the_watermark_and_late_rows_are_dropped() {
        let input = vec![
            rows("+ 10 1\n+ 10 2\n+ 20 3"),
            watermark(15),
            // Window 5 closed before it began: late.
            rows("+ 5 9\n+ 20 4\n+ 30 1"),
            watermark(40),
            stop(1),
        ];
        assert_eq!(
            shown(&windowed_count(true, input.clone())),
            [
                "+ 10 2",
                "watermark 15",
                "+ 20 2, + 30 1",
                "watermark 40",
                "barrier"
            ]
        );
        // Emitting changes: the same counts as they change. Window 10 is
        // forgotten at 15, and the late row for 5 changes nothing.
        assert_eq!(
            shown(&windowed_count(false, input)),
            [
                "+ 10 2, + 20 1",
                "watermark 15",
                "U- 20 1, U+ 20 2, + 30 1",
                "watermark 40",
                "barrier"
            ]
        );
    }
}
