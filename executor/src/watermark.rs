//! Event-time watermarks: how they follow expressions, and how operators
//! keep theirs across checkpoints.
//!
//! A watermark on column `c` says no later row has `c` below its value. An
//! expression that only reads `c` and never decreases as `c` grows
//! (`date_bin(size, c, origin)`, `c + INTERVAL '10' SECOND`, `c` itself)
//! carries the watermark: its value at the watermark bounds its value on
//! every later row. [`carried_column`] finds such expressions (asking
//! DataFusion how each function orders); [`WatermarkDerivation`]
//! evaluates them on the watermark.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use datafusion::arrow::array::{Array, BooleanArray, Scalar};
use datafusion::arrow::array::{ArrayRef, Int8Array, RecordBatch, new_null_array};
use datafusion::arrow::compute::SortOptions;
use datafusion::arrow::compute::kernels::cmp::lt;
use datafusion::arrow::compute::{not, prep_null_mask_filter};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::common::ScalarValue;
use datafusion::common::cast::as_int64_array;
use datafusion::error::Result;
use datafusion::logical_expr::Operator;
use datafusion::logical_expr::sort_properties::{ExprProperties, SortProperties};
use datafusion::physical_expr::expressions::{BinaryExpr, CastExpr, Column, Literal};
use datafusion::physical_expr::utils::collect_columns;
use datafusion::physical_expr::{PhysicalExpr, ScalarFunctionExpr};
use weir_storage::StateStore;

use crate::message::{Epoch, Op, StreamChunk, Watermark};
use crate::operators::filter_chunk;
use crate::state::{StateTable, StateTableId};

/// A time value as a number in its column's unit (timestamps of any unit,
/// or integers); `None` for NULL or another type.
pub fn time_number(value: &ScalarValue) -> Option<i64> {
    match value {
        ScalarValue::TimestampSecond(v, _)
        | ScalarValue::TimestampMillisecond(v, _)
        | ScalarValue::TimestampMicrosecond(v, _)
        | ScalarValue::TimestampNanosecond(v, _)
        | ScalarValue::Int64(v) => *v,
        _ => None,
    }
}

/// The input column whose watermark `expr` carries: the only column it
/// reads, when it is one of `watermarked` and `expr` never decreases as it
/// grows.
pub fn carried_column(
    expr: &Arc<dyn PhysicalExpr>,
    schema: &SchemaRef,
    watermarked: &[usize],
) -> Option<usize> {
    let columns = collect_columns(expr);
    let mut columns = columns.iter();
    let (Some(column), None) = (columns.next(), columns.next()) else {
        return None;
    };
    if !watermarked.contains(&column.index()) {
        return None;
    }
    match ordering(expr, column.index(), schema) {
        SortProperties::Ordered(options) if !options.descending => Some(column.index()),
        _ => None,
    }
}

/// How `expr` orders as column `column` grows: columns, constants, sums
/// and differences, casts between numbers or times, and functions by
/// DataFusion's own account of them (`date_bin` keeps its input's order).
fn ordering(expr: &Arc<dyn PhysicalExpr>, column: usize, schema: &SchemaRef) -> SortProperties {
    if let Some(c) = expr.downcast_ref::<Column>() {
        return if c.index() == column {
            SortProperties::Ordered(SortOptions::default())
        } else {
            SortProperties::Unordered
        };
    }
    if expr.downcast_ref::<Literal>().is_some() {
        return SortProperties::Singleton;
    }
    if let Some(binary) = expr.downcast_ref::<BinaryExpr>() {
        let left = ordering(binary.left(), column, schema);
        let right = ordering(binary.right(), column, schema);
        return match binary.op() {
            Operator::Plus => left.add(&right),
            Operator::Minus => left.sub(&right),
            _ => SortProperties::Unordered,
        };
    }
    if let Some(cast) = expr.downcast_ref::<CastExpr>() {
        let from = cast.expr().data_type(schema).ok();
        let orderly = |t: &DataType| t.is_numeric() || t.is_temporal();
        return match from {
            Some(from) if orderly(&from) && orderly(cast.cast_type()) => {
                ordering(cast.expr(), column, schema)
            }
            _ => SortProperties::Unordered,
        };
    }
    if let Some(function) = expr.downcast_ref::<ScalarFunctionExpr>() {
        let arguments: Vec<ExprProperties> = function
            .args()
            .iter()
            .map(|arg| ExprProperties::new_unknown().with_order(ordering(arg, column, schema)))
            .collect();
        return function
            .fun()
            .output_ordering(&arguments)
            .unwrap_or(SortProperties::Unordered);
    }
    SortProperties::Unordered
}

