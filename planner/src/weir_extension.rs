//! `weir_catalog`, weir's own system schema, shown as the schema of a
//! built-in extension named `weir`, as PostgreSQL shows `plpgsql`: a row of
//! `pg_extension` whose oid is below the first oid a user object gets, and
//! rows of `pg_depend` (kind `e`) that make the schema and each of its
//! relations members of it. `pg_dump` leaves out a built-in extension and
//! everything it owns, so a dump holds the user's objects only (it dumped
//! and locked `weir_catalog`'s tables as if they were the user's).

use std::sync::Arc;

use datafusion::catalog::TableProvider;
use datafusion::common::{Column, Result};
use datafusion::datasource::provider_as_source;
use datafusion::logical_expr::{LogicalPlan, LogicalPlanBuilder, lit};
use datafusion::prelude::{Expr, col};

use crate::catalog_rows::{columns_like, with_rows};
use crate::system_tables::SYSTEM_SCHEMA;

/// The extension's oid: below 16384, so `pg_dump` takes it for built in.
pub const WEIR_EXTENSION_OID: i32 = 13_700;

/// `pg_extension` with the `weir` extension, whose schema is
/// `weir_catalog`, after PostgreSQL's own rows.
pub fn pg_extension(
    extensions: Arc<dyn TableProvider>,
    pg_namespace: Arc<dyn TableProvider>,
    owner: i32,
) -> Result<Arc<dyn TableProvider>> {
    let weir = system_namespace(pg_namespace)?;
    let columns = columns_like(&extensions.schema(), |column| match column {
        "oid" => Some(lit(WEIR_EXTENSION_OID)),
        "extname" => Some(lit("weir")),
        "extowner" => Some(lit(owner)),
        "extnamespace" => Some(col("oid")),
        "extrelocatable" => Some(lit(false)),
        "extversion" => Some(lit(env!("CARGO_PKG_VERSION"))),
        _ => None,
    })?;
    let weir = LogicalPlanBuilder::from(weir).project(columns)?.build()?;
    with_rows("pg_extension", extensions, weir)
}

/// `pg_depend` with a membership row (`deptype` `e`) for `weir_catalog`
/// and for each relation in it, after PostgreSQL's own rows.
pub fn pg_depend(
    dependencies: Arc<dyn TableProvider>,
    pg_class: LogicalPlan,
    pg_namespace: Arc<dyn TableProvider>,
    class_oids: ClassOids,
) -> Result<Arc<dyn TableProvider>> {
    let member = |plan: LogicalPlan, class_id: i32, object: Expr| -> Result<LogicalPlan> {
        let columns = columns_like(&dependencies.schema(), |column| {
            Some(match column {
                "classid" => lit(class_id),
                "objid" => object.clone(),
                "refclassid" => lit(class_oids.pg_extension),
                "refobjid" => lit(WEIR_EXTENSION_OID),
                "deptype" => lit("e"),
                _ => lit(0),
            })
        })?;
        LogicalPlanBuilder::from(plan).project(columns)?.build()
    };
    let namespace = system_namespace(pg_namespace)?;
    let schema = member(
        namespace.clone(),
        class_oids.pg_namespace,
        Expr::Column(Column::new(Some("pg_namespace"), "oid")),
    )?;
    let relations = LogicalPlanBuilder::from(pg_class)
        .join_on(
            namespace,
            datafusion::logical_expr::JoinType::Inner,
            [col("relnamespace").eq(Expr::Column(Column::new(Some("pg_namespace"), "oid")))],
        )?
        .build()?;
    let relations = member(
        relations,
        class_oids.pg_class,
        Expr::Column(Column::new(Some("pg_class"), "oid")),
    )?;
    let members = LogicalPlanBuilder::from(schema).union(relations)?.build()?;
    with_rows("pg_depend", dependencies, members)
}

/// The oids of the catalogs a membership row names.
#[derive(Clone, Copy)]
pub struct ClassOids {
    pub pg_class: i32,
    pub pg_namespace: i32,
    pub pg_extension: i32,
}

/// The row of `pg_namespace` for `weir_catalog`.
fn system_namespace(pg_namespace: Arc<dyn TableProvider>) -> Result<LogicalPlan> {
    LogicalPlanBuilder::scan("pg_namespace", provider_as_source(pg_namespace), None)?
        .filter(col("nspname").eq(lit(SYSTEM_SCHEMA)))?
        .build()
}
