//! `json_build_object(key, value, ...)`: a JSON object of alternating keys
//! and values, as text (weir has no json column type). SQLAlchemy's
//! column reflection builds one per identity column.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, StringBuilder};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{ScalarValue, exec_err};
use datafusion::error::Result;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use serde_json::{Map, Number, Value};

pub fn json_build_object() -> ScalarUDF {
    ScalarUDF::from(JsonBuildObject {
        signature: Signature::variadic_any(Volatility::Immutable),
    })
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct JsonBuildObject {
    signature: Signature,
}

impl ScalarUDFImpl for JsonBuildObject {
    fn name(&self) -> &str {
        "json_build_object"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        if !args.args.len().is_multiple_of(2) {
            return exec_err!("json_build_object takes an even number of arguments");
        }
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let mut out = StringBuilder::new();
        for row in 0..args.number_rows {
            let mut object = Map::new();
            for pair in arrays.chunks(2) {
                let key = ScalarValue::try_from_array(&pair[0], row)?;
                if key.is_null() {
                    return exec_err!("argument 1 cannot be null: object keys must be text");
                }
                let value = ScalarValue::try_from_array(&pair[1], row)?;
                object.insert(text_of(&key), json_of(&value));
            }
            out.append_value(Value::Object(object).to_string());
        }
        let array: ArrayRef = Arc::new(out.finish());
        Ok(ColumnarValue::Array(array))
    }
}

fn text_of(value: &ScalarValue) -> String {
    match value {
        ScalarValue::Utf8(Some(s))
        | ScalarValue::LargeUtf8(Some(s))
        | ScalarValue::Utf8View(Some(s)) => s.clone(),
        other => other.to_string(),
    }
}

fn json_of(value: &ScalarValue) -> Value {
    if value.is_null() {
        return Value::Null;
    }
    match value {
        ScalarValue::Boolean(Some(b)) => Value::Bool(*b),
        ScalarValue::Int8(Some(n)) => Value::from(*n),
        ScalarValue::Int16(Some(n)) => Value::from(*n),
        ScalarValue::Int32(Some(n)) => Value::from(*n),
        ScalarValue::Int64(Some(n)) => Value::from(*n),
        ScalarValue::UInt32(Some(n)) => Value::from(*n),
        ScalarValue::UInt64(Some(n)) => Value::from(*n),
        ScalarValue::Float32(Some(f)) => {
            Number::from_f64(f64::from(*f)).map_or(Value::Null, Value::Number)
        }
        ScalarValue::Float64(Some(f)) => Number::from_f64(*f).map_or(Value::Null, Value::Number),
        other => Value::String(text_of(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_keep_their_json_kind() {
        assert_eq!(json_of(&ScalarValue::Int64(Some(3))), Value::from(3));
        assert_eq!(
            json_of(&ScalarValue::Boolean(Some(true))),
            Value::Bool(true)
        );
        assert_eq!(json_of(&ScalarValue::Utf8(None)), Value::Null);
        assert_eq!(
            json_of(&ScalarValue::Utf8(Some("a".into()))),
            Value::from("a")
        );
    }
}
