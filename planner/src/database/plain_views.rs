//! `CREATE [OR REPLACE] VIEW` and `DROP VIEW`: plain views, planned from
//! their statement each time the server starts ([`crate::catalog`] keeps
//! them). A query that reads one plans the view's query in its place.

use std::collections::BTreeSet;
use std::ops::ControlFlow;
use std::sync::Arc;

use datafusion::catalog::TableProvider;
use datafusion::catalog::view::ViewTable;
use datafusion::execution::context::SessionContext;
use datafusion::logical_expr::LogicalPlan;
use datafusion::sql::parser::Statement as DFStatement;
use datafusion::sql::sqlparser::ast::{CreateView, Statement, visit_relations};

use super::{Database, Prepared};
use crate::ddl::table_name;
use crate::roles::session_role;
use crate::{Error, Result};

/// A plain view, planned and ready to store.
#[derive(Debug, Clone)]
pub struct PlainViewSpec {
    pub name: String,
    pub sql: String,
    pub plan: LogicalPlan,
    pub depends_on: Vec<String>,
    pub replace: bool,
    pub if_not_exists: bool,
}

impl Database {
    pub(super) async fn prepare_plain_view(
        &self,
        ctx: &SessionContext,
        create: &CreateView,
        statement: &Statement,
    ) -> Result<Prepared> {
        if !create.columns.is_empty() {
            return Err(Error::not_supported(
                "column names after the view name are not supported; alias the query's columns",
            ));
        }
        if create.temporary {
            return Err(Error::not_supported("temporary views are not supported"));
        }
        let name = table_name(&create.name)?;
        let plan = plan_query(ctx, &Statement::Query(create.query.clone())).await?;
        let mut depends_on = BTreeSet::new();
        let _ = visit_relations(statement, |relation| {
            if let Ok(name) = table_name(relation) {
                depends_on.insert(name);
            }
            ControlFlow::<()>::Continue(())
        });
        depends_on.remove(&name);
        Ok(Prepared::CreatePlainView(Box::new(PlainViewSpec {
            name,
            sql: statement.to_string(),
            plan,
            depends_on: depends_on.into_iter().collect(),
            replace: create.or_replace,
            if_not_exists: create.if_not_exists,
        })))
    }

    /// Refuses a materialized view that reads a plain view: materialized
    /// views start before plain views are planned again at start.
    pub(super) fn no_plain_views_read(&self, statement: &Statement) -> Result<()> {
        let read = visit_relations(statement, |relation| match table_name(relation) {
            Ok(name) if self.catalog.plain_view(&name).is_some() => ControlFlow::Break(name),
            _ => ControlFlow::Continue(()),
        });
        match read {
            ControlFlow::Break(name) => Err(Error::not_supported(format!(
                "a materialized view cannot read the plain view \"{name}\" yet: write its query in place"
            ))),
            ControlFlow::Continue(()) => Ok(()),
        }
    }

    pub(super) async fn create_plain_view(
        &self,
        ctx: &SessionContext,
        spec: PlainViewSpec,
    ) -> Result<()> {
        if spec.if_not_exists && self.catalog.relation_exists(&spec.name) {
            return Ok(());
        }
        let provider = provider(spec.plan, &spec.sql);
        self.catalog
            .create_plain_view(
                &spec.name,
                spec.sql,
                spec.depends_on,
                provider,
                &session_role(ctx),
                spec.replace,
            )
            .await
    }

    /// Plans every stored plain view, oldest first, once the relations
    /// they read exist. One that no longer plans is logged and stays
    /// unreadable, so the rest of the database still starts.
    pub(super) async fn plan_plain_views(&self, ctx: &SessionContext) {
        for record in self.catalog.plain_view_records() {
            let planned = async {
                let statement = self
                    .parser
                    .parse(&record.sql)?
                    .into_iter()
                    .next()
                    .map(|p| p.statement);
                let Some(Statement::CreateView(create)) = statement else {
                    return Err(Error::Internal(format!(
                        "stored definition of view {} is not CREATE VIEW",
                        record.name
                    )));
                };
                plan_query(ctx, &Statement::Query(create.query)).await
            };
            match planned.await {
                Ok(plan) => self
                    .catalog
                    .attach_plain_view(&record.name, provider(plan, &record.sql)),
                Err(e) => {
                    tracing::error!(view = %record.name, error = %e, "view cannot be planned")
                }
            }
        }
    }
}

fn provider(plan: LogicalPlan, sql: &str) -> Arc<dyn TableProvider> {
    Arc::new(ViewTable::new(plan, Some(sql.to_string())))
}

async fn plan_query(ctx: &SessionContext, query: &Statement) -> Result<LogicalPlan> {
    Ok(ctx
        .state()
        .statement_to_plan(DFStatement::Statement(Box::new(query.clone())))
        .await?)
}
