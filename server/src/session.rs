//! Session parameters: what `SET`, `SHOW` and `RESET` act on.
//!
//! These are the parameters Postgres drivers send or ask for. weir keeps
//! them per session and reports them back. `statement_timeout`,
//! `idle_in_transaction_session_timeout`, `implicit_flush` and
//! `extra_float_digits` take effect; the others that would change how weir
//! computes (a time zone for `now()`, say) are not applied yet. Read-only
//! parameters describe the server.

use std::collections::BTreeMap;
use std::time::Duration;

use datafusion::arrow::array::timezone::Tz;
use weir_planner::{Error, IsolationLevel, SERVER_VERSION, SERVER_VERSION_NUM, parse_duration};

struct Parameter {
    name: &'static str,
    default: &'static str,
    description: &'static str,
    writable: bool,
}

const fn writable(
    name: &'static str,
    default: &'static str,
    description: &'static str,
) -> Parameter {
    Parameter {
        name,
        default,
        description,
        writable: true,
    }
}

const fn fixed(name: &'static str, default: &'static str, description: &'static str) -> Parameter {
    Parameter {
        name,
        default,
        description,
        writable: false,
    }
}

const PARAMETERS: &[Parameter] = &[
    writable("application_name", "", "Name of the client application."),
    writable(
        "client_encoding",
        "UTF8",
        "Client character set; only UTF8.",
    ),
    writable(
        "client_min_messages",
        "notice",
        "Lowest message level sent to the client.",
    ),
    writable(
        "datestyle",
        "ISO, MDY",
        "Display format for date and time values.",
    ),
    writable(
        "default_transaction_isolation",
        "read committed",
        "Isolation level of each new transaction block.",
    ),
    writable(
        "default_transaction_read_only",
        "off",
        "Whether each new transaction block is read-only.",
    ),
    writable(
        "extra_float_digits",
        "1",
        "Extra digits for floating-point output.",
    ),
    writable(
        "idle_in_transaction_session_timeout",
        "0",
        "Longest a session may idle in an open transaction block before its connection closes (ms, or with a unit); 0 disables.",
    ),
    writable(
        "idle_session_timeout",
        "0",
        "Longest a session may idle outside a transaction block before its connection closes (ms, or with a unit); 0 disables.",
    ),
    writable(
        "implicit_flush",
        "off",
        "Whether each write (and COMMIT) returns only once views reflect it, as FLUSH would.",
    ),
    writable("intervalstyle", "postgres", "Display format for intervals."),
    writable(
        "lock_timeout",
        "0",
        "Accepted for pg_dump and drivers; weir takes no locks a statement waits on.",
    ),
    writable(
        "quote_all_identifiers",
        "off",
        "Accepted for pg_dump; weir quotes identifiers only where needed.",
    ),
    writable(
        "row_security",
        "on",
        "Accepted for pg_dump; weir has no row security policies.",
    ),
    writable("search_path", "public", "Schema search order."),
    writable(
        "statement_timeout",
        "0",
        "Longest a statement may run (ms, or with a unit); 0 disables.",
    ),
    writable(
        "synchronize_seqscans",
        "on",
        "Accepted for pg_dump; scans start where they start.",
    ),
    writable(
        "timezone",
        "UTC",
        "Time zone for display; timestamps are sent in UTC.",
    ),
    writable(
        "transaction_isolation",
        "read committed",
        "Isolation level of the open transaction block (SET TRANSACTION).",
    ),
    writable(
        "transaction_read_only",
        "off",
        "Whether the open transaction block is read-only (SET TRANSACTION).",
    ),
    fixed("integer_datetimes", "on", "Datetimes are integer based."),
    fixed("is_superuser", "on", "The session user is a superuser."),
    fixed("server_encoding", "UTF8", "Server character set."),
    fixed(
        "server_version",
        SERVER_VERSION,
        "Postgres version weir answers as.",
    ),
    fixed(
        "server_version_num",
        SERVER_VERSION_NUM,
        "Postgres version weir answers as, as a number.",
    ),
    fixed(
        "standard_conforming_strings",
        "on",
        "Backslashes in string literals are literal.",
    ),
    fixed(
        "weir_version",
        env!("CARGO_PKG_VERSION"),
        "Version of weir.",
    ),
];

