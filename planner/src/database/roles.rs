//! `CREATE ROLE`, `ALTER ROLE`, `DROP ROLE`, `GRANT` and `REVOKE`, checked
//! and turned into catalog changes. Roles are a superuser's to manage; a
//! role may change its own password; a relation's owner grants on it.

use std::collections::BTreeSet;

use datafusion::execution::context::SessionContext;
use datafusion::sql::sqlparser::ast::{
    Action, AlterRoleOperation, CreateRole, Expr, GrantObjects, Grantee, GranteeName, GranteesType,
    ObjectName, ObjectType, Password, Privileges, RoleOption, Statement, Value,
};

use super::{Database, Prepared};
use crate::catalog::{AccessChange, PrivilegeChange};
use crate::ddl::table_name;
use crate::roles::{Privilege, RoleAttributes, ScramSecret, permission_denied, session_role};
use crate::{Error, Result};

/// Whether `statement` is one of this module's.
pub(super) fn is_access_statement(statement: &Statement) -> bool {
    matches!(
        statement,
        Statement::CreateRole(_)
            | Statement::AlterRole { .. }
            | Statement::Grant(_)
            | Statement::Revoke(_)
            | Statement::Drop {
                object_type: ObjectType::Role,
                ..
            }
    )
}

impl Database {
    pub(super) fn prepare_access(
        &self,
        ctx: &SessionContext,
        statement: &Statement,
    ) -> Result<Prepared> {
        let role = session_role(ctx);
        let access = self.catalog.access();
        let superuser = access.is_superuser(&role);
        let (tag, changes) = match statement {
            Statement::CreateRole(create) => {
                if !superuser {
                    return Err(permission_denied("permission denied to create role"));
                }
                let attributes = create_attributes(create)?;
                let changes = create
                    .names
                    .iter()
                    .map(|name| {
                        Ok(AccessChange::CreateRole {
                            name: role_name(name)?,
                            attributes: attributes.clone(),
                        })
                    })
                    .collect::<Result<_>>()?;
                ("CREATE ROLE", changes)
            }
            Statement::AlterRole { name, operation } => {
                let AlterRoleOperation::WithOptions { options } = operation else {
                    return Err(Error::not_supported(format!("ALTER ROLE {operation}")));
                };
                let attributes = attributes(options)?;
                let name = name.value.clone();
                let own_password = name == role && attributes.only_password();
                if !(superuser || own_password) {
                    return Err(permission_denied(format!(
                        "permission denied to alter role \"{name}\": only a superuser may, or the role itself for its password"
                    )));
                }
                (
                    "ALTER ROLE",
                    vec![AccessChange::AlterRole { name, attributes }],
                )
            }
            Statement::Drop {
                names, if_exists, ..
            } => {
                if !superuser {
                    return Err(permission_denied("permission denied to drop role"));
                }
                let mut changes = Vec::new();
                for name in names {
                    let name = role_name(name)?;
                    if name == role {
                        return Err(Error::user("55006", "current user cannot be dropped"));
                    }
                    if access.role(&name).is_some() || !*if_exists {
                        changes.push(AccessChange::DropRole(name));
                    }
                }
                ("DROP ROLE", changes)
            }
            Statement::Grant(grant) => {
                if grant.with_grant_option {
                    return Err(Error::not_supported("WITH GRANT OPTION is not supported"));
                }
                let change = self.privilege_change(
                    &role,
                    &grant.privileges,
                    grant.objects.as_ref(),
                    &grant.grantees,
                )?;
                ("GRANT", vec![AccessChange::Grant(change)])
            }
            Statement::Revoke(revoke) => {
                let change = self.privilege_change(
                    &role,
                    &revoke.privileges,
                    revoke.objects.as_ref(),
                    &revoke.grantees,
                )?;
                ("REVOKE", vec![AccessChange::Revoke(change)])
            }
            other => {
                return Err(Error::Internal(format!(
                    "not a role or grant statement: {other}"
                )));
            }
        };
        Ok(Prepared::Access { tag, changes })
    }

    /// What a GRANT or REVOKE by `role` changes; only a relation's owner
    /// (or a superuser) grants on it.
    fn privilege_change(
        &self,
        role: &str,
        privileges: &Privileges,
        objects: Option<&GrantObjects>,
        grantees: &[Grantee],
    ) -> Result<PrivilegeChange> {
        let privileges = match privileges {
            Privileges::All { .. } => Privilege::ALL.into_iter().collect(),
            Privileges::Actions(actions) => actions
                .iter()
                .map(privilege)
                .collect::<Result<BTreeSet<_>>>()?,
        };
        let names = match objects {
            Some(GrantObjects::Tables(names)) | Some(GrantObjects::Views(names)) => names,
            _ => {
                return Err(Error::not_supported(
                    "GRANT and REVOKE apply to tables, views and sources: ON [TABLE] name, ...",
                ));
            }
        };
        let mut relations = Vec::new();
        for name in names {
            let name = table_name(name)?;
            if !self.catalog.relation_exists(&name) {
                return Err(Error::user(
                    "42P01",
                    format!("relation \"{name}\" does not exist"),
                ));
            }
            relations.push(name);
        }
        let roles = grantees
            .iter()
            .map(|grantee| match (&grantee.grantee_type, &grantee.name) {
                (
                    GranteesType::None | GranteesType::Role | GranteesType::User,
                    Some(GranteeName::ObjectName(name)),
                ) => role_name(name),
                _ => Err(Error::not_supported(format!(
                    "grants to {grantee} are not supported: name a role"
                ))),
            })
            .collect::<Result<_>>()?;
        let access = self.catalog.access();
        if let Some(relation) = relations.iter().find(|r| !access.may_own(role, r)) {
            return Err(permission_denied(format!(
                "must be owner of relation {relation} to grant or revoke on it"
            )));
        }
        Ok(PrivilegeChange {
            relations,
            roles,
            privileges,
        })
    }
}

