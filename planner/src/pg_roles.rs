//! `pg_roles`, read from the catalog's roles when a query runs: each with
//! its oid ([`role_oid`]; `datafusion-pg-catalog` gives every role 0), its
//! superuser and login flags and its connection limit. A table of its own
//! rather than a projection over pg-catalog's: DataFusion cannot
//! decorrelate a subquery that filters on a column a projection computes
//! under an input's name (`(SELECT rolname FROM pg_roles WHERE oid =
//! ANY(pol.polroles))`, from `pg_dump`, failed so).

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::new_null_array;
use datafusion::arrow::array::{ArrayRef, BooleanArray, Int32Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::Result;
use datafusion::datasource::TableType;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::Expr;

use crate::catalog::Catalog;
use crate::pg_catalog_schema::role_oid;
use crate::roles::RoleRecord;

/// `pg_roles` with the columns of `schema` (pg-catalog's).
#[derive(Debug)]
pub struct RolesTable {
    pub catalog: Arc<Catalog>,
    pub schema: SchemaRef,
}

impl RolesTable {
    /// The rows as they are now.
    fn batch(&self) -> Result<RecordBatch> {
        let access = self.catalog.access();
        let mut roles: Vec<&RoleRecord> = access.roles().collect();
        roles.sort_by(|a, b| a.name.cmp(&b.name));
        let flags = |flag: fn(&RoleRecord) -> bool| -> ArrayRef {
            Arc::new(
                roles
                    .iter()
                    .map(|r| Some(flag(r)))
                    .collect::<BooleanArray>(),
            )
        };
        let columns = self
            .schema
            .fields()
            .iter()
            .map(|field| match field.name().as_str() {
                "rolname" => Arc::new(StringArray::from_iter_values(
                    roles.iter().map(|r| r.name.as_str()),
                )) as ArrayRef,
                "oid" => Arc::new(Int32Array::from_iter_values(
                    roles.iter().map(|r| role_oid(&r.name)),
                )),
                "rolconnlimit" => Arc::new(Int32Array::from_iter_values(
                    roles.iter().map(|r| r.connection_limit),
                )),
                "rolsuper" => flags(|r| r.superuser),
                "rolcanlogin" => flags(|r| r.login),
                "rolinherit" => flags(|_| true),
                "rolcreaterole" | "rolcreatedb" | "rolreplication" | "rolbypassrls" => {
                    flags(|_| false)
                }
                _ => new_null_array(field.data_type(), roles.len()),
            })
            .collect();
        Ok(RecordBatch::try_new(Arc::clone(&self.schema), columns)?)
    }
}

#[async_trait]
impl TableProvider for RolesTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::View
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let scan = MemorySourceConfig::try_new_exec(
            &[vec![self.batch()?]],
            Arc::clone(&self.schema),
            projection.cloned(),
        )?;
        Ok(scan)
    }
}