fn parameter(name: &str) -> Result<&'static Parameter, Error> {
    PARAMETERS.iter().find(|p| p.name == name).ok_or_else(|| {
        Error::user(
            "42704",
            format!("unrecognized configuration parameter \"{name}\""),
        )
    })
}

/// The parameter values of one session.
#[derive(Debug, Default)]
pub(crate) struct SessionParameters {
    changed: BTreeMap<&'static str, String>,
}

impl SessionParameters {
    pub fn set(&mut self, name: &str, value: Option<String>) -> Result<(), Error> {
        let parameter = parameter(name)?;
        if !parameter.writable {
            return Err(Error::user(
                "55P02",
                format!("parameter \"{name}\" cannot be changed"),
            ));
        }
        match value {
            None => {
                self.changed.remove(parameter.name);
            }
            Some(value) => {
                let value = checked(parameter.name, value)?;
                self.changed.insert(parameter.name, value);
            }
        }
        Ok(())
    }

    pub fn reset(&mut self, name: Option<&str>) -> Result<(), Error> {
        match name {
            None => self.changed.clear(),
            Some(name) => self.set(name, None)?,
        }
        Ok(())
    }

    pub fn get(&self, name: &str) -> Result<String, Error> {
        let parameter = parameter(name)?;
        Ok(self
            .changed
            .get(parameter.name)
            .cloned()
            .unwrap_or_else(|| parameter.default.to_string()))
    }

    /// `extra_float_digits`, which shapes the text of floats.
    pub fn extra_float_digits(&self) -> i8 {
        self.get("extra_float_digits")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1)
    }

    /// `statement_timeout`, unless it is 0 (off).
    pub fn statement_timeout(&self) -> Option<Duration> {
        let value = self.get("statement_timeout").ok()?;
        duration(&value).filter(|d| !d.is_zero())
    }

    /// `idle_in_transaction_session_timeout`, unless it is 0 (off).
    pub fn idle_in_transaction_timeout(&self) -> Option<Duration> {
        let value = self.get("idle_in_transaction_session_timeout").ok()?;
        duration(&value).filter(|d| !d.is_zero())
    }

    /// `idle_session_timeout`, unless it is 0 (off).
    pub fn idle_session_timeout(&self) -> Option<Duration> {
        let value = self.get("idle_session_timeout").ok()?;
        duration(&value).filter(|d| !d.is_zero())
    }

    /// `implicit_flush`: writes wait until views reflect them.
    pub fn implicit_flush(&self) -> bool {
        self.get("implicit_flush").is_ok_and(|v| v == "on")
    }

    /// Every parameter as (name, value, description).
    pub fn all(&self) -> Vec<(&'static str, String, &'static str)> {
        PARAMETERS
            .iter()
            .map(|p| {
                let value = self
                    .changed
                    .get(p.name)
                    .cloned()
                    .unwrap_or_else(|| p.default.to_string());
                (p.name, value, p.description)
            })
            .collect()
    }
}

fn invalid(name: &str, value: &str) -> Error {
    Error::user(
        "22023",
        format!("invalid value for parameter \"{name}\": \"{value}\""),
    )
}

