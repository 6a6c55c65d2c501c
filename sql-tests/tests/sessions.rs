//! Sessions over the wire, and the limits that keep one from hurting the
//! server: `pg_stat_activity`, a query stopped when its client leaves,
//! `idle_in_transaction_session_timeout`, COPY in and out, the message
//! size cap, strict Parse and Bind, and the query memory limit.

use std::time::Duration;

use anyhow::{Context, bail, ensure};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, NoTls};

use crate::Test;
use crate::protocol::{connect, started_session};

pub const TESTS: &[(&str, Test)] = &[
    (
        "protocol/pg_stat_activity shows each session; a query stops when its client leaves",
        || Box::pin(session_activity()),
    ),
    (
        "protocol/idle_in_transaction_session_timeout closes an idle block and drops its writes; idle_session_timeout an idle session",
        || Box::pin(idle_in_transaction_timeout()),
    ),
    (
        "protocol/COPY FROM STDIN and TO STDOUT: text and CSV rows, all or nothing, inside a block too",
        || Box::pin(copy_from_stdin()),
    ),
    (
        "protocol/a message past max_message_size closes its connection with 54000, before it is read",
        || Box::pin(max_message_size()),
    ),
    (
        "protocol/Parse with an unknown type OID and Bind with an unknown format code are refused",
        || Box::pin(strict_parse_and_bind()),
    ),
    (
        "protocol/a query past query_memory_limit fails with 53200 and the server goes on",
        || Box::pin(query_memory_limit()),
    ),
];

/// `(state, query, application_name)` of the session with process id `pid`.
async fn activity_of(
    client: &Client,
    pid: i32,
) -> anyhow::Result<Option<(String, String, String)>> {
    let rows = client
        .query(
            "SELECT state, query, application_name FROM pg_stat_activity WHERE pid = $1",
            &[&pid],
        )
        .await?;
    Ok(rows.first().map(|r| (r.get(0), r.get(1), r.get(2))))
}

/// How many sessions run `query` now.
async fn running(client: &Client, query: &str) -> anyhow::Result<i64> {
    let row = client
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query = $1",
            &[&query],
        )
        .await?;
    Ok(row.get(0))
}

