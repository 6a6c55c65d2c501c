//! DataFusion's optimized `LogicalPlan` of a view's query, turned into the
//! operator graph that maintains it.
//!
//! Every node's output starts with the columns of its logical schema, so
//! DataFusion's expressions evaluate against it unchanged; columns an
//! operator needs to identify rows (stream keys the query did not select)
//! follow as hidden columns. Operators are numbered in the order they are
//! built (inputs first, left to right), so the same SQL always gives the
//! same numbers, and each stateful operator's store is found by its number.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use datafusion::arrow::compute::SortOptions;
use datafusion::arrow::datatypes::{Field, SchemaRef};
use datafusion::common::NullEquality;
use datafusion::common::{DFSchema, ScalarValue};
use datafusion::execution::SessionState;
use datafusion::logical_expr::expr::{AggregateFunction, AggregateFunctionParams};
use datafusion::logical_expr::{
    Expr, FetchType, JoinType, Limit as LimitNode, LogicalPlan, SkipType, Sort, TableScan,
};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::expressions::{Column, Literal};
use tokio::sync::mpsc;
use weir_executor::aggregate::{AggCall, AggKind};
use weir_executor::align::AlignmentMeter;
use weir_executor::checkpoint::settings::show_duration;
use weir_executor::checkpoint::{CheckpointedAligner, CheckpointedSource, SourceProgress};
use weir_executor::message::{Barrier, Subscription};
use weir_executor::operator::{BoxedOperator, Operator, OperatorInfo};
use weir_executor::operators::{
    FilterOperator, GeneratedSourceOperator, HashAggOperator, HashJoinOperator, JoinSide, Limit,
    ProjectOperator, TableSourceOperator, TopNOperator, UnionOperator, ViewSourceOperator,
    WatermarkFilterOperator,
};
use weir_executor::watermark::{WatermarkProgress, carried_column};
use weir_storage::checkpoint::ViewCheckpoint;
use weir_storage::{LogOffset, StateStore, TableStore};

use super::explain::ExplainNode;
use super::row_number::{RowNumberBound, row_number_bound};
use crate::catalog::Catalog;
use crate::watermarks::WatermarkDecl;
use crate::{Error, Result};

/// Opens the state store of the stateful operator with this number.
pub type StoreOpener<'a> = dyn FnMut(u32) -> Result<Arc<dyn StateStore>> + 'a;

/// An operator with what the planner knows of it.
pub struct Built {
    pub operator: BoxedOperator,
    /// Leading columns that the logical plan has.
    pub visible: usize,
    pub explain: ExplainNode,
    /// Output columns that carry a watermark.
    pub watermarks: Vec<usize>,
}

/// A table or source reader being added to the graph.
struct SourceSlot {
    receiver: mpsc::UnboundedReceiver<Barrier>,
    position: u32,
    identity: String,
    resumed: Option<u64>,
    progress: SourceProgress,
}

pub struct GraphBuilder<'a> {
    pub catalog: &'a Catalog,
    pub tables: Arc<TableStore>,
    pub state: &'a SessionState,
    pub view_name: String,
    pub stores: &'a mut StoreOpener<'a>,
    position: u32,
    /// A filter's bound on a row number, on its way down to the window
    /// that computes it (through projections and aliases only).
    row_number_bound: Option<RowNumberBound>,
    /// Barrier channels of the table sources built.
    pub sources: Vec<mpsc::UnboundedSender<Barrier>>,
    /// Subscriptions of the view sources built.
    pub subscriptions: Vec<Subscription>,
    /// Tables and views read.
    pub depends_on: BTreeSet<String>,
    /// Every operator's identity, by number.
    pub identities: BTreeMap<u32, String>,
    /// The table sources built, for checkpoints.
    pub table_sources: Vec<CheckpointedSource>,
    /// The joins and unions built, for the alignment time checkpoints
    /// report.
    pub aligners: Vec<CheckpointedAligner>,
    /// The checkpoint the view resumes from: its sources start at the
    /// offsets it recorded, and views it reads send no rows up front.
    pub restore: Option<&'a ViewCheckpoint>,
    /// `EMIT ON WINDOW CLOSE`: aggregates must close windows.
    pub emit_on_window_close: bool,
    /// `state_ttl`: aggregates expire groups unchanged for that long;
    /// operators that cannot are refused.
    pub state_ttl: Option<Duration>,
    /// Every watermark filter's and window-closing aggregate's report, by
    /// operator identity.
    pub watermark_reports: Vec<(String, WatermarkProgress)>,
}

