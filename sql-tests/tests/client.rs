//! A sqllogictest database over tokio-postgres, in either query protocol.

use std::fmt::Write;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use sqllogictest::{AsyncDB, DBOutput, DefaultColumnType};
use tokio_postgres::types::{FromSql, Type};
use tokio_postgres::{Client, NoTls, SimpleQueryMessage};
use weir_server::pg_text::{
    array_element, datetime_text, float4_text, float8_text, interval_parts_text, time_text,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// Statements sent as text; results come back as text.
    Simple,
    /// Parse/Bind/Execute; results come back in binary and are rendered here.
    Extended,
}

impl Protocol {
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Simple => "simple",
            Protocol::Extended => "extended",
        }
    }
}

pub struct PgClient {
    client: Client,
    protocol: Protocol,
    connection: tokio::task::JoinHandle<()>,
}

impl PgClient {
    pub async fn connect(port: u16, protocol: Protocol) -> Result<Self, StatementError> {
        let url = format!("host=127.0.0.1 port={port} user=weir dbname=weir");
        let (client, connection) = tokio_postgres::connect(&url, NoTls)
            .await
            .map_err(StatementError)?;
        let connection = tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(Self {
            client,
            protocol,
            connection,
        })
    }

    async fn run_simple(
        &mut self,
        sql: &str,
    ) -> Result<DBOutput<DefaultColumnType>, tokio_postgres::Error> {
        let mut rows = Vec::new();
        let mut columns = None;
        let mut affected = 0;
        for message in self.client.simple_query(sql).await? {
            match message {
                SimpleQueryMessage::RowDescription(description) => {
                    columns = Some(description.len())
                }
                SimpleQueryMessage::Row(row) => {
                    rows.push((0..row.len()).map(|i| text(row.get(i))).collect());
                }
                SimpleQueryMessage::CommandComplete(count) => affected = count,
                _ => {}
            }
        }
        Ok(match columns {
            Some(width) => DBOutput::Rows {
                types: vec![DefaultColumnType::Any; width],
                rows,
            },
            None => DBOutput::StatementComplete(affected),
        })
    }

    async fn run_extended(
        &mut self,
        sql: &str,
    ) -> Result<DBOutput<DefaultColumnType>, tokio_postgres::Error> {
        let statement = self.client.prepare(sql).await?;
        if statement.columns().is_empty() {
            return Ok(DBOutput::StatementComplete(
                self.client.execute(&statement, &[]).await?,
            ));
        }
        let mut rows = Vec::new();
        for row in self.client.query(&statement, &[]).await? {
            let mut values = Vec::with_capacity(row.len());
            for (i, column) in row.columns().iter().enumerate() {
                values.push(render(&row, i, column.type_())?);
            }
            rows.push(values);
        }
        Ok(DBOutput::Rows {
            types: vec![DefaultColumnType::Any; statement.columns().len()],
            rows,
        })
    }
}

/// How sqllogictest files spell values.
fn text(value: Option<&str>) -> String {
    match value {
        None => "NULL".into(),
        Some("") => "(empty)".into(),
        Some(v) => v.into(),
    }
}

/// A binary value in the same text the simple protocol returns.
fn render(row: &tokio_postgres::Row, i: usize, ty: &Type) -> Result<String, tokio_postgres::Error> {
    fn show<T: ToString>(v: Option<T>) -> Option<String> {
        v.map(|v| v.to_string())
    }
    let value: Option<String> = match *ty {
        Type::BOOL => row
            .try_get::<_, Option<bool>>(i)?
            .map(|b| if b { "t" } else { "f" }.to_string()),
        Type::INT2 => show(row.try_get::<_, Option<i16>>(i)?),
        Type::INT4 => show(row.try_get::<_, Option<i32>>(i)?),
        Type::INT8 => show(row.try_get::<_, Option<i64>>(i)?),
        // As PostgreSQL prints them: 20, not 20.0; 1e+20.
        Type::FLOAT4 => row.try_get::<_, Option<f32>>(i)?.map(|v| float4_text(v, 1)),
        Type::FLOAT8 => row.try_get::<_, Option<f64>>(i)?.map(|v| float8_text(v, 1)),
        Type::NUMERIC => show(row.try_get::<_, Option<rust_decimal::Decimal>>(i)?),
        Type::DATE => show(row.try_get::<_, Option<NaiveDate>>(i)?),
        Type::TIMESTAMP => row
            .try_get::<_, Option<NaiveDateTime>>(i)?
            .map(|t| datetime_text(&t)),
        Type::TIMESTAMPTZ => row
            .try_get::<_, Option<DateTime<Utc>>>(i)?
            .map(|t| format!("{}+00", datetime_text(&t.naive_utc()))),
        Type::INTERVAL => show(row.try_get::<_, Option<Interval>>(i)?),
        Type::TIME => row
            .try_get::<_, Option<NaiveTime>>(i)?
            .map(|t| time_text(&t)),
        Type::UUID | Type::JSON | Type::JSONB => {
            row.try_get::<_, Option<TypedText>>(i)?.map(|t| t.0)
        }
        Type::INT2_ARRAY => array_text(row.try_get::<_, Option<Vec<Option<i16>>>>(i)?),
        Type::INT4_ARRAY => array_text(row.try_get::<_, Option<Vec<Option<i32>>>>(i)?),
        Type::INT8_ARRAY => array_text(row.try_get::<_, Option<Vec<Option<i64>>>>(i)?),
        Type::FLOAT8_ARRAY => array_text(row.try_get::<_, Option<Vec<Option<f64>>>>(i)?.map(|v| {
            v.into_iter()
                .map(|f| f.map(|f| float8_text(f, 1)))
                .collect()
        })),
        Type::TEXT_ARRAY | Type::VARCHAR_ARRAY => {
            array_text(row.try_get::<_, Option<Vec<Option<String>>>>(i)?)
        }
        Type::BYTEA => row.try_get::<_, Option<Vec<u8>>>(i)?.map(|bytes| {
            let mut hex = String::from("\\x");
            for b in bytes {
                let _ = write!(hex, "{b:02x}");
            }
            hex
        }),
        _ => row.try_get::<_, Option<String>>(i)?,
    };
    Ok(text(value.as_deref()))
}

