//! Wire-protocol behaviour that sqllogictest files cannot express:
//! typed parameters, broken frames, cancellation, multi-statement queries.

use std::time::Duration;

use anyhow::{Context, bail, ensure};
use chrono::{NaiveDate, NaiveDateTime};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, NoTls};

use crate::Test;

pub const TESTS: &[(&str, Test)] = &[
    ("protocol/typed parameters round-trip", || {
        Box::pin(typed_parameters())
    }),
    (
        "protocol/malformed frames close only their connection",
        || Box::pin(malformed_frames()),
    ),
    ("protocol/cancel leaves the session usable", || {
        Box::pin(cancel())
    }),
    ("protocol/simple query stops at the first error", || {
        Box::pin(multi_statement())
    }),
    ("protocol/unknown user and database are refused", || {
        Box::pin(refused_logins())
    }),
    (
        "protocol/numeric parameters keep every digit; Bind counts are checked",
        || Box::pin(numeric_parameters_and_bind_counts()),
    ),
    (
        "protocol/transactions through a driver: rollback, commit, a dropped connection, kept DDL",
        || Box::pin(driver_transactions()),
    ),
    (
        "protocol/result columns are named as PostgreSQL names them",
        || Box::pin(column_names()),
    ),
    (
        "protocol/pg_cancel_backend stops another session's query; pg_terminate_backend ends its connection",
        || Box::pin(cancel_backend()),
    ),
];

pub(crate) async fn connect_as(
    port: u16,
    user: &str,
    dbname: &str,
) -> Result<Client, tokio_postgres::Error> {
    let url = format!("host=127.0.0.1 port={port} user={user} dbname={dbname}");
    let (client, connection) = tokio_postgres::connect(&url, NoTls).await?;
    tokio::spawn(connection);
    Ok(client)
}

pub(crate) async fn connect(port: u16) -> anyhow::Result<Client> {
    Ok(connect_as(port, "weir", "weir").await?)
}

async fn typed_parameters() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let server = crate::start_server(dir.path()).await?;
    let client = connect(server.local_addr().port()).await?;
    client
        .batch_execute(
            "CREATE TABLE p (id INT PRIMARY KEY, b BOOLEAN, s SMALLINT, l BIGINT, r REAL, d DOUBLE PRECISION, \
             t TEXT, dt DATE, ts TIMESTAMP, by BYTEA)",
        )
        .await?;
    let insert = client
        .prepare("INSERT INTO p VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)")
        .await?;
    let date = NaiveDate::from_ymd_opt(2024, 2, 29).context("date")?;
    let time: NaiveDateTime = date.and_hms_micro_opt(13, 14, 15, 123456).context("time")?;
    let bytes: Vec<u8> = vec![0, 1, 254, 255];
    let n = client
        .execute(
            &insert,
            &[
                &7i32,
                &true,
                &-3i16,
                &(1i64 << 40),
                &1.25f32,
                &-2.5f64,
                &"naïve",
                &date,
                &time,
                &bytes,
            ],
        )
        .await?;
    ensure!(n == 1, "INSERT reported {n}");
    let nulls: [Option<i64>; 1] = [None];
    client
        .execute(
            &insert,
            &[
                &8i32,
                &None::<bool>,
                &None::<i16>,
                &nulls[0],
                &None::<f32>,
                &None::<f64>,
                &None::<&str>,
                &None::<NaiveDate>,
                &None::<NaiveDateTime>,
                &None::<Vec<u8>>,
            ],
        )
        .await?;

    let row = client
        .query_one("SELECT * FROM p WHERE id = $1", &[&7i32])
        .await?;
    ensure!(row.get::<_, bool>(1));
    ensure!(row.get::<_, i16>(2) == -3);
    ensure!(row.get::<_, i64>(3) == 1 << 40);
    ensure!(row.get::<_, f32>(4) == 1.25);
    ensure!(row.get::<_, f64>(5) == -2.5);
    ensure!(row.get::<_, &str>(6) == "naïve");
    ensure!(row.get::<_, NaiveDate>(7) == date);
    ensure!(row.get::<_, NaiveDateTime>(8) == time);
    ensure!(row.get::<_, Vec<u8>>(9) == bytes);

    let all_null: bool = client
        .query_one(
            "SELECT b IS NULL AND s IS NULL AND l IS NULL AND r IS NULL AND d IS NULL AND t IS NULL \
             AND dt IS NULL AND ts IS NULL AND by IS NULL FROM p WHERE id = $1",
            &[&8i32],
        )
        .await?
        .get(0);
    ensure!(all_null, "NULL parameters were not stored as NULL");
    // The same prepared statement, several parameter values.
    let by_key = client
        .prepare("SELECT count(*) FROM p WHERE id = $1 OR t = $2")
        .await?;
    let count: i64 = client.query_one(&by_key, &[&8i32, &"naïve"]).await?.get(0);
    ensure!(count == 2, "count {count}");
    let update = client
        .prepare("UPDATE p SET l = l + $1 WHERE id = $2")
        .await?;
    ensure!(client.execute(&update, &[&1i64, &7i32]).await? == 1);
    let l: i64 = client
        .query_one("SELECT l FROM p WHERE id = 7", &[])
        .await?
        .get(0);
    ensure!(l == (1 << 40) + 1, "l = {l}");
    server.shutdown().await;
    Ok(())
}

