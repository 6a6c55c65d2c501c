//! Primary keys as PostgreSQL's catalog shows them. In PostgreSQL a
//! table's key is a unique index `<table>_pkey` with a constraint of type
//! `p` over it; psql's `\d`, `pg_dump`, SQLAlchemy's reflection and
//! pgjdbc's `getPrimaryKeys` read them from `pg_class` (the index, of kind
//! `i`), `pg_index` and `pg_constraint`, and print them with
//! `pg_get_indexdef` and `pg_get_constraintdef`. This module makes those
//! rows and those two functions from weir's tables.
//!
//! The index and the constraint have oids drawn from the table's name
//! ([`key_oid`]), so the functions can find a key by oid without
//! `pg_class`, whose oids `datafusion-pg-catalog` hands out as it first
//! sees each relation.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, Int16Array, Int32Array, ListArray, RecordBatch, StringArray,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Int16Type, Int32Type, Schema, SchemaRef};
use datafusion::catalog::TableProvider;
use datafusion::catalog::view::ViewTable;
use datafusion::common::{Column, JoinType, Result, ScalarValue};
use datafusion::datasource::{MemTable, provider_as_source};
use datafusion::logical_expr::{
    ColumnarValue, LogicalPlan, LogicalPlanBuilder, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl,
    Signature, TypeSignature, Volatility, cast as cast_expr, lit,
};
use datafusion::prelude::{Expr, col};
use weir_storage::TableKey;

use crate::PG_TYPE_KEY;
use crate::catalog::Catalog;
use crate::udf_shape::in_shape_of_args;

/// The schema weir's relations are in.
const SCHEMA: &str = "public";

/// btree's oid in `pg_am`: every key is a btree index in PostgreSQL.
const BTREE: i32 = 403;

/// The qualifier of the keys' own columns in the plans below.
const KEYS: &str = "pg_keys";

/// One table's primary key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrimaryKey {
    pub table: String,
    /// The key's columns, in key order.
    pub columns: Vec<String>,
    /// Their positions in the table, from 1 (`attnum`).
    pub attnums: Vec<i16>,
}

impl PrimaryKey {
    /// The index's name, as PostgreSQL names a key's index.
    pub fn index_name(&self) -> String {
        format!("{}_pkey", self.table)
    }

    pub fn index_oid(&self) -> i32 {
        key_oid(&self.table, "index")
    }

    pub fn constraint_oid(&self) -> i32 {
        key_oid(&self.table, "constraint")
    }

    /// What `pg_get_indexdef` says of the index.
    pub fn index_definition(&self) -> String {
        format!(
            "CREATE UNIQUE INDEX {} ON {SCHEMA}.{} USING btree ({})",
            quote_ident(&self.index_name()),
            quote_ident(&self.table),
            self.column_list()
        )
    }

    /// What `pg_get_constraintdef` says of the constraint.
    pub fn constraint_definition(&self) -> String {
        format!("PRIMARY KEY ({})", self.column_list())
    }

    fn column_list(&self) -> String {
        let quoted: Vec<String> = self.columns.iter().map(|c| quote_ident(c)).collect();
        quoted.join(", ")
    }
}

/// The primary key of every table that has one, by table name.
pub fn primary_keys(catalog: &Catalog) -> Vec<PrimaryKey> {
    let mut keys: Vec<PrimaryKey> = catalog
        .tables()
        .iter()
        .filter_map(|table| match &table.layout.key {
            TableKey::Primary(columns) => Some(PrimaryKey {
                table: table.layout.name.clone(),
                columns: columns
                    .iter()
                    .map(|&i| table.layout.schema.field(i).name().clone())
                    .collect(),
                attnums: columns.iter().map(|&i| i as i16 + 1).collect(),
            }),
            TableKey::RowId => None,
        })
        .collect();
    keys.sort_by(|a, b| a.table.cmp(&b.table));
    keys
}