/// Polls until `check` holds, for up to ten seconds.
async fn eventually<F, Fut>(what: &str, mut check: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<bool>>,
{
    for _ in 0..100 {
        if check().await? {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("{what} did not happen within ten seconds")
}

async fn session_activity() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let server = crate::start_server(dir.path()).await?;
    let port = server.local_addr().port();
    let url = format!("host=127.0.0.1 port={port} user=weir dbname=weir application_name=watcher");
    let (watcher, connection) = tokio_postgres::connect(&url, NoTls).await?;
    tokio::spawn(connection);
    let own: i32 = watcher
        .query_one("SELECT pg_backend_pid()", &[])
        .await?
        .get(0);
    let (state, query, application) = activity_of(&watcher, own)
        .await?
        .context("no row for the session itself")?;
    ensure!(state == "active", "the asking session is {state}");
    ensure!(query.contains("pg_stat_activity"), "its query is {query:?}");
    ensure!(
        application == "watcher",
        "its application_name is {application:?}"
    );

    let other = connect(port).await?;
    let other_pid: i32 = other
        .query_one("SELECT pg_backend_pid()", &[])
        .await?
        .get(0);
    other.batch_execute("CREATE TABLE t (x INT)").await?;
    other
        .batch_execute("BEGIN; INSERT INTO t VALUES (1)")
        .await?;
    let state = activity_of(&watcher, other_pid).await?.map(|a| a.0);
    ensure!(
        state.as_deref() == Some("idle in transaction"),
        "after BEGIN: {state:?}"
    );
    ensure!(other.simple_query("SELECT 1/0").await.is_err());
    let state = activity_of(&watcher, other_pid).await?.map(|a| a.0);
    ensure!(
        state.as_deref() == Some("idle in transaction (aborted)"),
        "after a failed statement: {state:?}"
    );
    other.batch_execute("ROLLBACK").await?;
    let state = activity_of(&watcher, other_pid).await?.map(|a| a.0);
    ensure!(
        state.as_deref() == Some("idle"),
        "after ROLLBACK: {state:?}"
    );

    // A client that leaves mid-query: its query stops and its session goes.
    let mut leaving = started_session(port).await?;
    let endless = "SELECT count(*) FROM generate_series(1, 1000000000000)";
    let mut message = vec![b'Q'];
    message.extend_from_slice(&(endless.len() as u32 + 5).to_be_bytes());
    message.extend_from_slice(endless.as_bytes());
    message.push(0);
    leaving.write_all(&message).await?;
    let watching = &watcher;
    eventually("the endless query showing as active", || async move {
        Ok(running(watching, endless).await? == 1)
    })
    .await?;
    drop(leaving);
    eventually("the departed client's query ending", || async move {
        Ok(running(watching, endless).await? == 0)
    })
    .await?;
    eventually(
        "the departed client's session leaving pg_stat_activity",
        || async move {
            let sessions: i64 = watching
                .query_one("SELECT count(*) FROM pg_stat_activity", &[])
                .await?
                .get(0);
            Ok(sessions == 2)
        },
    )
    .await?;
    server.shutdown().await;
    Ok(())
}

async fn idle_in_transaction_timeout() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let server = crate::start_server(dir.path()).await?;
    let port = server.local_addr().port();
    let observer = connect(port).await?;
    observer.batch_execute("CREATE TABLE t (x INT)").await?;
    let idler = connect(port).await?;
    idler
        .batch_execute("SET idle_in_transaction_session_timeout = '300ms'")
        .await?;
    // Outside a block, idling is fine.
    tokio::time::sleep(Duration::from_millis(600)).await;
    idler
        .batch_execute("BEGIN; INSERT INTO t VALUES (1)")
        .await?;
    // Busy statements inside the block do not count as idle time.
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(150)).await;
        idler.batch_execute("INSERT INTO t VALUES (2)").await?;
    }
    // Any statement would restart the clock: wait well past it, then try.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    ensure!(
        idler.simple_query("SELECT 1").await.is_err(),
        "the session idled 1.5 s in a block under a 300 ms timeout and still answers"
    );
    let rows: i64 = observer
        .query_one("SELECT count(*) FROM t", &[])
        .await?
        .get(0);
    ensure!(
        rows == 0,
        "{rows} rows of the timed-out block were committed"
    );
    // idle_session_timeout closes a session idle outside a block; a busy
    // one stays.
    let lingerer = connect(port).await?;
    lingerer
        .batch_execute("SET idle_session_timeout = '300ms'")
        .await?;
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(150)).await;
        lingerer.batch_execute("SELECT 1").await?;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    ensure!(
        lingerer.simple_query("SELECT 1").await.is_err(),
        "the session idled 1.5 s under a 300 ms idle_session_timeout and still answers"
    );
    server.shutdown().await;
    Ok(())
}

async fn query_memory_limit() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let config = weir_server::Config {
        query_memory_limit: 8 << 20,
        ..weir_server::Config::ephemeral(dir.path())
    };
    let server = weir_server::RunningServer::start(&config).await?;
    let client = connect(server.local_addr().port()).await?;
    let error = client
        .simple_query("SELECT array_agg(x) FROM generate_series(1, 20000000) AS t(x)")
        .await
        .err()
        .context("an aggregate of 160 MB ran under an 8 MB limit")?;
    ensure!(
        error.code().map(SqlState::code) == Some("53200"),
        "the query ended with {error:?}"
    );
    let one: i64 = client.query_one("SELECT 1", &[]).await?.get(0);
    ensure!(one == 1);
    server.shutdown().await;
    Ok(())
}

/// Sends `data` as a COPY's rows; the row count COPY answers.
async fn copy_rows(
    client: &Client,
    statement: &str,
    data: &str,
) -> Result<u64, tokio_postgres::Error> {
    use futures::SinkExt;
    let sink = client.copy_in(statement).await?;
    futures::pin_mut!(sink);
    sink.send(bytes::Bytes::from(data.to_string())).await?;
    sink.finish().await
}

/// What a `COPY ... TO STDOUT` sends, as text.
async fn copy_text(client: &Client, statement: &str) -> anyhow::Result<String> {
    use futures::TryStreamExt;
    let chunks: Vec<bytes::Bytes> = client.copy_out(statement).await?.try_collect().await?;
    Ok(String::from_utf8(chunks.concat())?)
}

