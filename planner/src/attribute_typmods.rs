//! `pg_attribute` with each `numeric(p, s)` column's `atttypmod`, as
//! PostgreSQL encodes it (`((p << 16) | s) + 4`): `datafusion-pg-catalog`
//! gives every column -1, so `format_type(atttypid, atttypmod)` said
//! `numeric` where the table was declared `numeric(10,2)`: psql's `\d`
//! showed it so, and `pg_dump` dumped it so, which a restore would have
//! widened. The rows are pg-catalog's, read when a query runs; each
//! numeric column's precision and scale come from its table's Arrow type.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{Array, AsArray, Int32Array, RecordBatch};
use datafusion::arrow::compute::concat_batches;
use datafusion::arrow::datatypes::{DataType, Int16Type, Int32Type, SchemaRef};
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::{DataFusionError, Result};
use datafusion::datasource::TableType;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::execution::session_state::SessionState;
use datafusion::physical_plan::{ExecutionPlan, collect};
use datafusion::prelude::Expr;

/// PostgreSQL's oid of `numeric`.
const NUMERIC: i32 = 1700;

/// `pg_attribute` over pg-catalog's `attributes`, with `pg_class` and
/// `pg_namespace` to name each column's table.
#[derive(Debug)]
pub struct AttributesTable {
    pub attributes: Arc<dyn TableProvider>,
    pub pg_class: Arc<dyn TableProvider>,
    pub pg_namespace: Arc<dyn TableProvider>,
}

#[async_trait]
impl TableProvider for AttributesTable {
    fn schema(&self) -> SchemaRef {
        self.attributes.schema()
    }

    fn table_type(&self) -> TableType {
        TableType::View
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let rows = rows_of(&self.attributes, state).await?;
        let rows = self.with_numeric_typmods(rows, state).await?;
        let scan =
            MemorySourceConfig::try_new_exec(&[vec![rows]], self.schema(), projection.cloned())?;
        Ok(scan)
    }
}

impl AttributesTable {
    /// `rows` with `atttypmod` set for every numeric column of a table the
    /// session can find.
    async fn with_numeric_typmods(
        &self,
        rows: RecordBatch,
        state: &dyn Session,
    ) -> Result<RecordBatch> {
        let schema = rows.schema();
        let column =
            |name: &str| -> Result<&dyn Array> { Ok(rows.column(schema.index_of(name)?).as_ref()) };
        let types = column("atttypid")?.as_primitive::<Int32Type>();
        if !types.iter().any(|t| t == Some(NUMERIC)) {
            return Ok(rows);
        }
        let relations = self.relation_names(state).await?;
        let relids = column("attrelid")?.as_primitive::<Int32Type>();
        let numbers = column("attnum")?.as_primitive::<Int16Type>();
        let typmods = column("atttypmod")?.as_primitive::<Int32Type>();
        // Each relation's Arrow schema, looked up once.
        let mut table_schemas: HashMap<i32, Option<SchemaRef>> = HashMap::new();
        let mut declared = Vec::with_capacity(rows.num_rows());
        for row in 0..rows.num_rows() {
            let mut typmod = typmods.value(row);
            let relid = relids.value(row);
            if types.value(row) == NUMERIC
                && let Some((schema, table)) = relations.get(&relid)
            {
                if let Entry::Vacant(unseen) = table_schemas.entry(relid) {
                    unseen.insert(table_schema(state, schema, table).await?);
                }
                let field = usize::try_from(numbers.value(row) - 1).ok().and_then(|i| {
                    table_schemas[&relid]
                        .as_ref()
                        .and_then(|s| s.fields().get(i).cloned())
                });
                if let Some(DataType::Decimal128(p, s)) = field.map(|f| f.data_type().clone()) {
                    typmod = ((i32::from(p) << 16) | i32::from(s)) + 4;
                }
            }
            declared.push(typmod);
        }
        let mut columns = rows.columns().to_vec();
        columns[schema.index_of("atttypmod")?] = Arc::new(Int32Array::from(declared));
        Ok(RecordBatch::try_new(schema, columns)?)
    }

    /// Each relation's schema and name, by its oid.
    async fn relation_names(&self, state: &dyn Session) -> Result<HashMap<i32, (String, String)>> {
        let namespaces = rows_of(&self.pg_namespace, state).await?;
        let schemas: HashMap<i32, String> = ints(&namespaces, "oid")?
            .iter()
            .zip(texts(&namespaces, "nspname")?)
            .filter_map(|(oid, name)| Some((oid?, name?)))
            .collect();
        let classes = rows_of(&self.pg_class, state).await?;
        let names = ints(&classes, "oid")?
            .iter()
            .zip(texts(&classes, "relname")?)
            .zip(ints(&classes, "relnamespace")?.iter())
            .filter_map(|((oid, name), namespace)| {
                Some((oid?, (schemas.get(&namespace?)?.clone(), name?)))
            })
            .collect();
        Ok(names)
    }
}

/// The Arrow schema of `schema.table`, if the session finds the table.
async fn table_schema(state: &dyn Session, schema: &str, table: &str) -> Result<Option<SchemaRef>> {
    let Some(state) = state.as_any().downcast_ref::<SessionState>() else {
        return Ok(None);
    };
    let catalog_name = &state.config_options().catalog.default_catalog;
    let Some(schema) = state
        .catalog_list()
        .catalog(catalog_name)
        .and_then(|c| c.schema(schema))
    else {
        return Ok(None);
    };
    Ok(schema.table(table).await?.map(|t| t.schema()))
}

/// Every row of `table`, as one batch.
async fn rows_of(table: &Arc<dyn TableProvider>, state: &dyn Session) -> Result<RecordBatch> {
    let plan = table.scan(state, None, &[], None).await?;
    let batches = collect(plan, state.task_ctx()).await?;
    Ok(concat_batches(&table.schema(), &batches)?)
}

fn ints<'a>(rows: &'a RecordBatch, name: &str) -> Result<&'a Int32Array> {
    rows.column_by_name(name)
        .and_then(|c| c.as_primitive_opt::<Int32Type>())
        .ok_or_else(|| DataFusionError::Internal(format!("{name} is not an int4 column")))
}

fn texts<'a>(
    rows: &'a RecordBatch,
    name: &str,
) -> Result<impl Iterator<Item = Option<String>> + 'a> {
    let column = rows
        .column_by_name(name)
        .ok_or_else(|| DataFusionError::Internal(format!("{name} is missing")))?;
    let column = datafusion::arrow::compute::cast(column, &DataType::Utf8)?;
    let values: Vec<Option<String>> = column
        .as_string::<i32>()
        .iter()
        .map(|v| v.map(str::to_string))
        .collect();
    Ok(values.into_iter())
}
