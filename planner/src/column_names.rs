//! Result columns named as PostgreSQL names them.
//!
//! DataFusion names a computed column after its expression
//! (`sum(orders.amount)`, `Int64(1) + Int64(1)`); PostgreSQL after the
//! function (`sum`), the type of a cast of a constant (`int4`), or
//! `?column?`. Clients and tools read these names (pandas' columns, psql's
//! header), so a query's unaliased select items are renamed PostgreSQL's
//! way. PostgreSQL lets two columns share a name (`SELECT count(*),
//! count(x)`, `SELECT a, a`); DataFusion's plans do not, so a repeated name
//! is planned under a unique one and carries the name to show in its field
//! metadata ([`DISPLAY_NAME_KEY`]), which the server puts in the
//! RowDescription. A select list with `*` keeps DataFusion's names.

use std::collections::HashMap;

use datafusion::common::Column;
use datafusion::common::metadata::FieldMetadata;
use datafusion::logical_expr::{LogicalPlan, LogicalPlanBuilder};
use datafusion::sql::sqlparser::ast::{
    DataType as SqlType, Expr, FunctionArg, FunctionArgExpr, FunctionArguments, Ident, Query,
    SelectItem, SetExpr, Statement,
};

use crate::{Error, Result};

/// Field metadata naming the column a client sees, where the plan had to
/// call it something else to keep its names unique.
pub const DISPLAY_NAME_KEY: &str = "weir.display_name";

/// PostgreSQL's names for the columns of `statement`, one per select item
/// (`None` for an aliased item, which DataFusion names the same); `None`
/// when the statement is not a query whose columns can be named.
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

/// `plan` with its columns renamed to `names` where they are given; a name
/// already taken by an earlier column is planned as `name#position` with
/// `name` in its [`DISPLAY_NAME_KEY`] metadata.
pub fn rename_columns(plan: LogicalPlan, names: &[Option<String>]) -> Result<LogicalPlan> {
    let schema = plan.schema();
    if names.len() != schema.fields().len() {
        return Ok(plan);
    }
    let current: Vec<&String> = schema.fields().iter().map(|f| f.name()).collect();
    let wanted: Vec<&String> = names
        .iter()
        .zip(&current)
        .map(|(name, current)| name.as_ref().unwrap_or(current))
        .collect();
    if wanted == current {
        return Ok(plan);
    }
    let mut seen: HashMap<&String, usize> = HashMap::new();
    let columns: Vec<_> = schema
        .iter()
        .zip(&wanted)
        .enumerate()
        .map(|(i, (field, &name))| {
            let column = datafusion::prelude::Expr::Column(Column::from(field));
            let earlier = seen.entry(name).or_default();
            *earlier += 1;
            if *earlier == 1 {
                column.alias(name)
            } else {
                let shown = FieldMetadata::from(HashMap::from([(
                    DISPLAY_NAME_KEY.to_string(),
                    name.clone(),
                )]));
                column.alias_with_metadata(format!("{name}#{i}"), Some(shown))
            }
        })
        .collect();
    Ok(LogicalPlanBuilder::from(plan).project(columns)?.build()?)
}

/// True for DataFusion's refusal of a select list whose expressions share
/// a name, which PostgreSQL allows.
pub fn is_duplicate_name_error(error: &Error) -> bool {
    matches!(error, Error::DataFusion(e) if e.to_string().contains("require unique expression names"))
}

/// `statement` with every unaliased select item of its top-level selects
/// aliased `weir_column_N`, so that DataFusion plans it whatever the items'
/// own names; [`pg_column_names`] of the original statement names them back.
pub fn with_planning_aliases(mut statement: Statement) -> Statement {
    fn alias_selects(body: &mut SetExpr) {
        match body {
            SetExpr::Select(select) => {
                for (i, item) in select.projection.iter_mut().enumerate() {
                    if let SelectItem::UnnamedExpr(expr) = item {
                        *item = SelectItem::ExprWithAlias {
                            expr: expr.clone(),
                            alias: Ident::new(format!("weir_column_{i}")),
                        };
                    }
                }
            }
            SetExpr::SetOperation { left, right, .. } => {
                alias_selects(left);
                alias_selects(right);
            }
            SetExpr::Query(inner) => alias_selects(&mut inner.body),
            _ => {}
        }
    }
    if let Statement::Query(query) = &mut statement {
        alias_selects(&mut query.body);
    }
    statement
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

/// The name PostgreSQL gives an unaliased select item.
fn expr_name(expr: &Expr) -> Option<String> {
    Some(match expr {
        Expr::Identifier(ident) => ident_name(ident),
        Expr::CompoundIdentifier(parts) => ident_name(parts.last()?),
        Expr::Nested(inner) => return expr_name(inner),
        Expr::Function(f) => {
            let name = f
                .name
                .0
                .last()
                .and_then(|part| part.as_ident())
                .map(|ident| ident.value.to_lowercase())?;
            // `x::uuid` (and json, jsonb), as weir rewrites those casts.
            match name.strip_prefix("pg_") {
                Some(cast @ ("uuid" | "json" | "jsonb")) => match &f.args {
                    FunctionArguments::List(list) => match list.args.as_slice() {
                        [FunctionArg::Unnamed(FunctionArgExpr::Expr(arg))] if !is_constant(arg) => {
                            return expr_name(arg);
                        }
                        _ => cast.to_string(),
                    },
                    _ => cast.to_string(),
                },
                _ => name,
            }
        }
        // A cast is named by what it casts, unless that is a constant or
        // another cast: then by its type.
        Expr::Cast {
            expr: inner,
            data_type,
            ..
        } => match is_constant(inner) {
            true => type_name(data_type),
            false => return expr_name(inner),
        },
        Expr::Interval(_) => "interval".into(),
        Expr::Case { .. } => "case".into(),
        Expr::Array(_) => "array".into(),
        // `ints[1]` is named after `ints`.
        Expr::CompoundFieldAccess { root, .. } => return expr_name(root),
        Expr::Exists { .. } => "exists".into(),
        Expr::Subquery(query) => {
            let item = leftmost_select(query)?.projection.first()?;
            match item {
                SelectItem::UnnamedExpr(e) => expr_name(e)?,
                SelectItem::ExprWithAlias { alias, .. } => alias.value.clone(),
                _ => return None,
            }
        }
        _ => "?column?".into(),
    })
}

/// A constant, a signed or parenthesized one, or a cast: what a cast is not
/// named after.
fn is_constant(expr: &Expr) -> bool {
    match expr {
        Expr::Value(_) | Expr::Cast { .. } | Expr::Interval(_) => true,
        Expr::UnaryOp { expr, .. } | Expr::Nested(expr) => is_constant(expr),
        _ => false,
    }
}

/// An identifier as the catalog spells it: folded to lower case unless quoted.
fn ident_name(ident: &Ident) -> String {
    match ident.quote_style {
        Some(_) => ident.value.clone(),
        None => ident.value.to_lowercase(),
    }
}

/// PostgreSQL's internal name of a type, as it names a cast constant.
fn type_name(data_type: &SqlType) -> String {
    let written = data_type.to_string().to_lowercase();
    // An array type is named by its element type: `'{1}'::int[]` is `int4`.
    let written = written.trim_end_matches("[]");
    let base = written.split('(').next().unwrap_or(written).trim();
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
                some("a"),
                some("sum"),
                some("?column?"),
                some("int4"),
                some("a"),
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
