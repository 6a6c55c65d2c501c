//! Letting users in safely: roles and privileges, SCRAM-SHA-256 from
//! another address, TLS checked by psql against a CA the test makes, and
//! connection limits. "Another host" is this machine's own non-loopback
//! address, which the server sees as remote.

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::path::Path;
use std::process::Command;

use anyhow::{Context, bail, ensure};
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, NoTls};
use weir_server::config::SecurityConfig;
use weir_server::{Config, RunningServer};

use crate::Test;
use crate::protocol::{connect, connect_as};

pub const TESTS: &[(&str, Test)] = &[
    (
        "security/privileges: a role reads, writes and drops only what it owns or was granted",
        || Box::pin(privileges()),
    ),
    (
        "security/other hosts log in with SCRAM-SHA-256 only; wrong and unknown alike get 28P01",
        || Box::pin(scram_from_another_address()),
    ),
    (
        "security/psql over TLS with verify-full and channel binding; plain text refused with remote_tls_only",
        || Box::pin(tls_with_psql()),
    ),
    (
        "security/max_connections and a role's CONNECTION LIMIT refuse with 53300",
        || Box::pin(connection_limits()),
    ),
];

async fn connect_with(url: &str) -> Result<Client, tokio_postgres::Error> {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await?;
    tokio::spawn(connection);
    Ok(client)
}

/// The SQLSTATE `sql` fails with.
async fn fails_with(client: &Client, sql: &str) -> anyhow::Result<String> {
    match client.batch_execute(sql).await {
        Ok(()) => bail!("{sql}: succeeded, expected an error"),
        Err(e) => Ok(e
            .code()
            .map(|c| c.code().to_string())
            .with_context(|| format!("{sql}: {e}"))?),
    }
}

async fn refused(client: &Client, sql: &str) -> anyhow::Result<()> {
    let code = fails_with(client, sql).await?;
    ensure!(code == "42501", "{sql}: {code}, expected 42501");
    Ok(())
}

