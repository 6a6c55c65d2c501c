//! `pg_catalog` as `datafusion-pg-catalog` serves it, but for
//! - `pg_class`, whose `relkind` is `m` for weir's materialized views (it
//!   knows only tables and views, and calls every view a table): psql's
//!   `\dm` lists relations of kind `m`, and `\d` names a relation's kind
//!   from it; whose `relowner` is the owning role's oid (it gave 0); and
//!   which lists each primary key's index;
//! - `pg_index` and `pg_constraint`, which list the primary keys
//!   ([`pg_keys`]);
//! - `pg_database`, which lists only the database weir serves (it also
//!   listed a `postgres` database that refuses connections, in psql's `\l`);
//! - `pg_stat_activity`, which it lacks: the server's sessions
//!   ([`Backends`]);
//! - `pg_roles`, the catalog's roles (psql's `\du`), each with its oid
//!   ([`crate::pg_roles`]; it gave every role 0);
//! - `pg_authid`, a fixed table of a PostgreSQL's roles there: here the
//!   same rows as `pg_roles`, passwords never shown;
//! - `pg_am`, `pg_operator`, `pg_ts_parser` and `pg_ts_template`, whose
//!   `regproc` columns hold oids ([`proc_columns`]);
//! - `pg_attribute`, whose array columns are arrays
//!   ([`catalog_arrays`]) and whose numeric columns have their precision
//!   and scale ([`crate::attribute_typmods`]);
//! - `pg_namespace`, which also lists `information_schema`
//!   ([`crate::namespaces`]);
//! - `pg_extension` and `pg_depend`, which show `weir_catalog` as a
//!   built-in extension's schema ([`weir_extension`]);
//! - the catalogs weir has no rows for ([`crate::empty_catalogs`]).

use std::ops::ControlFlow;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::{DataType, Field};
use datafusion::catalog::Session;
use datafusion::catalog::view::ViewTable;
use datafusion::catalog::{SchemaProvider, TableProvider};
use datafusion::common::{Column, DataFusionError, ScalarValue};
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::datasource::{TableType, provider_as_source};
use datafusion::logical_expr::conditional_expressions::CaseBuilder;
use datafusion::logical_expr::{LogicalPlan, LogicalPlanBuilder, lit, when};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::{Expr, col};
use datafusion::sql::sqlparser::ast::{Ident, ObjectNamePart, Statement, visit_relations_mut};

use datafusion_pg_catalog::pg_catalog::context::{PgCatalogContextProvider, Role};

use crate::attribute_typmods::AttributesTable;
use crate::backends::Backends;
use crate::catalog::Catalog;
use crate::catalog_arrays;
use crate::empty_catalogs::{empty_catalog, empty_catalog_names};
use crate::namespaces::with_information_schema;
use crate::pg_keys::{self, primary_keys};
use crate::pg_roles::RolesTable;
use crate::proc_columns;
use crate::roles::BOOTSTRAP_ROLE;
use crate::weir_extension::{self, ClassOids};

const PG_STAT_ACTIVITY: &str = "pg_stat_activity";

/// Qualifies `pg_stat_activity` and the empty catalogs with `pg_catalog`,
/// as PostgreSQL's search path finds them (pg-catalog's parser does so
/// only for its own tables).
pub fn qualify_pg_tables(statement: &mut Statement) {
    let _ = visit_relations_mut(statement, |name| {
        if let [ObjectNamePart::Identifier(table)] = name.0.as_slice()
            && (table.value.eq_ignore_ascii_case(PG_STAT_ACTIVITY)
                || empty_catalog_names().any(|n| table.value.eq_ignore_ascii_case(n)))
        {
            name.0
                .insert(0, ObjectNamePart::Identifier(Ident::new("pg_catalog")));
        }
        ControlFlow::<()>::Continue(())
    });
}

/// `pg_catalog` with weir's `pg_class`.
#[derive(Debug)]
pub struct PgCatalogSchema {
    pub inner: Arc<dyn SchemaProvider>,
    pub catalog: Arc<Catalog>,
    /// The one database weir serves.
    pub database: String,
    pub backends: Arc<Backends>,
}

#[async_trait]
impl SchemaProvider for PgCatalogSchema {
    fn table_names(&self) -> Vec<String> {
        let mut names = self.inner.table_names();
        names.push(PG_STAT_ACTIVITY.to_string());
        for name in empty_catalog_names() {
            if !names.iter().any(|n| n == name) {
                names.push(name.to_string());
            }
        }
        names
    }

