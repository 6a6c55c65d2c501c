//! Group top-N from its SQL shape:
//! `SELECT ... FROM (SELECT ..., ROW_NUMBER() OVER (PARTITION BY p ORDER BY o)
//! AS rn FROM ...) WHERE rn <= n` (also `rn < n`, `rn = k`; `rn = 1` is
//! deduplication).
//!
//! DataFusion plans it as a `Filter` over a `Window` (possibly through
//! projections). The filter's bound on the row number is passed down to
//! the window, which becomes a partitioned top-N that numbers its rows;
//! the filter itself stays and passes every row the top-N emits.

use std::sync::Arc;

use datafusion::arrow::compute::SortOptions;
use datafusion::arrow::datatypes::DataType;
use datafusion::logical_expr::utils::split_conjunction;
use datafusion::logical_expr::{BinaryExpr, Expr, Operator, Window, WindowFunctionDefinition};
use datafusion::physical_expr::expressions::Column;

use super::builder::{Built, GraphBuilder, listed, unsupported};
use crate::Result;
use weir_executor::checkpoint::settings::show_duration;
use weir_executor::operators::{Limit, TopNOperator};

/// A filter's bound on a row-number column.
#[derive(Debug, Clone)]
pub struct RowNumberBound {
    /// The column's name in the filter's input.
    pub column: String,
    pub limit: Limit,
}

/// The first conjunct of `predicate` that bounds a column by a constant
/// the way a group top-N does.
pub fn row_number_bound(predicate: &Expr) -> Option<RowNumberBound> {
    split_conjunction(predicate).into_iter().find_map(bound_of)
}

fn bound_of(conjunct: &Expr) -> Option<RowNumberBound> {
    let Expr::BinaryExpr(BinaryExpr { left, op, right }) = conjunct else {
        return None;
    };
    // Column on the left: `rn <= 3`; mirrored: `3 >= rn`.
    let (column, op, value) = match (left.as_ref(), right.as_ref()) {
        (Expr::Column(c), Expr::Literal(v, _)) => (c, *op, v),
        (Expr::Literal(v, _), Expr::Column(c)) => (c, op.swap()?, v),
        _ => return None,
    };
    let value = match value.cast_to(&DataType::Int64).ok()? {
        datafusion::common::ScalarValue::Int64(Some(v)) => v,
        _ => return None,
    };
    let limit = match op {
        Operator::LtEq if value >= 1 => Limit {
            offset: 0,
            fetch: value as usize,
        },
        Operator::Lt if value >= 2 => Limit {
            offset: 0,
            fetch: value as usize - 1,
        },
        Operator::Eq if value >= 1 => Limit {
            offset: value as usize - 1,
            fetch: 1,
        },
        _ => return None,
    };
    Some(RowNumberBound {
        column: column.name.clone(),
        limit,
    })
}