async fn privileges() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let server = crate::start_server(dir.path()).await?;
    let port = server.local_addr().port();
    let admin = connect(port).await?;
    admin
        .batch_execute(
            "CREATE ROLE analyst LOGIN PASSWORD 'secret';
             CREATE ROLE writer LOGIN;
             CREATE TABLE orders (id INT PRIMARY KEY, amount INT);
             INSERT INTO orders VALUES (1, 10), (2, 20);
             CREATE MATERIALIZED VIEW total AS SELECT sum(amount) AS s FROM orders;",
        )
        .await?;
    let analyst = connect_as(port, "analyst", "weir").await?;
    let me: String = analyst.query_one("SELECT current_user", &[]).await?.get(0);
    ensure!(me == "analyst", "current_user is {me}");

    refused(&analyst, "SELECT * FROM orders").await?;
    refused(&analyst, "SELECT * FROM total").await?;
    refused(&analyst, "SELECT (SELECT count(*) FROM orders)").await?;
    admin
        .batch_execute("GRANT SELECT ON total TO analyst")
        .await?;
    let total: i64 = analyst.query_one("SELECT s FROM total", &[]).await?.get(0);
    ensure!(total == 30, "total {total}");
    refused(&analyst, "SELECT * FROM orders").await?;
    refused(&analyst, "INSERT INTO orders VALUES (3, 30)").await?;
    refused(&analyst, "DROP TABLE orders").await?;
    refused(&analyst, "GRANT SELECT ON orders TO analyst").await?;
    for superuser_only in [
        "SET checkpoint_interval = '1s'",
        "ALTER SYSTEM SET checkpoint_interval = '1s'",
        "CHECKPOINT",
        "CREATE SAVEPOINT nightly",
        "DROP SAVEPOINT IF EXISTS nightly",
        "RESTORE SAVEPOINT nightly",
        "CREATE ROLE other",
        "ALTER ROLE writer SUPERUSER",
        "DROP ROLE writer",
        "ALTER MATERIALIZED VIEW total RESUME",
    ] {
        refused(&analyst, superuser_only).await?;
    }
    let files = tempfile::tempdir()?;
    refused(
        &analyst,
        &format!(
            "CREATE SOURCE logs (k BIGINT) WITH (connector = 'file', path = 'file://{}/', format = 'csv')",
            files.path().display()
        ),
    )
    .await?;
    // Only its own sessions may a role signal.
    let admin_pid: i32 = admin
        .query_one("SELECT pg_backend_pid()", &[])
        .await?
        .get(0);
    refused(&analyst, &format!("SELECT pg_cancel_backend({admin_pid})")).await?;
    refused(
        &analyst,
        &format!("SELECT pg_terminate_backend({admin_pid})"),
    )
    .await?;
    // A session setting is the session's own.
    analyst
        .batch_execute("SET application_name = 'mine'")
        .await?;
    // Its own things a role does as it likes, and owns them.
    analyst
        .batch_execute(
            "CREATE TABLE notes (id INT PRIMARY KEY, body TEXT);
             INSERT INTO notes VALUES (1, 'a');
             CREATE MATERIALIZED VIEW note_count AS SELECT count(*) AS n FROM notes;
             GRANT SELECT ON notes TO writer;",
        )
        .await?;
    refused(
        &analyst,
        "CREATE MATERIALIZED VIEW spy AS SELECT count(*) FROM orders",
    )
    .await?;
    // A role changes its own password, nobody else's.
    analyst
        .batch_execute("ALTER ROLE analyst PASSWORD 'changed'")
        .await?;
    refused(&analyst, "ALTER ROLE writer PASSWORD 'x'").await?;

    let writer = connect_as(port, "writer", "weir").await?;
    let rows = writer.query("SELECT body FROM notes", &[]).await?;
    ensure!(rows.len() == 1, "{} notes", rows.len());
    refused(&writer, "DELETE FROM notes").await?;
    admin
        .batch_execute("GRANT INSERT, DELETE ON orders TO writer")
        .await?;
    writer
        .batch_execute("INSERT INTO orders VALUES (3, 30)")
        .await?;
    refused(&writer, "UPDATE orders SET amount = 0").await?;
    admin
        .batch_execute("REVOKE INSERT ON orders FROM writer")
        .await?;
    refused(&writer, "INSERT INTO orders VALUES (4, 40)").await?;

    // Owners and grants last across a restart, as the catalog does.
    drop((analyst, writer, admin));
    server.shutdown().await;
    let server = crate::start_server(dir.path()).await?;
    let port = server.local_addr().port();
    let analyst = connect_as(port, "analyst", "weir").await?;
    let total: i64 = analyst.query_one("SELECT s FROM total", &[]).await?.get(0);
    ensure!(total == 60, "total after restart {total}");
    refused(&analyst, "SELECT * FROM orders").await?;
    analyst
        .batch_execute("DROP MATERIALIZED VIEW note_count; DROP TABLE notes")
        .await?;
    let admin = connect(port).await?;
    let code = fails_with(&admin, "DROP ROLE nobody").await?;
    ensure!(code == "42704", "DROP ROLE nobody: {code}");
    // psql's \du reads pg_roles.
    let roles = admin
        .query(
            "SELECT r.rolname, r.rolsuper, r.rolcanlogin FROM pg_catalog.pg_roles r \
             WHERE r.rolname !~ '^pg_' ORDER BY 1",
            &[],
        )
        .await?;
    let listed: Vec<(String, bool, bool)> = roles
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    ensure!(
        listed
            == vec![
                ("analyst".to_string(), false, true),
                ("weir".to_string(), true, true),
                ("writer".to_string(), false, true),
            ],
        "pg_roles: {listed:?}"
    );
    admin.batch_execute("DROP ROLE writer").await?;
    // CREATE USER is CREATE ROLE ... LOGIN.
    admin
        .batch_execute("CREATE USER reader PASSWORD 'p'; ALTER USER reader CONNECTION LIMIT 2")
        .await?;
    let login: bool = admin
        .query_one(
            "SELECT rolcanlogin FROM pg_roles WHERE rolname = 'reader'",
            &[],
        )
        .await?
        .get(0);
    ensure!(login, "CREATE USER made a role that cannot log in");
    admin.batch_execute("DROP USER reader").await?;
    let code = fails_with(&admin, "DROP ROLE weir").await?;
    ensure!(code == "55006", "dropping oneself: {code}");
    drop((analyst, admin));
    server.shutdown().await;
    Ok(())
}

