//! Who may do what: the roles, each relation's owner and its grants, kept
//! in the catalog document, so a role change is as durable and atomic as
//! any DDL.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{Catalog, encode, lock_error};
use crate::roles::{BOOTSTRAP_ROLE, Grants, Privilege, RoleAttributes, RoleRecord};
use crate::{Error, Result};

/// Roles, owners and grants.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Access {
    #[serde(default)]
    roles: BTreeMap<String, RoleRecord>,
    /// Each relation's owner; one missing is the bootstrap superuser's.
    #[serde(default)]
    owners: BTreeMap<String, String>,
    /// Privileges granted on each relation.
    #[serde(default)]
    grants: BTreeMap<String, Grants>,
}

impl Access {
    /// Makes the bootstrap superuser if there is no role at all.
    pub(super) fn bootstrap(&mut self) {
        if self.roles.is_empty() {
            let role = RoleRecord::bootstrap();
            self.roles.insert(role.name.clone(), role);
        }
    }

    pub(super) fn created(&mut self, relation: &str, owner: &str) {
        self.owners.insert(relation.to_string(), owner.to_string());
        self.grants.remove(relation);
    }

    pub(super) fn dropped(&mut self, relation: &str) {
        self.owners.remove(relation);
        self.grants.remove(relation);
    }

    pub fn role(&self, name: &str) -> Option<&RoleRecord> {
        self.roles.get(name)
    }

    pub fn owner<'a>(&'a self, relation: &str) -> &'a str {
        self.owners
            .get(relation)
            .map_or(BOOTSTRAP_ROLE, String::as_str)
    }

    /// Whether `role` may `privilege` on `relation`: as a superuser, its
    /// owner or a grantee.
    pub fn allows(&self, role: &str, relation: &str, privilege: Privilege) -> bool {
        self.is_superuser(role)
            || self.owner(relation) == role
            || self
                .grants
                .get(relation)
                .and_then(|g| g.get(role))
                .is_some_and(|p| p.contains(&privilege))
    }

    pub fn is_superuser(&self, role: &str) -> bool {
        self.roles.get(role).is_some_and(|r| r.superuser)
    }

    /// Whether `role` owns `relation` or is a superuser.
    pub fn may_own(&self, role: &str, relation: &str) -> bool {
        self.is_superuser(role) || self.owner(relation) == role
    }

    pub fn grants(&self, relation: &str) -> Grants {
        self.grants.get(relation).cloned().unwrap_or_default()
    }

    pub fn roles(&self) -> impl Iterator<Item = &RoleRecord> {
        self.roles.values()
    }

    /// Every relation that has a recorded owner, with it.
    pub fn owners(&self) -> impl Iterator<Item = (&str, &str)> {
        self.owners.iter().map(|(r, o)| (r.as_str(), o.as_str()))
    }

    /// The relations `role` owns.
    fn owned_by(&self, role: &str) -> Vec<&str> {
        self.owners
            .iter()
            .filter(|(_, owner)| owner.as_str() == role)
            .map(|(relation, _)| relation.as_str())
            .collect()
    }

    /// Refuses (42704) if one of `roles` does not exist.
    fn all_exist(&mut self, roles: &[String]) -> Result<()> {
        for role in roles {
            self.existing(role)?;
        }
        Ok(())
    }

    fn existing(&mut self, name: &str) -> Result<&mut RoleRecord> {
        self.roles
            .get_mut(name)
            .ok_or_else(|| Error::user("42704", format!("role \"{name}\" does not exist")))
    }
}

/// One change to the roles or grants.
#[derive(Debug, Clone)]
pub enum AccessChange {
    CreateRole {
        name: String,
        attributes: RoleAttributes,
    },
    AlterRole {
        name: String,
        attributes: RoleAttributes,
    },
    DropRole(String),
    Grant(PrivilegeChange),
    Revoke(PrivilegeChange),
}

/// Privileges given to, or taken from, roles on relations.
#[derive(Debug, Clone)]
pub struct PrivilegeChange {
    pub relations: Vec<String>,
    pub roles: Vec<String>,
    pub privileges: BTreeSet<Privilege>,
}

