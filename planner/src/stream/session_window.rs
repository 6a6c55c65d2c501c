//! Session windows from their SQL shape: the `Window` node a `SESSION(...)`
//! is rewritten into, with `weir_session_start` and `weir_session_end`
//! over the same keys and time (see `crate::session_windows`), becomes a
//! session window operator.

use datafusion::common::ScalarValue;
use datafusion::logical_expr::{Expr, Window, WindowFunctionDefinition};
use weir_executor::operators::{SessionBound, SessionWindowOperator};

use super::builder::{Built, GraphBuilder, listed, unsupported};
use crate::Result;
use crate::session_windows::{gap_in_unit, session_bound};

/// The bound a window expression computes, if it is a session function.
pub(super) fn session_function(expr: &Expr) -> Option<SessionBound> {
    let Expr::WindowFunction(function) = expr.clone().unalias() else {
        return None;
    };
    match &function.fun {
        WindowFunctionDefinition::WindowUDF(udf) => session_bound(udf.name()),
        WindowFunctionDefinition::AggregateUDF(_) => None,
    }
}

impl GraphBuilder<'_> {
    /// A `Window` node whose every expression is a session bound.
    pub(super) fn session_window(&mut self, window: &Window) -> Result<Built> {
        self.no_state_ttl("SESSION windows")?;
        let input_width = window.input.schema().fields().len();
        let mut bounds = Vec::new();
        let mut shape = None;
        for (i, expr) in window.window_expr.iter().enumerate() {
            let (Some(bound), Expr::WindowFunction(function)) =
                (session_function(expr), expr.clone().unalias())
            else {
                return Err(unsupported(format!(
                    "the window expression {expr} beside a SESSION"
                )));
            };
            let params = &function.params;
            let this = (
                params.args.clone(),
                params.partition_by.clone(),
                params.order_by.clone(),
            );
            if shape.get_or_insert_with(|| this.clone()) != &this {
                return Err(unsupported("two SESSION windows in one SELECT"));
            }
            let name = window.schema.field(input_width + i).name().clone();
            bounds.push((bound, name));
        }
        let Some((args, partition_by, _)) = shape else {
            return Err(unsupported("a window without functions"));
        };
        let [time, Expr::Literal(ScalarValue::Int64(Some(gap_ms)), _)] = args.as_slice() else {
            return Err(unsupported(
                "a session function not written by SESSION(...)",
            ));
        };
        let time_index = self.column_index(time, window, "a SESSION time expression")?;
        let time_type = window.input.schema().field(time_index).data_type().clone();
        let gap = gap_in_unit(*gap_ms, &time_type).ok_or_else(|| {
            crate::Error::user(
                "42804",
                format!("SESSION needs a timestamp column, not {time_type}"),
            )
        })?;
        let mut partition = Vec::new();
        for expr in &partition_by {
            partition.push(self.column_index(expr, window, "a SESSION key expression")?);
        }
        let input = self.build(&window.input)?;
        let (position, identity) = self.next_identity("SessionWindow");
        let detail = format!(
            " key=[{}] time={time} gap={gap_ms}ms",
            listed(&partition_by)
        );
        let store = (self.stores)(position)?;
        let width = input.visible + bounds.len();
        let at = input.visible;
        // Watermarks pass through; columns after the inserted bounds move.
        let watermarks: Vec<usize> = input
            .watermarks
            .iter()
            .map(|&c| if c >= at { c + bounds.len() } else { c })
            .collect();
        let operator = SessionWindowOperator::new(
            input.operator,
            partition,
            time_index,
            gap,
            bounds,
            at,
            store,
            identity,
        )?;
        let built = self.node(
            Box::new(operator),
            width,
            detail,
            Some(position),
            vec![input.explain],
        );
        Ok(Self::with_watermarks(built, watermarks))
    }
}
