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

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, BooleanArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::common::ScalarValue;
use datafusion::common::cast::as_int64_array;
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::JoinType;
use datafusion::physical_expr::PhysicalExpr;
use futures::{StreamExt, stream};
use weir_storage::StateStore;

use crate::align::{Aligned, align};
use crate::message::{Message, Op, StreamChunk};
use crate::operator::{BoxedMessageStream, BoxedOperator, Operator, OperatorInfo};
use crate::state::{StateTable, StateTableId};

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
}

struct Join {
    sides: [Side; 2],
    filter: Option<Arc<dyn PhysicalExpr>>,
    schema: SchemaRef,
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
        let (lw, rw) = (l.schema.fields().len(), r.schema.fields().len());
        let layout = Layout {
            left_visible: left.visible,
            right_visible: right.visible,
            left_width: lw,
        };
        let mut stream_key: Vec<usize> = l.stream_key.iter().map(|&c| layout.left(c)).collect();
        stream_key.extend(r.stream_key.iter().map(|&c| layout.right(c)));
        let info = OperatorInfo {
            identity: identity.clone(),
            schema: Arc::new(Schema::new(fields)),
            stream_key,
            append_only: false,
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
                key_types,
            })
        };
        let sides = [
            side(&left, left_preserved, first_table)?,
            side(&right, right_preserved, first_table + 1)?,
        ];
        let _ = rw;
        Ok(Self {
            join: Join {
                sides,
                filter,
                schema: Arc::clone(&info.schema),
            },
            info,
            inputs: [left.input, right.input],
        })
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

/// A stored row of the other side that shares a row's join key.
struct Match {
    values: Vec<ScalarValue>,
    degree: i64,
    key: Vec<ScalarValue>,
}

impl Join {
    /// One output row: `this` from side `s` beside `other` (NULLs if absent).
    fn combine(
        &self,
        s: usize,
        this: Option<&[ScalarValue]>,
        other: Option<&[ScalarValue]>,
    ) -> Result<Vec<ScalarValue>> {
        let (left, right) = if s == 0 { (this, other) } else { (other, this) };
        let values = |side: &Side, row: Option<&[ScalarValue]>| -> Result<Vec<ScalarValue>> {
            match row {
                Some(row) => Ok(row.to_vec()),
                None => side.types.iter().map(ScalarValue::try_from).collect(),
            }
        };
        let (l, r) = (
            values(&self.sides[0], left)?,
            values(&self.sides[1], right)?,
        );
        let (lv, rv) = (self.sides[0].visible, self.sides[1].visible);
        let mut row = Vec::with_capacity(l.len() + r.len());
        row.extend_from_slice(&l[..lv]);
        row.extend_from_slice(&r[..rv]);
        row.extend_from_slice(&l[lv..]);
        row.extend_from_slice(&r[rv..]);
        Ok(row)
    }

    /// The other side's rows with this key (cast to its key types).
    fn matches(&self, other: usize, key: &[ArrayRef]) -> Result<Vec<Match>> {
        let side = &self.sides[other];
        let key = key
            .iter()
            .zip(&side.key_types)
            .map(|(k, t)| Ok(cast(k, t)?))
            .collect::<Result<Vec<ArrayRef>>>()?;
        let k = side.key_types.len();
        let mut found = Vec::new();
        side.table.scan_prefix(&key, 1024, |batch| {
            let degrees = as_int64_array(batch.column(k + side.width))?;
            for row in 0..batch.num_rows() {
                let cell = |c: usize| ScalarValue::try_from_array(batch.column(c), row);
                found.push(Match {
                    key: (0..k).map(cell).collect::<Result<_>>()?,
                    values: (k..k + side.width).map(cell).collect::<Result<_>>()?,
                    degree: degrees.value(row),
                });
            }
            Ok(true)
        })?;
        Ok(found)
    }

    /// Which candidate output rows pass the residual predicate.
    fn passing(&self, rows: &[Vec<ScalarValue>]) -> Result<Vec<bool>> {
        let Some(filter) = &self.filter else {
            return Ok(vec![true; rows.len()]);
        };
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let batch = StreamChunk::from_rows(
            Arc::clone(&self.schema),
            vec![Op::Insert; rows.len()],
            rows.to_vec(),
        )?;
        let result = filter.evaluate(batch.data())?.into_array(rows.len())?;
        let result = result
            .as_any()
            .downcast_ref::<BooleanArray>()
            .ok_or_else(|| DataFusionError::Internal("join filter is not boolean".into()))?;
        Ok((0..rows.len())
            .map(|i| result.is_valid(i) && result.value(i))
            .collect())
    }

