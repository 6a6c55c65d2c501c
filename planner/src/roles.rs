//! Roles and privileges, as PostgreSQL has them, kept in the catalog.
//!
//! A role may log in (`LOGIN`), may be a superuser, and may have a
//! password, which is never stored: what is kept is its SCRAM-SHA-256
//! salted form (PBKDF2-HMAC-SHA-256 over the SASLprep-normalised password,
//! a random 16-byte salt, [`SCRAM_ITERATIONS`] rounds), from which the
//! server checks a client's proof. Every table, source and view has an
//! owner, who holds every privilege on it; others hold what was granted
//! to them ([`Privilege`]). Superusers hold everything.
//!
//! The first start of a database makes one superuser, [`BOOTSTRAP_ROLE`],
//! without a password: it logs in over loopback only, until one is set.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::num::NonZeroU32;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// The superuser every database starts with.
pub const BOOTSTRAP_ROLE: &str = "weir";
/// Schemas every role may read.
pub const SYSTEM_SCHEMAS: [&str; 3] = ["pg_catalog", "information_schema", "weir_catalog"];
/// PBKDF2 rounds of a stored password, as PostgreSQL's default.
pub const SCRAM_ITERATIONS: u32 = 4096;
const SALT_LEN: usize = 16;

/// One role as the catalog stores it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct RoleRecord {
    pub name: String,
    pub superuser: bool,
    pub login: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<ScramSecret>,
    /// Connections the role may hold at once; -1: no limit.
    #[serde(default = "no_limit")]
    pub connection_limit: i32,
}

fn no_limit() -> i32 {
    -1
}

impl RoleRecord {
    /// A role with PostgreSQL's defaults: no login, no superuser.
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_string(),
            superuser: false,
            login: false,
            password: None,
            connection_limit: -1,
        }
    }

    /// The superuser a new database starts with.
    pub fn bootstrap() -> Self {
        Self {
            superuser: true,
            login: true,
            ..Self::new(BOOTSTRAP_ROLE)
        }
    }
}

/// What `CREATE ROLE` and `ALTER ROLE` set; `None`: left as it is (or
/// at its default, for a new role).
#[derive(Debug, Clone, Default)]
pub struct RoleAttributes {
    pub superuser: Option<bool>,
    pub login: Option<bool>,
    /// `Some(None)`: `PASSWORD NULL`, no password.
    pub password: Option<Option<ScramSecret>>,
    pub connection_limit: Option<i32>,
}

impl RoleAttributes {
    pub fn apply_to(&self, role: &mut RoleRecord) {
        if let Some(superuser) = self.superuser {
            role.superuser = superuser;
        }
        if let Some(login) = self.login {
            role.login = login;
        }
        if let Some(password) = &self.password {
            role.password = password.clone();
        }
        if let Some(limit) = self.connection_limit {
            role.connection_limit = limit;
        }
    }

    /// Whether the only change is the password: what a role may do to
    /// itself.
    pub fn only_password(&self) -> bool {
        self.superuser.is_none() && self.login.is_none() && self.connection_limit.is_none()
    }
}

/// A password as SCRAM-SHA-256 needs it to check a proof: the salt, the
/// rounds, and the salted password. Knowing it lets one log in, so the
/// catalog that holds it must stay private; it never leaves the server
/// (`pg_authid.rolpassword` shows its kind only).
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ScramSecret {
    pub iterations: u32,
    /// Base64.
    pub salt: String,
    /// Base64.
    pub salted_password: String,
}

impl fmt::Debug for ScramSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ScramSecret(SCRAM-SHA-256, {} rounds)", self.iterations)
    }
}

impl ScramSecret {
    /// The secret of `password` under a fresh random salt.
    pub fn new(password: &str) -> Result<Self> {
        let mut salt = [0u8; SALT_LEN];
        SystemRandom::new()
            .fill(&mut salt)
            .map_err(|_| Error::Internal("no randomness for a password salt".into()))?;
        Ok(Self::with_salt(password, &salt, SCRAM_ITERATIONS))
    }

    /// The secret of `password` under `salt`: also what an unknown role is
    /// answered with, so that it fails as a wrong password does.
    pub fn with_salt(password: &str, salt: &[u8], iterations: u32) -> Self {
        let normalised = stringprep::saslprep(password)
            .map(|p| p.into_owned())
            .unwrap_or_else(|_| password.to_string());
        let mut salted = [0u8; 32];
        ring::pbkdf2::derive(
            ring::pbkdf2::PBKDF2_HMAC_SHA256,
            NonZeroU32::new(iterations.max(1)).expect("at least one round"),
            salt,
            normalised.as_bytes(),
            &mut salted,
        );
        Self {
            iterations,
            salt: BASE64.encode(salt),
            salted_password: BASE64.encode(salted),
        }
    }