/// Which of `values` are behind `watermark` (NULL never is).
fn behind(values: &ArrayRef, watermark: &ScalarValue) -> Result<BooleanArray> {
    let late = lt(values, &Scalar::new(watermark.to_array_of_size(1)?))?;
    Ok(match late.nulls() {
        Some(_) => prep_null_mask_filter(&late),
        None => late,
    })
}

/// An output column computed by a watermark-carrying expression.
#[derive(Debug, Clone)]
pub struct WatermarkDerivation {
    /// The input column whose watermarks it follows.
    pub input: usize,
    /// The output column that gets them.
    pub output: usize,
    expr: Arc<dyn PhysicalExpr>,
    /// The input schema with every column nullable, to evaluate on a row
    /// holding only the watermark.
    schema: SchemaRef,
}

impl WatermarkDerivation {
    /// For each of `exprs` (output columns in order) that carries a
    /// watermark of one of `watermarked`, how it derives its own. With no
    /// `watermarked` given, any input column may carry one.
    pub fn all(
        exprs: &[Arc<dyn PhysicalExpr>],
        schema: &SchemaRef,
        watermarked: Option<&[usize]>,
    ) -> Vec<WatermarkDerivation> {
        let every: Vec<usize> = (0..schema.fields().len()).collect();
        let watermarked = watermarked.unwrap_or(&every);
        let nullable = Arc::new(Schema::new(
            schema
                .fields()
                .iter()
                .map(|f| f.as_ref().clone().with_nullable(true))
                .collect::<Vec<Field>>(),
        ));
        exprs
            .iter()
            .enumerate()
            .filter_map(|(output, expr)| {
                let input = carried_column(expr, schema, watermarked)?;
                Some(WatermarkDerivation {
                    input,
                    output,
                    expr: Arc::clone(expr),
                    schema: Arc::clone(&nullable),
                })
            })
            .collect()
    }

    /// The output watermark for input watermark `value`.
    pub fn derive(&self, value: &ScalarValue) -> Result<ScalarValue> {
        let columns = self
            .schema
            .fields()
            .iter()
            .enumerate()
            .map(|(i, field)| {
                if i == self.input {
                    let array = value.to_array_of_size(1)?;
                    Ok(datafusion::arrow::compute::cast(&array, field.data_type())?)
                } else {
                    Ok(new_null_array(field.data_type(), 1))
                }
            })
            .collect::<Result<Vec<ArrayRef>>>()?;
        let row = RecordBatch::try_new(Arc::clone(&self.schema), columns)?;
        let value = self.expr.evaluate(&row)?.into_array(1)?;
        ScalarValue::try_from_array(&value, 0)
    }
}

/// The watermarks of several inputs with the same columns, merged: a
/// column's watermark is the smallest of the inputs' latest, once every
/// input has given one.
#[derive(Debug)]
pub struct MergedWatermarks {
    /// Per column, each input's latest.
    latest: HashMap<usize, Vec<Option<ScalarValue>>>,
    inputs: usize,
    /// Per column, the last merged watermark sent on.
    sent: HashMap<usize, ScalarValue>,
}

impl MergedWatermarks {
    pub fn new(inputs: usize) -> Self {
        Self {
            latest: HashMap::new(),
            inputs,
            sent: HashMap::new(),
        }
    }

    /// Takes input `input`'s watermark; returns the merged one if it moved.
    pub fn update(&mut self, input: usize, watermark: Watermark) -> Option<Watermark> {
        let latest = self
            .latest
            .entry(watermark.column)
            .or_insert_with(|| vec![None; self.inputs]);
        latest[input] = Some(watermark.value);
        let mut merged: Option<&ScalarValue> = None;
        for value in latest.iter() {
            let value = value.as_ref()?;
            if merged.is_none_or(|m| value < m) {
                merged = Some(value);
            }
        }
        let merged = merged?.clone();
        if self
            .sent
            .get(&watermark.column)
            .is_some_and(|sent| *sent >= merged)
        {
            return None;
        }
        self.sent.insert(watermark.column, merged.clone());
        Some(Watermark {
            column: watermark.column,
            value: merged,
        })
    }
}

