//! Result columns named as PostgreSQL names them.
//!
//! DataFusion names a computed column after its expression
//! (`sum(orders.amount)`, `Int64(1) + Int64(1)`); PostgreSQL after the
//! function (`sum`), the type of a cast of a constant (`int4`), or
//! `?column?`. Clients and tools read these names (pandas' columns, psql's
//! header), so a query's unaliased select items are renamed PostgreSQL's
//! way, as long as the new names stay unique (DataFusion's plans need that).
//! A select list with `*` keeps DataFusion's names.

use datafusion::common::Column;
use datafusion::logical_expr::{LogicalPlan, LogicalPlanBuilder};
use datafusion::sql::sqlparser::ast::{
    DataType as SqlType, Expr, Query, SelectItem, SetExpr, Statement,
};

use crate::Result;

/// PostgreSQL's names for the columns of `statement`, one per select item
/// (`None` where DataFusion's name is already PostgreSQL's); `None` when
/// the statement is not a query whose columns can be named.
pub fn pg_column_names(statement: &Statement) -> Option<Vec<Option<String>>> {
    let Statement::Query(query) = statement else {
        return None;
    };
    let items = &leftmost_select(query)?.projection;
    items
        .iter()
        .map(|item| match item {
            SelectItem::UnnamedExpr(expr) => Some(expr_name(expr)),
            SelectItem::ExprWithAlias { .. } => Some(None),
            _ => None,
        })
        .collect()
}

/// `plan` with its columns renamed to `names` where they are given and
/// stay unique.
pub fn rename_columns(plan: LogicalPlan, names: &[Option<String>]) -> Result<LogicalPlan> {
    let schema = plan.schema();
    if names.len() != schema.fields().len() || names.iter().all(Option::is_none) {
        return Ok(plan);
    }
    let current: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
    let mut taken: Vec<String> = Vec::with_capacity(current.len());
    let mut renamed = false;
    for (i, name) in names.iter().enumerate() {
        let name = match name {
            Some(name) if !current[i + 1..].contains(name) && !taken.contains(name) => name.clone(),
            _ => current[i].clone(),
        };
        renamed |= name != current[i];
        taken.push(name);
    }
    if !renamed {
        return Ok(plan);
    }
    let columns: Vec<_> = schema
        .iter()
        .zip(taken)
        .map(|(field, name)| datafusion::prelude::Expr::Column(Column::from(field)).alias(name))
        .collect();
    Ok(LogicalPlanBuilder::from(plan).project(columns)?.build()?)
}

fn leftmost_select(query: &Query) -> Option<&datafusion::sql::sqlparser::ast::Select> {
    let mut body = query.body.as_ref();
    loop {
        match body {
            SetExpr::Select(select) => return Some(select),
            SetExpr::SetOperation { left, .. } => body = left,
            SetExpr::Query(inner) => body = inner.body.as_ref(),
            _ => return None,
        }
    }
}

/// The name PostgreSQL gives an unaliased select item; `None` for a
/// column reference, which DataFusion names the same.
fn expr_name(expr: &Expr) -> Option<String> {
    Some(match expr {
        Expr::Identifier(_) | Expr::CompoundIdentifier(_) => return None,
        Expr::Nested(inner) => return expr_name(inner),
        Expr::Function(f) => f
            .name
            .0
            .last()
            .and_then(|part| part.as_ident())
            .map(|ident| ident.value.to_lowercase())?,
        Expr::Cast {
            expr: inner,
            data_type,
            ..
        } => match inner.as_ref() {
            Expr::Value(_) => type_name(data_type),
            other => return expr_name(other),
        },
        Expr::Case { .. } => "case".into(),
        Expr::Exists { .. } => "exists".into(),
        Expr::Subquery(query) => {
            let item = leftmost_select(query)?.projection.first()?;
            match item {
                SelectItem::UnnamedExpr(Expr::Identifier(ident)) => ident.value.to_lowercase(),
                SelectItem::UnnamedExpr(Expr::CompoundIdentifier(parts)) => {
                    parts.last()?.value.to_lowercase()
                }
                SelectItem::UnnamedExpr(e) => expr_name(e)?,
                SelectItem::ExprWithAlias { alias, .. } => alias.value.clone(),
                _ => return None,
            }
        }
        _ => "?column?".into(),
    })
}

/// PostgreSQL's internal name of a type, as it names a cast constant.
fn type_name(data_type: &SqlType) -> String {
    let written = data_type.to_string().to_lowercase();
    let base = written.split('(').next().unwrap_or(&written).trim();
    match base {
        "int" | "integer" | "int4" => "int4",
        "bigint" | "int8" => "int8",
        "smallint" | "int2" => "int2",
        "real" | "float4" => "float4",
        "double precision" | "float8" | "double" | "float" => "float8",
        "boolean" | "bool" => "bool",
        "decimal" | "numeric" => "numeric",
        "character varying" | "varchar" => "varchar",
        "character" | "char" | "bpchar" => "bpchar",
        "timestamp with time zone" | "timestamptz" => "timestamptz",
        other => return other.to_string(),
    }
    .to_string()
}

#[cfg(test)]
mod tests {
    use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
    use datafusion::sql::sqlparser::parser::Parser;

    use super::*;

    fn names(sql: &str) -> Option<Vec<Option<String>>> {
        let statement = Parser::parse_sql(&PostgreSqlDialect {}, sql)
            .unwrap()
            .remove(0);
        pg_column_names(&statement)
    }

    #[test]
    fn names_follow_postgres() {
        let some = |s: &str| Some(s.to_string());
        assert_eq!(
            names(
                "SELECT a, sum(t.b), 1 + 1, 1::int, a::text, count(*) AS n, CASE WHEN a THEN 1 END, (SELECT max(x) FROM u) FROM t"
            ),
            Some(vec![
                None,
                some("sum"),
                some("?column?"),
                some("int4"),
                None,
                None,
                some("case"),
                some("max"),
            ])
        );
        assert_eq!(names("SELECT * FROM t"), None);
        assert_eq!(
            names("SELECT 1 UNION ALL SELECT 2"),
            Some(vec![some("?column?")])
        );
        assert_eq!(names("INSERT INTO t VALUES (1)"), None);
    }
}