/// An address of this machine that is not loopback, if it has one.
fn non_loopback_address() -> Option<IpAddr> {
    // Connecting a UDP socket sends nothing; it only picks the route.
    let socket = UdpSocket::bind("0.0.0.0:0").ok()?;
    socket.connect("192.0.2.254:9").ok()?;
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

async fn server_on_all_addresses(
    data_dir: &Path,
    security: SecurityConfig,
) -> anyhow::Result<RunningServer> {
    let config = Config {
        listen: SocketAddr::from(([0, 0, 0, 0], 0)),
        security,
        ..Config::ephemeral(data_dir)
    };
    RunningServer::start(&config).await
}

async fn scram_from_another_address() -> anyhow::Result<()> {
    let Some(ip) = non_loopback_address() else {
        println!("    skipped: this machine has no address but loopback");
        return Ok(());
    };
    let dir = tempfile::tempdir()?;
    let server = server_on_all_addresses(dir.path(), SecurityConfig::default()).await?;
    let port = server.local_addr().port();
    let admin = connect(port).await?;
    admin
        .batch_execute(
            "CREATE ROLE analyst LOGIN PASSWORD 'secret';
             CREATE ROLE nopass LOGIN;
             CREATE ROLE locked NOLOGIN PASSWORD 'secret';",
        )
        .await?;
    let remote = |user: &str, password: &str| {
        format!("host={ip} port={port} user={user} password={password} dbname=weir")
    };
    let analyst = connect_with(&remote("analyst", "secret")).await?;
    let who: String = analyst.query_one("SELECT current_user", &[]).await?.get(0);
    ensure!(who == "analyst", "logged in as {who}");
    let mut messages = Vec::new();
    for (user, password) in [
        ("analyst", "wrong"),
        ("mallory", "secret"),
        ("nopass", "anything"),
        ("weir", "anything"),
    ] {
        let error = connect_with(&remote(user, password))
            .await
            .err()
            .with_context(|| format!("{user} with password {password} was let in"))?;
        let db = error
            .as_db_error()
            .with_context(|| format!("{user}: {error}"))?;
        ensure!(
            db.code() == &SqlState::INVALID_PASSWORD,
            "{user}: {:?} {}",
            db.code(),
            db.message()
        );
        messages.push(db.message().replace(user, "USER"));
    }
    ensure!(
        messages.iter().all(|m| m == &messages[0]),
        "messages tell roles apart: {messages:?}"
    );
    let locked = connect_with(&remote("locked", "secret"))
        .await
        .err()
        .context("a NOLOGIN role was let in")?;
    ensure!(
        locked.code() == Some(&SqlState::INVALID_AUTHORIZATION_SPECIFICATION),
        "{locked:?}"
    );
    // Loopback stays trusted by default.
    let trusted = format!("host=127.0.0.1 port={port} user=analyst dbname=weir");
    connect_with(&trusted).await?;
    drop((admin, analyst));
    server.shutdown().await;

    // With trust_loopback off, loopback proves passwords too.
    let security = SecurityConfig {
        trust_loopback: false,
        ..SecurityConfig::default()
    };
    let server = server_on_all_addresses(dir.path(), security).await?;
    let port = server.local_addr().port();
    let loopback = format!("host=127.0.0.1 port={port} user=analyst dbname=weir");
    let error = connect_with(&loopback)
        .await
        .err()
        .context("no password, yet let in")?;
    // The client is asked for a password it does not have.
    ensure!(format!("{error:?}").contains("password"), "{error:?}");
    connect_with(&format!("{loopback} password=secret")).await?;
    server.shutdown().await;
    Ok(())
}

/// A CA, and a server certificate it signs for `ip`, `127.0.0.1` and
/// `localhost`, made with openssl in `dir`.
fn make_certificates(dir: &Path, ip: IpAddr) -> anyhow::Result<()> {
    let run = |args: &[&str]| -> anyhow::Result<()> {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .context("openssl")?;
        ensure!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(())
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-days",
        "2",
        "-subj",
        "/CN=weir test CA",
    ])?;
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=weir",
    ])?;
    std::fs::write(
        dir.join("san.ext"),
        format!("subjectAltName = IP:{ip}, IP:127.0.0.1, DNS:localhost\n"),
    )?;
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.crt",
        "-days",
        "2",
        "-extfile",
        "san.ext",
    ])
}

