//! [`StoredTable`]: a durable table as a DataFusion `TableProvider`.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::Column;
use datafusion::common::{Constraint, Constraints, DFSchema, not_impl_err};
use datafusion::datasource::TableType;
use datafusion::datasource::sink::DataSinkExec;
use datafusion::error::Result;
use datafusion::logical_expr::dml::InsertOp;
use datafusion::logical_expr::utils::conjunction;
use datafusion::logical_expr::{Expr, ExprSchemable, TableProviderFilterPushDown};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::filter::FilterExec;
use datafusion::physical_plan::projection::ProjectionExec;
use weir_storage::{TableKey, TableLayout, TableStore};

use super::key_lookup;
use super::scan::TableScan;
use super::sink::{TableSink, WriteKind};

/// A table in storage, readable and writable through DataFusion.
#[derive(Debug)]
pub struct StoredTable {
    store: Arc<TableStore>,
    layout: TableLayout,
    /// The layout's schema as DataFusion resolves expressions against it.
    df_schema: DFSchema,
    constraints: Constraints,
}

impl StoredTable {
    /// # Errors
    /// When the layout's schema is not a valid DataFusion schema
    /// (duplicate column names).
    pub fn new(store: Arc<TableStore>, layout: TableLayout) -> Result<Self> {
        let df_schema = DFSchema::try_from(Arc::clone(&layout.schema))?;
        let constraints = match &layout.key {
            TableKey::Primary(columns) => {
                Constraints::new_unverified(vec![Constraint::PrimaryKey(columns.clone())])
            }
            TableKey::RowId => Constraints::default(),
        };
        Ok(Self {
            store,
            layout,
            df_schema,
            constraints,
        })
    }

    /// The single primary-key column, if the key has exactly one.
    fn single_key(&self) -> Option<&datafusion::arrow::datatypes::Field> {
        match &self.layout.key {
            TableKey::Primary(columns) if columns.len() == 1 => {
                Some(self.layout.schema.field(columns[0]))
            }
            _ => None,
        }
    }

    fn key_columns(&self) -> Result<&[usize]> {
        match &self.layout.key {
            TableKey::Primary(columns) => Ok(columns),
            TableKey::RowId => not_impl_err!(
                "table \"{}\" is append-only: it has no primary key to update or delete by",
                self.layout.name
            ),
        }
    }

    fn scan_plan(
        &self,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let keys = self
            .single_key()
            .and_then(|key| key_lookup::key_column(filters, key.name(), key.data_type()));
        let scan = TableScan {
            store: Arc::clone(&self.store),
            table: self.layout.id,
            schema: Arc::clone(&self.layout.schema),
            keys,
        };
        super::partition_scan(scan, projection, limit)
    }

    /// Rows matching `filters`, projected to `exprs` (over the table's columns).
    fn matching_rows(
        &self,
        state: &dyn Session,
        filters: &[Expr],
        exprs: Vec<(Expr, String)>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let df_schema = &self.df_schema;
        let mut plan = self.scan_plan(None, filters, None)?;
        if let Some(predicate) = conjunction(filters.iter().cloned()) {
            let predicate = state.create_physical_expr(predicate, df_schema)?;
            plan = Arc::new(FilterExec::try_new(predicate, plan)?);
        }
        let exprs = exprs
            .into_iter()
            .map(|(expr, name)| Ok((state.create_physical_expr(expr, df_schema)?, name)))
            .collect::<Result<Vec<(Arc<dyn PhysicalExpr>, String)>>>()?;
        Ok(Arc::new(ProjectionExec::try_new(exprs, plan)?))
    }

    fn sink(&self, input: Arc<dyn ExecutionPlan>, kind: WriteKind) -> Arc<dyn ExecutionPlan> {
        let sink = TableSink {
            store: Arc::clone(&self.store),
            table: self.layout.id,
            table_name: self.layout.name.clone(),
            kind,
            schema: input.schema(),
            table_schema: Arc::clone(&self.layout.schema),
        };
        Arc::new(DataSinkExec::new(input, Arc::new(sink), None))
    }
}

#[async_trait]
impl TableProvider for StoredTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.layout.schema)
    }

    fn constraints(&self) -> Option<&Constraints> {
        Some(&self.constraints)
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        let key = self.single_key();
        Ok(filters
            .iter()
            .map(|f| match key {
                Some(key) if key_lookup::key_values(f, key.name(), key.data_type()).is_some() => {
                    TableProviderFilterPushDown::Inexact
                }
                _ => TableProviderFilterPushDown::Unsupported,
            })
            .collect())
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        self.scan_plan(projection, filters, limit)
    }

    async fn insert_into(
        &self,
        _state: &dyn Session,
        input: Arc<dyn ExecutionPlan>,
        insert_op: InsertOp,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if insert_op != InsertOp::Append {
            return not_impl_err!("{insert_op} is not supported");
        }
        Ok(self.sink(input, WriteKind::Insert))
    }

    async fn delete_from(
        &self,
        state: &dyn Session,
        filters: Vec<Expr>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let keys = self
            .key_columns()?
            .iter()
            .map(|&i| {
                let name = self.layout.schema.field(i).name().clone();
                (column(&name), name)
            })
            .collect();
        let input = self.matching_rows(state, &filters, keys)?;
        Ok(self.sink(input, WriteKind::Delete))
    }

    async fn update(
        &self,
        state: &dyn Session,
        assignments: Vec<(String, Expr)>,
        filters: Vec<Expr>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let schema = &self.layout.schema;
        let mut exprs: Vec<(Expr, String)> = self
            .key_columns()?
            .iter()
            .map(|&i| {
                (
                    column(schema.field(i).name()),
                    format!("__old_{}", schema.field(i).name()),
                )
            })
            .collect();
        let key_len = exprs.len();
        for field in schema.fields() {
            let value = match assignments.iter().find(|(name, _)| name == field.name()) {
                Some((_, expr)) => expr.clone().cast_to(field.data_type(), &self.df_schema)?,
                None => column(field.name()),
            };
            exprs.push((value, field.name().clone()));
        }
        let input = self.matching_rows(state, &filters, exprs)?;
        Ok(self.sink(input, WriteKind::Update { key_len }))
    }
}

/// A reference to a column by its exact name (no parsing of dots or case).
fn column(name: &str) -> Expr {
    Expr::Column(Column::new_unqualified(name))
}
