//! The same statements on PostgreSQL and on weir, their answers compared:
//! constants of every type weir has, casts with and without type
//! modifiers, numeric arithmetic, text casts, and a table of every column
//! type written with literals and with binary parameters, then read back.
//! Each query is compared in text (simple protocol: column names and
//! values) and, where its types are PostgreSQL's, in binary (extended
//! protocol: column types and the exact bytes of every value).
//!
//! PostgreSQL runs from Debian's server package (`scripts/install-deps.sh
//! test`) in a scratch cluster on a private Unix socket, as the `postgres`
//! user when the test runs as root. The differences weir keeps on purpose
//! (docs/sql.md, "Differences from PostgreSQL") are not asked here.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail, ensure};
use chrono::{NaiveDate, NaiveDateTime, TimeZone, Utc};
use rust_decimal::Decimal;
use tokio_postgres::types::{FromSql, ToSql, Type};
use tokio_postgres::{Client, NoTls, SimpleQueryMessage};

use crate::Test;
use crate::crash::connect;

pub const TESTS: &[(&str, Test)] = &[(
    "postgres/constants, casts, numerics and stored values read as PostgreSQL's, text and binary",
    || Box::pin(same_answers()),
)];

/// Constants whose type is PostgreSQL's too: compared in text and binary.
const TYPED: &[&str] = &[
    "SELECT 'it''s', 'O''Brien' AS name, '', E'a\\nb', 'ünïcödé'",
    "SELECT 1.5, -0.0, 0.000001, 1e3, 1.5e-3, 123456789012345678901234567890.5",
    "SELECT true, false, NOT true, true AND NULL, 't'::boolean, 'off'::boolean",
    "SELECT 1::int2, (-32768)::int2, 1::int4, 2147483647::int4, 1::int8, (-9223372036854775807)::int8",
    "SELECT 1.5::float4, 0.1::float4, 3.4e38::float4, '-Infinity'::float4, 1e6::float4",
    "SELECT 1.5::float8, 0.1::float8, 1e20::float8, 1e-5::float8, 'Infinity'::float8, 'NaN'::float8",
    "SELECT 123456789012345678::float8, 1e15::float8, 1e14::float8, -0.0::float8",
    "SELECT 12.345::numeric(10,2), 0.5::numeric(3,0), -0.5::numeric(3,0), 2.5::numeric(2,0)",
    "SELECT 1234567890123456789.0123456789::numeric(38,10), '99999999.99'::numeric(10,2)",
    "SELECT 123::numeric, 1.10::numeric, '-2.50'::numeric, 0::numeric, 100::numeric(5,2)",
    "SELECT 1.5 + 2.25, 1.5 * 2.25, 10.00 - 0.01, -(1.5), 2.5::numeric(10,2) * 4",
    "SELECT abs(-1.5), round(2.5), round(-2.5), round(1.2345, 2), 1.5 < 2.25, 1.50 = 1.5",
    "SELECT 7::int4 / 2::int4, 7::int4 % 3::int4, (-7)::int4 / 2::int4, 2::int4 * 3::int4, 7::int8 / 2",
    "SELECT '2024-01-01'::date, '1970-01-01'::date, '2024-02-29'::date",
    "SELECT '2024-01-01 00:00:04'::timestamp, '2024-01-01 00:00:04.5'::timestamp, \
     '1999-12-31 23:59:59.999999'::timestamp",
    "SELECT '2024-01-01 00:00:04+02'::timestamptz, '2024-01-01 12:00:00Z'::timestamptz, \
     '2000-01-01 00:00:00.25+00'::timestamptz",
    "SELECT '1 day 2 hours'::interval, '3 mons'::interval, '-1 day'::interval, \
     '1.5 seconds'::interval, '1 year 2 months'::interval, INTERVAL '90 minutes'",
    "SELECT '-1 days +02:00:00'::interval, INTERVAL '1 year 2 mons 3 days 04:05:06.5', \
     '2 hours ago'::interval, '1.5 days'::interval, '@ 3 mins'::interval",
    "SELECT '2024-01-01 00:00:04'::timestamp::text, 1.5::float8::text, 1e20::float8::text, \
     '1 day'::interval::text, 12.30::numeric(10,2)::text, true::text, '2024-01-01'::date::text",
    "SELECT 'deadbeef'::bytea, decode('deadbeef', 'hex'), '\\xDEADbeef'::bytea, ''::bytea",
    "SELECT count(*), count(x), sum(x), min(x), max(x) FROM (VALUES (1.50), (2.25), (-1.00)) AS t(x)",
    "SELECT a, a, a + 1::int4 FROM (VALUES (1::int4)) AS t(a)",
    "SELECT '12:34:56'::time, '12:34:56.789'::time, '00:00:00'::time, '23:59:59.999999'::time",
    "SELECT 'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11'::uuid, '{a0eebc999c0b4ef8bb6d6bb9bd380a11}'::uuid",
    "SELECT '{\"b\": 1, \"a\": [1, 2.50], \"b\": 3}'::jsonb, '{\"b\": 1,  \"a\": 2}'::json, \
     '[true, null, \"x\\ty\", -0.5e+3]'::jsonb, '\"\\u00e9\"'::jsonb",
    "SELECT '{\"a\": [10, \"x\"], \"b\": {\"c\": 1}}'::jsonb -> 'a', \
     '{\"a\": [10, \"x\"]}'::jsonb -> 'a' ->> 1, '[1, 2]'::jsonb -> -1, '{\"a\": 1}'::jsonb ->> 'z'",
    "SELECT ARRAY[1,2,3]::int4[], '{1,2,NULL}'::int4[], '{a,\"b c\",NULL,\"\",\"q\\\"\"}'::text[], \
     '{1.5,2.25,1e20}'::float8[], '{t,f}'::boolean[], '{}'::int4[], ARRAY['x', NULL]",
    "SELECT '{2024-01-01,NULL}'::date[], '{1.50,2}'::numeric(10,2)[], (ARRAY[1,2]::int4[])[2], \
     ARRAY[1.5::float8]::text",
];