async fn malformed_frames() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let server = crate::start_server(dir.path()).await?;
    let port = server.local_addr().port();
    let survivor = connect(port).await?;
    survivor
        .batch_execute("CREATE TABLE t (a INT PRIMARY KEY); INSERT INTO t VALUES (1)")
        .await?;

    let broken: [&[u8]; 4] = [
        // A startup packet with an unknown protocol version.
        &[0, 0, 0, 8, 0xde, 0xad, 0xbe, 0xef],
        // A length that claims far more than will ever come.
        &[0x7f, 0xff, 0xff, 0xff, 0, 3, 0, 0],
        // A length smaller than the header itself.
        &[0, 0, 0, 1],
        // Random bytes.
        b"GET / HTTP/1.1\r\n\r\n",
    ];
    for bytes in broken {
        let mut socket = TcpStream::connect(("127.0.0.1", port)).await?;
        socket.write_all(bytes).await?;
        let mut sink = Vec::new();
        // The server must close (or answer and close); it may not hang forever.
        let _ = tokio::time::timeout(Duration::from_secs(5), socket.read_to_end(&mut sink)).await;
    }
    // After a proper startup: a truncated message, and an unknown message type.
    for bytes in [&b"Q\x00\x00\x00\x64SELE"[..], &[0x01, 0, 0, 0, 4]] {
        let mut socket = started_session(port).await?;
        socket.write_all(bytes).await?;
        socket.shutdown().await?;
        let mut sink = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), socket.read_to_end(&mut sink)).await;
    }

    let count: i64 = survivor
        .query_one("SELECT count(*) FROM t", &[])
        .await?
        .get(0);
    ensure!(count == 1, "the surviving session sees {count} rows");
    let fresh = connect(port).await?;
    fresh.batch_execute("INSERT INTO t VALUES (2)").await?;
    server.shutdown().await;
    Ok(())
}

/// A raw connection past startup (ReadyForQuery received).
pub(crate) async fn started_session(port: u16) -> anyhow::Result<TcpStream> {
    let mut socket = TcpStream::connect(("127.0.0.1", port)).await?;
    let body: &[u8] = b"\x00\x03\x00\x00user\0weir\0database\0weir\0\0";
    socket
        .write_all(&(body.len() as u32 + 4).to_be_bytes())
        .await?;
    socket.write_all(body).await?;
    loop {
        let kind = socket.read_u8().await?;
        let len = socket.read_u32().await? as usize;
        let mut payload = vec![0; len.saturating_sub(4)];
        socket.read_exact(&mut payload).await?;
        match kind {
            b'Z' => return Ok(socket),
            b'E' => bail!("startup refused: {}", String::from_utf8_lossy(&payload)),
            _ => {}
        }
    }
}

