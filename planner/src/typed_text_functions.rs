//! `x::uuid`, `x::json` and `x::jsonb`: text checked and put in the
//! type's normal form (`22P02` otherwise) by `pg_uuid`, `pg_json` and
//! `pg_jsonb`, whose results carry the type in their field metadata so
//! clients are told `uuid`, `json` or `jsonb`. DataFusion has none of
//! these types; weir stores them as text ([`weir_executor::batch::typed_text`]).

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, StringBuilder};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::Result;
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    Volatility,
};
use datafusion::sql::sqlparser::ast::{DataType as SqlType, Expr, Statement, VisitMut, VisitorMut};
use weir_executor::batch::typed_text::{PG_TYPE_KEY, TextType};

use crate::function_call::function_call;
use crate::udf_shape::{in_shape_of_args, invalid_input};

/// `pg_uuid`, `pg_json` and `pg_jsonb`.
pub fn typed_text_functions() -> Vec<ScalarUDF> {
    [TextType::Uuid, TextType::Json, TextType::Jsonb]
        .into_iter()
        .map(|text_type| {
            ScalarUDF::from(TypedText {
                text_type,
                signature: Signature::any(1, Volatility::Immutable),
            })
        })
        .collect()
}

/// The SQL name of `text_type`, as its cast function and metadata spell it.
fn type_name(text_type: TextType) -> &'static str {
    match text_type {
        TextType::Uuid => "uuid",
        TextType::Json => "json",
        TextType::Jsonb => "jsonb",
    }
}

/// A field of `text_type`: text, with the type in its metadata.
pub fn typed_text_field(name: &str, text_type: TextType) -> Field {
    Field::new(name, DataType::Utf8, true).with_metadata(HashMap::from([(
        PG_TYPE_KEY.to_string(),
        type_name(text_type).to_string(),
    )]))
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct TypedText {
    text_type: TextType,
    signature: Signature,
}

impl ScalarUDFImpl for TypedText {
    fn name(&self) -> &str {
        match self.text_type {
            TextType::Uuid => "pg_uuid",
            TextType::Json => "pg_json",
            TextType::Jsonb => "pg_jsonb",
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn return_field_from_args(&self, _args: ReturnFieldArgs) -> Result<FieldRef> {
        Ok(Arc::new(typed_text_field(self.name(), self.text_type)))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        in_shape_of_args(&args.args, |values| {
            let texts = cast(&values[0], &DataType::Utf8)?;
            let texts = texts.as_string::<i32>();
            let mut out = StringBuilder::with_capacity(texts.len(), texts.value_data().len());
            for row in 0..texts.len() {
                if texts.is_null(row) {
                    out.append_null();
                    continue;
                }
                let normal = self
                    .text_type
                    .normal_form(texts.value(row))
                    .map_err(invalid_input)?;
                out.append_value(normal);
            }
            let array: ArrayRef = Arc::new(out.finish());
            Ok(array)
        })
    }
}

/// The text type a SQL type names, for the types weir keeps as text.
pub fn text_type(sql_type: &SqlType) -> Option<TextType> {
    match sql_type {
        SqlType::Uuid => Some(TextType::Uuid),
        SqlType::JSON => Some(TextType::Json),
        SqlType::JSONB => Some(TextType::Jsonb),
        _ => None,
    }
}

/// Rewrites every cast of `statement` to uuid, json or jsonb into a call
/// of its function.
pub fn rewrite_typed_text_casts(statement: &mut Statement) {
    let _ = statement.visit(&mut TypedTextCasts);
}

struct TypedTextCasts;

impl VisitorMut for TypedTextCasts {
    type Break = ();

    fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        if let Expr::Cast {
            expr: value,
            data_type,
            ..
        } = expr
            && let Some(text_type) = text_type(data_type)
        {
            let function = match text_type {
                TextType::Uuid => "pg_uuid",
                TextType::Json => "pg_json",
                TextType::Jsonb => "pg_jsonb",
            };
            *expr = function_call(function, vec![*value.clone()], Vec::new());
        }
        ControlFlow::Continue(())
    }
}
