//! JSON values as `json` and `jsonb` columns hold them: parsed to check the
//! text is JSON (`22P02` if not), and written back in `jsonb`'s normal form:
//! object keys in PostgreSQL's order (shorter first, then bytewise), the
//! last of duplicate keys kept, one space after `:` and `,`, numbers as
//! PostgreSQL's numeric writes them (`1e2` is `100`, `1.50` stays `1.50`).
//! `->` and `->>` read into them.

use std::fmt::Write;

/// A parsed JSON value; numbers keep their text.
#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    Null,
    Bool(bool),
    Number(String),
    String(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

/// What `->` and `->>` look up: an object's field or an array's element
/// (negative counts from the end).
pub enum JsonKey<'a> {
    Field(&'a str),
    Index(i64),
}

impl Json {
    /// `text` as JSON, or what is wrong with it.
    pub fn parse(text: &str) -> Result<Json, String> {
        let mut parser = Parser {
            bytes: text.as_bytes(),
            at: 0,
        };
        let value = parser.value(0)?;
        parser.skip_space();
        if parser.at != parser.bytes.len() {
            return Err(parser.error("end of input"));
        }
        Ok(value)
    }

    /// The value in `jsonb`'s normal form: objects with sorted, unique keys.
    pub fn normalized(self) -> Json {
        match self {
            Json::Array(items) => Json::Array(items.into_iter().map(Json::normalized).collect()),
            Json::Object(fields) => {
                let mut unique: Vec<(String, Json)> = Vec::with_capacity(fields.len());
                for (key, value) in fields {
                    let value = value.normalized();
                    match unique.iter_mut().find(|(k, _)| *k == key) {
                        Some(slot) => slot.1 = value,
                        None => unique.push((key, value)),
                    }
                }
                unique.sort_by(|(a, _), (b, _)| a.len().cmp(&b.len()).then_with(|| a.cmp(b)));
                Json::Object(unique)
            }
            Json::Number(text) => Json::Number(numeric_text(&text)),
            other => other,
        }
    }

    /// The value's text, as PostgreSQL writes a `jsonb`.
    pub fn text(&self) -> String {
        let mut out = String::new();
        self.write(&mut out);
        out
    }

    /// `->>`'s text: a string's own characters, any other value's JSON text;
    /// `None` for JSON null.
    pub fn unquoted(&self) -> Option<String> {
        match self {
            Json::Null => None,
            Json::String(s) => Some(s.clone()),
            other => Some(other.text()),
        }
    }

    pub fn get(&self, key: &JsonKey) -> Option<&Json> {
        match (self, key) {
            (Json::Object(fields), JsonKey::Field(name)) => {
                fields.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v)
            }
            (Json::Array(items), JsonKey::Index(i)) => {
                let index = if *i < 0 { items.len() as i64 + i } else { *i };
                usize::try_from(index).ok().and_then(|i| items.get(i))
            }
            _ => None,
        }
    }

    fn write(&self, out: &mut String) {
        match self {
            Json::Null => out.push_str("null"),
            Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Json::Number(n) => out.push_str(n),
            Json::String(s) => write_string(s, out),
            Json::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    item.write(out);
                }
                out.push(']');
            }
            Json::Object(fields) => {
                out.push('{');
                for (i, (key, value)) in fields.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    write_string(key, out);
                    out.push_str(": ");
                    value.write(out);
                }
                out.push('}');
            }
        }
    }
}