/// The oid of a key's `object` ("index" or "constraint"): drawn from the
/// table's name, so it is the same in every session and across restarts,
/// and above the oids handed out one by one from 16384.
fn key_oid(table: &str, object: &str) -> i32 {
    const FIRST: u32 = 1 << 24;
    // FNV-1a: stable, unlike the standard library's hasher.
    let hash = table
        .bytes()
        .chain([0])
        .chain(object.bytes())
        .fold(0x811c_9dc5u32, |h, b| {
            (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
        });
    (FIRST + hash % (i32::MAX as u32 - FIRST)) as i32
}

/// `name` as PostgreSQL's `quote_ident` writes it: quoted unless it is a
/// lower-case identifier.
fn quote_ident(name: &str) -> String {
    let plain = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if plain {
        name.to_string()
    } else {
        format!("\"{}\"", name.replace('"', "\"\""))
    }
}

/// A list of `element`, typed for PostgreSQL as `pg_type` (`int2vector`,
/// `oidvector`) when given.
fn list_field(name: &str, element: DataType, pg_type: Option<&str>) -> Field {
    let field = Field::new(
        name,
        DataType::List(Arc::new(Field::new_list_field(element, true))),
        true,
    );
    match pg_type {
        Some(pg_type) => field.with_metadata(HashMap::from([(
            PG_TYPE_KEY.to_string(),
            pg_type.to_string(),
        )])),
        None => field,
    }
}

/// The keys as a table the catalog plans join with `pg_class`.
fn keys_table(keys: &[PrimaryKey]) -> Result<Arc<dyn TableProvider>> {
    let schema: SchemaRef = Arc::new(Schema::new(vec![
        Field::new("key_table", DataType::Utf8, false),
        Field::new("key_index", DataType::Utf8, false),
        Field::new("key_index_oid", DataType::Int32, false),
        Field::new("key_constraint_oid", DataType::Int32, false),
        Field::new("key_count", DataType::Int16, false),
        list_field("key_attnums", DataType::Int16, Some("int2vector")),
        list_field("key_columns", DataType::Int16, None),
        list_field("key_classes", DataType::Int32, Some("oidvector")),
        list_field("key_options", DataType::Int16, Some("int2vector")),
    ]));
    let attnums = || {
        ListArray::from_iter_primitive::<Int16Type, _, _>(
            keys.iter()
                .map(|k| Some(k.attnums.iter().map(|&a| Some(a)).collect::<Vec<_>>())),
        )
    };
    let zeros = |k: &PrimaryKey| Some(vec![Some(0); k.attnums.len()]);
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(
            keys.iter().map(|k| k.table.clone()),
        )),
        Arc::new(StringArray::from_iter_values(
            keys.iter().map(PrimaryKey::index_name),
        )),
        Arc::new(Int32Array::from_iter_values(
            keys.iter().map(PrimaryKey::index_oid),
        )),
        Arc::new(Int32Array::from_iter_values(
            keys.iter().map(PrimaryKey::constraint_oid),
        )),
        Arc::new(Int16Array::from_iter_values(
            keys.iter().map(|k| k.attnums.len() as i16),
        )),
        Arc::new(attnums()),
        Arc::new(attnums()),
        Arc::new(ListArray::from_iter_primitive::<Int32Type, _, _>(
            keys.iter().map(zeros),
        )),
        Arc::new(ListArray::from_iter_primitive::<Int16Type, _, _>(
            keys.iter().map(|k| Some(vec![Some(0i16); k.attnums.len()])),
        )),
    ];
    let batch = RecordBatch::try_new(Arc::clone(&schema), columns)?;
    Ok(Arc::new(MemTable::try_new(schema, vec![vec![batch]])?))
}

/// `pg_class` rows of weir's tables that have a key, each joined with
/// its key's columns (qualified [`KEYS`]).
fn keyed_tables(
    pg_class: LogicalPlan,
    pg_namespace: Arc<dyn TableProvider>,
    keys: &[PrimaryKey],
) -> Result<LogicalPlanBuilder> {
    let namespaces =
        LogicalPlanBuilder::scan("pg_namespace", provider_as_source(pg_namespace), None)?
            .filter(col("nspname").eq(lit(SCHEMA)))?
            .project([col("oid").alias("key_namespace")])?
            .build()?;
    LogicalPlanBuilder::from(pg_class)
        .alias("pg_class")?
        .join(
            LogicalPlanBuilder::scan(KEYS, provider_as_source(keys_table(keys)?), None)?.build()?,
            JoinType::Inner,
            (
                vec![Column::new(Some("pg_class"), "relname")],
                vec![Column::new(Some(KEYS), "key_table")],
            ),
            None,
        )?
        .join(
            namespaces,
            JoinType::Inner,
            (
                vec![Column::new(Some("pg_class"), "relnamespace")],
                vec![Column::from_name("key_namespace")],
            ),
            None,
        )?
        .filter(class_column("relkind").eq(lit("r")))
}

fn class_column(name: &str) -> Expr {
    Expr::Column(Column::new(Some("pg_class"), name))
}

fn key_column(name: &str) -> Expr {
    Expr::Column(Column::new(Some(KEYS), name))
}

fn null_of(data_type: &DataType) -> Result<Expr> {
    Ok(lit(ScalarValue::try_from(data_type)?))
}