fn privilege(action: &Action) -> Result<Privilege> {
    let no_columns = |columns: &Option<Vec<_>>, privilege| match columns {
        None => Ok(privilege),
        Some(_) => Err(Error::not_supported(
            "column privileges are not supported: grant on the whole relation",
        )),
    };
    match action {
        Action::Select { columns } => no_columns(columns, Privilege::Select),
        Action::Insert { columns } => no_columns(columns, Privilege::Insert),
        Action::Update { columns } => no_columns(columns, Privilege::Update),
        Action::Delete => Ok(Privilege::Delete),
        other => Err(Error::not_supported(format!(
            "privilege {other} is not supported: SELECT, INSERT, UPDATE, DELETE or ALL"
        ))),
    }
}

fn role_name(name: &ObjectName) -> Result<String> {
    match name.0.as_slice() {
        [part] => part
            .as_ident()
            .map(|ident| ident.value.clone())
            .ok_or_else(|| Error::user("42601", format!("invalid role name {name}"))),
        _ => Err(Error::user("42601", format!("invalid role name {name}"))),
    }
}

/// The attributes of a `CREATE ROLE`; the options weir has no use for are
/// refused, not ignored.
fn create_attributes(create: &CreateRole) -> Result<RoleAttributes> {
    let unsupported = [
        ("CREATEDB", create.create_db == Some(true)),
        ("CREATEROLE", create.create_role == Some(true)),
        ("REPLICATION", create.replication == Some(true)),
        ("BYPASSRLS", create.bypassrls == Some(true)),
        ("VALID UNTIL", create.valid_until.is_some()),
        (
            "IN ROLE / ROLE / ADMIN",
            !(create.in_role.is_empty()
                && create.in_group.is_empty()
                && create.role.is_empty()
                && create.user.is_empty()
                && create.admin.is_empty()),
        ),
    ];
    if let Some((option, _)) = unsupported.iter().find(|(_, set)| *set) {
        return Err(Error::not_supported(format!(
            "role option {option} is not supported"
        )));
    }
    Ok(RoleAttributes {
        superuser: create.superuser,
        login: create.login,
        password: create.password.as_ref().map(secret).transpose()?,
        connection_limit: create
            .connection_limit
            .as_ref()
            .map(connection_limit)
            .transpose()?,
    })
}

fn attributes(options: &[RoleOption]) -> Result<RoleAttributes> {
    let mut attributes = RoleAttributes::default();
    for option in options {
        match option {
            RoleOption::SuperUser(on) => attributes.superuser = Some(*on),
            RoleOption::Login(on) => attributes.login = Some(*on),
            RoleOption::Password(password) => attributes.password = Some(secret(password)?),
            RoleOption::ConnectionLimit(limit) => {
                attributes.connection_limit = Some(connection_limit(limit)?);
            }
            RoleOption::Inherit(true) => {}
            other => {
                return Err(Error::not_supported(format!(
                    "role option {other} is not supported"
                )));
            }
        }
    }
    Ok(attributes)
}

/// A `PASSWORD 'text'` as its SCRAM secret; `PASSWORD NULL`: none.
fn secret(password: &Password) -> Result<Option<ScramSecret>> {
    match password {
        Password::NullPassword => Ok(None),
        Password::Password(Expr::Value(value)) => match &value.value {
            Value::SingleQuotedString(text) | Value::EscapedStringLiteral(text) => {
                if text.is_empty() {
                    return Err(Error::user("22023", "a password may not be empty"));
                }
                ScramSecret::new(text).map(Some)
            }
            Value::Null => Ok(None),
            _ => Err(Error::user("42601", "PASSWORD takes a string")),
        },
        Password::Password(_) => Err(Error::user("42601", "PASSWORD takes a string")),
    }
}

fn connection_limit(limit: &Expr) -> Result<i32> {
    let invalid = || Error::user("22023", format!("invalid connection limit: {limit}"));
    let text = match limit {
        Expr::Value(value) => match &value.value {
            Value::Number(text, _) => text.clone(),
            _ => return Err(invalid()),
        },
        Expr::UnaryOp { .. } if limit.to_string() == "-1" => return Ok(-1),
        _ => return Err(invalid()),
    };
    match text.parse::<i32>() {
        Ok(n) if n >= -1 => Ok(n),
        _ => Err(invalid()),
    }
}
