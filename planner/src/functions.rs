//! Functions weir adds to DataFusion's.
//!
//! - `proctime()`: the wall-clock time (UTC) at which the row is processed.
//!   In a view, each row gets the moment the view's operators reached it,
//!   so `TUMBLE(bid, proctime(), INTERVAL '10' SECOND)` counts rows in
//!   processing-time windows (Nexmark q12). Volatile: never folded into a
//!   constant when planned, unlike `now()`.

use std::time::{SystemTime, UNIX_EPOCH};

use datafusion::arrow::datatypes::{DataType, TimeUnit};
use datafusion::common::ScalarValue;
use datafusion::error::Result;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

/// Every function weir adds.
pub fn weir_functions() -> Vec<ScalarUDF> {
    vec![ScalarUDF::from(ProcessingTime::default())]
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct ProcessingTime {
    signature: Signature,
}

impl Default for ProcessingTime {
    fn default() -> Self {
        Self {
            signature: Signature::nullary(Volatility::Volatile),
        }
    }
}

impl ScalarUDFImpl for ProcessingTime {
    fn name(&self) -> &str {
        "proctime"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Timestamp(TimeUnit::Microsecond, None))
    }

    fn invoke_with_args(&self, _args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let micros = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as i64);
        Ok(ColumnarValue::Scalar(ScalarValue::TimestampMicrosecond(
            Some(micros),
            None,
        )))
    }
}