async fn copy_from_stdin() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let server = crate::start_server(dir.path()).await?;
    let client = connect(server.local_addr().port()).await?;
    client
        .batch_execute("CREATE TABLE t (k BIGINT PRIMARY KEY, s TEXT, x DOUBLE, ok BOOLEAN)")
        .await?;
    let rows = copy_rows(
        &client,
        "COPY t FROM STDIN",
        "1\tone\t1.5\tt\n2\t\\N\t\\N\tf\n",
    )
    .await?;
    ensure!(rows == 2, "COPY answered {rows} rows");
    let rows = copy_rows(
        &client,
        "COPY t (k, s) FROM STDIN WITH (FORMAT csv, HEADER true)",
        "k,s\n3,\"a, b\"\n4,\n5,\"\"\n",
    )
    .await?;
    ensure!(rows == 3, "COPY CSV answered {rows} rows");
    let got: Vec<(i64, Option<String>)> = client
        .query("SELECT k, s FROM t ORDER BY k", &[])
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let want = vec![
        (1, Some("one".to_string())),
        (2, None),
        (3, Some("a, b".to_string())),
        (4, None),
        (5, Some(String::new())),
    ];
    ensure!(got == want, "the table holds {got:?}");

    // A bad row fails the whole COPY: nothing of it is written.
    let error = copy_rows(
        &client,
        "COPY t FROM STDIN",
        "6\tsix\t1\tt\nseven\tx\t1\tt\n",
    )
    .await
    .err()
    .context("a COPY with a non-number key succeeded")?;
    ensure!(
        error.code().is_some(),
        "the COPY failed without a SQLSTATE: {error}"
    );
    let duplicate = copy_rows(
        &client,
        "COPY t FROM STDIN",
        "6\tsix\t1\tt\n1\tagain\t1\tt\n",
    )
    .await
    .err()
    .context("a COPY with a duplicate key succeeded")?;
    ensure!(
        duplicate.code() == Some(&SqlState::UNIQUE_VIOLATION),
        "{duplicate:?}"
    );
    let count: i64 = client
        .query_one("SELECT count(*) FROM t", &[])
        .await?
        .get(0);
    ensure!(count == 5, "{count} rows after two failed COPYs");

    // Inside a block, COPY is staged like an INSERT.
    client.batch_execute("BEGIN").await?;
    copy_rows(&client, "COPY t (k) FROM STDIN", "10\n11\n").await?;
    let inside: i64 = client
        .query_one("SELECT count(*) FROM t", &[])
        .await?
        .get(0);
    client.batch_execute("ROLLBACK").await?;
    let after: i64 = client
        .query_one("SELECT count(*) FROM t", &[])
        .await?
        .get(0);
    ensure!(
        inside == 7 && after == 5,
        "inside the block {inside} rows, after ROLLBACK {after}"
    );

    // And out again, in both formats.
    let text = copy_text(&client, "COPY t (k, s) TO STDOUT").await?;
    ensure!(
        text == "1\tone\n2\t\\N\n3\ta, b\n4\t\\N\n5\t\n",
        "COPY TO STDOUT wrote {text:?}"
    );
    let csv = copy_text(
        &client,
        "COPY (SELECT k, s, ok FROM t WHERE k IN (1, 3, 5) ORDER BY k) TO STDOUT WITH (FORMAT csv, HEADER true)",
    )
    .await?;
    ensure!(
        csv == "k,s,ok\n1,one,t\n3,\"a, b\",\n5,\"\",\n",
        "COPY TO STDOUT CSV wrote {csv:?}"
    );

    let refused = client
        .batch_execute("COPY t TO '/tmp/weir-copy-out'")
        .await
        .err()
        .and_then(|e| e.code().cloned());
    ensure!(
        refused == Some(SqlState::FEATURE_NOT_SUPPORTED),
        "COPY to a file: {refused:?}"
    );
    server.shutdown().await;
    Ok(())
}

