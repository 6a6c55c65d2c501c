//! A subscript of text, `typname[0]`: PostgreSQL's `name` is an array of
//! characters counted from 0, and catalog queries read its first one
//! (`pg_dump` asks whether a type's name starts with `_`). weir's names are
//! text, which DataFusion does not subscript, so `s[i]` over text is
//! planned as `substr(s, i + 1, 1)`. This planner goes before DataFusion's
//! own, which takes every subscript for an array's.

use datafusion::arrow::datatypes::DataType;
use datafusion::common::{DFSchema, Result};
use datafusion::functions::unicode::expr_fn::substring;
use datafusion::logical_expr::planner::{ExprPlanner, PlannerResult, RawFieldAccessExpr};
use datafusion::logical_expr::{ExprSchemable, GetFieldAccess, lit};

#[derive(Debug, Default)]
pub struct NameSubscripts;

impl ExprPlanner for NameSubscripts {
    fn plan_field_access(
        &self,
        access: RawFieldAccessExpr,
        schema: &DFSchema,
    ) -> Result<PlannerResult<RawFieldAccessExpr>> {
        let is_text = matches!(
            access.expr.get_type(schema),
            Ok(DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8)
        );
        match access.field_access {
            GetFieldAccess::ListIndex { key } if is_text => {
                let from = (*key).cast_to(&DataType::Int64, schema)? + lit(1i64);
                Ok(PlannerResult::Planned(substring(
                    access.expr,
                    from,
                    lit(1i64),
                )))
            }
            field_access => Ok(PlannerResult::Original(RawFieldAccessExpr {
                field_access,
                expr: access.expr,
            })),
        }
    }
}
