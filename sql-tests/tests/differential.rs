//! Differential tests: random INSERT/UPDATE/DELETE streams on tables;
//! after every FLUSH each materialized view must equal DataFusion's batch
//! answer to the view's own query over the same tables. Views are created
//! both before and after their tables hold rows, and the server restarts
//! midway (views are rebuilt from the stored SQL).

use anyhow::{Context, ensure};
use tokio_postgres::{Client, NoTls, SimpleQueryMessage};

use crate::Test;

pub const TESTS: &[(&str, Test)] = &[(
    "differential/views equal the batch answer under random changes",
    || Box::pin(random_changes()),
)];

/// Each view's name and query; all are kept by both paths.
const VIEWS: &[(&str, &str)] = &[
    (
        "agg",
        "SELECT k, count(*) AS n, sum(v) AS s, min(v) AS lo, max(v) AS hi, \
         count(DISTINCT v) AS d, avg(v) AS av, count(v) AS nv FROM a GROUP BY k",
    ),
    (
        "global",
        "SELECT count(*) AS n, sum(v) AS s, max(v) AS hi, min(v) AS lo FROM a",
    ),
    (
        "inner_join",
        "SELECT a.id AS aid, b.id AS bid, a.v, b.w FROM a JOIN b ON a.k = b.k",
    ),
    (
        "left_join",
        "SELECT a.id AS aid, b.id AS bid, a.v, b.w FROM a LEFT JOIN b ON a.k = b.k AND a.v < b.w",
    ),
    (
        "right_join",
        "SELECT a.id AS aid, b.id AS bid FROM a RIGHT JOIN b ON a.k = b.k",
    ),
    (
        "full_join",
        "SELECT a.id AS aid, b.id AS bid, a.v, b.w FROM a FULL JOIN b ON a.k = b.k AND a.v <> b.w",
    ),
    ("top", "SELECT id, v FROM a ORDER BY v DESC, id LIMIT 3"),
    (
        "top_offset",
        "SELECT id, w FROM b ORDER BY w, id LIMIT 2 OFFSET 1",
    ),
    (
        "group_top",
        "SELECT id, k, v, rn FROM (SELECT id, k, v, ROW_NUMBER() OVER \
         (PARTITION BY k ORDER BY v DESC, id) AS rn FROM a) AS t WHERE rn <= 2",
    ),
    ("distinct_keys", "SELECT DISTINCT k FROM a"),
    ("unioned", "SELECT k, v FROM a UNION ALL SELECT k, w FROM b"),
    (
        "having",
        "SELECT k, sum(v) AS s FROM a WHERE v IS NOT NULL GROUP BY k HAVING count(*) > 1",
    ),
    (
        "appended",
        "SELECT k, count(*) AS n, max(v) AS hi FROM c GROUP BY k",
    ),
    (
        "joined_agg",
        "SELECT b.k, count(*) AS n, sum(a.v) AS s FROM a JOIN b ON a.k = b.k GROUP BY b.k",
    ),
    (
        "on_view",
        "SELECT n, count(*) AS groups FROM agg GROUP BY n",
    ),
    (
        "dedup",
        "SELECT id, k, w FROM (SELECT id, k, w, ROW_NUMBER() OVER \
         (PARTITION BY k ORDER BY id) AS rn FROM b) AS t WHERE rn = 1",
    ),
    (
        "top_of_view",
        "SELECT k, s FROM agg ORDER BY s DESC NULLS LAST, k LIMIT 2",
    ),
];

/// Rounds of random changes (1 to 7 statements each); the server
/// restarts halfway.
const ROUNDS: usize = 500;

/// A small deterministic generator (xorshift), so a failure replays.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// A small value, sometimes NULL.
    fn value(&mut self) -> String {
        if self.below(8) == 0 {
            "NULL".into()
        } else {
            self.below(6).to_string()
        }
    }
}

async fn connect(port: u16) -> anyhow::Result<Client> {
    let url = format!("host=127.0.0.1 port={port} user=weir dbname=weir");
    let (client, connection) = tokio_postgres::connect(&url, NoTls).await?;
    tokio::spawn(connection);
    Ok(client)
}