async fn cancel() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let server = crate::start_server(dir.path()).await?;
    let client = connect(server.local_addr().port()).await?;
    let token = client.cancel_token();
    let canceller = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        token.cancel_query(NoTls).await
    });
    let slow = client
        .query_one("SELECT count(*) FROM generate_series(1, 5000000000)", &[])
        .await;
    canceller.await??;
    match slow {
        Err(e) if e.code() == Some(&SqlState::QUERY_CANCELED) => {}
        Err(e) => bail!("expected a cancellation, got {e:?}"),
        Ok(_) => bail!("the query finished before it could be cancelled"),
    }
    let one: i64 = client.query_one("SELECT 1::BIGINT", &[]).await?.get(0);
    ensure!(one == 1);
    server.shutdown().await;
    Ok(())
}

async fn multi_statement() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let server = crate::start_server(dir.path()).await?;
    let client = connect(server.local_addr().port()).await?;
    client
        .batch_execute("CREATE TABLE t (a INT PRIMARY KEY)")
        .await?;
    let result = client
        .batch_execute("INSERT INTO t VALUES (1); SELECT 1 / 0; INSERT INTO t VALUES (2)")
        .await;
    ensure!(
        result.as_ref().err().and_then(|e| e.code()) == Some(&SqlState::DIVISION_BY_ZERO),
        "{result:?}"
    );
    let rows: Vec<i32> = client
        .query("SELECT a FROM t", &[])
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    ensure!(rows == vec![1], "rows after the failed batch: {rows:?}");
    let error = client
        .prepare("SELECT 1; SELECT 2")
        .await
        .err()
        .context("two statements prepared")?;
    ensure!(error.code() == Some(&SqlState::SYNTAX_ERROR), "{error:?}");
    server.shutdown().await;
    Ok(())
}

async fn refused_logins() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let server = crate::start_server(dir.path()).await?;
    let port = server.local_addr().port();
    let user = connect_as(port, "mallory", "weir")
        .await
        .err()
        .context("unknown user accepted")?;
    ensure!(
        user.code() == Some(&SqlState::INVALID_AUTHORIZATION_SPECIFICATION),
        "{user:?}"
    );
    let db = connect_as(port, "weir", "other")
        .await
        .err()
        .context("unknown database accepted")?;
    ensure!(db.code() == Some(&SqlState::INVALID_CATALOG_NAME), "{db:?}");
    connect(port).await?;
    server.shutdown().await;
    Ok(())
}

/// A numeric in PostgreSQL's binary form, written as given.
#[derive(Debug)]
struct RawNumeric(Vec<u8>);

impl tokio_postgres::types::ToSql for RawNumeric {
    fn to_sql(
        &self,
        _: &tokio_postgres::types::Type,
        out: &mut bytes::BytesMut,
    ) -> Result<tokio_postgres::types::IsNull, Box<dyn std::error::Error + Sync + Send>> {
        out.extend_from_slice(&self.0);
        Ok(tokio_postgres::types::IsNull::No)
    }

    fn accepts(ty: &tokio_postgres::types::Type) -> bool {
        *ty == tokio_postgres::types::Type::NUMERIC
    }

    tokio_postgres::types::to_sql_checked!();
}