impl GraphBuilder<'_> {
    /// A `Window` node: only `ROW_NUMBER()` bounded by the filter above it.
    pub(super) fn window(
        &mut self,
        window: &Window,
        bound: Option<RowNumberBound>,
    ) -> Result<Built> {
        if window
            .window_expr
            .iter()
            .all(|e| super::session_window::session_function(e).is_some())
        {
            return self.session_window(window);
        }
        let [expr] = window.window_expr.as_slice() else {
            return Err(unsupported("more than one window function in a SELECT"));
        };
        let Expr::WindowFunction(function) = expr.clone().unalias() else {
            return Err(unsupported(format!("the window expression {expr}")));
        };
        let name = match &function.fun {
            WindowFunctionDefinition::WindowUDF(udf) => udf.name().to_string(),
            WindowFunctionDefinition::AggregateUDF(udf) => udf.name().to_string(),
        };
        if name != "row_number" {
            return Err(unsupported(format!(
                "the window function {name}() (only ROW_NUMBER() bounded by a WHERE, as a top-N per group)"
            )));
        }
        let input_width = window.input.schema().fields().len();
        let column = window.schema.field(input_width).name().clone();
        let Some(bound) = bound.filter(|b| b.column == column) else {
            return Err(unsupported(
                "ROW_NUMBER() without a bound on it in the WHERE of the query above (rn <= n)",
            ));
        };
        let params = &function.params;
        let mut partition = Vec::new();
        for expr in &params.partition_by {
            partition.push(self.column_index(
                expr,
                window,
                "PARTITION BY an expression in ROW_NUMBER()",
            )?);
        }
        let mut order = Vec::new();
        for sort in &params.order_by {
            let index =
                self.column_index(&sort.expr, window, "ORDER BY an expression in ROW_NUMBER()")?;
            order.push((
                index,
                SortOptions {
                    descending: !sort.asc,
                    nulls_first: sort.nulls_first,
                },
            ));
        }
        let input = self.build(&window.input)?;
        let (position, identity) = self.next_identity("GroupTopN");
        let detail = format!(
            " partition=[{}] order=[{}] offset={} limit={}",
            listed(&params.partition_by),
            listed(&params.order_by),
            bound.limit.offset,
            bound.limit.fetch,
        );
        let store = (self.stores)(position)?;
        // Watermarks on partition columns pass through the top-N.
        let watermarks: Vec<usize> = partition
            .iter()
            .copied()
            .filter(|c| input.watermarks.contains(c))
            .collect();
        let mut operator = TopNOperator::new(
            input.operator,
            partition,
            order,
            bound.limit,
            Arc::clone(&store),
            1,
            identity.clone(),
        )?
        .with_row_number(input.visible, &column);
        let mut detail = detail;
        if let Some(ttl) = self.state_ttl {
            if params.partition_by.is_empty() {
                return Err(crate::Error::not_supported(
                    "state_ttl expires the partitions of a ROW_NUMBER() top-N; one without PARTITION BY keeps every row",
                ));
            }
            operator = operator.expire_after(ttl);
            detail += &format!(" ttl={}", show_duration(ttl));
        }
        if self.emit_on_window_close {
            let Some(&window) = watermarks.first() else {
                return Err(crate::Error::not_supported(
                    "EMIT ON WINDOW CLOSE needs ROW_NUMBER() partitioned by a window column with a \
                     watermark, such as window_start of TUMBLE or HOP over a table or source that \
                     declares WATERMARK FOR",
                ));
            };
            let progress = self.watermark_report(&identity);
            operator = operator.emit_on_window_close(window, store, progress)?;
            detail += " emit=on-window-close";
        }
        let built = self.node(
            Box::new(operator),
            input.visible + 1,
            detail,
            Some(position),
            vec![input.explain],
        );
        Ok(Self::with_watermarks(built, watermarks))
    }

    /// The input column an expression of the window names.
    pub(super) fn column_index(&self, expr: &Expr, window: &Window, what: &str) -> Result<usize> {
        let expr = self.expr(expr, window.input.schema())?;
        expr.downcast_ref::<Column>()
            .map(Column::index)
            .ok_or_else(|| unsupported(format!("{what} (use a column)")))
    }
}

#[cfg(test)]
mod tests {
    use datafusion::logical_expr::{col, lit};

    use super::*;

    fn bound(expr: Expr) -> Option<(usize, usize)> {
        row_number_bound(&expr).map(|b| (b.limit.offset, b.limit.fetch))
    }

    #[test]
    fn bounds_of_a_row_number() {
        assert_eq!(bound(col("rn").lt_eq(lit(3u64))), Some((0, 3)));
        assert_eq!(bound(col("rn").lt(lit(3i64))), Some((0, 2)));
        assert_eq!(bound(lit(5).gt_eq(col("rn"))), Some((0, 5)));
        assert_eq!(bound(col("rn").eq(lit(1))), Some((0, 1)));
        assert_eq!(bound(col("rn").eq(lit(4))), Some((3, 1)));
        assert_eq!(
            bound(col("v").gt(lit(0)).and(col("rn").lt_eq(lit(2)))),
            Some((0, 2))
        );
        assert_eq!(bound(col("rn").gt(lit(3))), None);
        assert_eq!(bound(col("rn").lt(lit(1))), None);
        assert_eq!(bound(col("rn").lt_eq(col("k"))), None);
    }
}
