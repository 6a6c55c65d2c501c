//! `pg_catalog` as `datafusion-pg-catalog` serves it, but for
//! - `pg_class`, whose `relkind` is `m` for weir's materialized views (it
//!   knows only tables and views, and calls every view a table): psql's
//!   `\dm` lists relations of kind `m`, and `\d` names a relation's kind
//!   from it;
//! - `pg_database`, which lists only the database weir serves (it also
//!   listed a `postgres` database that refuses connections, in psql's `\l`).

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::catalog::view::ViewTable;
use datafusion::catalog::{SchemaProvider, TableProvider};
use datafusion::common::{Column, DataFusionError};
use datafusion::datasource::provider_as_source;
use datafusion::logical_expr::{LogicalPlanBuilder, lit, when};
use datafusion::prelude::{Expr, col};

use crate::catalog::Catalog;

/// `pg_catalog` with weir's `pg_class`.
#[derive(Debug)]
pub struct PgCatalogSchema {
    pub inner: Arc<dyn SchemaProvider>,
    pub catalog: Arc<Catalog>,
    /// The one database weir serves.
    pub database: String,
}

#[async_trait]
impl SchemaProvider for PgCatalogSchema {
    fn table_names(&self) -> Vec<String> {
        self.inner.table_names()
    }

    async fn table(&self, name: &str) -> datafusion::error::Result<Option<Arc<dyn TableProvider>>> {
        let table = self.inner.table(name).await?;
        match table {
            Some(pg_class) if name == "pg_class" => Ok(Some(self.with_view_kinds(pg_class)?)),
            Some(pg_database) if name == "pg_database" => {
                let plan =
                    LogicalPlanBuilder::scan("pg_database", provider_as_source(pg_database), None)?
                        .filter(col("datname").eq(lit(self.database.clone())))?
                        .build()?;
                Ok(Some(Arc::new(ViewTable::new(plan, None))))
            }
            other => Ok(other),
        }
    }

    fn table_exist(&self, name: &str) -> bool {
        self.inner.table_exist(name)
    }
}

impl PgCatalogSchema {
    /// `pg_class` with `relkind = 'm'` for every materialized view.
    fn with_view_kinds(
        &self,
        pg_class: Arc<dyn TableProvider>,
    ) -> Result<Arc<dyn TableProvider>, DataFusionError> {
        let views: Vec<Expr> = self
            .catalog
            .views()
            .iter()
            .map(|v| lit(v.record.name.clone()))
            .collect();
        if views.is_empty() {
            return Ok(pg_class);
        }
        let columns: Vec<Expr> = pg_class
            .schema()
            .fields()
            .iter()
            .map(|field| {
                let column = Expr::Column(Column::new(Some("pg_class"), field.name()));
                if field.name() == "relkind" {
                    when(col("relname").in_list(views.clone(), false), lit("m"))
                        .otherwise(column)
                        .map(|e| e.alias("relkind"))
                } else {
                    Ok(column)
                }
            })
            .collect::<Result<_, _>>()?;
        let plan = LogicalPlanBuilder::scan("pg_class", provider_as_source(pg_class), None)?
            .project(columns)?
            .build()?;
        Ok(Arc::new(ViewTable::new(plan, None)))
    }
}
