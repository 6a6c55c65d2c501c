//! `json -> key` (the field or element, as jsonb) and `json ->> key` (its
//! text), over json and jsonb values kept as text. An object's field is
//! named by text, an array's element by an integer (negative counts from
//! the end); a missing one is NULL, as in PostgreSQL.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, StringBuilder};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, FieldRef};
use datafusion::common::{DFSchema, Result};
use datafusion::logical_expr::expr::ScalarFunction;
use datafusion::logical_expr::planner::{ExprPlanner, PlannerResult, RawBinaryExpr};
use datafusion::logical_expr::{
    ColumnarValue, Expr, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    Volatility,
};
use datafusion::sql::sqlparser::ast::BinaryOperator;
use weir_executor::batch::typed_text::TextType;
use weir_executor::json::{Json, JsonKey};

use crate::typed_text_functions::typed_text_field;
use crate::udf_shape::{in_shape_of_args, invalid_input};

/// Plans `->` and `->>` as calls of `json_get` and `json_get_text`.
#[derive(Debug)]
pub struct JsonOperators {
    get: Arc<ScalarUDF>,
    get_text: Arc<ScalarUDF>,
}

impl Default for JsonOperators {
    fn default() -> Self {
        let udf = |as_text| {
            Arc::new(ScalarUDF::from(JsonGet {
                as_text,
                signature: Signature::any(2, Volatility::Immutable),
            }))
        };
        Self {
            get: udf(false),
            get_text: udf(true),
        }
    }
}

impl ExprPlanner for JsonOperators {
    fn plan_binary_op(
        &self,
        expr: RawBinaryExpr,
        _schema: &DFSchema,
    ) -> Result<PlannerResult<RawBinaryExpr>> {
        let function = match expr.op {
            BinaryOperator::Arrow => &self.get,
            BinaryOperator::LongArrow => &self.get_text,
            _ => return Ok(PlannerResult::Original(expr)),
        };
        Ok(PlannerResult::Planned(Expr::ScalarFunction(
            ScalarFunction::new_udf(Arc::clone(function), vec![expr.left, expr.right]),
        )))
    }
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct JsonGet {
    /// `->>`: the value's text rather than its JSON.
    as_text: bool,
    signature: Signature,
}

impl ScalarUDFImpl for JsonGet {
    fn name(&self) -> &str {
        if self.as_text {
            "json_get_text"
        } else {
            "json_get"
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn return_field_from_args(&self, _args: ReturnFieldArgs) -> Result<FieldRef> {
        let field = typed_text_field(self.name(), TextType::Jsonb);
        Ok(Arc::new(if self.as_text {
            datafusion::arrow::datatypes::Field::new(self.name(), DataType::Utf8, true)
        } else {
            field
        }))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        in_shape_of_args(&args.args, |values| {
            let documents = cast(&values[0], &DataType::Utf8)?;
            let documents = documents.as_string::<i32>();
            let by_index = values[1].data_type().is_integer();
            let keys = cast(
                &values[1],
                if by_index {
                    &DataType::Int64
                } else {
                    &DataType::Utf8
                },
            )?;
            let mut out = StringBuilder::with_capacity(documents.len(), documents.len() * 8);
            for row in 0..documents.len() {
                if documents.is_null(row) || keys.is_null(row) {
                    out.append_null();
                    continue;
                }
                let document = Json::parse(documents.value(row)).map_err(invalid_input)?;
                let key = if by_index {
                    JsonKey::Index(
                        keys.as_primitive::<datafusion::arrow::datatypes::Int64Type>()
                            .value(row),
                    )
                } else {
                    JsonKey::Field(keys.as_string::<i32>().value(row))
                };
                let found = document.get(&key);
                let text = match found {
                    None => None,
                    Some(value) if self.as_text => value.unquoted(),
                    Some(value) => Some(value.clone().normalized().text()),
                };
                out.append_option(text);
            }
            let array: ArrayRef = Arc::new(out.finish());
            Ok(array)
        })
    }
}