/// Binary numerics wider than 28 digits keep their scale (they used to be
/// stored divided by ten), text ones too, and a Bind with more values than
/// the statement takes is a protocol violation (08P01) that leaves the
/// session usable.
async fn numeric_parameters_and_bind_counts() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let server = crate::start_server(dir.path()).await?;
    let port = server.local_addr().port();
    let client = connect(port).await?;
    client
        .batch_execute("CREATE TABLE m (id INT PRIMARY KEY, x NUMERIC(38, 10))")
        .await?;
    // 1234567890123456789.0123456789: base-10000 digits, weight 4, scale 10.
    let mut binary = Vec::new();
    for word in [8u16, 4, 0, 10, 123, 4567, 8901, 2345, 6789, 123, 4567, 8900] {
        binary.extend_from_slice(&word.to_be_bytes());
    }
    let insert = client.prepare("INSERT INTO m VALUES ($1, $2)").await?;
    client
        .execute(&insert, &[&1i32, &RawNumeric(binary)])
        .await?;
    client
        .execute(
            "INSERT INTO m VALUES (2, $1::text::numeric(38, 10))",
            &[&"-98765432109876543210.5"],
        )
        .await?;
    let rows = client.simple_query("SELECT x FROM m ORDER BY id").await?;
    let values: Vec<String> = rows
        .iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(row) => row.get(0).map(str::to_string),
            _ => None,
        })
        .collect();
    ensure!(
        values
            == [
                "1234567890123456789.0123456789",
                "-98765432109876543210.5000000000"
            ],
        "numerics stored as {values:?}"
    );

    let mut socket = started_session(port).await?;
    let message = |kind: u8, body: &[u8]| {
        let mut m = vec![kind];
        m.extend_from_slice(&(body.len() as u32 + 4).to_be_bytes());
        m.extend_from_slice(body);
        m
    };
    let mut frames = message(b'P', b"\0SELECT 1\0\0\0");
    // Two parameter values for a statement that takes none.
    frames.extend(message(b'B', b"\0\0\0\0\0\x02\0\0\0\x011\0\0\0\x012\0\0"));
    frames.extend(message(b'E', b"\0\0\0\0\0"));
    frames.extend(message(b'S', b""));
    socket.write_all(&frames).await?;
    let mut codes = Vec::new();
    loop {
        let kind = socket.read_u8().await?;
        let len = socket.read_u32().await? as usize;
        let mut payload = vec![0; len.saturating_sub(4)];
        socket.read_exact(&mut payload).await?;
        match kind {
            b'E' => codes.push(String::from_utf8_lossy(&payload).to_string()),
            b'Z' => break,
            _ => {}
        }
    }
    ensure!(
        codes.iter().any(|e| e.contains("C08P01")),
        "a Bind with two values for no parameters answered {codes:?}"
    );
    let count: i64 = client
        .query_one("SELECT count(*) FROM m", &[])
        .await?
        .get(0);
    ensure!(count == 2, "{count} rows");
    server.shutdown().await;
    Ok(())
}

/// A driver's transaction API: rollback undoes, commit writes, a
/// connection dropped mid-block writes nothing; DDL kept by ROLLBACK and
/// COMMIT outside a block are WARNINGs.
async fn driver_transactions() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let server = crate::start_server(dir.path()).await?;
    let url = format!(
        "host=127.0.0.1 port={} user=weir dbname=weir",
        server.local_addr().port()
    );
    let (mut client, mut connection) = tokio_postgres::connect(&url, NoTls).await?;
    let (notices, mut received) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(Ok(message)) = futures::StreamExt::next(&mut messages).await {
            if let tokio_postgres::AsyncMessage::Notice(notice) = message {
                let _ = notices.send(format!("{} {}", notice.code().code(), notice.message()));
            }
        }
    });
    let mut next_notice = async || {
        tokio::time::timeout(Duration::from_secs(5), received.recv())
            .await
            .context("no warning")?
            .context("connection closed")
    };
    client
        .batch_execute("BEGIN; CREATE TABLE t (a INT PRIMARY KEY); ROLLBACK")
        .await?;
    let warning = next_notice().await?;
    ensure!(
        warning.starts_with("01000 ROLLBACK kept CREATE TABLE"),
        "{warning}"
    );
    client.batch_execute("COMMIT").await?;
    let warning = next_notice().await?;
    ensure!(warning.starts_with("25P01"), "{warning}");

    let count = async |client: &tokio_postgres::Client| -> anyhow::Result<i64> {
        Ok(client
            .query_one("SELECT count(*) FROM t", &[])
            .await?
            .get(0))
    };
    let insert = client.prepare("INSERT INTO t VALUES ($1)").await?;
    let transaction = client.transaction().await?;
    for a in [1, 2] {
        transaction.execute(&insert, &[&a]).await?;
    }
    transaction.rollback().await?;
    ensure!(count(&client).await? == 0, "rows after rollback");

    let transaction = client.transaction().await?;
    for a in [1, 2] {
        transaction.execute(&insert, &[&a]).await?;
    }
    transaction.commit().await?;
    ensure!(count(&client).await? == 2, "rows after commit");

    let (other, other_connection) = tokio_postgres::connect(&url, NoTls).await?;
    let serving = tokio::spawn(other_connection);
    other
        .batch_execute("BEGIN; INSERT INTO t VALUES (3)")
        .await?;
    drop(other);
    let _ = serving.await;
    ensure!(
        count(&client).await? == 2,
        "a dropped connection's block was written"
    );
    ensure!(received.try_recv().is_err(), "an unexpected warning");
    server.shutdown().await;
    Ok(())
}

