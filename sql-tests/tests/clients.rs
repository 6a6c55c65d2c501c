//! The clients people point at a PostgreSQL, run for real against weir:
//! psycopg 3, asyncpg, SQLAlchemy 2 with pandas, node-postgres, pgjdbc,
//! `pgbench`, `pg_dump` and psql's `\d` commands. Each
//! script under `clients/` checks its own results and exits non-zero on
//! the first that differs; `make test` installs the clients
//! (`scripts/install-deps.sh test`).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail, ensure};

use crate::Test;
use crate::protocol::connect;

pub const TESTS: &[(&str, Test)] = &[
    (
        "clients/psycopg 3: parameters, prepared statements, literals, COPY, savepoints, uuid/jsonb/array columns",
        || Box::pin(script("python3", "psycopg_check.py")),
    ),
    (
        "clients/asyncpg: binary types, executemany, transactions, binary COPY both ways",
        || Box::pin(script("python3", "asyncpg_check.py")),
    ),
    (
        "clients/SQLAlchemy 2 and pandas: connect, relation names, column and primary-key reflection, read_sql of views, to_sql",
        || Box::pin(script("python3", "sqlalchemy_check.py")),
    ),
    (
        "clients/node-postgres: parameters, named statements, rollback",
        || Box::pin(script("node", "node_pg_check.js")),
    ),
    (
        "clients/pgjdbc: server-prepared setTimestamp, metadata with primary keys, rollback",
        || Box::pin(pgjdbc()),
    ),
    (
        "clients/pgbench -i loads its tables with COPY, then a custom script reads them",
        || Box::pin(pgbench()),
    ),
    (
        "clients/pg_dump's catalog queries: SQL PREPARE and EXECUTE, name subscripts, empty catalogs",
        || Box::pin(pg_dump_queries()),
    ),
    (
        "clients/pg_dump --schema-only dumps the user's tables, keys and views, not weir_catalog",
        || Box::pin(pg_dump_schema()),
    ),
    (
        "clients/psql's \\dt \\dv \\dm \\d \\d+ \\du \\df \\l list what weir holds",
        || Box::pin(psql_describe()),
    ),
];

/// Where `scripts/install-deps.sh` puts clients that have no system
/// package (node-postgres).
fn clients_home() -> PathBuf {
    match std::env::var_os("WEIR_CLIENTS_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/weir-clients")
        }
    }
}

fn scripts_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("clients")
}

/// Runs `command` to its end off the runtime's threads (the server under
/// test shares them); its output, or an error with all of it.
async fn run(mut command: Command) -> anyhow::Result<String> {
    let shown = format!("{command:?}");
    let out = tokio::task::spawn_blocking(move || command.output())
        .await?
        .with_context(|| format!("starting {shown}"))?;
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    ensure!(
        out.status.success(),
        "{shown} failed ({}):\n{text}",
        out.status
    );
    Ok(text)
}

/// A fresh server on its own directory, and its port.
async fn server() -> anyhow::Result<(tempfile::TempDir, weir_server::RunningServer, u16)> {
    let dir = tempfile::tempdir()?;
    let server = crate::start_server(dir.path()).await?;
    let port = server.local_addr().port();
    Ok((dir, server, port))
}

async fn script(interpreter: &str, name: &str) -> anyhow::Result<()> {
    let (_dir, _server, port) = server().await?;
    let mut command = Command::new(interpreter);
    command
        .arg(scripts_dir().join(name))
        .arg(port.to_string())
        .env("NODE_PATH", clients_home().join("node/node_modules"));
    let out = run(command).await?;
    println!("    {}", out.trim());
    Ok(())
}

async fn pgjdbc() -> anyhow::Result<()> {
    let (_dir, _server, port) = server().await?;
    let classes = tempfile::tempdir()?;
    let mut javac = Command::new("javac");
    javac
        .arg("-d")
        .arg(classes.path())
        .arg(scripts_dir().join("JdbcCheck.java"));
    run(javac).await?;
    let mut java = Command::new("java");
    java.arg("-cp")
        .arg(format!(
            "/usr/share/java/postgresql.jar:{}",
            classes.path().display()
        ))
        .arg("JdbcCheck")
        .arg(port.to_string());
    let out = run(java).await?;
    println!("    {}", out.trim());
    Ok(())
}

fn conninfo(port: u16) -> String {
    format!("host=127.0.0.1 port={port} user=weir dbname=weir")
}

