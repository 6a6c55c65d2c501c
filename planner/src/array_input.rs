//! Array input as PostgreSQL reads it: `'{1,2,NULL}'::int[]`,
//! `'{a,"b c",""}'` into a `TEXT[]` column, COPY fields of array columns.
//! [`crate::pg_casts`] routes casts of text to a list here. Elements are
//! separated by commas, may be double-quoted (with backslash escapes), and
//! an unquoted `NULL` is a null element; each is then read as a constant
//! of the element type would be. One dimension only; bad input is `22P02`.

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, IntervalMonthDayNanoArray, ListArray, StringArray, new_empty_array,
};
use datafusion::arrow::buffer::{NullBuffer, OffsetBuffer};
use datafusion::arrow::compute::{CastOptions, cast, cast_with_options, concat};
use datafusion::arrow::datatypes::{DataType, FieldRef, IntervalUnit};
use datafusion::common::Result;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

use crate::bytea_input::bytea_input;
use crate::interval_input::parse_interval;
use crate::udf_shape::{in_shape_of_args, invalid_input};

/// `pg_array_in(text)` reading into arrays of `element`.
pub fn pg_array_function(element: FieldRef) -> ScalarUDF {
    ScalarUDF::from(PgArrayIn {
        element,
        signature: Signature::any(1, Volatility::Immutable),
    })
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct PgArrayIn {
    element: FieldRef,
    signature: Signature,
}

impl ScalarUDFImpl for PgArrayIn {
    fn name(&self) -> &str {
        "pg_array_in"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::List(Arc::clone(&self.element)))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        in_shape_of_args(&args.args, |values| {
            let texts = cast(&values[0], &DataType::Utf8)?;
            let texts = texts.as_string::<i32>();
            let mut offsets = vec![0i32];
            let mut parts: Vec<ArrayRef> = Vec::new();
            for row in 0..texts.len() {
                if !texts.is_null(row) {
                    let text = texts.value(row);
                    let elements = array_elements(text).map_err(|why| {
                        invalid_input(format!("malformed array literal: \"{text}\": {why}"))
                    })?;
                    let part = element_values(&elements, self.element.data_type())?;
                    parts.push(part);
                }
                let total: usize = parts.iter().map(|p| p.len()).sum();
                offsets.push(i32::try_from(total).map_err(|_| invalid_input("array too large"))?);
            }
            let element_values: ArrayRef = if parts.is_empty() {
                new_empty_array(self.element.data_type())
            } else {
                let refs: Vec<&dyn Array> = parts.iter().map(|p| p.as_ref()).collect();
                concat(&refs)?
            };
            let nulls = NullBuffer::from_iter((0..texts.len()).map(|i| !texts.is_null(i)));
            let list: ArrayRef = Arc::new(ListArray::try_new(
                Arc::clone(&self.element),
                OffsetBuffer::new(offsets.into()),
                element_values,
                Some(nulls),
            )?);
            Ok(list)
        })
    }
}

/// The elements' texts, read as constants of `element_type`.
fn element_values(elements: &[Option<String>], element_type: &DataType) -> Result<ArrayRef> {
    match element_type {
        DataType::Interval(IntervalUnit::MonthDayNano) => {
            let values = elements
                .iter()
                .map(|e| match e {
                    None => Ok(None),
                    Some(text) => parse_interval(text).map(Some).ok_or_else(|| {
                        invalid_input(format!(
                            "invalid input syntax for type interval: \"{text}\""
                        ))
                    }),
                })
                .collect::<Result<Vec<_>>>()?;
            Ok(Arc::new(IntervalMonthDayNanoArray::from(values)))
        }
        DataType::Binary => {
            let values = elements
                .iter()
                .map(|e| match e {
                    None => Ok(None),
                    Some(text) => bytea_input(text).map(Some).map_err(invalid_input),
                })
                .collect::<Result<Vec<_>>>()?;
            let values: Vec<Option<&[u8]>> = values.iter().map(|v| v.as_deref()).collect();
            Ok(Arc::new(datafusion::arrow::array::BinaryArray::from(
                values,
            )))
        }
        other => {
            let texts: ArrayRef = Arc::new(StringArray::from_iter(
                elements.iter().map(Option::as_deref),
            ));
            // Not `cast`, which makes an element it cannot read NULL.
            let strict = CastOptions {
                safe: false,
                ..CastOptions::default()
            };
            Ok(cast_with_options(&texts, other, &strict)?)
        }
    }
}

/// The elements of a one-dimensional array literal, `None` for NULL.
pub fn array_elements(text: &str) -> std::result::Result<Vec<Option<String>>, String> {
    let inner = text
        .trim()
        .strip_prefix('{')
        .and_then(|rest| rest.strip_suffix('}'))
        .ok_or("array value must start with \"{\" and end with \"}\"")?;
    let mut elements = Vec::new();
    if inner.trim().is_empty() {
        return Ok(elements);
    }
    let mut chars = inner.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let mut value = String::new();
        let mut quoted = false;
        if chars.next_if_eq(&'"').is_some() {
            quoted = true;
            loop {
                match chars.next() {
                    Some('"') => break,
                    Some('\\') => value.push(chars.next().ok_or("unexpected end of input")?),
                    Some(c) => value.push(c),
                    None => return Err("unterminated quoted element".into()),
                }
            }
            while chars.next_if(|c| c.is_whitespace()).is_some() {}
        } else {
            while let Some(&c) = chars.peek() {
                match c {
                    ',' => break,
                    '{' | '}' | '"' => {
                        return Err("multidimensional arrays are not supported".into());
                    }
                    '\\' => {
                        chars.next();
                        value.push(chars.next().ok_or("unexpected end of input")?);
                    }
                    c => {
                        value.push(c);
                        chars.next();
                    }
                }
            }
            let trimmed = value.trim_end().len();
            value.truncate(trimmed);
            if value.is_empty() {
                return Err("empty element".into());
            }
        }
        let null = !quoted && value.eq_ignore_ascii_case("null");
        elements.push((!null).then_some(value));
        match chars.next() {
            Some(',') => continue,
            None => break,
            Some(c) => return Err(format!("unexpected \"{c}\"")),
        }
    }
    Ok(elements)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn elements(text: &str) -> Vec<Option<String>> {
        array_elements(text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[test]
    fn literals_read_as_postgres_reads_them() {
        let some = |s: &str| Some(s.to_string());
        assert_eq!(elements("{1,2,3}"), [some("1"), some("2"), some("3")]);
        assert_eq!(
            elements(" { a , \"b c\" ,NULL,\"NULL\", \"\"} "),
            [some("a"), some("b c"), None, some("NULL"), some("")]
        );
        assert_eq!(
            elements("{\"q\\\"uote\",back\\,slash}"),
            [some("q\"uote"), some("back,slash")]
        );
        assert!(elements("{}").is_empty());
        for bad in ["1,2", "{1,,2}", "{{1,2},{3,4}}", "{\"open}", "{1,2"] {
            assert!(array_elements(bad).is_err(), "{bad}");
        }
    }
}
