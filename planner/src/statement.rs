//! Statements that act on the session rather than on data: SET, SHOW,
//! RESET and the transaction commands drivers send. The server owns session
//! state and carries them out; the planner only recognises them.

use datafusion::sql::sqlparser::ast::{
    Expr, Reset, Set, Statement, TransactionAccessMode, TransactionIsolationLevel, TransactionMode,
    Value,
};

use crate::ddl::normalize;
use crate::{Error, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionStatement {
    /// `SET name = value`; `None` is `SET name TO DEFAULT`.
    Set {
        name: String,
        value: Option<String>,
    },
    /// `RESET name`; `None` is `RESET ALL`.
    Reset {
        name: Option<String>,
    },
    Show {
        name: String,
    },
    ShowAll,
    /// `BEGIN` / `START TRANSACTION [modes]`: table writes are held until
    /// COMMIT.
    Begin(TransactionModes),
    /// `SET TRANSACTION modes`: the open block's characteristics.
    SetTransaction(TransactionModes),
    /// `SET SESSION CHARACTERISTICS AS TRANSACTION modes`: what later
    /// blocks start with (`default_transaction_isolation`,
    /// `default_transaction_read_only`).
    SetDefaults(TransactionModes),
    Commit,
    Rollback,
    /// `SAVEPOINT name` inside a transaction block (not weir's
    /// `CREATE SAVEPOINT`, which saves the whole database's state).
    Savepoint {
        name: String,
    },
    /// `ROLLBACK TO SAVEPOINT name`.
    RollbackTo {
        name: String,
    },
    /// `RELEASE SAVEPOINT name`.
    Release {
        name: String,
    },
    /// `DISCARD ALL` and friends, sent by connection pools.
    Discard,
    /// `DEALLOCATE name`, or `DEALLOCATE ALL` (`None`): drivers drop the
    /// statements they prepared through the protocol this way.
    Deallocate {
        name: Option<String>,
    },
}

/// The characteristics a transaction block is given; `None` leaves one as
/// it is (or as the session's default).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TransactionModes {
    pub isolation: Option<IsolationLevel>,
    pub read_only: Option<bool>,
}

/// PostgreSQL's isolation levels, as a block asks for them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IsolationLevel {
    ReadUncommitted,
    ReadCommitted,
    RepeatableRead,
    Serializable,
}

impl IsolationLevel {
    /// The level as `transaction_isolation` shows it.
    pub fn name(self) -> &'static str {
        match self {
            IsolationLevel::ReadUncommitted => "read uncommitted",
            IsolationLevel::ReadCommitted => "read committed",
            IsolationLevel::RepeatableRead => "repeatable read",
            IsolationLevel::Serializable => "serializable",
        }
    }

    /// The level named `name`, as `SET transaction_isolation` spells it.
    pub fn from_name(name: &str) -> Option<Self> {
        let name = name.trim().to_ascii_lowercase().replace(['_', '-'], " ");
        [
            IsolationLevel::ReadUncommitted,
            IsolationLevel::ReadCommitted,
            IsolationLevel::RepeatableRead,
            IsolationLevel::Serializable,
        ]
        .into_iter()
        .find(|level| level.name() == name)
    }

    /// Whether the block reads one snapshot, taken at its first read,
    /// rather than what is committed as each statement starts.
    pub fn reads_snapshot(self) -> bool {
        matches!(
            self,
            IsolationLevel::RepeatableRead | IsolationLevel::Serializable
        )
    }
}

fn transaction_modes(modes: &[TransactionMode]) -> Result<TransactionModes> {
    let mut read = TransactionModes::default();
    for mode in modes {
        match mode {
            TransactionMode::AccessMode(access) => {
                read.read_only = Some(*access == TransactionAccessMode::ReadOnly);
            }
            TransactionMode::IsolationLevel(level) => {
                read.isolation = Some(match level {
                    TransactionIsolationLevel::ReadUncommitted => IsolationLevel::ReadUncommitted,
                    TransactionIsolationLevel::ReadCommitted => IsolationLevel::ReadCommitted,
                    TransactionIsolationLevel::RepeatableRead => IsolationLevel::RepeatableRead,
                    TransactionIsolationLevel::Serializable => IsolationLevel::Serializable,
                    other => {
                        return Err(Error::not_supported(format!(
                            "isolation level {other} is not supported"
                        )));
                    }
                });
            }
        }
    }
    Ok(read)
}