/// Constants written without a type: an integer constant is `bigint` in
/// weir (`integer` in PostgreSQL when it fits), so these are compared in
/// text only.
const UNTYPED: &[&str] = &[
    "SELECT 1, -1, 0, 2147483648, 9223372036854775807, 9223372036854775808",
    "SELECT 7 / 2, 7 % 3, -7 / 2, -7 % 3, 2 ^ 10",
    "SELECT count(*), sum(x), min(x), max(x) FROM (VALUES (1), (2), (4)) AS t(x)",
    // DataFusion's cardinality answers in bigint where PostgreSQL's does in
    // integer.
    "SELECT id, ints[1], cardinality(texts), texts[2] FROM arrays ORDER BY id",
];

const TABLE: &str = "CREATE TABLE every_type (
    id INT PRIMARY KEY, b BOOLEAN, s SMALLINT, i INTEGER, l BIGINT, r REAL,
    d DOUBLE PRECISION, n NUMERIC(38, 10), m NUMERIC(10, 2), v VARCHAR(20), t TEXT,
    dt DATE, ts TIMESTAMP, tz TIMESTAMPTZ, iv INTERVAL, by BYTEA)";

const ROWS: &str = "INSERT INTO every_type VALUES
    (1, true, 1, 2, 3, 1.5, 2.25, 1234567890123456789.0123456789, 12.34, 'hello', 'it''s',
     '2024-01-02', '2024-01-02 03:04:05', '2024-01-02 03:04:05+02', '1 day 02:00:00',
     '\\xdeadbeef'),
    (2, false, -32768, -2147483648, -9223372036854775808, -0.5, -1e10, -0.0000000001,
     -99999999.99, '', 'ünïcödé', '1970-01-01', '1999-12-31 23:59:59.5',
     '2000-01-01 00:00:00+00', '-1 days +02:00:00', ''),
    (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
    (4, true, 32767, 2147483647, 9223372036854775807, 3.4e38, 1e300, 0, 0.5, 'x', 'y',
     '2024-02-29', '2024-01-01 00:00:00.000001', '2024-06-30 23:59:59.75-07:00',
     '1 year 2 mons 3 days 04:05:06.5', '\\x00ff')";

const TEXT_TYPES: &str = "CREATE TABLE text_types (
    id INT PRIMARY KEY, at TIME, ref UUID, body JSON, doc JSONB);
    INSERT INTO text_types VALUES
    (1, '12:34:56.5', 'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11', '{\"b\": 1,  \"a\": [1, 2.50]}',
     '{\"b\": 1,  \"a\": [1, 2.50], \"b\": 3}'),
    (2, '00:00:00', '{a0eebc999c0b4ef8bb6d6bb9bd380a12}', '\"text\"', '[true, null, {\"k\": \"v\"}]'),
    (3, NULL, NULL, NULL, NULL)";