    pub fn salt_bytes(&self) -> Vec<u8> {
        BASE64.decode(&self.salt).unwrap_or_default()
    }

    pub fn salted_password_bytes(&self) -> Vec<u8> {
        BASE64.decode(&self.salted_password).unwrap_or_default()
    }
}

/// What a role may do to a relation it does not own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Privilege {
    Select,
    Insert,
    Update,
    Delete,
}

impl Privilege {
    pub const ALL: [Privilege; 4] = [
        Privilege::Select,
        Privilege::Insert,
        Privilege::Update,
        Privilege::Delete,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Privilege::Select => "SELECT",
            Privilege::Insert => "INSERT",
            Privilege::Update => "UPDATE",
            Privilege::Delete => "DELETE",
        }
    }

    /// The letter PostgreSQL's `aclitem` gives it.
    fn acl_letter(self) -> char {
        match self {
            Privilege::Select => 'r',
            Privilege::Insert => 'a',
            Privilege::Update => 'w',
            Privilege::Delete => 'd',
        }
    }
}

/// Who holds what on one relation, besides its owner.
pub type Grants = BTreeMap<String, BTreeSet<Privilege>>;

/// A relation's grants in `aclitem[]` text (`{analyst=r/weir}`), as
/// `pg_class.relacl` and psql's `\dp` show them; `None` when none.
pub fn acl_text(owner: &str, grants: &Grants) -> Option<String> {
    if grants.is_empty() {
        return None;
    }
    let owner_item = format!("{owner}=arwd/{owner}");
    let items: Vec<String> = std::iter::once(owner_item)
        .chain(grants.iter().map(|(role, privileges)| {
            let letters: String = privileges.iter().map(|p| p.acl_letter()).collect();
            format!("{role}={letters}/{owner}")
        }))
        .collect();
    Some(format!("{{{}}}", items.join(",")))
}

/// The role a session runs as, kept in its DataFusion configuration. Set
/// once the session has authenticated; a context without one (the
/// server's own work) runs as the bootstrap superuser.
#[derive(Debug, Default)]
pub struct SessionRole {
    name: std::sync::OnceLock<String>,
}

impl SessionRole {
    pub fn set(&self, name: &str) {
        let _ = self.name.set(name.to_string());
    }

    pub fn name(&self) -> &str {
        self.name.get().map_or(BOOTSTRAP_ROLE, String::as_str)
    }
}

/// The role `ctx`'s session runs as.
pub fn session_role(ctx: &datafusion::execution::context::SessionContext) -> String {
    ctx.state()
        .config()
        .get_extension::<SessionRole>()
        .map_or_else(|| BOOTSTRAP_ROLE.to_string(), |r| r.name().to_string())
}

/// The 42501 refusal of what `role` may not do.
pub fn permission_denied(message: impl Into<String>) -> Error {
    Error::user("42501", message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_password_and_salt_give_the_same_secret() {
        let a = ScramSecret::with_salt("secret", b"0123456789abcdef", 4096);
        let b = ScramSecret::with_salt("secret", b"0123456789abcdef", 4096);
        let c = ScramSecret::with_salt("other", b"0123456789abcdef", 4096);
        assert_eq!(a, b);
        assert_ne!(a.salted_password, c.salted_password);
        assert_eq!(a.salt_bytes(), b"0123456789abcdef");
        assert_eq!(a.salted_password_bytes().len(), 32);
    }

    #[test]
    fn fresh_secrets_have_their_own_salt() {
        let a = ScramSecret::new("secret").unwrap();
        let b = ScramSecret::new("secret").unwrap();
        assert_ne!(a.salt, b.salt);
        assert!(!format!("{a:?}").contains(&a.salted_password));
    }

    #[test]
    fn acl_text_lists_the_owner_then_each_grant() {
        let mut grants = Grants::new();
        grants.insert("analyst".into(), [Privilege::Select].into_iter().collect());
        assert_eq!(
            acl_text("weir", &grants).as_deref(),
            Some("{weir=arwd/weir,analyst=r/weir}")
        );
        assert_eq!(acl_text("weir", &Grants::new()), None);
    }
}
