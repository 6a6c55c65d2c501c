//! `datagen`: rows made by one generator per column, a pure function of
//! (seed, column, row number).
//!
//! Rows follow the clock: row `n` falls due `n / rows_per_second` seconds
//! after the source's start time, and a column of event time holds exactly
//! that instant. A source behind the clock (after a restart, or started in
//! the past) catches up as fast as it can, then keeps pace.

use std::ops::Range;
use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray,
    TimestampNanosecondArray,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::error::{DataFusionError, Result};

use super::{GeneratedRows, Pace, mix64};

/// How one column's values are made.
#[derive(Debug, Clone, PartialEq)]
pub enum ColumnGenerator {
    /// `start`, `start + 1`, ... up to `end`, then from `start` again.
    Sequence {
        start: i64,
        end: Option<i64>,
    },
    /// Whole numbers uniform in `[min, max]`.
    RandomInteger {
        min: i64,
        max: i64,
    },
    /// Numbers uniform in `[min, max)`.
    RandomNumber {
        min: f64,
        max: f64,
    },
    /// `length` random lowercase letters.
    RandomText {
        length: usize,
    },
    RandomBoolean,
    /// The instant the row falls due.
    EventTime,
}

impl ColumnGenerator {
    /// Whether it can make values of type `data_type`.
    pub fn fits(&self, data_type: &DataType) -> bool {
        use DataType::*;
        let integer = matches!(data_type, Int16 | Int32 | Int64);
        let number = integer || matches!(data_type, Float32 | Float64 | Decimal128(_, _));
        match self {
            Self::Sequence { .. } => number || *data_type == Utf8,
            Self::RandomInteger { .. } => integer,
            Self::RandomNumber { .. } => number && !integer,
            Self::RandomText { .. } => *data_type == Utf8,
            Self::RandomBoolean => *data_type == Boolean,
            Self::EventTime => matches!(data_type, Timestamp(_, _) | Date32),
        }
    }
}

/// The rows of a `datagen` source.
#[derive(Debug, Clone)]
pub struct Datagen {
    schema: SchemaRef,
    seed: u64,
    columns: Vec<ColumnGenerator>,
    pace: Pace,
    /// How many rows a bounded source makes.
    rows: Option<u64>,
}

impl Datagen {
    /// Rows of `schema`, column `i` made by `columns[i]`.
    pub fn new(
        schema: SchemaRef,
        seed: u64,
        columns: Vec<ColumnGenerator>,
        pace: Pace,
        rows: Option<u64>,
    ) -> Result<Self> {
        if columns.len() != schema.fields().len() {
            return Err(DataFusionError::Internal(format!(
                "datagen has {} generators for {} columns",
                columns.len(),
                schema.fields().len()
            )));
        }
        for (generator, field) in columns.iter().zip(schema.fields()) {
            if !generator.fits(field.data_type()) {
                return Err(DataFusionError::Plan(format!(
                    "column \"{}\" of type {} cannot be made by {generator:?}",
                    field.name(),
                    field.data_type()
                )));
            }
        }
        Ok(Self {
            schema,
            seed,
            columns,
            pace,
            rows,
        })
    }

    /// The `draw`th random value for `column` of row `n`.
    fn random(&self, column: usize, n: u64, draw: u64) -> u64 {
        let cell = mix64(n.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (column as u64).wrapping_add(1));
        mix64(self.seed ^ cell ^ draw.wrapping_mul(0xD1B5_4A32_D192_ED03))
    }

    fn column(&self, index: usize, rows: Range<u64>) -> Result<ArrayRef> {
        let values: ArrayRef = match &self.columns[index] {
            ColumnGenerator::Sequence { start, end } => {
                Arc::new(Int64Array::from_iter_values(rows.map(|n| match end {
                    Some(end) => {
                        let span = (i128::from(*end) - i128::from(*start) + 1).max(1);
                        (i128::from(*start) + i128::from(n) % span) as i64
                    }
                    None => start.saturating_add_unsigned(n),
                })))
            }
            ColumnGenerator::RandomInteger { min, max } => {
                let span = (i128::from(*max) - i128::from(*min) + 1) as u128;
                Arc::new(Int64Array::from_iter_values(rows.map(|n| {
                    let offset = (u128::from(self.random(index, n, 0)) * span) >> 64;
                    (i128::from(*min) + offset as i128) as i64
                })))
            }
            ColumnGenerator::RandomNumber { min, max } => {
                Arc::new(Float64Array::from_iter_values(rows.map(|n| {
                    let unit = (self.random(index, n, 0) >> 11) as f64 / (1u64 << 53) as f64;
                    min + unit * (max - min)
                })))
            }
            ColumnGenerator::RandomText { length } => {
                Arc::new(StringArray::from_iter_values(rows.map(|n| {
                    (0..*length as u64)
                        .map(|i| char::from(b'a' + (self.random(index, n, i) % 26) as u8))
                        .collect::<String>()
                })))
            }
            ColumnGenerator::RandomBoolean => Arc::new(BooleanArray::from_iter(
                rows.map(|n| Some(self.random(index, n, 0) & 1 == 1)),
            )),
            ColumnGenerator::EventTime => Arc::new(TimestampNanosecondArray::from_iter_values(
                rows.map(|n| self.pace.due_at(n)),
            )),
        };
        Ok(cast(&values, self.schema.field(index).data_type())?)
    }
}