    async fn table(&self, name: &str) -> datafusion::error::Result<Option<Arc<dyn TableProvider>>> {
        if name == PG_STAT_ACTIVITY {
            return Ok(Some(Arc::new(ActivityTable {
                backends: Arc::clone(&self.backends),
            })));
        }
        if let Some(empty) = empty_catalog(name) {
            return with_table_oid(name, empty?).map(Some);
        }
        let table = self.inner.table(name).await?;
        let table = match table {
            Some(pg_class) if name == "pg_class" => Ok(Some(self.with_view_kinds(pg_class).await?)),
            Some(_) if name == "pg_index" => {
                let (pg_class, pg_namespace) = self.class_and_namespace().await?;
                pg_keys::pg_index(pg_class, pg_namespace, &primary_keys(&self.catalog)).map(Some)
            }
            Some(_) if name == "pg_constraint" => {
                let (pg_class, pg_namespace) = self.class_and_namespace().await?;
                pg_keys::pg_constraint(pg_class, pg_namespace, &primary_keys(&self.catalog))
                    .map(Some)
            }
            Some(roles) if name == "pg_roles" => Ok(Some(self.roles(roles))),
            Some(attributes) if name == "pg_attribute" => {
                let attributes = Arc::new(AttributesTable {
                    attributes,
                    pg_class: self.inner_table("pg_class").await?,
                    pg_namespace: self.inner_table("pg_namespace").await?,
                });
                catalog_arrays::with_text_arrays(attributes).map(Some)
            }
            Some(procs) if proc_columns::has_proc_columns(name) => {
                proc_columns::with_proc_oids(name, procs, self.inner_table("pg_proc").await?)
                    .map(Some)
            }
            Some(namespaces) if name == "pg_namespace" => {
                with_information_schema(namespaces, role_oid(BOOTSTRAP_ROLE)).map(Some)
            }
            Some(extensions) if name == "pg_extension" => weir_extension::pg_extension(
                extensions,
                self.inner_table("pg_namespace").await?,
                role_oid(BOOTSTRAP_ROLE),
            )
            .map(Some),
            Some(dependencies) if name == "pg_depend" => {
                let (pg_class, pg_namespace) = self.class_and_namespace().await?;
                let oid = |name| catalog_table_oid(name).unwrap_or_default();
                let class_oids = ClassOids {
                    pg_class: oid("pg_class"),
                    pg_namespace: oid("pg_namespace"),
                    pg_extension: oid("pg_extension"),
                };
                weir_extension::pg_depend(dependencies, pg_class, pg_namespace, class_oids)
                    .map(Some)
            }
            Some(_) if name == "pg_authid" => self.authid().await.map(Some),
            Some(pg_database) if name == "pg_database" => {
                let plan =
                    LogicalPlanBuilder::scan("pg_database", provider_as_source(pg_database), None)?
                        .filter(col("datname").eq(lit(self.database.clone())))?
                        .build()?;
                let view: Arc<dyn TableProvider> = Arc::new(ViewTable::new(plan, None));
                Ok(Some(view))
            }
            other => Ok(other),
        }?;
        table.map(|t| with_table_oid(name, t)).transpose()
    }

    fn table_exist(&self, name: &str) -> bool {
        name == PG_STAT_ACTIVITY
            || empty_catalog_names().any(|n| n == name)
            || self.inner.table_exist(name)
    }
}

impl PgCatalogSchema {
    async fn inner_table(&self, name: &str) -> datafusion::error::Result<Arc<dyn TableProvider>> {
        self.inner
            .table(name)
            .await?
            .ok_or_else(|| DataFusionError::Plan(format!("{name} is missing")))
    }

    /// A scan of `datafusion-pg-catalog`'s `pg_class`, and its `pg_namespace`.
    async fn class_and_namespace(
        &self,
    ) -> datafusion::error::Result<(LogicalPlan, Arc<dyn TableProvider>)> {
        let pg_class = self.inner_table("pg_class").await?;
        let plan =
            LogicalPlanBuilder::scan("pg_class", provider_as_source(pg_class), None)?.build()?;
        Ok((plan, self.inner_table("pg_namespace").await?))
    }

