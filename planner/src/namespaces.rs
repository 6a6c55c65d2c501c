//! `pg_namespace` with `information_schema` (oid 13283, as in
//! PostgreSQL): `datafusion-pg-catalog` lists the schemas of DataFusion's
//! catalogs, where `information_schema` is no schema, though its fixed
//! `pg_type` and `pg_proc` rows name it (`cardinal_number`,
//! `_pg_expandarray`), and `pg_dump` stops at an object whose schema it
//! cannot find.

use std::sync::Arc;

use datafusion::catalog::TableProvider;
use datafusion::catalog::view::ViewTable;
use datafusion::common::{Result, ScalarValue};
use datafusion::datasource::provider_as_source;
use datafusion::logical_expr::{LogicalPlanBuilder, cast, lit};
use datafusion::prelude::Expr;

/// The oid PostgreSQL gives `information_schema`.
const INFORMATION_SCHEMA_OID: i32 = 13_283;

/// `namespaces` (pg-catalog's `pg_namespace`), then `information_schema`,
/// owned by `owner`.
pub fn with_information_schema(
    namespaces: Arc<dyn TableProvider>,
    owner: i32,
) -> Result<Arc<dyn TableProvider>> {
    let row = namespaces
        .schema()
        .fields()
        .iter()
        .map(|field| {
            let value = match field.name().as_str() {
                "oid" => lit(INFORMATION_SCHEMA_OID),
                "nspname" => lit("information_schema"),
                "nspowner" => lit(owner),
                _ => lit(ScalarValue::try_from(field.data_type())?),
            };
            Ok(cast(value, field.data_type().clone()).alias(field.name()))
        })
        .collect::<Result<Vec<Expr>>>()?;
    let row = LogicalPlanBuilder::empty(true).project(row)?.build()?;
    let plan = LogicalPlanBuilder::scan("pg_namespace", provider_as_source(namespaces), None)?
        .union(row)?
        .build()?;
    Ok(Arc::new(ViewTable::new(plan, None)))
}
