//! Casts that read and write values as PostgreSQL does where Arrow's casts
//! differ: to text ([`crate::text_cast`]: `1`, not `1.0`; `2024-01-01
//! 00:00:04`, not `2024-01-01T00:00:04`), text to interval
//! ([`crate::interval_input`]: `-1 days +02:00:00`) and text to bytea
//! ([`crate::bytea_input`]: `'\xdeadbeef'` is four bytes) and text to an
//! array ([`crate::array_input`]: `'{1,2,NULL}'`). One function
//! rewrite turns each such cast, written or implied (an INSERT's values
//! are cast to the column types), into a call of the function that does it.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, IntervalUnit};
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::Transformed;
use datafusion::common::{DFSchema, Result};
use datafusion::logical_expr::expr::{Cast, ScalarFunction};
use datafusion::logical_expr::expr_rewriter::FunctionRewrite;
use datafusion::logical_expr::{Expr, ExprSchemable, ScalarUDF};

use crate::array_input::pg_array_function;
use crate::bytea_input::pg_bytea_function;
use crate::interval_input::pg_interval_function;
use crate::text_cast::{pg_text_function, written_differently};

#[derive(Debug)]
pub struct PgCastRewrite {
    to_text: Arc<ScalarUDF>,
    to_interval: Arc<ScalarUDF>,
    to_bytea: Arc<ScalarUDF>,
}

impl Default for PgCastRewrite {
    fn default() -> Self {
        Self {
            to_text: Arc::new(pg_text_function()),
            to_interval: Arc::new(pg_interval_function()),
            to_bytea: Arc::new(pg_bytea_function()),
        }
    }
}

fn is_text(data_type: &DataType) -> bool {
    matches!(
        data_type,
        DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8
    )
}

impl FunctionRewrite for PgCastRewrite {
    fn name(&self) -> &str {
        "pg_casts"
    }

    fn rewrite(
        &self,
        expr: Expr,
        schema: &DFSchema,
        _config: &ConfigOptions,
    ) -> Result<Transformed<Expr>> {
        let Expr::Cast(Cast { expr: inner, field }) = &expr else {
            return Ok(Transformed::no(expr));
        };
        let from = inner.get_type(schema)?;
        let to = field.data_type();
        let function = match to {
            _ if is_text(to) && written_differently(&from) => Arc::clone(&self.to_text),
            DataType::Interval(IntervalUnit::MonthDayNano) if is_text(&from) => {
                Arc::clone(&self.to_interval)
            }
            DataType::Binary if is_text(&from) => Arc::clone(&self.to_bytea),
            DataType::List(element) if is_text(&from) => {
                Arc::new(pg_array_function(Arc::clone(element)))
            }
            _ => return Ok(Transformed::no(expr)),
        };
        let call = Expr::ScalarFunction(ScalarFunction::new_udf(
            function,
            vec![inner.as_ref().clone()],
        ));
        // Each function answers in its cast's type, but for text: Utf8.
        Ok(Transformed::yes(match to {
            DataType::Utf8View | DataType::LargeUtf8 => {
                Expr::Cast(Cast::new(Box::new(call), to.clone()))
            }
            _ => call,
        }))
    }
}