fn int16_list() -> DataType {
    DataType::List(Arc::new(Field::new_list_field(DataType::Int16, true)))
}

fn int32_list() -> DataType {
    DataType::List(Arc::new(Field::new_list_field(DataType::Int32, true)))
}

/// `pg_class` as `owned` has it, with a row of kind `i` for each key's
/// index.
pub(crate) fn with_key_indexes(
    owned: LogicalPlan,
    pg_namespace: Arc<dyn TableProvider>,
    keys: &[PrimaryKey],
) -> Result<LogicalPlan> {
    if keys.is_empty() {
        return Ok(owned);
    }
    let columns: Vec<Expr> = owned
        .schema()
        .fields()
        .iter()
        .map(|field| {
            let name = field.name().as_str();
            let value = match name {
                "oid" => key_column("key_index_oid"),
                "relname" => key_column("key_index"),
                "reltype" | "reloftype" | "relfilenode" | "relpages" | "relallvisible" => lit(0i32),
                "reltuples" => lit(0f64),
                "relam" => lit(BTREE),
                "relkind" => lit("i"),
                "relnatts" => key_column("key_count"),
                "relchecks" => lit(0i16),
                "relhasindex"
                | "relhasrules"
                | "relhastriggers"
                | "relhassubclass"
                | "relrowsecurity"
                | "relforcerowsecurity"
                | "relispartition" => lit(false),
                "relispopulated" => lit(true),
                "relreplident" => lit("n"),
                _ => class_column(name),
            };
            cast_expr(value, field.data_type().clone()).alias(name)
        })
        .collect();
    let indexes = keyed_tables(owned.clone(), pg_namespace, keys)?
        .project(columns)?
        .build()?;
    LogicalPlanBuilder::from(owned).union(indexes)?.build()
}

/// `pg_index`: a row for each key's index.
pub(crate) fn pg_index(
    pg_class: LogicalPlan,
    pg_namespace: Arc<dyn TableProvider>,
    keys: &[PrimaryKey],
) -> Result<Arc<dyn TableProvider>> {
    let flag = |name: &str, value: bool| lit(value).alias(name);
    let plan = keyed_tables(pg_class, pg_namespace, keys)?
        .project([
            key_column("key_index_oid").alias("indexrelid"),
            class_column("oid").alias("indrelid"),
            key_column("key_count").alias("indnatts"),
            key_column("key_count").alias("indnkeyatts"),
            flag("indisunique", true),
            flag("indnullsnotdistinct", false),
            flag("indisprimary", true),
            flag("indisexclusion", false),
            flag("indimmediate", true),
            flag("indisclustered", false),
            flag("indisvalid", true),
            flag("indcheckxmin", false),
            flag("indisready", true),
            flag("indislive", true),
            flag("indisreplident", false),
            key_column("key_attnums").alias("indkey"),
            key_column("key_classes").alias("indcollation"),
            key_column("key_classes").alias("indclass"),
            key_column("key_options").alias("indoption"),
            null_of(&DataType::Utf8)?.alias("indexprs"),
            null_of(&DataType::Utf8)?.alias("indpred"),
        ])?
        .build()?;
    Ok(Arc::new(ViewTable::new(plan, None)))
}

/// `pg_constraint`: a constraint of type `p` for each key (weir has no
/// other constraints PostgreSQL lists there).
pub(crate) fn pg_constraint(
    pg_class: LogicalPlan,
    pg_namespace: Arc<dyn TableProvider>,
    keys: &[PrimaryKey],
) -> Result<Arc<dyn TableProvider>> {
    let blank = |name: &str| lit(" ").alias(name);
    let plan = keyed_tables(pg_class, pg_namespace, keys)?
        .project([
            key_column("key_constraint_oid").alias("oid"),
            key_column("key_index").alias("conname"),
            class_column("relnamespace").alias("connamespace"),
            lit("p").alias("contype"),
            lit(false).alias("condeferrable"),
            lit(false).alias("condeferred"),
            lit(true).alias("convalidated"),
            class_column("oid").alias("conrelid"),
            lit(0i32).alias("contypid"),
            key_column("key_index_oid").alias("conindid"),
            lit(0i32).alias("conparentid"),
            lit(0i32).alias("confrelid"),
            blank("confupdtype"),
            blank("confdeltype"),
            blank("confmatchtype"),
            lit(true).alias("conislocal"),
            lit(0i32).alias("coninhcount"),
            lit(true).alias("connoinherit"),
            key_column("key_columns").alias("conkey"),
            null_of(&int16_list())?.alias("confkey"),
            null_of(&int32_list())?.alias("conpfeqop"),
            null_of(&int32_list())?.alias("conppeqop"),
            null_of(&int32_list())?.alias("conffeqop"),
            null_of(&int16_list())?.alias("confdelsetcols"),
            null_of(&int32_list())?.alias("conexclop"),
            null_of(&DataType::Utf8)?.alias("conbin"),
        ])?
        .build()?;
    Ok(Arc::new(ViewTable::new(plan, None)))
}