/// An operator's watermark and late-row count as last committed, for
/// `weir_catalog.watermarks`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WatermarkReport {
    pub value: Option<ScalarValue>,
    pub late_rows: u64,
    /// For an aggregate closing windows: the groups still open.
    pub open_groups: Option<u64>,
}

/// Where an operator publishes its [`WatermarkReport`] at each barrier.
#[derive(Debug, Clone, Default)]
pub struct WatermarkProgress(Arc<Mutex<WatermarkReport>>);

impl WatermarkProgress {
    pub fn get(&self) -> WatermarkReport {
        self.0.lock().map(|r| r.clone()).unwrap_or_default()
    }

    fn set(&self, report: WatermarkReport) {
        if let Ok(mut current) = self.0.lock() {
            *current = report;
        }
    }
}

/// An operator's watermark and the rows it dropped as late, kept in one
/// row of a state table so a restored operator goes on from where its
/// checkpoint left it.
pub struct KeptWatermark {
    table: StateTable,
    report: WatermarkReport,
    changed: bool,
    progress: WatermarkProgress,
}

impl KeptWatermark {
    /// Kept in table `id` of `store`; watermarks are of `data_type`.
    pub fn new(
        store: Arc<dyn StateStore>,
        id: StateTableId,
        data_type: &DataType,
        progress: WatermarkProgress,
    ) -> Result<Self> {
        let schema = Arc::new(Schema::new(vec![
            Field::new("_slot", DataType::Int8, false),
            Field::new("_watermark", data_type.clone(), true),
            Field::new("_late_rows", DataType::Int64, false),
        ]));
        let table = StateTable::new(store, id, schema, vec![0])?;
        Ok(Self {
            table,
            report: WatermarkReport::default(),
            changed: false,
            progress,
        })
    }

    /// Reads what the last commit kept, if anything.
    pub fn load(&mut self) -> Result<()> {
        let slot: ArrayRef = Arc::new(Int8Array::from(vec![0i8]));
        let lookup = self.table.get(&[slot])?;
        if let Some(Some(row)) = lookup.found.first() {
            let value = ScalarValue::try_from_array(lookup.rows.column(1), *row)?;
            self.report.value = (!value.is_null()).then_some(value);
            self.report.late_rows = as_int64_array(lookup.rows.column(2))?.value(*row) as u64;
        }
        self.progress.set(self.report.clone());
        Ok(())
    }

    pub fn value(&self) -> Option<&ScalarValue> {
        self.report.value.as_ref()
    }

    /// Moves the watermark to `value` if that is later; whether it moved.
    pub fn advance(&mut self, value: ScalarValue) -> bool {
        if value.is_null() || self.value().is_some_and(|current| *current >= value) {
            return false;
        }
        self.report.value = Some(value);
        self.changed = true;
        true
    }

    /// Reports `groups` open groups from the next commit on.
    pub fn report_open_groups(&mut self, groups: u64) {
        self.report.open_groups = Some(groups);
    }

    /// `chunk` without its late rows (those whose `times` are behind the
    /// watermark), which are counted.
    pub fn drop_late(&mut self, chunk: StreamChunk, times: &ArrayRef) -> Result<StreamChunk> {
        let Some(watermark) = self.value() else {
            return Ok(chunk);
        };
        let late = behind(times, watermark)?;
        let count = late.true_count();
        if count == 0 {
            return Ok(chunk);
        }
        self.report.late_rows += count as u64;
        self.changed = true;
        filter_chunk(&chunk, &not(&late)?)
    }