impl GeneratedRows for Datagen {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn rows(&self, offsets: Range<u64>) -> Result<(RecordBatch, Vec<u64>)> {
        let columns = (0..self.columns.len())
            .map(|i| self.column(i, offsets.clone()))
            .collect::<Result<Vec<_>>>()?;
        let batch = RecordBatch::try_new(Arc::clone(&self.schema), columns)?;
        Ok((batch, offsets.collect()))
    }

    fn end(&self) -> Option<u64> {
        self.rows
    }

    fn pace(&self) -> Option<Pace> {
        Some(self.pace)
    }

    fn operator_name(&self) -> &'static str {
        "DatagenSource"
    }
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::{AsArray, Int32Array};
    use datafusion::arrow::datatypes::{
        Field, Int32Type, Schema, TimeUnit, TimestampMicrosecondType,
    };

    use super::*;

    fn clicks(seed: u64) -> Datagen {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("user_id", DataType::Int32, false),
            Field::new("url", DataType::Utf8, false),
            Field::new(
                "ts",
                DataType::Timestamp(TimeUnit::Microsecond, None),
                false,
            ),
            Field::new("score", DataType::Float64, false),
            Field::new("flag", DataType::Boolean, false),
            Field::new("slot", DataType::Int64, false),
        ]));
        let columns = vec![
            ColumnGenerator::Sequence {
                start: 100,
                end: None,
            },
            ColumnGenerator::RandomInteger { min: -3, max: 3 },
            ColumnGenerator::RandomText { length: 5 },
            ColumnGenerator::EventTime,
            ColumnGenerator::RandomNumber { min: 1.0, max: 2.0 },
            ColumnGenerator::RandomBoolean,
            ColumnGenerator::Sequence {
                start: 1,
                end: Some(3),
            },
        ];
        let pace = Pace {
            start_nanos: 5_000_000_000,
            per_second: 1000,
        };
        Datagen::new(schema, seed, columns, pace, Some(10_000)).unwrap()
    }

    #[test]
    fn rows_are_a_function_of_seed_and_offset() {
        let clicks_7 = clicks(7);
        let (whole, offsets) = clicks_7.rows(0..1000).unwrap();
        assert_eq!(offsets, (0..1000).collect::<Vec<_>>());
        let (part, _) = clicks_7.rows(400..600).unwrap();
        assert_eq!(whole.slice(400, 200), part);
        let (other_seed, _) = clicks(8).rows(0..1000).unwrap();
        assert_ne!(whole.column(1), other_seed.column(1));
    }

    #[test]
    fn every_column_keeps_to_its_generator() {
        let (batch, _) = clicks(7).rows(0..1000).unwrap();
        let ids: &Int64Array = batch.column(0).as_primitive();
        assert_eq!(ids.value(0), 100);
        assert_eq!(ids.value(999), 1099);
        let users: &Int32Array = batch.column(1).as_primitive::<Int32Type>();
        assert!(users.values().iter().all(|u| (-3..=3).contains(u)));
        for bound in [-3, 3] {
            assert!(users.values().contains(&bound), "{bound} never drawn");
        }
        let urls = batch.column(2).as_string::<i32>();
        assert!(urls.iter().flatten().all(|u| u.len() == 5));
        let ts = batch.column(3).as_primitive::<TimestampMicrosecondType>();
        assert_eq!(ts.value(0), 5_000_000);
        assert_eq!(ts.value(999), 5_000_000 + 999_000);
        let scores = batch
            .column(4)
            .as_primitive::<datafusion::arrow::datatypes::Float64Type>();
        assert!(scores.values().iter().all(|s| (1.0..2.0).contains(s)));
        let flags = batch.column(5).as_boolean();
        let set = flags.true_count();
        assert!((400..600).contains(&set), "{set} of 1000 flags set");
        let slots: &Int64Array = batch.column(6).as_primitive();
        assert_eq!(&slots.values()[..5], &[1, 2, 3, 1, 2]);
    }

    #[test]
    fn a_generator_must_fit_its_column() {
        let schema = Arc::new(Schema::new(vec![Field::new("b", DataType::Boolean, false)]));
        let pace = Pace {
            start_nanos: 0,
            per_second: 1,
        };
        let err = Datagen::new(schema, 1, vec![ColumnGenerator::EventTime], pace, None);
        assert!(err.is_err());
    }
}