    fn store(
        &mut self,
        s: usize,
        key: &[ScalarValue],
        values: &[ScalarValue],
        degree: i64,
        keep: bool,
    ) -> Result<()> {
        let side = &mut self.sides[s];
        let mut row = key.to_vec();
        row.extend_from_slice(values);
        row.push(ScalarValue::Int64(Some(degree)));
        let batch =
            StreamChunk::from_rows(Arc::clone(side.table.schema()), vec![Op::Insert], vec![row])?;
        if keep {
            side.table.insert(batch.data())
        } else {
            side.table.delete(batch.data())
        }
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
        let (mut ops, mut out) = (Vec::new(), Vec::new());
        for row in 0..rows {
            let key: Vec<ArrayRef> = keys.iter().map(|k| k.slice(row, 1)).collect();
            let key_values: Vec<ScalarValue> = key
                .iter()
                .map(|k| ScalarValue::try_from_array(k, 0))
                .collect::<Result<_>>()?;
            let this = chunk.row(row)?;
            let matches = if key.iter().any(|k| k.is_null(0)) {
                Vec::new()
            } else {
                self.matches(other, &key)?
            };
            let joined: Vec<Vec<ScalarValue>> = matches
                .iter()
                .map(|m| self.combine(s, Some(&this), Some(&m.values)))
                .collect::<Result<_>>()?;
            let passing = self.passing(&joined)?;
            let degree = passing.iter().filter(|p| **p).count() as i64;
            let inserting = chunk.ops()[row].is_insert();
            let other_preserved = self.sides[other].preserved;
            for ((m, row_out), _) in matches
                .iter()
                .zip(joined)
                .zip(&passing)
                .filter(|(_, p)| **p)
            {
                let padded = || self.combine(other, Some(&m.values), None);
                if inserting {
                    if other_preserved && m.degree == 0 {
                        ops.push(Op::Delete);
                        out.push(padded()?);
                    }
                    ops.push(Op::Insert);
                    out.push(row_out);
                    self.store(other, &m.key, &m.values, m.degree + 1, true)?;
                } else {
                    ops.push(Op::Delete);
                    out.push(row_out);
                    if other_preserved && m.degree == 1 {
                        ops.push(Op::Insert);
                        out.push(padded()?);
                    }
                    self.store(other, &m.key, &m.values, m.degree - 1, true)?;
                }
            }
            if degree == 0 && self.sides[s].preserved {
                ops.push(if inserting { Op::Insert } else { Op::Delete });
                out.push(self.combine(s, Some(&this), None)?);
            }
            self.store(s, &key_values, &this, degree, inserting)?;
        }
        if out.is_empty() {
            return Ok(None);
        }
        StreamChunk::from_rows(Arc::clone(&self.schema), ops, out).map(Some)
    }
}

impl Operator for HashJoinOperator {
    fn info(&self) -> &OperatorInfo {
        &self.info
    }

    fn execute(self: Box<Self>) -> BoxedMessageStream {
        let Self {
            info, inputs, join, ..
        } = *self;
        let [left, right] = inputs;
        let aligned = align(vec![left.execute(), right.execute()], info.identity.clone());
        Box::pin(stream::unfold(
            Some((Box::pin(aligned), join)),
            |state| async move {
                let (mut aligned, mut join) = state?;
                loop {
                    let output = match aligned.next().await? {
                        Ok(Aligned::Chunk(side, chunk)) => match join.apply(side, &chunk) {
                            Ok(Some(chunk)) => Ok(Message::Chunk(chunk)),
                            Ok(None) => continue,
                            Err(e) => Err(e),
                        },
                        Ok(Aligned::Watermark(..)) => continue,
                        Ok(Aligned::Barrier(barrier, waited)) => {
                            tracing::trace!(epoch = barrier.epoch.0, ?waited, "join aligned");
                            let committed = join.sides[0]
                                .table
                                .commit(barrier.epoch)
                                .and_then(|()| join.sides[1].table.commit(barrier.epoch));
                            committed.map(|()| Message::Barrier(barrier))
                        }
                        Err(e) => Err(e),
                    };
                    let next = output.is_ok().then_some((aligned, join));
                    return Some((output, next));
                }
            },
        ))
    }
}

#[cfg(test)]
mod tests {
    use datafusion::physical_expr::expressions::col;
    use weir_storage::MemoryStateStore;

    use super::*;
    use crate::operators::testing::{barrier, chunk, lines, messages, run, stop};

    fn join(join_type: JoinType, left: Vec<Message>, right: Vec<Message>) -> Vec<String> {
        let left = messages("I T", left);
        let right = messages("I I", right);
        let side = |input: BoxedOperator| {
            let key = col("c0", &input.info().schema).unwrap();
            JoinSide {
                visible: 2,
                keys: vec![key],
                input,
            }
        };
        let store: Arc<dyn StateStore> = Arc::new(MemoryStateStore::default());
        let operator = HashJoinOperator::new(
            side(left),
            side(right),
            join_type,
            None,
            store,
            1,
            "join".into(),
        )
        .unwrap();
        futures::executor::block_on(run(Box::new(operator)))
    }

    #[test]
    fn left_join_pads_and_unpads() {
        let out = join(
            JoinType::Left,
            vec![
                Message::Chunk(chunk("I T", "+ 1 a\n+ 2 b")),
                barrier(1),
                stop(2),
            ],
            vec![
                barrier(1),
                Message::Chunk(chunk("I I", "+ 1 10\n+ 1 11\n- 1 10\n- 1 11")),
                stop(2),
            ],
        );
        assert_eq!(
            out,
            lines(
                "+ 1 a . .
                 + 2 b . .
                 - 1 a . .
                 + 1 a 1 10
                 + 1 a 1 11
                 - 1 a 1 10
                 - 1 a 1 11
                 + 1 a . ."
            )
        );
    }

    #[test]
    fn full_join_keeps_both_sides_and_skips_null_keys() {
        let out = join(
            JoinType::Full,
            vec![
                Message::Chunk(chunk("I T", "+ . x\n+ 3 c")),
                barrier(1),
                stop(2),
            ],
            vec![
                Message::Chunk(chunk("I I", "+ 3 30\n+ 4 40")),
                barrier(1),
                stop(2),
            ],
        );
        assert_eq!(
            out,
            lines(
                "+ . x . .
                 + 3 c . .
                 - 3 c . .
                 + 3 c 3 30
                 + . . 4 40"
            )
        );
    }
}