impl AccessChange {
    fn apply(self, access: &mut Access) -> Result<()> {
        match self {
            AccessChange::CreateRole { name, attributes } => {
                if access.roles.contains_key(&name) {
                    return Err(Error::user(
                        "42710",
                        format!("role \"{name}\" already exists"),
                    ));
                }
                let mut role = RoleRecord::new(&name);
                attributes.apply_to(&mut role);
                access.roles.insert(name, role);
            }
            AccessChange::AlterRole { name, attributes } => {
                attributes.apply_to(access.existing(&name)?);
                if !access.roles.values().any(|r| r.superuser) {
                    return Err(Error::user(
                        "55006",
                        "the last superuser cannot stop being one",
                    ));
                }
            }
            AccessChange::DropRole(name) => {
                access.existing(&name)?;
                let owned = access.owned_by(&name);
                if !owned.is_empty() {
                    return Err(Error::user(
                        "2BP01",
                        format!(
                            "role \"{name}\" cannot be dropped because some objects depend on it: owner of {}",
                            owned.join(", ")
                        ),
                    ));
                }
                access.roles.remove(&name);
                for grants in access.grants.values_mut() {
                    grants.remove(&name);
                }
                if !access.roles.values().any(|r| r.superuser) {
                    return Err(Error::user("55006", "the last superuser cannot be dropped"));
                }
            }
            AccessChange::Grant(PrivilegeChange {
                relations,
                roles,
                privileges,
            }) => {
                access.all_exist(&roles)?;
                for relation in relations {
                    let grants = access.grants.entry(relation).or_default();
                    for role in &roles {
                        grants
                            .entry(role.clone())
                            .or_default()
                            .extend(privileges.iter().copied());
                    }
                }
            }
            AccessChange::Revoke(PrivilegeChange {
                relations,
                roles,
                privileges,
            }) => {
                access.all_exist(&roles)?;
                for relation in relations {
                    let Some(grants) = access.grants.get_mut(&relation) else {
                        continue;
                    };
                    for role in &roles {
                        if let Some(held) = grants.get_mut(role) {
                            held.retain(|p| !privileges.contains(p));
                            if held.is_empty() {
                                grants.remove(role);
                            }
                        }
                    }
                    if grants.is_empty() {
                        access.grants.remove(&relation);
                    }
                }
            }
        }
        Ok(())
    }
}

impl Catalog {
    /// The roles, owners and grants as they are now.
    pub fn access(&self) -> Arc<Access> {
        self.state
            .read()
            .map(|s| Arc::clone(&s.access))
            .unwrap_or_default()
    }

    pub fn role(&self, name: &str) -> Option<RoleRecord> {
        self.state.read().ok()?.access.role(name).cloned()
    }

    /// Makes `change` durably, or nothing if it is refused.
    pub async fn change_access(&self, change: AccessChange) -> Result<()> {
        let _ddl = self.ddl.lock().await;
        let (access, document) = {
            let state = self.state.read().map_err(|_| lock_error())?;
            let mut document = state.document();
            change.apply(&mut document.access)?;
            (document.access.clone(), encode(&document)?)
        };
        self.store.store_catalog(document).await?;
        self.state.write().map_err(|_| lock_error())?.access = Arc::new(access);
        Ok(())
    }

    /// Whether `name` is a relation (table, view or source stream) or a
    /// source.
    pub fn relation_exists(&self, name: &str) -> bool {
        self.state.read().is_ok_and(|s| {
            s.tables.contains_key(name)
                || s.views.contains_key(name)
                || s.relations.contains_key(name)
                || s.sources.contains_key(name)
                || s.plain_views.contains_key(name)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(roles: &[&str]) -> Access {
        let mut access = Access::default();
        access.bootstrap();
        for name in roles {
            AccessChange::CreateRole {
                name: name.to_string(),
                attributes: RoleAttributes::default(),
            }
            .apply(&mut access)
            .unwrap();
        }
        access
    }

    /// SELECT on `t` for `analyst`.
    fn on_t() -> PrivilegeChange {
        PrivilegeChange {
            relations: vec!["t".into()],
            roles: vec!["analyst".into()],
            privileges: [Privilege::Select].into_iter().collect(),
        }
    }

    #[test]
    fn a_grant_allows_what_it_names_and_a_revoke_takes_it_back() {
        let mut access = with(&["analyst"]);
        access.created("t", "weir");
        assert!(!access.allows("analyst", "t", Privilege::Select));
        AccessChange::Grant(on_t()).apply(&mut access).unwrap();
        assert!(access.allows("analyst", "t", Privilege::Select));
        assert!(!access.allows("analyst", "t", Privilege::Insert));
        AccessChange::Revoke(on_t()).apply(&mut access).unwrap();
        assert!(!access.allows("analyst", "t", Privilege::Select));
        assert!(access.allows("weir", "t", Privilege::Delete));
    }

    #[test]
    fn an_owner_cannot_be_dropped_nor_the_last_superuser() {
        let mut access = with(&["writer"]);
        access.created("orders", "writer");
        let error = AccessChange::DropRole("writer".into())
            .apply(&mut access.clone())
            .unwrap_err();
        assert!(error.to_string().contains("owner of orders"), "{error}");
        access.dropped("orders");
        AccessChange::DropRole("writer".into())
            .apply(&mut access)
            .unwrap();
        assert!(
            AccessChange::DropRole(BOOTSTRAP_ROLE.into())
                .apply(&mut access)
                .is_err()
        );
    }

    #[test]
    fn a_dropped_relation_takes_its_grants_with_it() {
        let mut access = with(&["analyst"]);
        access.created("v", "weir");
        AccessChange::Grant(PrivilegeChange {
            relations: vec!["v".into()],
            ..on_t()
        })
        .apply(&mut access)
        .unwrap();
        access.dropped("v");
        access.created("v", "weir");
        assert!(!access.allows("analyst", "v", Privilege::Select));
    }
}