/// `pgbench -i` without its primary-key step (weir cannot add a key to a
/// table that has rows), its VACUUM included, then a script of point
/// reads from two clients.
async fn pgbench() -> anyhow::Result<()> {
    let (_dir, _server, port) = server().await?;
    let mut init = Command::new("pgbench");
    init.args(["-i", "-I", "dtgv", "-s", "1", &conninfo(port)]);
    run(init).await?;
    let client = connect(port).await?;
    let count = |sql: &'static str| {
        let client = &client;
        async move {
            let row = client.query_one(sql, &[]).await?;
            Ok::<i64, anyhow::Error>(row.get(0))
        }
    };
    ensure!(count("SELECT count(*) FROM pgbench_accounts").await? == 100_000);
    ensure!(count("SELECT count(*) FROM pgbench_tellers").await? == 10);
    ensure!(count("SELECT sum(abalance)::bigint FROM pgbench_accounts").await? == 0);
    let script = tempfile::NamedTempFile::new()?;
    std::fs::write(
        script.path(),
        "\\set aid random(1, 100000 * :scale)\n\
         SELECT abalance FROM pgbench_accounts WHERE aid = :aid;\n\
         SELECT count(*) FROM pgbench_branches WHERE bid = 1;\n",
    )?;
    let mut bench = Command::new("pgbench");
    bench
        .args(["-n", "-c", "2", "-t", "25", "-f"])
        .arg(script.path())
        .arg(conninfo(port));
    let out = run(bench).await?;
    ensure!(
        out.contains("number of transactions actually processed: 50/50"),
        "pgbench:\n{out}"
    );
    Ok(())
}

/// The first column of each row `sql` answers over the simple protocol.
async fn simple_rows(client: &tokio_postgres::Client, sql: &str) -> anyhow::Result<Vec<String>> {
    Ok(client
        .simple_query(sql)
        .await?
        .into_iter()
        .filter_map(|message| match message {
            tokio_postgres::SimpleQueryMessage::Row(row) => {
                Some(row.get(0).unwrap_or("NULL").to_string())
            }
            _ => None,
        })
        .collect())
}

/// What `pg_dump --schema-only` asks that other clients do not.
async fn pg_dump_queries() -> anyhow::Result<()> {
    let (_dir, _server, port) = server().await?;
    let client = connect(port).await?;
    client
        .batch_execute("CREATE TABLE acct (id INT PRIMARY KEY, name TEXT)")
        .await?;
    let oid = simple_rows(&client, "SELECT oid FROM pg_class WHERE relname = 'acct'").await?;
    let columns = simple_rows(
        &client,
        &format!(
            "PREPARE columns(pg_catalog.oid) AS SELECT attname FROM pg_attribute \
             WHERE attrelid = $1 AND attnum > 0 ORDER BY attnum; EXECUTE columns('{}')",
            oid.first().map(String::as_str).unwrap_or("0")
        ),
    )
    .await?;
    ensure!(columns == ["id", "name"], "EXECUTE gave {columns:?}");
    client.batch_execute("DEALLOCATE columns").await?;
    let gone = client.simple_query("EXECUTE columns('1')").await;
    ensure!(
        gone.as_ref().err().and_then(|e| e.code()).map(|c| c.code()) == Some("26000"),
        "EXECUTE after DEALLOCATE: {gone:?}"
    );
    let arrays = simple_rows(
        &client,
        "SELECT count(*) FILTER (WHERE typname[0] = '_') = count(*) FILTER (WHERE typname LIKE '\\_%') \
         AND count(*) FILTER (WHERE typname[0] = '_') > 0 FROM pg_type",
    )
    .await?;
    ensure!(
        arrays == ["t"],
        "typname[0] disagrees with LIKE: {arrays:?}"
    );
    let empty = simple_rows(
        &client,
        "SELECT (SELECT count(*) FROM pg_transform) + (SELECT count(*) FROM pg_catalog.pg_seclabels) \
         + (SELECT count(*) FROM pg_event_trigger WHERE cardinality(evttags) > 0) \
         + (SELECT count(*) FROM pg_policy WHERE polroles IS NOT NULL)",
    )
    .await?;
    ensure!(empty == ["0"], "empty catalogs have rows: {empty:?}");
    let trigger = simple_rows(&client, "SELECT pg_get_triggerdef(1, false) IS NULL").await?;
    ensure!(trigger == ["t"], "pg_get_triggerdef: {trigger:?}");
    Ok(())
}