    /// `pg_authid` as `pg_roles` with PostgreSQL's `pg_authid` columns.
    async fn authid(&self) -> datafusion::error::Result<Arc<dyn TableProvider>> {
        let roles = self
            .inner
            .table("pg_roles")
            .await?
            .ok_or_else(|| DataFusionError::Plan("pg_roles is missing".into()))?;
        let roles = self.roles(roles);
        let columns = [
            "oid",
            "rolname",
            "rolsuper",
            "rolinherit",
            "rolcreaterole",
            "rolcreatedb",
            "rolcanlogin",
            "rolreplication",
            "rolbypassrls",
            "rolconnlimit",
            "rolvaliduntil",
        ];
        let mut projection: Vec<Expr> = columns.iter().map(|c| col(*c)).collect();
        projection.push(lit(datafusion::common::ScalarValue::Utf8(None)).alias("rolpassword"));
        let plan = LogicalPlanBuilder::scan("pg_roles", provider_as_source(roles), None)?
            .project(projection)?
            .build()?;
        Ok(Arc::new(ViewTable::new(plan, None)))
    }

    /// `pg_roles` with pg-catalog's columns, read from the catalog.
    fn roles(&self, roles: Arc<dyn TableProvider>) -> Arc<dyn TableProvider> {
        Arc::new(RolesTable {
            catalog: Arc::clone(&self.catalog),
            schema: roles.schema(),
        })
    }

    /// `pg_class` with `relkind = 'm'` for every materialized view, each
    /// relation's owner in `relowner` (the bootstrap role for the
    /// catalog's own), and each table's primary key as an index
    /// ([`pg_keys`]).
    async fn with_view_kinds(
        &self,
        pg_class: Arc<dyn TableProvider>,
    ) -> Result<Arc<dyn TableProvider>, DataFusionError> {
        let views: Vec<Expr> = self
            .catalog
            .views()
            .iter()
            .map(|v| lit(v.record.name.clone()))
            .collect();
        let keys = primary_keys(&self.catalog);
        let keyed: Vec<Expr> = keys.iter().map(|k| lit(k.table.clone())).collect();
        let access = self.catalog.access();
        let bootstrap = lit(role_oid(BOOTSTRAP_ROLE));
        let (relations, owners): (Vec<Expr>, Vec<Expr>) = access
            .owners()
            .map(|(relation, role)| (col("relname").eq(lit(relation)), lit(role_oid(role))))
            .unzip();
        let owner = if relations.is_empty() {
            bootstrap
        } else {
            CaseBuilder::new(None, relations, owners, Some(Box::new(bootstrap))).end()?
        };
        let columns: Vec<Expr> = pg_class
            .schema()
            .fields()
            .iter()
            .map(|field| {
                let column = Expr::Column(Column::new(Some("pg_class"), field.name()));
                match field.name().as_str() {
                    "relkind" if !views.is_empty() => {
                        when(col("relname").in_list(views.clone(), false), lit("m"))
                            .otherwise(column)
                            .map(|e| e.alias_qualified(Some("pg_class"), "relkind"))
                    }
                    "relowner" => Ok(owner.clone().alias_qualified(Some("pg_class"), "relowner")),
                    "relhasindex" if !keyed.is_empty() => {
                        when(col("relname").in_list(keyed.clone(), false), lit(true))
                            .otherwise(column)
                            .map(|e| e.alias_qualified(Some("pg_class"), "relhasindex"))
                    }
                    _ => Ok(column),
                }
            })
            .collect::<Result<_, _>>()?;
        // Columns PostgreSQL has that pg-catalog's pg_class lacks: no
        // relation of weir has storage options or an access list.
        let mut columns = columns;
        let text_list = DataType::List(Arc::new(Field::new_list_field(DataType::Utf8, true)));
        for name in ["reloptions", "relacl"] {
            if pg_class.schema().field_with_name(name).is_err() {
                columns.push(
                    lit(ScalarValue::try_from(&text_list)?).alias_qualified(Some("pg_class"), name),
                );
            }
        }
        let owned = LogicalPlanBuilder::scan("pg_class", provider_as_source(pg_class), None)?
            .project(columns)?
            .build()?;
        let plan =
            pg_keys::with_key_indexes(owned, self.inner_table("pg_namespace").await?, &keys)?;
        Ok(Arc::new(ViewTable::new(plan, None)))
    }
}

