//! Rows added to a catalog table that `datafusion-pg-catalog` serves
//! (`pg_namespace`, `pg_extension`, `pg_depend`), written as expressions
//! in that table's shape: each column by name, cast to its type.

use std::sync::Arc;

use datafusion::arrow::datatypes::Schema;
use datafusion::catalog::TableProvider;
use datafusion::catalog::view::ViewTable;
use datafusion::common::{Result, ScalarValue};
use datafusion::datasource::provider_as_source;
use datafusion::logical_expr::{LogicalPlan, LogicalPlanBuilder, cast, lit};
use datafusion::prelude::Expr;

/// One expression per column of `schema`, in its order: `value` of the
/// column's name, or NULL where it gives none, as the column's type.
pub fn columns_like(schema: &Schema, value: impl Fn(&str) -> Option<Expr>) -> Result<Vec<Expr>> {
    schema
        .fields()
        .iter()
        .map(|field| {
            let value = match value(field.name()) {
                Some(value) => value,
                None => lit(ScalarValue::try_from(field.data_type())?),
            };
            Ok(cast(value, field.data_type().clone()).alias(field.name()))
        })
        .collect()
}

/// `table`'s rows, then `extra`'s, as one table named `name`.
pub fn with_rows(
    name: &str,
    table: Arc<dyn TableProvider>,
    extra: LogicalPlan,
) -> Result<Arc<dyn TableProvider>> {
    let plan = LogicalPlanBuilder::scan(name, provider_as_source(table), None)?
        .union(extra)?
        .build()?;
    Ok(Arc::new(ViewTable::new(plan, None)))
}
