//! `pg_text(value)`, the cast to text of the types Arrow writes otherwise
//! than PostgreSQL: `ts::text` is `2024-01-01 00:00:04`, not Arrow's
//! `2024-01-01T00:00:04`; `1.0::float8::text` is `1`; `'1 day'::interval::text`
//! is `1 day`. It writes what [`crate::pg_text`] writes for a result column.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, StringBuilder};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, IntervalUnit};
use datafusion::common::Result;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

use crate::pg_text::pg_text;
use crate::udf_shape::in_shape_of_args;

/// The session default of `extra_float_digits`: shortest exact digits.
const SHORTEST_FLOAT_DIGITS: i8 = 1;

/// The types whose text `pg_text` writes itself.
pub fn written_differently(data_type: &DataType) -> bool {
    matches!(
        data_type,
        DataType::Float32
            | DataType::Float64
            | DataType::Timestamp(..)
            | DataType::Time32(_)
            | DataType::Time64(_)
            | DataType::Interval(IntervalUnit::MonthDayNano)
            | DataType::List(_)
    )
}

/// `pg_text(value)`: `value` as PostgreSQL writes it as text.
pub fn pg_text_function() -> ScalarUDF {
    ScalarUDF::from(PgText {
        signature: Signature::any(1, Volatility::Immutable),
    })
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct PgText {
    signature: Signature,
}

impl ScalarUDFImpl for PgText {
    fn name(&self) -> &str {
        "pg_text"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        in_shape_of_args(&args.args, |values| {
            let text = texts(&values[0])?;
            Ok(text)
        })
    }
}

fn texts(column: &ArrayRef) -> Result<ArrayRef> {
    if !written_differently(column.data_type()) {
        return Ok(cast(column, &DataType::Utf8)?);
    }
    let mut out = StringBuilder::with_capacity(column.len(), column.len() * 8);
    for row in 0..column.len() {
        if column.is_null(row) {
            out.append_null();
        } else {
            match pg_text(column, row, SHORTEST_FLOAT_DIGITS) {
                Some(text) => out.append_value(text),
                None => out.append_null(),
            }
        }
    }
    Ok(Arc::new(out.finish()))
}
