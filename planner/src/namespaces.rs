//! `pg_namespace` with `information_schema` (oid 13283, as in
//! PostgreSQL): `datafusion-pg-catalog` lists the schemas of DataFusion's
//! catalogs, where `information_schema` is no schema, though its fixed
//! `pg_type` and `pg_proc` rows name it (`cardinal_number`,
//! `_pg_expandarray`), and `pg_dump` stops at an object whose schema it
//! cannot find.

use std::sync::Arc;

use datafusion::catalog::TableProvider;
use datafusion::common::Result;
use datafusion::logical_expr::{LogicalPlanBuilder, lit};

use crate::catalog_rows::{columns_like, with_rows};

/// The oid PostgreSQL gives `information_schema`.
const INFORMATION_SCHEMA_OID: i32 = 13_283;

/// `namespaces` (pg-catalog's `pg_namespace`), then `information_schema`,
/// owned by `owner`.
pub fn with_information_schema(
    namespaces: Arc<dyn TableProvider>,
    owner: i32,
) -> Result<Arc<dyn TableProvider>> {
    let row = columns_like(&namespaces.schema(), |column| match column {
        "oid" => Some(lit(INFORMATION_SCHEMA_OID)),
        "nspname" => Some(lit("information_schema")),
        "nspowner" => Some(lit(owner)),
        _ => None,
    })?;
    let row = LogicalPlanBuilder::empty(true).project(row)?.build()?;
    with_rows("pg_namespace", namespaces, row)
}