const ARRAYS: &str = "CREATE TABLE arrays (
    id INT PRIMARY KEY, ints INT[], texts TEXT[], floats FLOAT8[], flags BOOLEAN[], days DATE[]);
    INSERT INTO arrays VALUES
    (1, '{1,2,3}', '{a,\"b c\",\"\"}', '{0.1,-2.5e-7}', '{t,NULL}', '{2024-02-29}'),
    (2, ARRAY[-4, NULL], ARRAY['NULL', 'x,y'], ARRAY[1e300], ARRAY[false], '{}'),
    (3, NULL, NULL, NULL, NULL, NULL),
    (4, '{}', '{}', '{}', '{}', '{}')";

const READ_BACK: &[&str] = &[
    "SELECT * FROM arrays ORDER BY id",
    "SELECT * FROM text_types ORDER BY id",
    "SELECT id, doc -> 'a', doc ->> 'b', doc -> 2 ->> 'k', body ->> 'b' FROM text_types ORDER BY id",
    "SELECT * FROM every_type ORDER BY id",
    "SELECT id, n * 2, m + 1, -m, n - m, l / 2, i % 7::int4, r / 2::real, d / 4 FROM every_type ORDER BY id",
    "SELECT id, ts::text, tz::text, iv::text, d::text FROM every_type ORDER BY id",
    "SELECT count(*), sum(m), min(n), max(n), sum(i), min(ts), max(iv) FROM every_type",
];

async fn same_answers() -> anyhow::Result<()> {
    let postgres = Postgres::start().await?;
    let reference = postgres.connect().await?;
    let weir_dir = tempfile::tempdir()?;
    let weir_server = crate::start_server(weir_dir.path()).await?;
    let weir = connect(weir_server.local_addr().port()).await?;

    let mut differences = Vec::new();
    for sql in TYPED {
        compare_text(&reference, &weir, sql, &mut differences).await?;
        compare_binary(&reference, &weir, sql, &mut differences).await?;
    }
    for client in [&reference, &weir] {
        client.batch_execute(TABLE).await?;
        client.batch_execute(ROWS).await?;
        client.batch_execute(TEXT_TYPES).await?;
        client.batch_execute(ARRAYS).await?;
        insert_with_parameters(client).await?;
    }
    for sql in UNTYPED {
        compare_text(&reference, &weir, sql, &mut differences).await?;
    }
    for sql in READ_BACK {
        compare_text(&reference, &weir, sql, &mut differences).await?;
        compare_binary(&reference, &weir, sql, &mut differences).await?;
    }
    binary_copy(&reference, &weir, &mut differences).await?;
    weir_server.shutdown().await;
    let asked = 2 * (TYPED.len() + READ_BACK.len()) + UNTYPED.len() + BINARY_COPY_ANSWERS;
    ensure!(
        differences.is_empty(),
        "{} of {asked} answers differ from PostgreSQL's:\n{}",
        differences.len(),
        differences.join("\n")
    );
    println!("    {asked} answers, each the same as PostgreSQL's");
    Ok(())
}

/// Rows 10 and 11 through binary parameters of every type tokio-postgres
/// sends, numerics of 20 and more integer digits among them.
async fn insert_with_parameters(client: &Client) -> anyhow::Result<()> {
    let sql = "INSERT INTO every_type (id, b, s, i, l, r, d, n, m, v, t, dt, ts, tz, by)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)";
    let day = NaiveDate::from_ymd_opt(2024, 3, 4).context("date")?;
    let time: NaiveDateTime = day.and_hms_micro_opt(5, 6, 7, 890_000).context("time")?;
    let zoned = Utc.from_utc_datetime(&time);
    let decimal = |s: &str| s.parse::<Decimal>();
    for (id, n, m) in [
        (
            10,
            decimal("123456789012345678901.5")?,
            decimal("-12345678.9")?,
        ),
        (11, decimal("-0.0000000001")?, decimal("0.01")?),
    ] {
        let params: [&(dyn ToSql + Sync); 15] = [
            &id,
            &true,
            &-7i16,
            &i32::MIN,
            &i64::MAX,
            &0.1f32,
            &-1e-300f64,
            &n,
            &m,
            &"param",
            &"ünï ''",
            &day,
            &time,
            &zoned,
            &vec![0u8, 1, 254, 255],
        ];
        client.execute(sql, &params).await?;
    }
    Ok(())
}

/// What [`binary_copy`] compares: the COPY TO bytes of every table, and
/// each table copied back in, in text and binary.
const BINARY_COPY_ANSWERS: usize = 9;