pub(super) fn unsupported(what: impl std::fmt::Display) -> Error {
    Error::not_supported(format!("{what} is not supported in materialized views"))
}

/// Items as the text of a list: `a, b, c`.
pub(super) fn listed<T: std::fmt::Display>(items: &[T]) -> String {
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// An operator's stream key by column names, as EXPLAIN shows it.
pub fn describe_key(info: &OperatorInfo) -> String {
    let names: Vec<&str> = info
        .stream_key
        .iter()
        .map(|&c| info.schema.field(c).name().as_str())
        .collect();
    format!("[{}]", names.join(", "))
}

impl<'a> GraphBuilder<'a> {
    pub fn new(
        catalog: &'a Catalog,
        tables: Arc<TableStore>,
        state: &'a SessionState,
        view_name: String,
        stores: &'a mut StoreOpener<'a>,
    ) -> Self {
        Self {
            catalog,
            tables,
            state,
            view_name,
            stores,
            position: 0,
            row_number_bound: None,
            sources: Vec::new(),
            subscriptions: Vec::new(),
            depends_on: BTreeSet::new(),
            identities: BTreeMap::new(),
            table_sources: Vec::new(),
            aligners: Vec::new(),
            restore: None,
            emit_on_window_close: false,
            state_ttl: None,
            watermark_reports: Vec::new(),
        }
    }

    /// The next operator number and its identity.
    pub fn next_identity(&mut self, kind: &str) -> (u32, String) {
        self.position += 1;
        let identity = format!("{}.{} {kind}", self.view_name, self.position);
        self.identities.insert(self.position, identity.clone());
        (self.position, identity)
    }

    /// A meter for the barrier alignment of a multi-input operator.
    fn alignment_meter(&mut self, identity: &str) -> AlignmentMeter {
        let meter = AlignmentMeter::default();
        self.aligners.push(CheckpointedAligner {
            identity: identity.to_string(),
            meter: meter.clone(),
        });
        meter
    }

    pub(super) fn expr(&self, expr: &Expr, schema: &DFSchema) -> Result<Arc<dyn PhysicalExpr>> {
        Ok(self.state.create_physical_expr(expr.clone(), schema)?)
    }

    pub(super) fn node(
        &self,
        operator: BoxedOperator,
        visible: usize,
        detail: String,
        state: Option<u32>,
        children: Vec<ExplainNode>,
    ) -> Built {
        let info = operator.info();
        let mut line = format!("{}{detail} key={}", info.identity, describe_key(info));
        if info.append_only {
            line.push_str(" append-only");
        }
        if let Some(position) = state {
            line.push_str(&format!(" state=operator {position}"));
        }
        Built {
            visible,
            explain: ExplainNode { line, children },
            operator,
            watermarks: Vec::new(),
        }
    }

    /// `built`, with watermarks on `columns` (shown by EXPLAIN).
    pub(super) fn with_watermarks(mut built: Built, columns: Vec<usize>) -> Built {
        if !columns.is_empty() {
            let schema = &built.operator.info().schema;
            let names: Vec<&str> = columns
                .iter()
                .map(|&c| schema.field(c).name().as_str())
                .collect();
            built.explain.line += &format!(" watermark=[{}]", names.join(", "));
        }
        built.watermarks = columns;
        built
    }

    /// A report handle for the watermark of the operator `identity`.
    pub(super) fn watermark_report(&mut self, identity: &str) -> WatermarkProgress {
        let progress = WatermarkProgress::default();
        self.watermark_reports
            .push((identity.to_string(), progress.clone()));
        progress
    }

    pub fn build(&mut self, plan: &LogicalPlan) -> Result<Built> {
        let bound = self.row_number_bound.take();
        match plan {
            LogicalPlan::Projection(p) => {
                self.row_number_bound = bound;
                let input = self.build(&p.input)?;
                let mut exprs = Vec::new();
                for (expr, field) in p.expr.iter().zip(p.schema.fields()) {
                    exprs.push((self.expr(expr, p.input.schema())?, field.name().clone()));
                }
                self.project(input, exprs, "Project")
            }
            LogicalPlan::Filter(f) => {
                self.row_number_bound = row_number_bound(&f.predicate).or(bound);
                let input = self.build(&f.input)?;
                let predicate = self.expr(&f.predicate, f.input.schema())?;
                let (_, identity) = self.next_identity("Filter");
                let detail = format!(" {}", f.predicate);
                let visible = input.visible;
                let watermarks = input.watermarks;
                let operator = Box::new(FilterOperator::new(input.operator, predicate, identity));
                let built = self.node(operator, visible, detail, None, vec![input.explain]);
                Ok(Self::with_watermarks(built, watermarks))
            }
            LogicalPlan::SubqueryAlias(s) => {
                self.row_number_bound = bound;
                self.build(&s.input)
            }
            LogicalPlan::TableScan(scan) => self.scan(scan),
            LogicalPlan::Aggregate(a) => {
                if a.group_expr
                    .iter()
                    .any(|e| matches!(e, Expr::GroupingSet(_)))
                {
                    return Err(unsupported("GROUPING SETS, CUBE and ROLLUP"));
                }
                let input = self.build(&a.input)?;
                let in_schema = a.input.schema();
                let mut groups = Vec::new();
                for (expr, field) in a.group_expr.iter().zip(a.schema.fields()) {
                    groups.push((self.expr(expr, in_schema)?, field.name().clone()));
                }
                let mut calls = Vec::new();
                for (i, expr) in a.aggr_expr.iter().enumerate() {
                    let field = a.schema.field(a.group_expr.len() + i).as_ref().clone();
                    calls.push(self.agg_call(expr, in_schema, field)?);
                }
                let (position, identity) = self.next_identity("HashAggregate");
                let detail = format!(
                    " group=[{}] calls=[{}]",
                    listed(&a.group_expr),
                    listed(&a.aggr_expr)
                );
                let store = (self.stores)(position)?;
                let progress = self.watermark_report(&identity);
                let mut operator = HashAggOperator::new(
                    input.operator,
                    groups,
                    calls,
                    Arc::clone(&store),
                    1,
                    identity.clone(),
                )?
                .close_windows(
                    &input.watermarks,
                    self.emit_on_window_close,
                    store,
                    progress,
                )?;
                let window = operator.window_column();
                if window.is_none() {
                    self.watermark_reports.retain(|(i, _)| *i != identity);
                    if self.emit_on_window_close {
                        return Err(Error::not_supported(
                            "EMIT ON WINDOW CLOSE needs every aggregate grouped by a column with a \
                             watermark, such as window_start of TUMBLE or HOP over a table or source \
                             that declares WATERMARK FOR",
                        ));
                    }
                }
                let mut detail = match window {
                    Some(_) if self.emit_on_window_close => detail + " emit=on-window-close",
                    Some(_) => detail + " closes=windows",
                    None => detail,
                };
                if let Some(ttl) = self.state_ttl {
                    operator = operator.expire_after(ttl);
                }
                if let Some(ttl) = operator.state_ttl() {
                    detail += &format!(" ttl={}", show_duration(ttl));
                }
                let visible = a.schema.fields().len();
                let built = self.node(
                    Box::new(operator),
                    visible,
                    detail,
                    Some(position),
                    vec![input.explain],
                );
                Ok(Self::with_watermarks(built, window.into_iter().collect()))
            }
            LogicalPlan::Join(j) => {
                let join_type = match j.join_type {
                    t @ (JoinType::Inner | JoinType::Left | JoinType::Right | JoinType::Full) => t,
                    other => return Err(unsupported(format!("{other} join"))),
                };
                if j.null_equality == NullEquality::NullEqualsNull {
                    return Err(unsupported("joins where NULL equals NULL"));
                }
                if j.on.is_empty() {
                    self.no_state_ttl("joins without an equality")?;
                }
                let left = self.build(&j.left)?;
                let right = self.build(&j.right)?;
                let mut left_keys = Vec::new();
                let mut right_keys = Vec::new();
                for (l, r) in &j.on {
                    left_keys.push(self.expr(l, j.left.schema())?);
                    right_keys.push(self.expr(r, j.right.schema())?);
                }
                let filter = match &j.filter {
                    Some(filter) => Some(self.expr(filter, &j.schema)?),
                    None => None,
                };
                let (position, identity) = self.next_identity("HashJoin");
                let mut detail = format!(
                    " {join_type} on=[{}]{}",
                    j.on.iter()
                        .map(|(l, r)| format!("{l} = {r}"))
                        .collect::<Vec<_>>()
                        .join(", "),
                    j.filter
                        .as_ref()
                        .map(|f| format!(" filter={f}"))
                        .unwrap_or_default()
                );
                let store = (self.stores)(position)?;
                let meter = self.alignment_meter(&identity);
                let visible = left.visible + right.visible;
                let explain = vec![left.explain, right.explain];
                let (left_watermarks, right_watermarks) = (left.watermarks, right.watermarks);
                let left_visible = left.visible;
                let operator = HashJoinOperator::new(
                    JoinSide {
                        input: left.operator,
                        keys: left_keys,
                        visible: left.visible,
                    },
                    JoinSide {
                        input: right.operator,
                        keys: right_keys,
                        visible: right.visible,
                    },
                    join_type,
                    filter,
                    store,
                    1,
                    identity,
                )?
                .with_alignment_meter(meter);
                let band = super::time_band::time_band(
                    &j.on,
                    j.filter.as_ref(),
                    j.left.schema(),
                    j.right.schema(),
                );
                let operator = match band {
                    Some(band) => {
                        detail += &format!(" band=[{}, {}]", band.lower, band.upper);
                        operator.with_time_band(band)
                    }
                    None => operator,
                };
                let operator = match self.state_ttl {
                    Some(ttl) => {
                        detail += &format!(" ttl={}", show_duration(ttl));
                        operator.expire_after(ttl)
                    }
                    None => operator,
                };
                if self.emit_on_window_close && !operator.info().append_only {
                    return Err(Error::not_supported(
                        "EMIT ON WINDOW CLOSE joins only rows that never change: an inner join of \
                         sources, append-only tables or windowed aggregates that emit on close",
                    ));
                }
                // The band's time columns carry watermarks on when both
                // inputs' do (see the hash join).
                let watermarks = match band {
                    Some(band)
                        if left_watermarks.contains(&band.left)
                            && right_watermarks.contains(&band.right) =>
                    {
                        vec![band.left, left_visible + band.right]
                    }
                    _ => Vec::new(),
                };
                let built = self.node(Box::new(operator), visible, detail, Some(position), explain);
                Ok(Self::with_watermarks(built, watermarks))
            }
            LogicalPlan::Limit(limit) => {
                let LogicalPlan::Sort(sort) = limit.input.as_ref() else {
                    return Err(unsupported("LIMIT without ORDER BY"));
                };
                self.top_n(sort, Some(limit))
            }
            LogicalPlan::Sort(sort) if sort.fetch.is_some() => self.top_n(sort, None),
            // A view is a set: an ORDER BY without LIMIT orders nothing.
            LogicalPlan::Sort(sort) => self.build(&sort.input),
            LogicalPlan::Union(u) => self.union(u),
            LogicalPlan::Distinct(_) => Err(unsupported("DISTINCT ON")),
            LogicalPlan::Window(w) => self.window(w, bound),
            LogicalPlan::Values(_) | LogicalPlan::EmptyRelation(_) => {
                Err(unsupported("a query without a table"))
            }
            other => Err(unsupported(format!("{} nodes", other.display()))),
        }
    }

    /// A project to `exprs`, keeping the input's stream key (hidden when
    /// not selected).
    fn project(
        &mut self,
        input: Built,
        mut exprs: Vec<(Arc<dyn PhysicalExpr>, String)>,
        kind: &str,
    ) -> Result<Built> {
        let visible = exprs.len();
        let info = input.operator.info().clone();
        let watermarks: Vec<usize> = exprs
            .iter()
            .enumerate()
            .filter(|(_, (e, _))| carried_column(e, &info.schema, &input.watermarks).is_some())
            .map(|(c, _)| c)
            .collect();
        for &key in &info.stream_key {
            let selected = exprs
                .iter()
                .any(|(e, _)| e.downcast_ref::<Column>().is_some_and(|c| c.index() == key));
            if !selected {
                let name = info.schema.field(key).name().clone();
                exprs.push((Arc::new(Column::new(&name, key)), format!("_{name}")));
            }
        }
        let (_, identity) = self.next_identity(kind);
        let detail = format!(
            " [{}]",
            exprs
                .iter()
                .map(|(e, n)| format!("{e} AS {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let operator = ProjectOperator::new(input.operator, exprs, identity)?;
        let built = self.node(
            Box::new(operator),
            visible,
            detail,
            None,
            vec![input.explain],
        );
        Ok(Self::with_watermarks(built, watermarks))
    }

    /// A new reader of a table or source: its barrier channel, its place
    /// in the graph and, when restored, the offset its checkpoint recorded.
    fn source_slot(&mut self, kind: &str) -> SourceSlot {
        let (sender, receiver) = mpsc::unbounded_channel();
        self.sources.push(sender);
        let (position, identity) = self.next_identity(kind);
        SourceSlot {
            receiver,
            position,
            identity,
            resumed: self
                .restore
                .and_then(|r| r.source(position))
                .map(|r| r.offset),
            progress: SourceProgress::default(),
        }
    }

    /// Adds a reader's operator to the graph; checkpoints record how far it
    /// has read `name` (catalog id `id`).
    fn source_node(
        &mut self,
        name: &str,
        id: u64,
        position: u32,
        progress: SourceProgress,
        operator: BoxedOperator,
        visible: usize,
    ) -> Built {
        self.table_sources.push(CheckpointedSource {
            position,
            name: name.to_string(),
            table: id,
            progress,
        });
        self.node(operator, visible, format!(" {name}"), None, Vec::new())
    }

    fn scan(&mut self, scan: &TableScan) -> Result<Built> {
        let name = scan.table_name.table().to_string();
        self.depends_on.insert(name.clone());
        let source = if let Some(table) = self.catalog.table(&name) {
            let slot = self.source_slot("TableSource");
            let tables = Arc::clone(&self.tables);
            let (receiver, identity) = (slot.receiver, slot.identity);
            let operator = match slot.resumed {
                Some(offset) => TableSourceOperator::new(
                    tables,
                    table.layout.id,
                    LogOffset(offset),
                    receiver,
                    identity,
                )?,
                None => {
                    TableSourceOperator::from_snapshot(tables, table.layout.id, receiver, identity)?
                }
            }
            .with_progress(slot.progress.clone(), slot.resumed.is_some());
            let visible = table.layout.schema.fields().len();
            self.source_node(
                &name,
                table.layout.id.0,
                slot.position,
                slot.progress,
                Box::new(operator),
                visible,
            )
        } else if let Some(relation) = self.catalog.source_relation(&name) {
            let slot = self.source_slot(relation.rows.operator_name());
            let operator = GeneratedSourceOperator::new(
                Arc::clone(&relation.rows),
                slot.resumed.unwrap_or(0),
                slot.receiver,
                slot.identity,
            )
            .with_progress(slot.progress.clone(), slot.resumed.is_some())
            .with_pause(relation.paused.clone());
            let visible = relation.rows.schema().fields().len();
            self.source_node(
                &name,
                relation.source,
                slot.position,
                slot.progress,
                Box::new(operator),
                visible,
            )
        } else if let Some(view) = self.catalog.view(&name) {
            let (sender, receiver) = mpsc::channel(16);
            self.subscriptions.push(Subscription {
                view: view.id,
                sender,
                backfill: self.restore.is_none(),
            });
            let (_, identity) = self.next_identity("ViewSource");
            let info = OperatorInfo {
                identity,
                ..view.stored.clone()
            };
            let operator = ViewSourceOperator::new(info, receiver);
            let visible = view.schema.fields().len();
            self.node(
                Box::new(operator),
                visible,
                format!(" {name}"),
                None,
                Vec::new(),
            )
        } else {
            return Err(Error::user(
                "42P01",
                format!("relation \"{name}\" does not exist"),
            ));
        };
        let source_schema =
            DFSchema::try_from_qualified_schema(scan.table_name.clone(), &scan.source.schema())?;
        let watermark = match self.catalog.table(&name) {
            Some(table) => table.watermark().cloned(),
            None => self
                .catalog
                .source_relation(&name)
                .and_then(|r| r.watermark.clone()),
        };
        let mut built = match watermark {
            Some(watermark) => self.watermark_filter(source, &watermark, &scan.source.schema())?,
            None => source,
        };
        if let Some(predicate) = scan.filters.iter().cloned().reduce(|a, b| a.and(b)) {
            let predicate_expr = self.expr(&predicate, &source_schema)?;
            let (_, identity) = self.next_identity("Filter");
            let visible = built.visible;
            let operator = Box::new(FilterOperator::new(
                built.operator,
                predicate_expr,
                identity,
            ));
            built = self.node(
                operator,
                visible,
                format!(" {predicate}"),
                None,
                vec![built.explain],
            );
        }
        if let Some(projection) = &scan.projection {
            let schema = Arc::clone(&built.operator.info().schema);
            let exprs = projection
                .iter()
                .map(|&i| {
                    let name = schema.field(i).name().clone();
                    (
                        Arc::new(Column::new(&name, i)) as Arc<dyn PhysicalExpr>,
                        name,
                    )
                })
                .collect();
            built = self.project(built, exprs, "Project")?;
        }
        Ok(built)
    }

    /// Derives `watermark` from the rows of `source` (whose leading
    /// columns are `schema`) and drops its late rows.
    fn watermark_filter(
        &mut self,
        source: Built,
        watermark: &WatermarkDecl,
        schema: &SchemaRef,
    ) -> Result<Built> {
        let (column, expr) = watermark.plan(self.state, schema)?;
        let (position, identity) = self.next_identity("WatermarkFilter");
        let store = (self.stores)(position)?;
        let progress = self.watermark_report(&identity);
        let visible = source.visible;
        let operator =
            WatermarkFilterOperator::new(source.operator, column, expr, store, progress, identity)?;
        let built = self.node(
            Box::new(operator),
            visible,
            format!(" {}", watermark.expr),
            Some(position),
            vec![source.explain],
        );
        Ok(Self::with_watermarks(built, vec![column]))
    }

    fn agg_call(&self, expr: &Expr, input: &DFSchema, output: Field) -> Result<AggCall> {
        let expr = match expr {
            Expr::Alias(alias) => alias.expr.as_ref(),
            other => other,
        };
        let Expr::AggregateFunction(AggregateFunction {
            func,
            params:
                AggregateFunctionParams {
                    args,
                    distinct,
                    filter,
                    order_by,
                    ..
                },
        }) = expr
        else {
            return Err(unsupported(format!("aggregate {expr}")));
        };
        let name = func.name().to_lowercase();
        let mut kind = AggKind::from_name(&name)
            .ok_or_else(|| unsupported(format!("aggregate function {name}")))?;
        if !order_by.is_empty() {
            return Err(unsupported(format!("{name}(... ORDER BY ...)")));
        }
        if let AggKind::StringAgg { delimiter } = &mut kind {
            match args.get(1) {
                Some(Expr::Literal(
                    ScalarValue::Utf8(Some(d))
                    | ScalarValue::LargeUtf8(Some(d))
                    | ScalarValue::Utf8View(Some(d)),
                    _,
                )) => *delimiter = d.clone(),
                Some(Expr::Literal(value, _)) if value.is_null() => {}
                _ => return Err(unsupported("string_agg with a non-constant delimiter")),
            }
        }
        let arg = match args.first() {
            Some(arg) => {
                let arg = self.expr(arg, input)?;
                // count(*) counts rows: a constant argument that is never NULL.
                let constant = arg
                    .downcast_ref::<Literal>()
                    .is_some_and(|l| !l.value().is_null());
                (!(constant && kind == AggKind::Count)).then_some(arg)
            }
            None => None,
        };
        let filter = match filter {
            Some(filter) => Some(self.expr(filter, input)?),
            None => None,
        };
        Ok(AggCall {
            kind,
            arg,
            distinct: *distinct,
            filter,
            output,
        })
    }

    /// Refuses `what` under `state_ttl`, whose state it cannot expire.
    pub(super) fn no_state_ttl(&self, what: &str) -> Result<()> {
        if self.state_ttl.is_none() {
            return Ok(());
        }
        Err(Error::not_supported(format!(
            "state_ttl expires the state of aggregates, joins and ROW_NUMBER() top-N only; {what} cannot expire theirs yet"
        )))
    }

    fn top_n(&mut self, sort: &Sort, limit: Option<&LimitNode>) -> Result<Built> {
        if self.emit_on_window_close {
            return Err(Error::not_supported(
                "EMIT ON WINDOW CLOSE is not supported for ORDER BY ... LIMIT yet",
            ));
        }
        self.no_state_ttl("ORDER BY ... LIMIT (use ROW_NUMBER() OVER (PARTITION BY ...))")?;
        let (offset, fetch) = match limit {
            Some(limit) => {
                let offset = match limit.get_skip_type()? {
                    SkipType::Literal(n) => n,
                    SkipType::UnsupportedExpr => return Err(unsupported("a non-constant OFFSET")),
                };
                let fetch = match limit.get_fetch_type()? {
                    FetchType::Literal(n) => n,
                    FetchType::UnsupportedExpr => return Err(unsupported("a non-constant LIMIT")),
                };
                (
                    offset,
                    fetch.or(sort.fetch.map(|f| f.saturating_sub(offset))),
                )
            }
            None => (0, sort.fetch),
        };
        let Some(fetch) = fetch else {
            return self.build(&sort.input);
        };
        let input = self.build(&sort.input)?;
        let mut order = Vec::new();
        for sort_expr in &sort.expr {
            let expr = self.expr(&sort_expr.expr, sort.input.schema())?;
            let column = expr.downcast_ref::<Column>().ok_or_else(|| {
                unsupported("ORDER BY an expression with LIMIT (order by a selected column)")
            })?;
            order.push((
                column.index(),
                SortOptions {
                    descending: !sort_expr.asc,
                    nulls_first: sort_expr.nulls_first,
                },
            ));
        }
        let (position, identity) = self.next_identity("TopN");
        let detail = format!(
            " order=[{}] offset={offset} limit={fetch}",
            listed(&sort.expr)
        );
        let store = (self.stores)(position)?;
        let visible = input.visible;
        let operator = TopNOperator::new(
            input.operator,
            Vec::new(),
            order,
            Limit { offset, fetch },
            store,
            1,
            identity,
        )?;
        Ok(self.node(
            Box::new(operator),
            visible,
            detail,
            Some(position),
            vec![input.explain],
        ))
    }

    /// `UNION ALL`: each branch gets its branch number and a slot per
    /// branch for its stream key, so keys stay unique across branches.
    fn union(&mut self, union: &datafusion::logical_expr::Union) -> Result<Built> {
        let branches = union
            .inputs
            .iter()
            .map(|input| self.build(input))
            .collect::<Result<Vec<_>>>()?;
        let visible = union.schema.fields().len();
        let keys: Vec<Vec<(usize, Field)>> = branches
            .iter()
            .map(|b| {
                let info = b.operator.info();
                info.stream_key
                    .iter()
                    .map(|&k| (k, info.schema.field(k).clone()))
                    .collect()
            })
            .collect();
        let mut inputs = Vec::new();
        let mut explain = Vec::new();
        let mut watermarks: Option<Vec<usize>> = None;
        for (index, branch) in branches.into_iter().enumerate() {
            let schema = Arc::clone(&branch.operator.info().schema);
            let mut exprs: Vec<(Arc<dyn PhysicalExpr>, String)> = (0..visible)
                .map(|c| {
                    let name = union.schema.field(c).name().clone();
                    (
                        Arc::new(Column::new(schema.field(c).name(), c)) as Arc<dyn PhysicalExpr>,
                        name,
                    )
                })
                .collect();
            exprs.push((
                Arc::new(Literal::new(ScalarValue::Int32(Some(index as i32)))),
                "_branch".into(),
            ));
            for (slot_branch, slot_keys) in keys.iter().enumerate() {
                for (k, (column, field)) in slot_keys.iter().enumerate() {
                    let name = format!("_key_{slot_branch}_{k}");
                    let expr: Arc<dyn PhysicalExpr> = if slot_branch == index {
                        Arc::new(Column::new(field.name(), *column))
                    } else {
                        Arc::new(Literal::new(ScalarValue::try_from(field.data_type())?))
                    };
                    exprs.push((expr, name));
                }
            }
            let projected = self.project(branch, exprs, "Project")?;
            let carried = projected.watermarks.iter().filter(|&&c| c < visible);
            watermarks = Some(match watermarks {
                None => carried.copied().collect(),
                Some(all) => all
                    .into_iter()
                    .filter(|c| carried.clone().any(|d| d == c))
                    .collect(),
            });
            explain.push(projected.explain);
            inputs.push(projected.operator);
        }
        let width = inputs[0].info().schema.fields().len();
        let (_, identity) = self.next_identity("Union");
        let meter = self.alignment_meter(&identity);
        let operator = UnionOperator::new(inputs, (visible..width).collect(), identity)?
            .with_alignment_meter(meter);
        let built = self.node(Box::new(operator), visible, String::new(), None, explain);
        Ok(Self::with_watermarks(built, watermarks.unwrap_or_default()))
    }
}
