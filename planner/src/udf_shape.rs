//! What weir's scalar functions share: an answer in their arguments'
//! shape (a scalar for scalars, which is how DataFusion folds constants),
//! and input that is not of a type as `22P02`.

use datafusion::arrow::array::ArrayRef;
use datafusion::common::{DataFusionError, Result, ScalarValue};
use datafusion::logical_expr::ColumnarValue;

use crate::Error;

/// `f` of `args` as arrays, answered as a scalar when every argument is one.
pub fn in_shape_of_args(
    args: &[ColumnarValue],
    f: impl FnOnce(&[ArrayRef]) -> Result<ArrayRef>,
) -> Result<ColumnarValue> {
    let scalar = args.iter().all(|a| matches!(a, ColumnarValue::Scalar(_)));
    let answer = f(&ColumnarValue::values_to_arrays(args)?)?;
    Ok(if scalar {
        ColumnarValue::Scalar(ScalarValue::try_from_array(&answer, 0)?)
    } else {
        ColumnarValue::Array(answer)
    })
}

/// `22P02`: a value that is not of the type it is read as.
pub fn invalid_input(message: impl Into<String>) -> DataFusionError {
    DataFusionError::External(Box::new(Error::user("22P02", message)))
}