/// `COPY ... TO STDOUT (FORMAT binary)` of each table gives PostgreSQL's
/// bytes, and those bytes, copied into weir, give back the same rows.
async fn binary_copy(
    reference: &Client,
    weir: &Client,
    differences: &mut Vec<String>,
) -> anyhow::Result<()> {
    for (table, create) in [
        ("every_type", TABLE),
        ("text_types", TEXT_TYPES),
        ("arrays", ARRAYS),
    ] {
        let sql = format!("COPY (SELECT * FROM {table} ORDER BY id) TO STDOUT (FORMAT binary)");
        let expected = copy_out(reference, &sql)
            .await
            .map_err(anyhow::Error::msg)?;
        match copy_out(weir, &sql).await {
            Ok(bytes) if bytes == expected => {}
            Ok(bytes) => differences.push(format!(
                "{sql}\n  postgres: {expected:?}\n  weir:     {bytes:?}"
            )),
            Err(e) => differences.push(format!("{sql}\n  weir refuses it: {e}")),
        }
        let copy = format!("{table}_copied");
        let create = create
            .split(';')
            .next()
            .unwrap_or(create)
            .replacen(table, &copy, 1);
        weir.batch_execute(&create).await?;
        let sink = weir
            .copy_in(&format!("COPY {copy} FROM STDIN (FORMAT binary)"))
            .await?;
        futures::pin_mut!(sink);
        use futures::SinkExt;
        sink.send(bytes::Bytes::from(expected)).await?;
        let copied = sink.finish().await;
        if let Err(e) = copied {
            differences.push(format!(
                "COPY {copy} FROM STDIN (FORMAT binary): {}",
                error_text(&e)
            ));
            continue;
        }
        let original = format!("SELECT * FROM {table} ORDER BY id");
        let back = format!("SELECT * FROM {copy} ORDER BY id");
        let expected = text_answer(reference, &original).await;
        if text_answer(weir, &back).await != expected {
            differences.push(format!(
                "{back} differs from PostgreSQL's {original} (text)"
            ));
        }
        let expected = binary_answer(reference, &original).await;
        if binary_answer(weir, &back).await != expected {
            differences.push(format!(
                "{back} differs from PostgreSQL's {original} (binary)"
            ));
        }
    }
    Ok(())
}

async fn copy_out(client: &Client, sql: &str) -> Result<Vec<u8>, String> {
    use futures::TryStreamExt;
    let stream = client.copy_out(sql).await.map_err(|e| error_text(&e))?;
    let chunks: Vec<bytes::Bytes> = stream.try_collect().await.map_err(|e| error_text(&e))?;
    Ok(chunks.concat())
}

/// Names and text values of every row `sql` returns.
type TextAnswer = (Vec<String>, Vec<Vec<Option<String>>>);

async fn text_answer(client: &Client, sql: &str) -> Result<TextAnswer, String> {
    let messages = client.simple_query(sql).await.map_err(|e| error_text(&e))?;
    let mut names = Vec::new();
    let mut rows = Vec::new();
    for message in messages {
        match message {
            SimpleQueryMessage::RowDescription(columns) => {
                names = columns.iter().map(|c| c.name().to_string()).collect();
            }
            SimpleQueryMessage::Row(row) => {
                rows.push(
                    (0..row.len())
                        .map(|i| row.get(i).map(str::to_string))
                        .collect(),
                );
            }
            _ => {}
        }
    }
    Ok((names, rows))
}

async fn compare_text(
    reference: &Client,
    weir: &Client,
    sql: &str,
    differences: &mut Vec<String>,
) -> anyhow::Result<()> {
    let expected = text_answer(reference, sql).await;
    let expected = match expected {
        Ok(answer) => answer,
        Err(e) => bail!("PostgreSQL refuses {sql}: {e}"),
    };
    match text_answer(weir, sql).await {
        Ok(answer) if answer == expected => {}
        Ok(answer) => differences.push(format!(
            "text of {sql}\n  postgres: {expected:?}\n  weir:     {answer:?}"
        )),
        Err(e) => differences.push(format!("text of {sql}\n  weir refuses it: {e}")),
    }
    Ok(())
}

/// Any value's bytes as the server sent them.
struct Raw(Option<Vec<u8>>);

impl<'a> FromSql<'a> for Raw {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Raw(Some(raw.to_vec())))
    }

    fn from_sql_null(_: &Type) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Raw(None))
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

/// Column types and binary values of every row `sql` returns.
type BinaryAnswer = (Vec<String>, Vec<Vec<Option<Vec<u8>>>>);

