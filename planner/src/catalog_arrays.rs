//! Columns of `pg_attribute` that PostgreSQL types `text[]` and
//! `aclitem[]` (`attoptions`, `attfdwoptions`, `attacl`) and that
//! `datafusion-pg-catalog` holds as text, served as arrays read from
//! PostgreSQL's array text form ([`crate::array_input`]): `pg_dump` and
//! psql's `\d+` treat them as arrays (`pg_options_to_table(attfdwoptions)`,
//! `array_to_string(attoptions, ', ')`).

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field};
use datafusion::catalog::TableProvider;
use datafusion::catalog::view::ViewTable;
use datafusion::common::{Column, Result};
use datafusion::datasource::provider_as_source;
use datafusion::logical_expr::expr::ScalarFunction;
use datafusion::logical_expr::{Expr, LogicalPlanBuilder};

use crate::array_input::pg_array_function;

/// The array columns of `pg_attribute` that pg-catalog holds as text.
const ARRAY_COLUMNS: &[&str] = &["attoptions", "attfdwoptions", "attacl"];

/// `pg_attribute` (`table`) with each of [`ARRAY_COLUMNS`] read as a
/// `text[]`.
pub fn with_text_arrays(table: Arc<dyn TableProvider>) -> Result<Arc<dyn TableProvider>> {
    let name = "pg_attribute";
    let read = Arc::new(pg_array_function(Arc::new(Field::new_list_field(
        DataType::Utf8,
        true,
    ))));
    let projection: Vec<Expr> = table
        .schema()
        .fields()
        .iter()
        .map(|field| {
            let column = Expr::Column(Column::new(Some(name), field.name()));
            if ARRAY_COLUMNS.contains(&field.name().as_str()) && field.data_type().is_string() {
                Expr::ScalarFunction(ScalarFunction::new_udf(Arc::clone(&read), vec![column]))
                    .alias_qualified(Some(name), field.name())
            } else {
                column
            }
        })
        .collect();
    let plan = LogicalPlanBuilder::scan(name, provider_as_source(table), None)?
        .project(projection)?
        .build()?;
    Ok(Arc::new(ViewTable::new(plan, None)))
}