/// The rows of a query, rendered as text, sorted.
async fn rows(client: &Client, sql: &str) -> anyhow::Result<Vec<String>> {
    let mut rows = Vec::new();
    for message in client
        .simple_query(sql)
        .await
        .with_context(|| sql.to_string())?
    {
        if let SimpleQueryMessage::Row(row) = message {
            let values: Vec<&str> = (0..row.len())
                .map(|i| row.get(i).unwrap_or("NULL"))
                .collect();
            rows.push(values.join("|"));
        }
    }
    rows.sort();
    Ok(rows)
}

/// The batch answer of a view's query, with every view it reads
/// replaced by its own batch query.
fn batch_query(query: &str) -> String {
    let agg = VIEWS[0].1;
    query.replace("FROM agg ", &format!("FROM ({agg}) AS agg "))
}

async fn check_views(client: &Client, round: usize) -> anyhow::Result<()> {
    client.batch_execute("FLUSH").await?;
    for (name, query) in VIEWS {
        let incremental = rows(client, &format!("SELECT * FROM {name}")).await?;
        let batch = rows(client, &batch_query(query)).await?;
        ensure!(
            incremental == batch,
            "round {round}: view {name} differs from its batch answer\nview:  {incremental:?}\nbatch: {batch:?}"
        );
    }
    Ok(())
}

async fn random_round(
    client: &Client,
    random: &mut Random,
    next_c: &mut u64,
) -> anyhow::Result<usize> {
    let mut statements = Vec::new();
    for _ in 0..1 + random.below(6) {
        let table = if random.below(2) == 0 {
            ("a", "v")
        } else {
            ("b", "w")
        };
        let (t, column) = table;
        let id = random.below(12);
        statements.push(match random.below(4) {
            0 | 1 => format!(
                "INSERT INTO {t} SELECT {id} AS i, {} AS x, {} AS y WHERE NOT EXISTS (SELECT 1 FROM {t} WHERE id = {id})",
                random.value(),
                random.value()
            ),
            2 => format!("UPDATE {t} SET {column} = {} WHERE id = {id}", random.value()),
            _ => format!("DELETE FROM {t} WHERE id = {id}"),
        });
    }
    if random.below(3) == 0 {
        *next_c += 1;
        statements.push(format!(
            "INSERT INTO c VALUES ({}, {})",
            random.value(),
            random.value()
        ));
    }
    for statement in &statements {
        client
            .batch_execute(statement)
            .await
            .with_context(|| statement.clone())?;
    }
    Ok(statements.len())
}

async fn random_changes() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut server = crate::start_server(dir.path()).await?;
    let mut client = connect(server.local_addr().port()).await?;
    client
        .batch_execute(
            "CREATE TABLE a (id INT PRIMARY KEY, k INT, v INT);
             CREATE TABLE b (id INT PRIMARY KEY, k INT, w INT);
             CREATE TABLE c (k INT, v INT) APPEND ONLY;",
        )
        .await?;
    let mut random = Random(0x5eed_1234_abcd_0001);
    let mut next_c = 0;
    let mut changes = 0;
    // Half the views start empty, half over tables that already hold rows.
    let (early, late) = VIEWS.split_at(VIEWS.len() / 2);
    for (name, query) in early {
        client
            .batch_execute(&format!("CREATE MATERIALIZED VIEW {name} AS {query}"))
            .await
            .with_context(|| format!("creating {name}"))?;
    }
    for _ in 0..10 {
        changes += random_round(&client, &mut random, &mut next_c).await?;
    }
    for (name, query) in late {
        client
            .batch_execute(&format!("CREATE MATERIALIZED VIEW {name} AS {query}"))
            .await
            .with_context(|| format!("creating {name}"))?;
    }
    let mut checks = 0;
    for round in 0..ROUNDS {
        changes += random_round(&client, &mut random, &mut next_c).await?;
        if round % 5 == 0 {
            check_views(&client, round).await?;
            checks += 1;
        }
        if round == ROUNDS / 2 {
            drop(client);
            server.shutdown().await;
            server = crate::start_server(dir.path()).await?;
            client = connect(server.local_addr().port()).await?;
            check_views(&client, round).await?;
            checks += 1;
        }
    }
    check_views(&client, ROUNDS).await?;
    println!(
        "differential: {changes} random changes, {} views checked {} times",
        VIEWS.len(),
        checks + 1
    );
    server.shutdown().await;
    Ok(())
}
