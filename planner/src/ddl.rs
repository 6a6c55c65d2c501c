//! `CREATE TABLE` and `DROP TABLE`: from the statement to a table definition.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::datatypes::{Field, Schema, SchemaRef};
use datafusion::sql::sqlparser::ast::{
    ColumnOption, CreateTable, Expr, Ident, ObjectName, ObjectNamePart, TableConstraint,
};
use weir_storage::TableKey;

use weir_executor::batch::typed_text::PG_TYPE_KEY;

use crate::types::{column_type, shown_type};
use crate::watermarks::WatermarkDecl;
use crate::{Error, Result};

/// The only schema user objects live in.
pub const PUBLIC_SCHEMA: &str = "public";
/// The database's name, as clients see it.
pub const DATABASE_NAME: &str = "weir";

/// What a `CREATE TABLE` declares.
#[derive(Debug, Clone)]
pub struct TableSpec {
    pub name: String,
    pub schema: SchemaRef,
    pub key: TableKey,
    /// `WATERMARK FOR`, which only append-only tables may declare.
    pub watermark: Option<WatermarkDecl>,
}

/// An identifier as Postgres folds it: unquoted names are lower-cased.
pub fn normalize(ident: &Ident) -> String {
    match ident.quote_style {
        Some(_) => ident.value.clone(),
        None => ident.value.to_lowercase(),
    }
}

/// The table name an object name refers to, which must be in `public`.
pub fn table_name(name: &ObjectName) -> Result<String> {
    let parts: Vec<String> = name
        .0
        .iter()
        .map(|part| match part {
            ObjectNamePart::Identifier(ident) => Ok(normalize(ident)),
            _ => Err(Error::not_supported(format!(
                "table name {name} is not supported"
            ))),
        })
        .collect::<Result<_>>()?;
    match parts.as_slice() {
        [table] => Ok(table.clone()),
        [schema, table] if schema == PUBLIC_SCHEMA => Ok(table.clone()),
        [db, schema, table] if db == DATABASE_NAME && schema == PUBLIC_SCHEMA => Ok(table.clone()),
        _ => Err(Error::user(
            "3F000",
            format!("schema of {name} does not exist"),
        )),
    }
}

fn unsupported_clause(create: &CreateTable) -> Option<&'static str> {
    if create.query.is_some() {
        Some("CREATE TABLE AS")
    } else if create.like.is_some() || create.clone.is_some() {
        Some("CREATE TABLE LIKE")
    } else if create.temporary {
        Some("temporary tables")
    } else if create.external {
        Some("external tables")
    } else if create.or_replace {
        Some("CREATE OR REPLACE TABLE")
    } else if create.inherits.is_some() || create.partition_of.is_some() {
        Some("table inheritance and partitions")
    } else {
        None
    }
}

/// Checks a `CREATE TABLE` and derives the table's schema and key.
pub fn table_spec(create: &CreateTable, append_only: bool) -> Result<TableSpec> {
    if let Some(clause) = unsupported_clause(create) {
        return Err(Error::not_supported(format!("{clause} is not supported")));
    }
    let name = table_name(&create.name)?;
    if create.columns.is_empty() {
        return Err(Error::not_supported(
            "tables without columns are not supported",
        ));
    }
    let mut names: Vec<String> = Vec::new();
    let mut key: Option<Vec<usize>> = None;
    let mut not_null = Vec::new();
    let mut types = Vec::new();
    for (index, column) in create.columns.iter().enumerate() {
        let column_name = normalize(&column.name);
        if names.contains(&column_name) {
            return Err(Error::user(
                "42701",
                format!("column \"{column_name}\" specified more than once"),
            ));
        }
        names.push(column_name);
        types.push((
            column_type(&column.data_type)?,
            shown_type(&column.data_type),
        ));
        let mut required = false;
        for option in &column.options {
            match &option.option {
                ColumnOption::Null => {}
                ColumnOption::NotNull => required = true,
                ColumnOption::PrimaryKey(_) => {
                    set_key(&mut key, vec![index], &name)?;
                    required = true;
                }
                other => {
                    return Err(Error::not_supported(format!(
                        "column option {other} is not supported"
                    )));
                }
            }
        }
        not_null.push(required);
    }
    for constraint in &create.constraints {
        match constraint {
            TableConstraint::PrimaryKey(pk) => {
                let columns = pk
                    .columns
                    .iter()
                    .map(|c| match &c.column.expr {
                        Expr::Identifier(ident) => {
                            let wanted = normalize(ident);
                            names.iter().position(|n| *n == wanted).ok_or_else(|| {
                                Error::user(
                                    "42703",
                                    format!("column \"{wanted}\" named in key does not exist"),
                                )
                            })
                        }
                        other => Err(Error::not_supported(format!(
                            "primary key on {other} is not supported"
                        ))),
                    })
                    .collect::<Result<Vec<_>>>()?;
                set_key(&mut key, columns, &name)?;
            }
            other => {
                return Err(Error::not_supported(format!(
                    "constraint {other} is not supported"
                )));
            }
        }
    }
    let key = match (key, append_only) {
        (Some(_), true) => {
            return Err(Error::user(
                "42P16",
                format!("append-only table \"{name}\" cannot have a primary key"),
            ));
        }
        (Some(columns), false) => {
            for &c in &columns {
                not_null[c] = true;
            }
            TableKey::Primary(columns)
        }
        (None, _) => TableKey::RowId,
    };
    let fields: Vec<Field> = names
        .iter()
        .zip(types)
        .zip(&not_null)
        .map(|((name, (data_type, shown)), required)| {
            let field = Field::new(name, data_type, !required);
            match shown {
                Some(shown) => field.with_metadata(HashMap::from([(
                    PG_TYPE_KEY.to_string(),
                    shown.to_string(),
                )])),
                None => field,
            }
        })
        .collect();
    Ok(TableSpec {
        name,
        schema: Arc::new(Schema::new(fields)),
        key,
        watermark: None,
    })
}