/// `pg_get_indexdef` and `pg_get_constraintdef` over the catalog's keys.
pub fn key_functions(catalog: Arc<Catalog>) -> Vec<ScalarUDF> {
    [Definition::Index, Definition::Constraint]
        .into_iter()
        .map(|definition| {
            let arities = match definition {
                Definition::Index => [1, 3],
                Definition::Constraint => [1, 2],
            };
            ScalarUDF::from(KeyDefinition {
                definition,
                catalog: Arc::clone(&catalog),
                signature: Signature::one_of(
                    arities.into_iter().map(TypeSignature::Any).collect(),
                    Volatility::Stable,
                ),
            })
        })
        .collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Definition {
    Index,
    Constraint,
}

#[derive(Debug)]
struct KeyDefinition {
    definition: Definition,
    catalog: Arc<Catalog>,
    signature: Signature,
}

impl PartialEq for KeyDefinition {
    fn eq(&self, other: &Self) -> bool {
        self.definition == other.definition && Arc::ptr_eq(&self.catalog, &other.catalog)
    }
}

impl Eq for KeyDefinition {}

impl Hash for KeyDefinition {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.definition.hash(state);
    }
}

impl ScalarUDFImpl for KeyDefinition {
    fn name(&self) -> &str {
        match self.definition {
            Definition::Index => "pg_get_indexdef",
            Definition::Constraint => "pg_get_constraintdef",
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let keys = primary_keys(&self.catalog);
        in_shape_of_args(&args.args, |arrays| {
            let oids = cast(&arrays[0], &DataType::Int64)?;
            let oids = oids.as_primitive::<datafusion::arrow::datatypes::Int64Type>();
            // pg_get_indexdef(index, column, pretty): column 0 is the whole
            // definition, column n the n-th column's name.
            let columns = match (self.definition, arrays.get(1)) {
                (Definition::Index, Some(column)) => Some(cast(column, &DataType::Int64)?),
                _ => None,
            };
            let texts: StringArray = (0..oids.len())
                .map(|row| {
                    if oids.is_null(row) {
                        return None;
                    }
                    let oid = oids.value(row);
                    let key = keys.iter().find(|k| match self.definition {
                        Definition::Index => i64::from(k.index_oid()) == oid,
                        Definition::Constraint => i64::from(k.constraint_oid()) == oid,
                    })?;
                    let column = columns
                        .as_ref()
                        .map(|c| c.as_primitive::<datafusion::arrow::datatypes::Int64Type>())
                        .filter(|c| !c.is_null(row))
                        .map_or(0, |c| c.value(row));
                    Some(match self.definition {
                        Definition::Index if column > 0 => {
                            quote_ident(key.columns.get(column as usize - 1)?)
                        }
                        Definition::Index => key.index_definition(),
                        Definition::Constraint => key.constraint_definition(),
                    })
                })
                .collect();
            Ok(Arc::new(texts) as ArrayRef)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(table: &str, columns: &[&str]) -> PrimaryKey {
        PrimaryKey {
            table: table.into(),
            columns: columns.iter().map(|c| c.to_string()).collect(),
            attnums: (1..=columns.len() as i16).collect(),
        }
    }

    #[test]
    fn definitions_read_as_postgres_prints_them() {
        let k = key("orders", &["id", "Line"]);
        assert_eq!(
            k.index_definition(),
            "CREATE UNIQUE INDEX orders_pkey ON public.orders USING btree (id, \"Line\")"
        );
        assert_eq!(k.constraint_definition(), "PRIMARY KEY (id, \"Line\")");
    }

    #[test]
    fn oids_differ_by_object_and_table_and_stay_above_the_counted_ones() {
        let a = key("a", &["x"]);
        let b = key("b", &["x"]);
        let oids = [
            a.index_oid(),
            a.constraint_oid(),
            b.index_oid(),
            b.constraint_oid(),
        ];
        assert!(oids.iter().all(|&o| o >= 1 << 24));
        let mut distinct = oids.to_vec();
        distinct.sort();
        distinct.dedup();
        assert_eq!(distinct.len(), 4);
        assert_eq!(a.index_oid(), key("a", &["y"]).index_oid());
    }
}