async fn column_names() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let server = crate::start_server(dir.path()).await?;
    let client = connect(server.local_addr().port()).await?;
    client
        .batch_execute("CREATE TABLE t (a INT PRIMARY KEY, b BIGINT)")
        .await?;
    let statement = client
        .prepare("SELECT a, sum(t.b), 1 + 1, 1::int, count(*) AS n, (SELECT max(b) FROM t) FROM t GROUP BY a")
        .await?;
    let names: Vec<&str> = statement.columns().iter().map(|c| c.name()).collect();
    ensure!(
        names == ["a", "sum", "?column?", "int4", "n", "max"],
        "columns named {names:?}"
    );
    // EXPLAIN answers in one QUERY PLAN column, as PostgreSQL does.
    let plan = client
        .query("EXPLAIN SELECT a FROM t WHERE a = 1", &[])
        .await?;
    let first = plan.first().context("EXPLAIN returned no rows")?;
    ensure!(
        first.columns().len() == 1 && first.columns()[0].name() == "QUERY PLAN",
        "EXPLAIN columns {:?}",
        first.columns()
    );
    let first_line: String = first.get(0);
    ensure!(
        first_line == "logical_plan:",
        "EXPLAIN begins with {first_line:?}"
    );
    server.shutdown().await;
    Ok(())
}

async fn cancel_backend() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let server = crate::start_server(dir.path()).await?;
    let port = server.local_addr().port();
    let busy = connect(port).await?;
    let other = connect(port).await?;
    let pid: i32 = busy.query_one("SELECT pg_backend_pid()", &[]).await?.get(0);
    let own: i32 = other
        .query_one("SELECT pg_backend_pid()", &[])
        .await?
        .get(0);
    ensure!(pid != own, "two sessions share process id {pid}");
    let long = tokio::spawn(async move {
        busy.simple_query("SELECT count(*) FROM generate_series(1, 2000000000)")
            .await
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let found: bool = other
        .query_one(&format!("SELECT pg_cancel_backend({pid})"), &[])
        .await?
        .get(0);
    ensure!(found, "pg_cancel_backend({pid}) found no session");
    let result = tokio::time::timeout(Duration::from_secs(10), long).await??;
    let code = result.err().and_then(|e| e.code().cloned());
    ensure!(
        code == Some(SqlState::QUERY_CANCELED),
        "the query ended with {code:?}"
    );
    let none: bool = other
        .query_one("SELECT pg_cancel_backend(-7)", &[])
        .await?
        .get(0);
    ensure!(!none, "pg_cancel_backend found a session of process id -7");

    // pg_terminate_backend ends the other session's connection; this one goes on.
    let doomed = connect(port).await?;
    let doomed_pid: i32 = doomed
        .query_one("SELECT pg_backend_pid()", &[])
        .await?
        .get(0);
    let ended: bool = other
        .query_one(&format!("SELECT pg_terminate_backend({doomed_pid})"), &[])
        .await?
        .get(0);
    ensure!(ended, "pg_terminate_backend({doomed_pid}) found no session");
    let mut closed = false;
    for _ in 0..50 {
        if doomed.is_closed() || doomed.simple_query("SELECT 1").await.is_err() {
            closed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    ensure!(closed, "the terminated session still answers");
    let gone: bool = other
        .query_one(&format!("SELECT pg_terminate_backend({doomed_pid})"), &[])
        .await?
        .get(0);
    ensure!(!gone, "a terminated session is still registered");
    server.shutdown().await;
    Ok(())
}