/// The oids PostgreSQL gives its catalog tables, which a row's
/// `tableoid` names (`pg_dump` reads it from each catalog it lists).
const CATALOG_TABLE_OIDS: &[(&str, i32)] = &[
    ("pg_aggregate", 2600),
    ("pg_am", 2601),
    ("pg_attrdef", 2604),
    ("pg_attribute", 1249),
    ("pg_authid", 1260),
    ("pg_cast", 2605),
    ("pg_class", 1259),
    ("pg_collation", 3456),
    ("pg_constraint", 2606),
    ("pg_conversion", 2607),
    ("pg_database", 1262),
    ("pg_default_acl", 826),
    ("pg_depend", 2608),
    ("pg_description", 2609),
    ("pg_event_trigger", 3466),
    ("pg_extension", 3079),
    ("pg_foreign_data_wrapper", 2328),
    ("pg_foreign_server", 1417),
    ("pg_index", 2610),
    ("pg_inherits", 2611),
    ("pg_init_privs", 3394),
    ("pg_language", 2612),
    ("pg_namespace", 2615),
    ("pg_opclass", 2616),
    ("pg_operator", 2617),
    ("pg_opfamily", 2753),
    ("pg_policy", 3256),
    ("pg_proc", 1255),
    ("pg_publication", 6104),
    ("pg_publication_namespace", 6237),
    ("pg_publication_rel", 6106),
    ("pg_rewrite", 2618),
    ("pg_seclabel", 3596),
    ("pg_statistic_ext", 3381),
    ("pg_subscription", 6100),
    ("pg_transform", 3576),
    ("pg_trigger", 2620),
    ("pg_ts_config", 3602),
    ("pg_ts_dict", 3600),
    ("pg_ts_parser", 3601),
    ("pg_ts_template", 3764),
    ("pg_type", 1247),
];

/// `table` with PostgreSQL's `tableoid` column, where it names one of the
/// catalog tables above and lacks it.
fn with_table_oid(
    name: &str,
    table: Arc<dyn TableProvider>,
) -> Result<Arc<dyn TableProvider>, DataFusionError> {
    let Some(oid) = catalog_table_oid(name) else {
        return Ok(table);
    };
    if table.schema().field_with_name("tableoid").is_ok() {
        return Ok(table);
    }
    let mut columns: Vec<Expr> = table
        .schema()
        .fields()
        .iter()
        .map(|f| Expr::Column(Column::new(Some(name), f.name())))
        .collect();
    columns.push(lit(oid).alias("tableoid"));
    let plan = LogicalPlanBuilder::scan(name, provider_as_source(table), None)?
        .project(columns)?
        .build()?;
    Ok(Arc::new(ViewTable::new(plan, None)))
}

/// The oid PostgreSQL gives the catalog table `name`.
pub fn catalog_table_oid(name: &str) -> Option<i32> {
    CATALOG_TABLE_OIDS
        .iter()
        .find_map(|(n, oid)| (*n == name).then_some(*oid))
}

/// The oid a role goes by in `pg_roles`, `pg_class.relowner` and
/// `pg_get_userbyid`: 10 for the bootstrap superuser, as in PostgreSQL,
/// and for every other a number above PostgreSQL's fixed oids drawn from
/// its name, so it is the same in every session and across restarts.
pub fn role_oid(name: &str) -> i32 {
    const FIRST_NORMAL_OID: u32 = 16_384;
    if name == BOOTSTRAP_ROLE {
        return 10;
    }
    // FNV-1a: stable, unlike the standard library's hasher.
    let hash = name.bytes().fold(0x811c_9dc5u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    (FIRST_NORMAL_OID + hash % (i32::MAX as u32 - FIRST_NORMAL_OID)) as i32
}

/// The catalog's roles, for `pg_roles`.
#[derive(Debug, Clone)]
pub struct CatalogRoles(pub Arc<Catalog>);

#[async_trait]
impl PgCatalogContextProvider for CatalogRoles {
    async fn roles(&self) -> Vec<String> {
        self.0.access().roles().map(|r| r.name.clone()).collect()
    }

    async fn role(&self, name: &str) -> Option<Role> {
        let role = self.0.role(name)?;
        Some(Role {
            name: role.name,
            is_superuser: role.superuser,
            can_login: role.login,
            can_create_db: false,
            can_create_role: false,
            can_create_user: false,
            can_replication: false,
            grants: Vec::new(),
            inherited_roles: Vec::new(),
        })
    }
}

/// `pg_stat_activity`: the sessions as they are when a query runs (not
/// when it was planned, which for a prepared statement is earlier).
#[derive(Debug)]
struct ActivityTable {
    backends: Arc<Backends>,
}

#[async_trait]
impl TableProvider for ActivityTable {
    fn schema(&self) -> datafusion::arrow::datatypes::SchemaRef {
        Backends::schema()
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
    ) -> datafusion::error::Result<Arc<dyn ExecutionPlan>> {
        let batch = self
            .backends
            .activity()
            .map_err(|e| DataFusionError::External(Box::new(e)))?;
        let scan = MemorySourceConfig::try_new_exec(
            &[vec![batch]],
            Backends::schema(),
            projection.cloned(),
        )?;
        Ok(scan)
    }
}