/// Validates values whose meaning weir depends on.
fn checked(name: &str, value: String) -> Result<String, Error> {
    match name {
        "client_encoding" => match value.to_ascii_uppercase().replace('-', "").as_str() {
            "UTF8" | "UNICODE" => Ok("UTF8".into()),
            _ => Err(invalid(name, &value)),
        },
        "extra_float_digits" => match value.trim().parse::<i8>() {
            Ok(digits) if (-15..=3).contains(&digits) => Ok(digits.to_string()),
            _ => Err(invalid(name, &value)),
        },
        "default_transaction_isolation" => IsolationLevel::from_name(&value)
            .map(|level| level.name().to_string())
            .ok_or_else(|| invalid(name, &value)),
        "implicit_flush" | "default_transaction_read_only" => {
            match value.trim().to_ascii_lowercase().as_str() {
                "on" | "true" | "yes" | "1" => Ok("on".into()),
                "off" | "false" | "no" | "0" => Ok("off".into()),
                _ => Err(invalid(name, &value)),
            }
        }
        "timezone" => {
            let zone = value.trim();
            if ["utc", "gmt", "z", "zulu"].contains(&zone.to_ascii_lowercase().as_str()) {
                Ok("UTC".into())
            } else if zone.parse::<Tz>().is_ok() {
                Ok(zone.to_string())
            } else {
                Err(invalid("TimeZone", &value))
            }
        }
        "statement_timeout" | "idle_in_transaction_session_timeout" | "idle_session_timeout" => {
            match duration(&value) {
                Some(_) => Ok(value),
                None => Err(invalid(name, &value)),
            }
        }
        _ => Ok(value),
    }
}

/// A time parameter as PostgreSQL reads it: a bare number is milliseconds;
/// with a unit (`ms`, `s`, `min`, `h`, ...) it reads as weir's durations.
fn duration(value: &str) -> Option<Duration> {
    let value = value.trim();
    match value.parse::<u64>() {
        Ok(millis) => Some(Duration::from_millis(millis)),
        Err(_) => parse_duration(value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(e: Error) -> &'static str {
        match e {
            Error::User { code, .. } => code,
            other => panic!("{other}"),
        }
    }

    #[test]
    fn set_show_reset() {
        let mut params = SessionParameters::default();
        params.set("application_name", Some("psql".into())).unwrap();
        assert_eq!(params.get("application_name").unwrap(), "psql");
        params.set("client_encoding", Some("utf-8".into())).unwrap();
        assert_eq!(params.get("client_encoding").unwrap(), "UTF8");
        params.reset(None).unwrap();
        assert_eq!(params.get("application_name").unwrap(), "");
        assert_eq!(params.all().len(), PARAMETERS.len());
    }

    #[test]
    fn bad_names_and_values_are_refused() {
        let mut params = SessionParameters::default();
        assert_eq!(
            code(params.set("no_such_thing", Some("1".into())).unwrap_err()),
            "42704"
        );
        assert_eq!(code(params.get("no_such_thing").unwrap_err()), "42704");
        assert_eq!(
            code(params.set("server_version", Some("1".into())).unwrap_err()),
            "55P02"
        );
        assert_eq!(
            code(
                params
                    .set("client_encoding", Some("LATIN1".into()))
                    .unwrap_err()
            ),
            "22023"
        );
        assert_eq!(
            code(
                params
                    .set("extra_float_digits", Some("9".into()))
                    .unwrap_err()
            ),
            "22023"
        );
        assert_eq!(
            code(
                params
                    .set("statement_timeout", Some("soon".into()))
                    .unwrap_err()
            ),
            "22023"
        );
    }

    #[test]
    fn statement_timeout_reads_postgres_units() {
        let mut params = SessionParameters::default();
        assert_eq!(params.statement_timeout(), None);
        for (value, millis) in [("50", 50), ("50ms", 50), ("2s", 2_000), ("1min", 60_000)] {
            params.set("statement_timeout", Some(value.into())).unwrap();
            assert_eq!(
                params.statement_timeout(),
                Some(Duration::from_millis(millis)),
                "{value}"
            );
        }
        params.set("statement_timeout", Some("0".into())).unwrap();
        assert_eq!(params.statement_timeout(), None);
    }
}
