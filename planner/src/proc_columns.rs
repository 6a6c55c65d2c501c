//! Columns of type `regproc` that `datafusion-pg-catalog` holds as the
//! function's name (`int48eq`, `-` for none), served as PostgreSQL stores
//! them: the function's oid in `pg_proc`, 0 for none. `pg_dump` reads them
//! with `::oid` (`oprcode::oid`, `prsstart::oid`), which failed on the
//! names. A name several functions share gives the least of their oids.

use std::sync::Arc;

use datafusion::catalog::TableProvider;
use datafusion::catalog::view::ViewTable;
use datafusion::common::{Column, Result};
use datafusion::datasource::provider_as_source;
use datafusion::functions::expr_fn::coalesce;
use datafusion::functions_aggregate::expr_fn::min;
use datafusion::logical_expr::{JoinType, LogicalPlanBuilder, lit};
use datafusion::prelude::{Expr, col};

/// The catalogs served here, each with its `regproc` columns.
const PROC_COLUMNS: &[(&str, &[&str])] = &[
    ("pg_am", &["amhandler"]),
    ("pg_operator", &["oprcode", "oprrest", "oprjoin"]),
    (
        "pg_ts_parser",
        &[
            "prsstart",
            "prstoken",
            "prsend",
            "prsheadline",
            "prslextype",
        ],
    ),
    ("pg_ts_template", &["tmplinit", "tmpllexize"]),
];

/// Whether `table` is a catalog with `regproc` columns served here.
pub fn has_proc_columns(table: &str) -> bool {
    PROC_COLUMNS.iter().any(|(name, _)| *name == table)
}

/// The catalog `name` with each of its `regproc` columns that holds names
/// replaced by the named function's oid from `pg_proc`.
pub fn with_proc_oids(
    name: &str,
    table: Arc<dyn TableProvider>,
    pg_proc: Arc<dyn TableProvider>,
) -> Result<Arc<dyn TableProvider>> {
    let columns = PROC_COLUMNS
        .iter()
        .find_map(|(n, columns)| (*n == name).then_some(*columns))
        .unwrap_or_default();
    let named: Vec<&str> = columns
        .iter()
        .copied()
        .filter(|c| {
            table
                .schema()
                .field_with_name(c)
                .is_ok_and(|f| f.data_type().is_string())
        })
        .collect();
    if named.is_empty() {
        return Ok(table);
    }
    let oids_by_name = LogicalPlanBuilder::scan("pg_proc", provider_as_source(pg_proc), None)?
        .aggregate(vec![col("proname")], vec![min(col("oid")).alias("oid")])?
        .build()?;
    let mut plan = LogicalPlanBuilder::scan(name, provider_as_source(table.clone()), None)?;
    for (i, column) in named.iter().enumerate() {
        let procs = LogicalPlanBuilder::from(oids_by_name.clone())
            .alias(lookup_alias(i))?
            .build()?;
        let on = Expr::Column(Column::new(Some(name), *column))
            .eq(Expr::Column(Column::new(Some(lookup_alias(i)), "proname")));
        plan = plan.join_on(procs, JoinType::Left, [on])?;
    }
    let projection: Vec<Expr> = table
        .schema()
        .fields()
        .iter()
        .map(|field| match named.iter().position(|c| c == field.name()) {
            Some(i) => coalesce(vec![
                Expr::Column(Column::new(Some(lookup_alias(i)), "oid")),
                lit(0),
            ])
            .alias_qualified(Some(name), field.name()),
            None => Expr::Column(Column::new(Some(name), field.name())),
        })
        .collect();
    let plan = plan.project(projection)?.build()?;
    Ok(Arc::new(ViewTable::new(plan, None)))
}

/// The name of the `i`th column's lookup of `pg_proc`.
fn lookup_alias(i: usize) -> String {
    format!("proc_{i}")
}
