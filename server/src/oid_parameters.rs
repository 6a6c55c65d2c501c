//! Parameters cast at once to `oid` or `oid[]` are described as such.
//!
//! weir's oids are Arrow `Int32`s, so a statement's inferred parameter
//! types say `int4` for `$1::oid` and `int4[]` for `$1::oid[]`. asyncpg
//! knows `oid[]` without asking but not `int4[]`: its type lookup, which
//! takes `$1::oid[]`, would have to look up the type of its own parameter
//! first, and never ends. PostgreSQL infers the cast's type; so does weir,
//! from the statement's text, while the value is still decoded as the
//! `Int32`s it is planned with.

use std::collections::HashMap;
use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    ArrayElemTypeDef, DataType as SqlType, Expr, Statement, Value, visit_expressions,
};
use pgwire::api::Type;

/// The pgwire type of each `$n` that `statement` casts to `oid` or
/// `oid[]`, by its position from 0.
pub(crate) fn oid_parameters(statement: &Statement) -> HashMap<usize, Type> {
    let mut found = HashMap::new();
    let _ = visit_expressions(statement, |expr| {
        if let Expr::Cast {
            expr, data_type, ..
        } = expr
            && let Expr::Value(value) = expr.as_ref()
            && let Value::Placeholder(name) = &value.value
            && let Some(position) = placeholder_position(name)
            && let Some(pg_type) = oid_type(data_type)
        {
            found.entry(position).or_insert(pg_type);
        }
        ControlFlow::<()>::Continue(())
    });
    found
}

/// `$3` is parameter 2.
fn placeholder_position(name: &str) -> Option<usize> {
    name.strip_prefix('$')?
        .parse::<usize>()
        .ok()?
        .checked_sub(1)
}

fn oid_type(data_type: &SqlType) -> Option<Type> {
    let is_oid = |t: &SqlType| matches!(t, SqlType::Custom(name, _) if name.to_string().eq_ignore_ascii_case("oid"));
    match data_type {
        SqlType::Array(
            ArrayElemTypeDef::SquareBracket(element, _) | ArrayElemTypeDef::AngleBracket(element),
        ) if is_oid(element) => Some(Type::OID_ARRAY),
        t if is_oid(t) => Some(Type::OID),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
    use datafusion::sql::sqlparser::parser::Parser;

    use super::*;

    fn described(sql: &str) -> HashMap<usize, Type> {
        let statements = Parser::parse_sql(&PostgreSqlDialect {}, sql).expect("parses");
        oid_parameters(&statements[0])
    }

    #[test]
    fn casts_of_parameters_to_oid_and_oid_arrays_are_found() {
        let found = described("SELECT 1 WHERE 23 = any($2::oid[]) AND $1::oid > 0 AND $3::int > 0");
        assert_eq!(found.get(&1), Some(&Type::OID_ARRAY));
        assert_eq!(found.get(&0), Some(&Type::OID));
        assert_eq!(found.get(&2), None);
    }
}