/// A JSON number (already checked) as PostgreSQL's numeric writes it: no
/// exponent, the scale it was written with less its exponent, no sign on
/// zero.
fn numeric_text(text: &str) -> String {
    let (negative, unsigned) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (mantissa, exponent) = match unsigned.split_once(['e', 'E']) {
        Some((m, e)) => (m, e.parse::<i64>().unwrap_or(0)),
        None => (unsigned, 0),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let scale = (fraction.len() as i64 - exponent).max(0) as usize;
    let digits = format!("{whole}{fraction}");
    // The point moves `exponent` places right of where it was.
    let point = whole.len() as i64 + exponent;
    let (int_part, frac_part) = if point <= 0 {
        (
            String::new(),
            format!("{}{digits}", "0".repeat(point.unsigned_abs() as usize)),
        )
    } else if point as usize >= digits.len() {
        (
            format!("{digits}{}", "0".repeat(point as usize - digits.len())),
            String::new(),
        )
    } else {
        let (i, f) = digits.split_at(point as usize);
        (i.to_string(), f.to_string())
    };
    let int_part = int_part.trim_start_matches('0');
    let int_part = if int_part.is_empty() { "0" } else { int_part };
    let mut frac_part = frac_part;
    frac_part.truncate(scale);
    while frac_part.len() < scale {
        frac_part.push('0');
    }
    let zero = int_part == "0" && frac_part.bytes().all(|b| b == b'0');
    let sign = if negative && !zero { "-" } else { "" };
    if frac_part.is_empty() {
        format!("{sign}{int_part}")
    } else {
        format!("{sign}{int_part}.{frac_part}")
    }
}

fn write_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Nesting deeper than this is refused rather than overflowing the stack.
const MAX_DEPTH: usize = 512;

struct Parser<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Parser<'_> {
    fn error(&self, expected: &str) -> String {
        format!(
            "invalid input syntax for type json: expected {expected} at character {}",
            self.at + 1
        )
    }

    fn skip_space(&mut self) {
        while self
            .bytes
            .get(self.at)
            .is_some_and(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
        {
            self.at += 1;
        }
    }

    fn eat(&mut self, byte: u8) -> bool {
        self.skip_space();
        if self.bytes.get(self.at) == Some(&byte) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn word(&mut self, word: &str, value: Json) -> Result<Json, String> {
        if self.bytes[self.at..].starts_with(word.as_bytes()) {
            self.at += word.len();
            Ok(value)
        } else {
            Err(self.error("a JSON value"))
        }
    }

    fn value(&mut self, depth: usize) -> Result<Json, String> {
        if depth > MAX_DEPTH {
            return Err(format!("JSON nested deeper than {MAX_DEPTH} levels"));
        }
        self.skip_space();
        match self.bytes.get(self.at) {
            Some(b'n') => self.word("null", Json::Null),
            Some(b't') => self.word("true", Json::Bool(true)),
            Some(b'f') => self.word("false", Json::Bool(false)),
            Some(b'"') => self.string().map(Json::String),
            Some(b'[') => {
                self.at += 1;
                let mut items = Vec::new();
                if !self.eat(b']') {
                    loop {
                        items.push(self.value(depth + 1)?);
                        if self.eat(b']') {
                            break;
                        }
                        if !self.eat(b',') {
                            return Err(self.error("\",\" or \"]\""));
                        }
                    }
                }
                Ok(Json::Array(items))
            }
            Some(b'{') => {
                self.at += 1;
                let mut fields = Vec::new();
                if !self.eat(b'}') {
                    loop {
                        self.skip_space();
                        if self.bytes.get(self.at) != Some(&b'"') {
                            return Err(self.error("a string key"));
                        }
                        let key = self.string()?;
                        if !self.eat(b':') {
                            return Err(self.error("\":\""));
                        }
                        fields.push((key, self.value(depth + 1)?));
                        if self.eat(b'}') {
                            break;
                        }
                        if !self.eat(b',') {
                            return Err(self.error("\",\" or \"}\""));
                        }
                    }
                }
                Ok(Json::Object(fields))
            }
            Some(b'-' | b'0'..=b'9') => self.number(),
            _ => Err(self.error("a JSON value")),
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.at;
        while self.bytes.get(self.at).is_some_and(u8::is_ascii_digit) {
            self.at += 1;
        }
        self.at - start
    }

    fn number(&mut self) -> Result<Json, String> {
        let start = self.at;
        if self.bytes[self.at] == b'-' {
            self.at += 1;
        }
        let whole = self.digits();
        let leading_zero = whole > 1 && self.bytes[self.at - whole] == b'0';
        if whole == 0 || leading_zero {
            return Err(self.error("a number"));
        }
        if self.bytes.get(self.at) == Some(&b'.') {
            self.at += 1;
            if self.digits() == 0 {
                return Err(self.error("digits after the point"));
            }
        }
        if matches!(self.bytes.get(self.at), Some(b'e' | b'E')) {
            self.at += 1;
            if matches!(self.bytes.get(self.at), Some(b'+' | b'-')) {
                self.at += 1;
            }
            if self.digits() == 0 {
                return Err(self.error("exponent digits"));
            }
        }
        let text = String::from_utf8_lossy(&self.bytes[start..self.at]).into_owned();
        Ok(Json::Number(text))
    }

    fn hex4(&mut self) -> Result<u32, String> {
        let digits = self
            .bytes
            .get(self.at..self.at + 4)
            .and_then(|d| std::str::from_utf8(d).ok())
            .and_then(|d| u32::from_str_radix(d, 16).ok())
            .ok_or_else(|| self.error("four hex digits"))?;
        self.at += 4;
        Ok(digits)
    }

    fn string(&mut self) -> Result<String, String> {
        self.at += 1;
        let mut out = Vec::new();
        loop {
            let Some(&byte) = self.bytes.get(self.at) else {
                return Err(self.error("the end of a string"));
            };
            self.at += 1;
            match byte {
                b'"' => break,
                b'\\' => {
                    let Some(&escape) = self.bytes.get(self.at) else {
                        return Err(self.error("an escape"));
                    };
                    self.at += 1;
                    let c = match escape {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => {
                            let high = self.hex4()?;
                            let code = if (0xd800..0xdc00).contains(&high) {
                                if !self.bytes[self.at..].starts_with(b"\\u") {
                                    return Err(self.error("a low surrogate"));
                                }
                                self.at += 2;
                                let low = self.hex4()?;
                                0x10000 + ((high - 0xd800) << 10) + (low.wrapping_sub(0xdc00))
                            } else {
                                high
                            };
                            match char::from_u32(code) {
                                Some(c) if c != '\0' => c,
                                _ => return Err(self.error("a valid Unicode escape")),
                            }
                        }
                        _ => return Err(self.error("a valid escape")),
                    };
                    let mut buffer = [0u8; 4];
                    out.extend_from_slice(c.encode_utf8(&mut buffer).as_bytes());
                }
                b if b < 0x20 => return Err(self.error("no control characters in a string")),
                b => out.push(b),
            }
        }
        String::from_utf8(out).map_err(|_| self.error("UTF-8"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jsonb(text: &str) -> String {
        Json::parse(text).unwrap().normalized().text()
    }

    #[test]
    fn jsonb_text_is_postgres_normal_form() {
        assert_eq!(
            jsonb(r#"{"bb":1,"a":[1,2.50,{"z":null}],"a":true}"#),
            r#"{"a": true, "bb": 1}"#
        );
        assert_eq!(jsonb(" [ ] "), "[]");
        assert_eq!(
            jsonb(r#""tab\there \u00e9 \"q\"""#),
            r#""tab\there é \"q\"""#
        );
        assert_eq!(jsonb("-0.5e+3"), "-500");
        assert_eq!(
            jsonb("[1.50, 1e2, 2.50e1, 1.5e-3, -0, 0.0, 12]"),
            "[1.50, 100, 25.0, 0.0015, 0, 0.0, 12]"
        );
        assert_eq!(jsonb(r#"{"k": "\ud83d\ude00"}"#), "{\"k\": \"\u{1f600}\"}");
    }

    #[test]
    fn bad_json_is_refused() {
        for bad in [
            "",
            "{",
            "[1,]",
            "01",
            "1.",
            "{'a': 1}",
            "tru",
            "\"a",
            "[1] 2",
            "\"\\u0000\"",
        ] {
            assert!(Json::parse(bad).is_err(), "{bad}");
        }
        let deep = "[".repeat(600) + &"]".repeat(600);
        assert!(Json::parse(&deep).is_err());
    }

    #[test]
    fn lookups() {
        let value = Json::parse(r#"{"a": [10, "x", null], "b": {"c": 1}}"#).unwrap();
        let a = value.get(&JsonKey::Field("a")).unwrap();
        assert_eq!(a.get(&JsonKey::Index(1)).unwrap().unquoted().unwrap(), "x");
        assert_eq!(a.get(&JsonKey::Index(-3)).unwrap().text(), "10");
        assert_eq!(a.get(&JsonKey::Index(2)).unwrap().unquoted(), None);
        assert!(value.get(&JsonKey::Index(0)).is_none());
        assert_eq!(
            value.get(&JsonKey::Field("b")).unwrap().text(),
            r#"{"c": 1}"#
        );
    }
}