/// The real `pg_dump --schema-only`: each of the user's relations with its
/// columns' declared types and its primary key; nothing of weir's own
/// catalog, which is a built-in extension's schema.
async fn pg_dump_schema() -> anyhow::Result<()> {
    let (_dir, _server, port) = server().await?;
    connect(port)
        .await?
        .batch_execute(
            "CREATE TABLE acct (id INT PRIMARY KEY, name TEXT, bal NUMERIC(10,2), ts TIMESTAMP);
             INSERT INTO acct VALUES (1, 'a', 1.50, '2024-01-01 00:00:00');
             CREATE VIEW named AS SELECT id, name FROM acct;
             CREATE MATERIALIZED VIEW total AS SELECT count(*) AS n, sum(bal) AS bal FROM acct;",
        )
        .await?;
    let mut dump = Command::new("pg_dump");
    dump.args(["--schema-only", &conninfo(port)]);
    let out = run(dump).await?;
    let lines: Vec<String> = out.lines().map(squeeze).collect();
    for expected in [
        "CREATE TABLE public.acct (",
        "id integer NOT NULL,",
        "name text,",
        "bal numeric(10,2),",
        "ts timestamp without time zone",
        "CREATE VIEW public.named AS",
        "CREATE MATERIALIZED VIEW public.total AS",
        "ADD CONSTRAINT acct_pkey PRIMARY KEY (id);",
    ] {
        ensure!(
            lines.iter().any(|l| l == expected),
            "pg_dump lacks the line {expected:?}:\n{out}"
        );
    }
    ensure!(
        !out.contains("weir_catalog") && !out.contains("EXTENSION"),
        "pg_dump dumped weir's own catalog:\n{out}"
    );
    Ok(())
}

async fn psql_describe() -> anyhow::Result<()> {
    let (_dir, _server, port) = server().await?;
    connect(port)
        .await?
        .batch_execute(
            "CREATE TABLE trades (id INT PRIMARY KEY, symbol TEXT NOT NULL, price DOUBLE PRECISION);
             CREATE MATERIALIZED VIEW last_price AS SELECT symbol, max(price) AS top FROM trades GROUP BY symbol;
             CREATE VIEW symbols AS SELECT DISTINCT symbol FROM trades;
             CREATE ROLE reader LOGIN;",
        )
        .await?;
    let psql = |meta: &str| {
        let mut command = Command::new("psql");
        command.args([&conninfo(port), "-X", "-c", meta]);
        run(command)
    };
    let expect = |out: &str, meta: &str, lines: &[&str]| -> anyhow::Result<()> {
        for line in lines {
            if !out.lines().any(|l| squeeze(l).starts_with(line)) {
                bail!("psql {meta} lacks the line {line:?}:\n{out}");
            }
        }
        Ok(())
    };
    let tables = psql("\\dt").await?;
    expect(&tables, "\\dt", &["public | trades | table | weir"])?;
    // weir_catalog's tables are not on the search path: \dt leaves them out.
    ensure!(
        !tables.contains("weir_catalog"),
        "psql \\dt lists weir_catalog:\n{tables}"
    );
    expect(&psql("\\dv").await?, "\\dv", &["public | symbols | view |"])?;
    expect(
        &psql("\\dm").await?,
        "\\dm",
        &["public | last_price | materialized view |"],
    )?;
    expect(
        &psql("\\d trades").await?,
        "\\d",
        &[
            "id | integer | | not null |",
            "symbol | text | | not null |",
        ],
    )?;
    let described = psql("\\d+ trades").await?;
    expect(
        &described,
        "\\d+ trades",
        &[
            "id | integer | | not null | | plain |",
            "\"trades_pkey\" PRIMARY KEY, btree (id)",
        ],
    )?;
    let view = psql("\\d+ last_price").await?;
    expect(
        &view,
        "\\d+ last_price",
        &[
            "View definition:",
            "SELECT symbol, max(price) AS top FROM trades GROUP BY symbol;",
        ],
    )?;
    let roles = psql("\\du").await?;
    ensure!(
        roles.contains("reader") && roles.contains("Superuser"),
        "\\du:\n{roles}"
    );
    let functions = psql("\\df abs").await?;
    expect(
        &functions,
        "\\df abs",
        &["pg_catalog | abs | integer | integer | func"],
    )?;
    let databases = psql("\\l").await?;
    let names: Vec<String> = databases
        .lines()
        .filter(|l| l.contains('|') && !l.contains("Name"))
        .filter_map(|l| l.split('|').next().map(|n| n.trim().to_string()))
        .filter(|n| !n.is_empty())
        .collect();
    ensure!(names == ["weir"], "\\l lists {names:?}:\n{databases}");
    Ok(())
}

/// `line` with each run of spaces made one and the ends trimmed, so a
/// check does not depend on psql's column widths.
fn squeeze(line: &str) -> String {
    line.split_whitespace().collect::<Vec<_>>().join(" ")
}
