//! What a session's role may run, checked once a statement is prepared
//! and before it runs (42501 otherwise), as PostgreSQL does:
//!
//! - superusers may do anything;
//! - a query needs SELECT on every table, view and source it reads;
//!   INSERT, UPDATE and DELETE need their privilege on the table written
//!   (and SELECT on any other relation they read); COPY FROM needs INSERT;
//! - dropping or pausing a relation needs its ownership; creating a view
//!   needs SELECT on what it reads, and its creator owns it;
//! - database settings, CHECKPOINT, savepoints, restarting views and
//!   sources that read files or object storage are for superusers only.
//!
//! System relations (`pg_catalog`, `information_schema`, `weir_catalog`)
//! are readable by every role.

use std::collections::BTreeSet;

use datafusion::common::TableReference;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::execution::context::SessionContext;
use datafusion::logical_expr::{DmlStatement, LogicalPlan, WriteOp};

use super::{Database, Prepared};
use crate::Result;
use crate::catalog::Access;
use crate::roles::{Privilege, SYSTEM_SCHEMAS, permission_denied, session_role};

impl Database {
    /// Refuses `prepared` if the session's role may not run it.
    pub(super) fn authorize(&self, ctx: &SessionContext, prepared: &Prepared) -> Result<()> {
        let role = session_role(ctx);
        let access = self.catalog.access();
        if access.is_superuser(&role) {
            return Ok(());
        }
        let superuser_only =
            |what: &str| Err(permission_denied(format!("must be superuser to {what}")));
        let owned = |kind: &str, names: &[String]| {
            for name in names {
                if self.catalog.relation_exists(name) && !access.may_own(&role, name) {
                    return Err(permission_denied(format!("must be owner of {kind} {name}")));
                }
            }
            Ok(())
        };
        match prepared {
            Prepared::Plan(plan) | Prepared::CopyOut { plan, .. } => {
                check_plan(&access, &role, plan)
            }
            Prepared::Truncate(targets) => targets
                .iter()
                .try_for_each(|target| check_plan(&access, &role, target.plan())),
            Prepared::CreateView(spec) => check_plan(&access, &role, &spec.plan),
            Prepared::CreatePlainView(spec) => check_plan(&access, &role, &spec.plan),
            Prepared::DropPlainViews { names, .. } => owned("view", names),
            Prepared::CopyIn(copy) => need(&access, &role, &copy.table, Privilege::Insert),
            Prepared::CreateSource {
                reads_storage: true,
                ..
            } => superuser_only("create a source that reads files or object storage"),
            Prepared::DropTable { names, .. } => owned("table", names),
            Prepared::DropSources { names, .. } => owned("source", names),
            Prepared::DropViews { names, .. } => owned("materialized view", names),
            Prepared::AlterSource { name, .. } => owned("source", std::slice::from_ref(name)),
            Prepared::ResumeView(_) => superuser_only("restart materialized views"),
            Prepared::Checkpoint => superuser_only("do CHECKPOINT"),
            Prepared::CreateSavepoint { .. } => superuser_only("create a savepoint"),
            Prepared::RestoreSavepoint(_) => superuser_only("restore a savepoint"),
            Prepared::DropSavepoint { .. } => superuser_only("drop a savepoint"),
            Prepared::SetDatabase { name, .. } => Err(permission_denied(format!(
                "permission denied to set parameter \"{name}\""
            ))),
            // Checked as they were prepared (roles.rs).
            Prepared::Access { .. } => Ok(()),
            Prepared::CreateTable { .. }
            | Prepared::CreateSource { .. }
            | Prepared::ExplainView(_)
            | Prepared::Flush
            | Prepared::ShowDatabase(_)
            | Prepared::ShowCreate { .. }
            | Prepared::Lock { .. }
            | Prepared::Maintenance { .. }
            | Prepared::Session(_) => Ok(()),
        }
    }
}

fn need(access: &Access, role: &str, relation: &str, privilege: Privilege) -> Result<()> {
    if access.allows(role, relation, privilege) {
        return Ok(());
    }
    Err(permission_denied(format!(
        "permission denied for relation {relation}: {} is not granted",
        privilege.name()
    )))
}

/// SELECT on every user relation `plan` reads (subqueries too), and the
/// write's privilege on the table it writes.
fn check_plan(access: &Access, role: &str, plan: &LogicalPlan) -> Result<()> {
    let mut read = BTreeSet::new();
    let mut written = None;
    plan.apply_with_subqueries(|node| {
        match node {
            LogicalPlan::TableScan(scan) => {
                if let Some(name) = user_relation(&scan.table_name) {
                    read.insert(name);
                }
            }
            LogicalPlan::Dml(DmlStatement { table_name, op, .. }) => {
                let privilege = match op {
                    WriteOp::Insert(_) => Privilege::Insert,
                    WriteOp::Update => Privilege::Update,
                    // TRUNCATE, and whatever else empties a table.
                    _ => Privilege::Delete,
                };
                written = user_relation(table_name).map(|t| (t, privilege));
            }
            _ => {}
        }
        Ok(TreeNodeRecursion::Continue)
    })?;
    if let Some((table, privilege)) = &written {
        need(access, role, table, *privilege)?;
        // UPDATE and DELETE read the rows they change.
        read.remove(table);
    }
    for relation in read {
        need(access, role, &relation, Privilege::Select)?;
    }
    Ok(())
}

/// The name of a relation in `public`; `None` for the system schemas.
fn user_relation(table: &TableReference) -> Option<String> {
    match table.schema() {
        Some(schema) if SYSTEM_SCHEMAS.contains(&schema) => None,
        _ => Some(table.table().to_string()),
    }
}