/// A boolean setting's value as PostgreSQL reads one.
fn boolean(name: &str, value: &str) -> Result<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "on" | "true" | "yes" | "1" => Ok(true),
        "off" | "false" | "no" | "0" => Ok(false),
        _ => Err(Error::user(
            "22023",
            format!("invalid value for parameter \"{name}\": \"{value}\""),
        )),
    }
}

/// Recognises a session statement; `None` for every other statement.
pub(crate) fn session_statement(statement: &Statement) -> Option<Result<SessionStatement>> {
    let recognised = match statement {
        Statement::Set(set) => set_statement(set),
        Statement::Reset(reset) => Ok(SessionStatement::Reset {
            name: match &reset.reset {
                Reset::ALL => None,
                Reset::ConfigurationParameter(name) => Some(name.to_string().to_lowercase()),
            },
        }),
        Statement::ShowVariable { variable } => {
            let name: Vec<String> = variable.iter().map(normalize).collect();
            match name.join(" ").as_str() {
                "all" => Ok(SessionStatement::ShowAll),
                "time zone" => Ok(SessionStatement::Show {
                    name: "timezone".into(),
                }),
                "transaction isolation level" => Ok(SessionStatement::Show {
                    name: "transaction_isolation".into(),
                }),
                name => Ok(SessionStatement::Show { name: name.into() }),
            }
        }
        Statement::StartTransaction { modes, .. } => {
            transaction_modes(modes).map(SessionStatement::Begin)
        }
        Statement::Commit { .. } => Ok(SessionStatement::Commit),
        Statement::Rollback {
            savepoint: None, ..
        } => Ok(SessionStatement::Rollback),
        Statement::Rollback {
            savepoint: Some(name),
            ..
        } => Ok(SessionStatement::RollbackTo {
            name: normalize(name),
        }),
        Statement::Savepoint { name } => Ok(SessionStatement::Savepoint {
            name: normalize(name),
        }),
        Statement::ReleaseSavepoint { name } => Ok(SessionStatement::Release {
            name: normalize(name),
        }),
        Statement::Discard { .. } => Ok(SessionStatement::Discard),
        Statement::Deallocate { name, .. } => Ok(SessionStatement::Deallocate {
            name: (!(name.quote_style.is_none() && name.value.eq_ignore_ascii_case("all")))
                .then(|| name.value.clone()),
        }),
        _ => return None,
    };
    Some(recognised)
}

fn set_statement(set: &Set) -> Result<SessionStatement> {
    match set {
        Set::SingleAssignment {
            variable, values, ..
        } => {
            let name = variable.to_string().to_lowercase();
            let value = match values.as_slice() {
                [Expr::Identifier(ident)]
                    if ident.quote_style.is_none()
                        && ident.value.eq_ignore_ascii_case("default") =>
                {
                    None
                }
                values => Some(values.iter().map(value_text).collect::<Vec<_>>().join(", ")),
            };
            match (name.as_str(), &value) {
                // The open block's own level and access, as SET TRANSACTION.
                ("transaction_isolation", Some(level)) => IsolationLevel::from_name(level)
                    .map(|level| {
                        SessionStatement::SetTransaction(TransactionModes {
                            isolation: Some(level),
                            read_only: None,
                        })
                    })
                    .ok_or_else(|| {
                        Error::user(
                            "22023",
                            format!("invalid value for parameter \"{name}\": \"{level}\""),
                        )
                    }),
                ("transaction_read_only", Some(value)) => {
                    Ok(SessionStatement::SetTransaction(TransactionModes {
                        isolation: None,
                        read_only: Some(boolean(&name, value)?),
                    }))
                }
                _ => Ok(SessionStatement::Set { name, value }),
            }
        }
        Set::SetTransaction {
            modes,
            snapshot: None,
            session: false,
        } => transaction_modes(modes).map(SessionStatement::SetTransaction),
        Set::SetTransaction {
            modes,
            snapshot: None,
            session: true,
        } => {
            // The session's defaults, which each later block starts with.
            let modes = transaction_modes(modes)?;
            Ok(SessionStatement::SetDefaults(modes))
        }
        Set::SetTimeZone { value, .. } => Ok(SessionStatement::Set {
            name: "timezone".into(),
            value: Some(value_text(value)),
        }),
        Set::SetNames { charset_name, .. } => Ok(SessionStatement::Set {
            name: "client_encoding".into(),
            value: Some(charset_name.value.clone()),
        }),
        other => Err(Error::not_supported(format!("{other} is not supported"))),
    }
}

