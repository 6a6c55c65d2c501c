//! `WITH (...)` options of a source or a view, taken one by one: whatever
//! is not taken is an error.

use std::collections::BTreeMap;

use datafusion::sql::sqlparser::ast::{
    CreateTableOptions, Expr, Ident, SqlOption, Value, ValueWithSpan,
};

use crate::{Error, Result};

pub(crate) fn invalid(message: String) -> Error {
    Error::user("22023", message)
}

/// Options by lower-cased name, with their values as text.
#[derive(Debug, Default)]
pub(crate) struct WithOptions(BTreeMap<String, String>);

/// An option's value as text: a string or a number.
pub(crate) fn option_text(value: &Expr) -> Option<String> {
    match value {
        Expr::Value(ValueWithSpan {
            value: Value::SingleQuotedString(text) | Value::Number(text, _),
            ..
        }) => Some(text.clone()),
        _ => None,
    }
}

impl WithOptions {
    /// The options of a `what` (source, view).
    pub(crate) fn parse(options: &CreateTableOptions, what: &str) -> Result<Self> {
        let options = match options {
            CreateTableOptions::With(options) => options.as_slice(),
            CreateTableOptions::None => &[],
            _ => {
                return Err(Error::not_supported(format!(
                    "{what} options go in WITH (...)"
                )));
            }
        };
        let mut parsed = BTreeMap::new();
        for option in options {
            let SqlOption::KeyValue { key, value } = option else {
                return Err(Error::not_supported(format!(
                    "{what} option {option} is not supported"
                )));
            };
            let key = key.value.to_lowercase();
            let text = option_text(value)
                .ok_or_else(|| invalid(format!("option {key}: expected a string, not {value}")))?;
            if parsed.insert(key.clone(), text).is_some() {
                return Err(invalid(format!("option {key} is given twice")));
            }
        }
        Ok(Self(parsed))
    }

    pub(crate) fn take(&mut self, key: &str) -> Option<String> {
        self.0.remove(key)
    }

    /// A whole number, at least `min`.
    pub(crate) fn take_number(&mut self, key: &str, min: u64) -> Result<Option<u64>> {
        let Some(text) = self.take(key) else {
            return Ok(None);
        };
        let number = text
            .trim()
            .parse::<u64>()
            .map_err(|_| invalid(format!("option {key}: \"{text}\" is not a whole number")))?;
        if number < min {
            return Err(invalid(format!("option {key}: must be at least {min}")));
        }
        Ok(Some(number))
    }

    /// Takes every option whose name starts with `prefix`, without it.
    pub(crate) fn take_prefixed(&mut self, prefix: &str) -> BTreeMap<String, String> {
        let keys: Vec<String> = self
            .0
            .keys()
            .filter(|k| k.starts_with(prefix))
            .cloned()
            .collect();
        keys.into_iter()
            .filter_map(|k| {
                let value = self.0.remove(&k)?;
                Some((k[prefix.len()..].to_string(), value))
            })
            .collect()
    }

    /// Refuses any option not taken, as not one of `whose` options.
    pub(crate) fn finish(self, whose: &str) -> Result<()> {
        match self.0.into_keys().next() {
            Some(key) => Err(invalid(format!(
                "unrecognized option \"{key}\" for {whose}"
            ))),
            None => Ok(()),
        }
    }
}

/// `WITH (key = 'value')` as a source option, for options weir adds.
pub(crate) fn text_option(key: &str, value: String) -> SqlOption {
    SqlOption::KeyValue {
        key: Ident::new(key),
        value: Expr::Value(Value::SingleQuotedString(value).into()),
    }
}