async fn binary_answer(client: &Client, sql: &str) -> Result<BinaryAnswer, String> {
    let statement = client.prepare(sql).await.map_err(|e| error_text(&e))?;
    let types = statement
        .columns()
        .iter()
        .map(|c| c.type_().name().to_string())
        .collect();
    let rows = client
        .query(&statement, &[])
        .await
        .map_err(|e| error_text(&e))?;
    let values = rows
        .iter()
        .map(|row| (0..row.len()).map(|i| row.get::<_, Raw>(i).0).collect())
        .collect();
    Ok((types, values))
}

async fn compare_binary(
    reference: &Client,
    weir: &Client,
    sql: &str,
    differences: &mut Vec<String>,
) -> anyhow::Result<()> {
    let expected = match binary_answer(reference, sql).await {
        Ok(answer) => answer,
        Err(e) => bail!("PostgreSQL refuses {sql}: {e}"),
    };
    match binary_answer(weir, sql).await {
        Ok(answer) if answer == expected => {}
        Ok(answer) => differences.push(format!(
            "binary of {sql}\n  postgres: {expected:?}\n  weir:     {answer:?}"
        )),
        Err(e) => differences.push(format!("binary of {sql}\n  weir refuses it: {e}")),
    }
    Ok(())
}

fn error_text(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {}", db.code().code(), db.message()),
        None => e.to_string(),
    }
}

/// A scratch PostgreSQL cluster, stopped and removed when dropped.
struct Postgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    /// PostgreSQL refuses to run as root; then it runs as `postgres`.
    as_postgres: bool,
}

const SOCKET_PORT: u16 = 5432;

impl Postgres {
    async fn start() -> anyhow::Result<Self> {
        let bin = server_bin()?;
        let as_postgres = output(Command::new("id").arg("-u"))?.trim() == "0";
        let dir = tempfile::tempdir()?;
        let postgres = Self {
            dir,
            bin,
            as_postgres,
        };
        if as_postgres {
            let mut chown = Command::new("chown");
            chown.args(["-R", "postgres"]).arg(postgres.dir.path());
            output(&mut chown)?;
        }
        let data = postgres.data();
        let mut initdb = postgres.command("initdb");
        initdb.arg("-D").arg(&data).args([
            "-U",
            "weir",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--locale=C",
            "-N",
        ]);
        run_blocking(initdb).await?;
        let options = format!(
            "-k {} -c listen_addresses= -p {SOCKET_PORT} -F",
            postgres.dir.path().display()
        );
        let mut start = postgres.command("pg_ctl");
        start
            .args(["start", "-w", "-t", "60", "-D"])
            .arg(&data)
            .arg("-l")
            .arg(postgres.dir.path().join("log"))
            .args(["-o", &options]);
        run_blocking(start).await?;
        Ok(postgres)
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn command(&self, program: &str) -> Command {
        let program = self.bin.join(program);
        if self.as_postgres {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(program);
            command
        } else {
            Command::new(program)
        }
    }

    async fn connect(&self) -> anyhow::Result<Client> {
        let url = format!(
            "host={} port={SOCKET_PORT} user=weir dbname=postgres",
            self.dir.path().display()
        );
        let (client, connection) = tokio_postgres::connect(&url, NoTls).await?;
        tokio::spawn(connection);
        // The session settings weir has: UTC, ISO dates.
        client.batch_execute("SET TimeZone = 'UTC'").await?;
        Ok(client)
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let mut stop = self.command("pg_ctl");
        stop.args(["stop", "-m", "immediate", "-D"])
            .arg(self.data());
        let _ = stop.output();
    }
}

/// Debian's server binaries, the newest version installed.
fn server_bin() -> anyhow::Result<PathBuf> {
    let root = Path::new("/usr/lib/postgresql");
    let mut versions: Vec<PathBuf> = std::fs::read_dir(root)
        .map(|entries| entries.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    versions.retain(|v| v.join("bin/initdb").exists());
    versions.sort_by_key(|v| {
        v.file_name()
            .and_then(|n| n.to_str()?.parse::<u32>().ok())
            .unwrap_or(0)
    });
    match versions.pop() {
        Some(version) => Ok(version.join("bin")),
        None => bail!(
            "no PostgreSQL server under {} (scripts/install-deps.sh test installs one)",
            root.display()
        ),
    }
}

fn output(command: &mut Command) -> anyhow::Result<String> {
    let out = command
        .output()
        .with_context(|| format!("starting {command:?}"))?;
    ensure!(
        out.status.success(),
        "{command:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs `command` off the runtime's threads, which the weir under test shares.
async fn run_blocking(mut command: Command) -> anyhow::Result<String> {
    tokio::task::spawn_blocking(move || output(&mut command)).await?
}