/// An array as PostgreSQL writes it: `{1,NULL,"b c"}`.
fn array_text<T: ToString>(elements: Option<Vec<Option<T>>>) -> Option<String> {
    let elements = elements?;
    let texts: Vec<String> = elements
        .iter()
        .map(|e| match e {
            None => "NULL".to_string(),
            Some(e) => array_element(&e.to_string()),
        })
        .collect();
    Some(format!("{{{}}}", texts.join(",")))
}

/// A uuid, json or jsonb value's text, from its binary form.
struct TypedText(String);

impl<'a> FromSql<'a> for TypedText {
    fn from_sql(
        ty: &Type,
        raw: &'a [u8],
    ) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(TypedText(match *ty {
            Type::UUID => {
                let hex: String = raw.iter().map(|b| format!("{b:02x}")).collect();
                format!(
                    "{}-{}-{}-{}-{}",
                    &hex[0..8],
                    &hex[8..12],
                    &hex[12..16],
                    &hex[16..20],
                    &hex[20..]
                )
            }
            // jsonb's binary form starts with its version byte.
            Type::JSONB => String::from_utf8(raw.get(1..).unwrap_or_default().to_vec())?,
            _ => String::from_utf8(raw.to_vec())?,
        }))
    }

    fn accepts(ty: &Type) -> bool {
        [Type::UUID, Type::JSON, Type::JSONB].contains(ty)
    }
}

/// A Postgres interval, printed as Postgres prints it.
struct Interval {
    months: i32,
    days: i32,
    micros: i64,
}

impl<'a> FromSql<'a> for Interval {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        let bytes: [u8; 16] = raw.try_into()?;
        Ok(Interval {
            micros: i64::from_be_bytes(bytes[0..8].try_into()?),
            days: i32::from_be_bytes(bytes[8..12].try_into()?),
            months: i32::from_be_bytes(bytes[12..16].try_into()?),
        })
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::INTERVAL
    }
}

impl std::fmt::Display for Interval {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let nanoseconds = self.micros.saturating_mul(1_000);
        f.write_str(&interval_parts_text(self.months, self.days, nanoseconds))
    }
}

/// A statement's error as scripts match it: the server's message, not
/// only "db error".
#[derive(Debug)]
pub struct StatementError(tokio_postgres::Error);

impl std::fmt::Display for StatementError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0.as_db_error() {
            Some(db) => write!(f, "{}: {}", db.code().code(), db.message()),
            None => write!(f, "{}", self.0),
        }
    }
}

impl std::error::Error for StatementError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

#[async_trait]
impl AsyncDB for PgClient {
    type Error = StatementError;
    type ColumnType = DefaultColumnType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, Self::Error> {
        match self.protocol {
            Protocol::Simple => self.run_simple(sql).await,
            Protocol::Extended => self.run_extended(sql).await,
        }
        .map_err(StatementError)
    }

    async fn shutdown(&mut self) {
        self.connection.abort();
    }

    fn engine_name(&self) -> &str {
        "weir"
    }

    fn error_sql_state(err: &Self::Error) -> Option<String> {
        err.0.code().map(|code| code.code().to_string())
    }

    async fn sleep(duration: std::time::Duration) {
        tokio::time::sleep(duration).await
    }
}