async fn max_message_size() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let config = weir_server::Config {
        max_message_size: 1 << 20,
        ..weir_server::Config::ephemeral(dir.path())
    };
    let server = weir_server::RunningServer::start(&config).await?;
    let port = server.local_addr().port();
    let client = connect(port).await?;
    let fits = format!("SELECT length('{}')", "x".repeat(512 << 10));
    let length: i32 = client.query_one(&fits, &[]).await?.get(0);
    ensure!(
        length == 512 << 10,
        "the half-megabyte literal came back {length} long"
    );
    let too_large = format!("SELECT length('{}')", "x".repeat(2 << 20));
    let error = client
        .simple_query(&too_large)
        .await
        .err()
        .context("a 2 MB message passed a 1 MB cap")?;
    // tokio-postgres may still be writing the message when the refusal
    // and the end of the connection arrive, and then reports only that the
    // connection closed; the raw socket below reads what the server sent.
    let code = error.code().map(SqlState::code);
    ensure!(
        code == Some("54000") || error.is_closed(),
        "the connection ended with {error:?}"
    );
    let socket = started_session(port).await?;
    let body = format!("{too_large}\0");
    let mut message = vec![b'Q'];
    message.extend_from_slice(&(body.len() as u32 + 4).to_be_bytes());
    message.extend_from_slice(body.as_bytes());
    // Written whole, as a client would, while the server has refused it.
    let writing = tokio::spawn(async move {
        let (mut read, mut write) = socket.into_split();
        let _ = write.write_all(&message).await;
        let mut answer = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(10), read.read_to_end(&mut answer)).await;
        answer
    });
    let answer = writing.await?;
    ensure!(
        String::from_utf8_lossy(&answer).contains("54000"),
        "a client writing a 2 MB message did not read the 54000: {} bytes {:?}",
        answer.len(),
        String::from_utf8_lossy(&answer)
    );

    // Declared, not sent: the server refuses at the header.
    let mut socket = started_session(port).await?;
    socket.write_all(&[b'Q', 0x3f, 0xff, 0xff, 0xf0]).await?;
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), socket.read_to_end(&mut answer))
        .await
        .context("a 1 GB declaration was neither refused nor closed")??;
    ensure!(
        String::from_utf8_lossy(&answer).contains("54000"),
        "the server answered {answer:?}"
    );
    // An SSLRequest (psql's first message by default) is declined with
    // `N`, and startup goes on in plain text.
    let mut socket = TcpStream::connect(("127.0.0.1", port)).await?;
    socket
        .write_all(&[0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f])
        .await?;
    ensure!(
        socket.read_u8().await? == b'N',
        "an SSLRequest was not declined"
    );
    let body: &[u8] = b"\x00\x03\x00\x00user\0weir\0database\0weir\0\0";
    socket
        .write_all(&(body.len() as u32 + 4).to_be_bytes())
        .await?;
    socket.write_all(body).await?;
    let errors = until_ready(&mut socket).await?;
    ensure!(
        errors.is_empty(),
        "startup after SSLRequest failed: {errors:?}"
    );
    let fresh = connect(port).await?;
    let one: i64 = fresh.query_one("SELECT 1", &[]).await?.get(0);
    ensure!(one == 1);
    server.shutdown().await;
    Ok(())
}

/// A protocol message of `kind` with `body`.
fn frame(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut frame = vec![kind];
    frame.extend_from_slice(&(body.len() as u32 + 4).to_be_bytes());
    frame.extend_from_slice(body);
    frame
}

/// Reads up to ReadyForQuery; the text of any ErrorResponse on the way.
async fn until_ready(socket: &mut TcpStream) -> anyhow::Result<String> {
    let mut errors = String::new();
    loop {
        let kind = socket.read_u8().await?;
        let len = socket.read_u32().await? as usize;
        let mut payload = vec![0; len.saturating_sub(4)];
        socket.read_exact(&mut payload).await?;
        match kind {
            b'E' => errors.push_str(&String::from_utf8_lossy(&payload)),
            b'Z' => return Ok(errors),
            _ => {}
        }
    }
}

async fn strict_parse_and_bind() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let server = crate::start_server(dir.path()).await?;
    let mut socket = started_session(server.local_addr().port()).await?;
    let mut parse = b"\0SELECT $1\0".to_vec();
    parse.extend_from_slice(&1i16.to_be_bytes());
    parse.extend_from_slice(&999_999u32.to_be_bytes());
    socket.write_all(&frame(b'P', &parse)).await?;
    socket.write_all(&frame(b'S', &[])).await?;
    let errors = until_ready(&mut socket).await?;
    ensure!(
        errors.contains("42704"),
        "Parse with OID 999999 answered {errors:?}"
    );

    let mut parse = b"\0SELECT 1\0".to_vec();
    parse.extend_from_slice(&0i16.to_be_bytes());
    let mut bind = b"\0\0".to_vec();
    for value in [1i16, 7, 0, 0] {
        bind.extend_from_slice(&value.to_be_bytes());
    }
    socket.write_all(&frame(b'P', &parse)).await?;
    socket.write_all(&frame(b'B', &bind)).await?;
    socket.write_all(&frame(b'S', &[])).await?;
    let errors = until_ready(&mut socket).await?;
    ensure!(
        errors.contains("22023"),
        "Bind with format code 7 answered {errors:?}"
    );

    socket.write_all(&frame(b'Q', b"SELECT 1\0")).await?;
    let errors = until_ready(&mut socket).await?;
    ensure!(errors.is_empty(), "the session did not go on: {errors:?}");
    server.shutdown().await;
    Ok(())
}
