//! Recognises filters that name exact primary-key values.

use datafusion::arrow::array::ArrayRef;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::ScalarValue;
use datafusion::logical_expr::{BinaryExpr, Expr, Operator, expr::InList};

/// The key values `filter` restricts column `key` to, if it is
/// `key = literal`, `literal = key` or `key IN (literals)`.
pub(crate) fn key_values(
    filter: &Expr,
    key: &str,
    key_type: &DataType,
) -> Option<Vec<ScalarValue>> {
    let is_key = |e: &Expr| matches!(e, Expr::Column(c) if c.name == key);
    let literal = |e: &Expr| match e {
        Expr::Literal(value, _) if !value.is_null() => value.cast_to(key_type).ok(),
        _ => None,
    };
    match filter {
        Expr::BinaryExpr(BinaryExpr {
            left,
            op: Operator::Eq,
            right,
        }) => {
            if is_key(left) {
                literal(right).map(|v| vec![v])
            } else if is_key(right) {
                literal(left).map(|v| vec![v])
            } else {
                None
            }
        }
        Expr::InList(InList {
            expr,
            list,
            negated: false,
        }) if is_key(expr) => list.iter().map(literal).collect(),
        _ => None,
    }
}

/// The first filter that pins the key, as a key column.
pub(crate) fn key_column(filters: &[Expr], key: &str, key_type: &DataType) -> Option<ArrayRef> {
    let values = filters.iter().find_map(|f| key_values(f, key, key_type))?;
    ScalarValue::iter_to_array(values).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::logical_expr::{col, lit};

    #[test]
    fn equality_and_in_lists_on_the_key_are_lookups() {
        let t = DataType::Int32;
        assert_eq!(
            key_values(&col("id").eq(lit(5i64)), "id", &t),
            Some(vec![ScalarValue::Int32(Some(5))])
        );
        assert_eq!(
            key_values(&lit(5i64).eq(col("id")), "id", &t),
            Some(vec![ScalarValue::Int32(Some(5))])
        );
        let in_list = col("id").in_list(vec![lit(1), lit(2)], false);
        assert_eq!(key_values(&in_list, "id", &t).map(|v| v.len()), Some(2));
    }

    #[test]
    fn other_filters_are_not() {
        let t = DataType::Int32;
        assert_eq!(key_values(&col("id").gt(lit(5)), "id", &t), None);
        assert_eq!(key_values(&col("other").eq(lit(5)), "id", &t), None);
        assert_eq!(
            key_values(&col("id").in_list(vec![lit(1)], true), "id", &t),
            None
        );
        assert_eq!(
            key_values(&col("id").eq(lit(ScalarValue::Int32(None))), "id", &t),
            None
        );
        assert_eq!(key_values(&col("id").eq(lit("x")), "id", &t), None);
    }
}