fn set_key(key: &mut Option<Vec<usize>>, columns: Vec<usize>, table: &str) -> Result<()> {
    if key.is_some() {
        return Err(Error::user(
            "42P16",
            format!("multiple primary keys for table \"{table}\" are not allowed"),
        ));
    }
    *key = Some(columns);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parser::StatementParser;
    use datafusion::sql::sqlparser::ast::Statement;

    fn spec(sql: &str) -> Result<TableSpec> {
        let parsed = StatementParser::default().parse(sql)?.remove(0);
        match &parsed.statement {
            Statement::CreateTable(create) => table_spec(create, parsed.append_only),
            other => panic!("not a CREATE TABLE: {other}"),
        }
    }

    #[test]
    fn keys_make_columns_not_null() {
        let t = spec("CREATE TABLE Orders (id INT PRIMARY KEY, \"Customer\" VARCHAR NOT NULL, amount BIGINT)").unwrap();
        assert_eq!(t.name, "orders");
        assert_eq!(t.key, TableKey::Primary(vec![0]));
        let nullable: Vec<bool> = t.schema.fields().iter().map(|f| f.is_nullable()).collect();
        assert_eq!(nullable, vec![false, false, true]);
        assert_eq!(t.schema.field(1).name(), "Customer");

        let t = spec("CREATE TABLE t (a INT, b TEXT, PRIMARY KEY (b, a))").unwrap();
        assert_eq!(t.key, TableKey::Primary(vec![1, 0]));
        let t = spec("CREATE TABLE public.t (a INT) APPEND ONLY").unwrap();
        assert_eq!(t.key, TableKey::RowId);
    }

    #[test]
    fn bad_definitions_are_refused_with_their_sqlstate() {
        let code = |sql: &str| match spec(sql) {
            Err(Error::User { code, .. }) => code,
            Err(Error::NotSupported(_)) => "0A000",
            other => panic!("{sql}: {other:?}"),
        };
        assert_eq!(code("CREATE TABLE t (a INT, A INT)"), "42701");
        assert_eq!(
            code("CREATE TABLE t (a INT PRIMARY KEY, b INT PRIMARY KEY)"),
            "42P16"
        );
        assert_eq!(code("CREATE TABLE t (a INT, PRIMARY KEY (z))"), "42703");
        assert_eq!(
            code("CREATE TABLE t (a INT PRIMARY KEY) APPEND ONLY"),
            "42P16"
        );
        assert_eq!(code("CREATE TABLE t (a INT DEFAULT 1)"), "0A000");
        assert_eq!(code("CREATE TABLE t (a INT UNIQUE)"), "0A000");
        assert_eq!(code("CREATE TABLE other.t (a INT)"), "3F000");
        assert_eq!(code("CREATE TABLE t AS SELECT 1"), "0A000");
    }
}