/// psql's output and whether it succeeded.
fn psql(conninfo: &str, password: &str, sql: &str) -> anyhow::Result<(bool, String)> {
    let out = Command::new("psql")
        .args([conninfo, "-X", "-tA", "-c", sql])
        .env("PGPASSWORD", password)
        .env("PGCONNECT_TIMEOUT", "10")
        .output()
        .context("psql")?;
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    Ok((out.status.success(), text.trim().to_string()))
}

async fn tls_with_psql() -> anyhow::Result<()> {
    let Some(ip) = non_loopback_address() else {
        println!("    skipped: this machine has no address but loopback");
        return Ok(());
    };
    let certs = tempfile::tempdir()?;
    make_certificates(certs.path(), ip)?;
    let dir = tempfile::tempdir()?;
    let security = SecurityConfig {
        tls_cert: Some(certs.path().join("server.crt")),
        tls_key: Some(certs.path().join("server.key")),
        remote_tls_only: true,
        ..SecurityConfig::default()
    };
    let server = server_on_all_addresses(dir.path(), security).await?;
    let port = server.local_addr().port();
    connect(port)
        .await?
        .batch_execute("CREATE ROLE analyst LOGIN PASSWORD 'secret'")
        .await?;
    let root = certs.path().join("ca.crt");
    let base = format!(
        "host={ip} port={port} user=analyst dbname=weir sslrootcert={}",
        root.display()
    );
    let (ok, out) = psql(
        &format!("{base} sslmode=verify-full channel_binding=require"),
        "secret",
        "SELECT current_user",
    )?;
    ensure!(
        ok && out == "analyst",
        "verify-full with channel binding: {out}"
    );
    let (ok, out) = psql(&format!("{base} sslmode=verify-full"), "wrong", "SELECT 1")?;
    ensure!(
        !ok && out.contains("password authentication failed"),
        "wrong password over TLS: {out}"
    );
    let (ok, out) = psql(&format!("{base} sslmode=disable"), "secret", "SELECT 1")?;
    ensure!(
        !ok && out.contains("must use TLS"),
        "plain text from another host: {out}"
    );
    // A certificate for another name fails verify-full on the client.
    let other = format!(
        "host={ip} hostaddr={ip} port={port} user=analyst dbname=weir sslrootcert={} sslmode=verify-full",
        root.display()
    )
    .replacen(&format!("host={ip}"), "host=elsewhere.example", 1);
    let (ok, out) = psql(&other, "secret", "SELECT 1")?;
    ensure!(
        !ok,
        "verify-full accepted a certificate for another name: {out}"
    );
    // Loopback may still use plain text, and TLS if it asks.
    let (ok, out) = psql(
        &format!("host=127.0.0.1 port={port} user=analyst dbname=weir sslmode=require"),
        "",
        "SELECT 1",
    )?;
    ensure!(ok && out == "1", "TLS over loopback: {out}");
    server.shutdown().await;
    Ok(())
}

async fn connection_limits() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let config = Config {
        security: SecurityConfig {
            max_connections: 3,
            ..SecurityConfig::default()
        },
        ..Config::ephemeral(dir.path())
    };
    let server = RunningServer::start(&config).await?;
    let port = server.local_addr().port();
    let admin = connect(port).await?;
    admin
        .batch_execute("CREATE ROLE one LOGIN CONNECTION LIMIT 1; CREATE ROLE many LOGIN")
        .await?;
    let first = connect_as(port, "one", "weir").await?;
    let second = connect_as(port, "one", "weir")
        .await
        .err()
        .context("CONNECTION LIMIT 1 let a second connection in")?;
    ensure!(
        second.code() == Some(&SqlState::TOO_MANY_CONNECTIONS),
        "{second:?}"
    );
    let _many = connect_as(port, "many", "weir").await?;
    let past = connect_as(port, "many", "weir")
        .await
        .err()
        .context("max_connections 3 let a fourth connection in")?;
    ensure!(
        past.code() == Some(&SqlState::TOO_MANY_CONNECTIONS),
        "{past:?}"
    );
    // A superuser may still connect, to fix things.
    connect(port).await?.batch_execute("SELECT 1").await?;
    // A slot is given back when its connection ends.
    drop(first);
    let mut again = None;
    for _ in 0..100 {
        if let Ok(client) = connect_as(port, "one", "weir").await {
            again = Some(client);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    ensure!(
        again.is_some(),
        "the slot of a closed connection was not given back"
    );
    drop(admin);
    server.shutdown().await;
    Ok(())
}