/// A SET value as text: quoted strings lose their quotes.
fn value_text(expr: &Expr) -> String {
    match expr {
        Expr::Value(v) => match &v.value {
            Value::SingleQuotedString(s) | Value::DoubleQuotedString(s) => s.clone(),
            other => other.to_string(),
        },
        Expr::Identifier(ident) => ident.value.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parser::StatementParser;

    fn session(sql: &str) -> SessionStatement {
        let parsed = StatementParser::default().parse(sql).unwrap().remove(0);
        session_statement(&parsed.statement)
            .expect("a session statement")
            .unwrap()
    }

    #[test]
    fn recognises_what_drivers_send() {
        assert_eq!(
            session("SET application_name = 'psql'"),
            SessionStatement::Set {
                name: "application_name".into(),
                value: Some("psql".into())
            }
        );
        assert_eq!(
            session("SET extra_float_digits TO 3"),
            SessionStatement::Set {
                name: "extra_float_digits".into(),
                value: Some("3".into())
            }
        );
        assert_eq!(
            session("SET TIME ZONE 'UTC'"),
            SessionStatement::Set {
                name: "timezone".into(),
                value: Some("UTC".into())
            }
        );
        assert_eq!(
            session("SET DateStyle TO DEFAULT"),
            SessionStatement::Set {
                name: "datestyle".into(),
                value: None
            }
        );
        assert_eq!(session("SHOW ALL"), SessionStatement::ShowAll);
        assert_eq!(
            session("SHOW TimeZone"),
            SessionStatement::Show {
                name: "timezone".into()
            }
        );
        assert_eq!(session("RESET ALL"), SessionStatement::Reset { name: None });
        assert_eq!(
            session("SHOW TRANSACTION ISOLATION LEVEL"),
            SessionStatement::Show {
                name: "transaction_isolation".into()
            }
        );
        assert_eq!(
            session("BEGIN"),
            SessionStatement::Begin(TransactionModes::default())
        );
        assert_eq!(
            session("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY"),
            SessionStatement::Begin(TransactionModes {
                isolation: Some(IsolationLevel::RepeatableRead),
                read_only: Some(true),
            })
        );
        assert_eq!(
            session("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE"),
            SessionStatement::SetTransaction(TransactionModes {
                isolation: Some(IsolationLevel::Serializable),
                read_only: None,
            })
        );
        assert_eq!(
            session("SET transaction_isolation = 'repeatable read'"),
            SessionStatement::SetTransaction(TransactionModes {
                isolation: Some(IsolationLevel::RepeatableRead),
                read_only: None,
            })
        );
        assert_eq!(
            session("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY"),
            SessionStatement::SetDefaults(TransactionModes {
                isolation: None,
                read_only: Some(true),
            })
        );
        assert_eq!(session("COMMIT"), SessionStatement::Commit);
        assert_eq!(session("ROLLBACK"), SessionStatement::Rollback);
        assert_eq!(
            session("ROLLBACK TO SAVEPOINT \"S1\""),
            SessionStatement::RollbackTo { name: "S1".into() }
        );
        assert_eq!(
            session("SAVEPOINT s1"),
            SessionStatement::Savepoint { name: "s1".into() }
        );
        assert_eq!(
            session("RELEASE SAVEPOINT S1"),
            SessionStatement::Release { name: "s1".into() }
        );
        assert_eq!(
            session("DEALLOCATE _pg3_0"),
            SessionStatement::Deallocate {
                name: Some("_pg3_0".into())
            }
        );
        assert_eq!(
            session("DEALLOCATE PREPARE ALL"),
            SessionStatement::Deallocate { name: None }
        );
    }
}