    /// Stores any change and commits the epoch; publishes the report.
    pub fn commit(&mut self, epoch: Epoch) -> Result<()> {
        if std::mem::take(&mut self.changed) {
            let data_type = self.table.schema().field(1).data_type().clone();
            let value = match &self.report.value {
                Some(value) => value.cast_to(&data_type)?,
                None => ScalarValue::try_from(&data_type)?,
            };
            let row = vec![
                ScalarValue::Int8(Some(0)),
                value,
                ScalarValue::Int64(Some(self.report.late_rows as i64)),
            ];
            let chunk = StreamChunk::from_rows(
                Arc::clone(self.table.schema()),
                vec![Op::Insert],
                vec![row],
            )?;
            self.table.apply_chunk(&chunk)?;
        }
        self.table.commit(epoch)?;
        self.progress.set(self.report.clone());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::datatypes::TimeUnit;
    use datafusion::logical_expr::Operator as BinaryOp;
    use datafusion::physical_expr::expressions::{BinaryExpr, col, lit};
    use weir_storage::MemoryStateStore;

    use super::*;

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new(
                "ts",
                DataType::Timestamp(TimeUnit::Millisecond, None),
                false,
            ),
        ]))
    }

    fn ts(ms: i64) -> ScalarValue {
        ScalarValue::TimestampMillisecond(Some(ms), None)
    }

    #[test]
    fn increasing_expressions_of_one_column_carry_its_watermark() {
        let schema = schema();
        let ts_col = col("ts", &schema).unwrap();
        let shifted: Arc<dyn PhysicalExpr> = Arc::new(BinaryExpr::new(
            Arc::clone(&ts_col),
            BinaryOp::Minus,
            lit(ScalarValue::IntervalMonthDayNano(Some(
                datafusion::arrow::datatypes::IntervalMonthDayNano::new(0, 0, 5_000_000_000),
            ))),
        ));
        let negated: Arc<dyn PhysicalExpr> = Arc::new(BinaryExpr::new(
            lit(0i64),
            BinaryOp::Minus,
            col("id", &schema).unwrap(),
        ));
        let exprs = vec![col("id", &schema).unwrap(), ts_col, shifted, negated];
        let derived = WatermarkDerivation::all(&exprs, &schema, Some(&[1]));
        let outputs: Vec<usize> = derived.iter().map(|d| d.output).collect();
        assert_eq!(outputs, vec![1, 2], "id is not watermarked, -id decreases");
        assert_eq!(derived[0].derive(&ts(10_000)).unwrap(), ts(10_000));
        assert_eq!(derived[1].derive(&ts(10_000)).unwrap(), ts(5_000));
        let any = WatermarkDerivation::all(&exprs, &schema, None);
        assert_eq!(any.len(), 3, "id carries its own; -id still does not");
    }

    #[test]
    fn merged_watermarks_wait_for_every_input_and_take_the_smallest() {
        let mark = |column, ms| Watermark {
            column,
            value: ts(ms),
        };
        let mut merged = MergedWatermarks::new(2);
        assert_eq!(merged.update(0, mark(1, 10)), None, "input 1 has none yet");
        assert_eq!(merged.update(1, mark(1, 30)), Some(mark(1, 10)));
        assert_eq!(merged.update(0, mark(1, 20)), Some(mark(1, 20)));
        assert_eq!(merged.update(0, mark(1, 40)), Some(mark(1, 30)));
        assert_eq!(merged.update(0, mark(1, 50)), None, "input 1 still at 30");
        assert_eq!(merged.update(0, mark(2, 5)), None, "columns merge apart");
    }

    #[test]
    fn kept_watermarks_only_advance_and_survive_a_reload() {
        let store: Arc<dyn StateStore> = Arc::new(MemoryStateStore::default());
        let data_type = DataType::Timestamp(TimeUnit::Millisecond, None);
        let progress = WatermarkProgress::default();
        let mut kept = KeptWatermark::new(
            Arc::clone(&store),
            StateTableId(1),
            &data_type,
            progress.clone(),
        )
        .unwrap();
        kept.load().unwrap();
        assert!(kept.value().is_none());
        assert!(kept.advance(ts(10)));
        assert!(!kept.advance(ts(5)) && !kept.advance(ts(10)));
        let times = StreamChunk::from_rows(
            Arc::new(Schema::new(vec![Field::new("ts", data_type.clone(), true)])),
            vec![Op::Insert; 4],
            vec![vec![ts(3)], vec![ts(12)], vec![ts(9)], vec![ts(4)]],
        )
        .unwrap();
        let column = Arc::clone(times.data().column(0));
        let on_time = kept.drop_late(times, &column).unwrap();
        assert_eq!(on_time.row(0).unwrap(), vec![ts(12)]);
        kept.commit(Epoch(1)).unwrap();
        assert_eq!(progress.get().late_rows, 3);
        let mut reloaded = KeptWatermark::new(
            store,
            StateTableId(1),
            &data_type,
            WatermarkProgress::default(),
        )
        .unwrap();
        reloaded.load().unwrap();
        assert_eq!(reloaded.value(), Some(&ts(10)));
        assert_eq!(reloaded.report.late_rows, 3);
    }
}
