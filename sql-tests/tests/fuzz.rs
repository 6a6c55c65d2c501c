//! The fuzz campaign: random statements of weir's whole dialect, and
//! malformed protocol frames, against one server. Every statement must be
//! answered (rows, or an error with a SQLSTATE), none may hang, no internal
//! error (XX000) may go unexplained, and the server must answer correctly
//! at the end. `make test` runs a size CI affords; `scripts/fault-campaign.sh`
//! a larger one (`WEIR_FUZZ_STATEMENTS`, `WEIR_FUZZ_CONNECTIONS`,
//! `WEIR_FUZZ_SEED`).

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, bail, ensure};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::Test;
use crate::checkpoint_failures::one_i64;
use crate::crash::connect;

pub const TESTS: &[(&str, Test)] = &[
    (
        "faults/sql fuzz: random and mutated statements, no death, no hang, no unexplained XX000",
        || Box::pin(sql_fuzz()),
    ),
    (
        "faults/protocol fuzz: malformed frames close their own connection only",
        || Box::pin(protocol_fuzz()),
    ),
];

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A small deterministic generator (xorshift64*), so a failing run can be
/// repeated from its seed.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

const TABLES: &[&str] = &["t1", "t2"];
const NUMBERS: &[&str] = &[
    "k",
    "v",
    "a",
    "b",
    "1",
    "0",
    "-1",
    "2.5",
    "NULL",
    "9223372036854775807",
];
const TEXTS: &[&str] = &["s", "'x'", "''", "'weir'", "NULL", "'o''k'"];
const BINARY: &[&str] = &["+", "-", "*", "/", "%"];
const COMPARE: &[&str] = &["=", "<>", "<", ">=", "IS DISTINCT FROM"];
const NUMBER_FUNCTIONS: &[&str] = &["abs", "sqrt", "ln", "floor", "ceil", "sign", "exp"];
const AGGREGATES: &[&str] = &["count", "sum", "min", "max", "avg"];
const TYPES: &[&str] = &[
    "INT",
    "BIGINT",
    "SMALLINT",
    "DOUBLE",
    "TEXT",
    "NUMERIC(10,2)",
    "BOOLEAN",
    "TIMESTAMP",
    "DATE",
];
const INTERVALS: &[&str] = &[
    "'1' SECOND",
    "'10' SECOND",
    "'0' SECOND",
    "'1' MINUTE",
    "'3' SECOND",
    "'1' DAY",
];
const SETTINGS: &[(&str, &[&str])] = &[
    (
        "checkpoint_interval",
        &["'1s'", "off", "'0'", "'-5s'", "'soon'"],
    ),
    ("barrier_interval", &["'100ms'", "'1s'", "'0ms'", "'x'"]),
    ("statement_timeout", &["0", "'2s'", "'5000'", "'never'"]),
    ("extra_float_digits", &["0", "3", "-20", "99"]),
    ("application_name", &["'fuzz'", "''"]),
    ("checkpoints_retained", &["1", "3", "0", "-1"]),
    ("unaligned_checkpoints", &["on", "off", "maybe"]),
    ("restart_strategy", &["fixed_delay", "none", "sometimes"]),
    ("restart_delay", &["'10ms'", "'1s'"]),
    ("idle_in_transaction_session_timeout", &["0", "'1h'", "'x'"]),
    ("no_such_setting", &["1"]),
    ("TimeZone", &["'UTC'", "'Europe/Paris'"]),
];

/// Statements of every kind weir has, some wrong on purpose.
struct Generator {
    random: Random,
    views: usize,
    savepoints: usize,
}

impl Generator {
    fn number(&mut self, depth: usize) -> String {
        if depth > 3 || self.random.chance(35) {
            return self.random.pick(NUMBERS).to_string();
        }
        match self.random.below(6) {
            0 => format!(
                "({} {} {})",
                self.number(depth + 1),
                self.random.pick(BINARY),
                self.number(depth + 1)
            ),
            1 => format!(
                "{}({})",
                self.random.pick(NUMBER_FUNCTIONS),
                self.number(depth + 1)
            ),
            2 => format!(
                "CAST({} AS {})",
                self.number(depth + 1),
                self.random.pick(TYPES)
            ),
            3 => format!(
                "CASE WHEN {} THEN {} ELSE {} END",
                self.condition(depth + 1),
                self.number(depth + 1),
                self.number(depth + 1)
            ),
            4 => format!(
                "coalesce({}, {})",
                self.number(depth + 1),
                self.number(depth + 1)
            ),
            _ => format!("length({})", self.text(depth + 1)),
        }
    }

    fn text(&mut self, depth: usize) -> String {
        if depth > 3 || self.random.chance(50) {
            return self.random.pick(TEXTS).to_string();
        }
        match self.random.below(3) {
            0 => format!("upper({})", self.text(depth + 1)),
            1 => format!("({} || {})", self.text(depth + 1), self.text(depth + 1)),
            _ => format!("CAST({} AS TEXT)", self.number(depth + 1)),
        }
    }

    fn condition(&mut self, depth: usize) -> String {
        if depth > 3 || self.random.chance(40) {
            return format!(
                "{} {} {}",
                self.number(depth + 1),
                self.random.pick(COMPARE),
                self.number(depth + 1)
            );
        }
        match self.random.below(4) {
            0 => format!(
                "({} AND {})",
                self.condition(depth + 1),
                self.condition(depth + 1)
            ),
            1 => format!(
                "({} OR {})",
                self.condition(depth + 1),
                self.condition(depth + 1)
            ),
            2 => format!("NOT ({})", self.condition(depth + 1)),
            _ => format!("{} IN (SELECT k FROM t1)", self.number(depth + 1)),
        }
    }

    fn select(&mut self) -> String {
        let table = self.random.pick(TABLES);
        match self.random.below(7) {
            0 => format!(
                "SELECT {}, {} FROM {table} WHERE {} LIMIT {}",
                self.number(0),
                self.text(0),
                self.condition(0),
                self.random.below(20)
            ),
            1 => format!(
                "SELECT {}, {}({}) FROM {table} GROUP BY 1 ORDER BY 2 DESC",
                self.number(1),
                self.random.pick(AGGREGATES),
                self.number(1)
            ),
            2 => format!(
                "SELECT * FROM t1 JOIN t2 ON t1.k = t2.a WHERE {}",
                self.condition(0)
            ),
            3 => format!(
                "SELECT {} UNION ALL SELECT {} FROM {table}",
                self.number(0),
                self.number(0)
            ),
            4 => format!(
                "SELECT window_start, count(*) FROM {}({table}, ts, INTERVAL {}{}) GROUP BY 1",
                if self.random.chance(50) {
                    "TUMBLE"
                } else {
                    "HOP"
                },
                self.random.pick(INTERVALS),
                if self.random.chance(50) {
                    format!(", INTERVAL {}", self.random.pick(INTERVALS))
                } else {
                    String::new()
                }
            ),
            5 => format!(
                "SELECT k, row_number() OVER (PARTITION BY v ORDER BY k) FROM t1 WHERE {}",
                self.condition(1)
            ),
            _ => format!(
                "SELECT ({}) FROM {table}",
                self.random
                    .pick(&["SELECT max(k) FROM t1", "SELECT k FROM t1", "SELECT 1",])
            ),
        }
    }

    fn write(&mut self) -> String {
        match self.random.below(4) {
            0 => format!(
                "INSERT INTO t1 VALUES ({}, {}, {}, TIMESTAMP '2026-01-01 00:00:00' + INTERVAL '{} seconds')",
                self.random.below(200),
                self.number(2),
                self.text(2),
                self.random.below(100)
            ),
            1 => format!(
                "INSERT INTO t2 SELECT value, value * {} FROM generate_series(1, {})",
                self.number(3),
                self.random.below(50)
            ),
            2 => format!(
                "UPDATE t1 SET v = {} WHERE {}",
                self.number(1),
                self.condition(1)
            ),
            _ => format!(
                "DELETE FROM {} WHERE {}",
                self.random.pick(TABLES),
                self.condition(1)
            ),
        }
    }

    fn view(&mut self) -> String {
        if self.views > 0 && self.random.chance(40) {
            let view = self.random.below(self.views);
            return format!("DROP MATERIALIZED VIEW IF EXISTS fv{view} CASCADE");
        }
        self.views += 1;
        let name = format!("fv{}", self.views - 1);
        let query = match self.random.below(5) {
            0 => format!(
                "SELECT v, {}({}) AS m FROM t1 GROUP BY v",
                self.random.pick(AGGREGATES),
                self.number(2)
            ),
            1 => format!(
                "SELECT t1.k, t2.b FROM t1 JOIN t2 ON t1.k = t2.a WHERE {}",
                self.condition(2)
            ),
            2 => format!(
                "SELECT window_start, count(*) AS n FROM TUMBLE(t1, ts, INTERVAL {}) GROUP BY window_start",
                self.random.pick(INTERVALS)
            ),
            3 => "SELECT k, v FROM t1 ORDER BY v DESC LIMIT 3".to_string(),
            _ => format!("SELECT {} AS x FROM t2", self.number(1)),
        };
        format!("CREATE MATERIALIZED VIEW {name} AS {query}")
    }

    fn control(&mut self) -> String {
        match self.random.below(9) {
            0 => "CHECKPOINT".to_string(),
            1 => "FLUSH".to_string(),
            2 => {
                self.savepoints += 1;
                format!("CREATE SAVEPOINT fs{}", self.savepoints)
            }
            3 => format!(
                "DROP SAVEPOINT IF EXISTS fs{}",
                self.random.below(self.savepoints + 1)
            ),
            4 => {
                let (name, values) = SETTINGS[self.random.below(SETTINGS.len())];
                format!("SET {name} = {}", self.random.pick(values))
            }
            5 => self
                .random
                .pick(&[
                    "BEGIN",
                    "COMMIT",
                    "ROLLBACK",
                    "SAVEPOINT a",
                    "ROLLBACK TO a",
                    "RELEASE a",
                ])
                .to_string(),
            6 => self
                .random
                .pick(&[
                    "SHOW ALL",
                    "SHOW CHECKPOINTS",
                    "SELECT * FROM weir_catalog.views",
                    "SELECT count(*) FROM pg_stat_activity",
                    "SELECT * FROM pg_catalog.pg_class LIMIT 3",
                    "EXPLAIN SELECT * FROM t1",
                ])
                .to_string(),
            7 => format!(
                "CREATE SOURCE IF NOT EXISTS fsrc{} WITH (connector = '{}', {})",
                self.random.below(3),
                self.random.pick(&["nexmark", "datagen", "nothing"]),
                self.random.pick(&[
                    "table = 'bid', max_events = '2000'",
                    "number_of_rows = '100'",
                    "event_rate = '-1'",
                    "max_events = 'many'",
                ])
            ),
            _ => format!(
                "ALTER MATERIALIZED VIEW fv{} RESUME",
                self.random.below(self.views + 1)
            ),
        }
    }

    fn statement(&mut self) -> String {
        let statement = match self.random.below(10) {
            0..=3 => self.select(),
            4 | 5 => self.write(),
            6 => self.view(),
            _ => self.control(),
        };
        if self.random.chance(15) {
            self.mutate(&statement)
        } else {
            statement
        }
    }

    /// `statement` damaged: a cut, a doubled word, a stray character.
    fn mutate(&mut self, statement: &str) -> String {
        let words: Vec<&str> = statement.split(' ').collect();
        let at = self.random.below(words.len());
        match self.random.below(4) {
            0 => words[..at].join(" "),
            1 => {
                let mut doubled = words.clone();
                doubled.insert(at, words[at]);
                doubled.join(" ")
            }
            2 => {
                let stray = self
                    .random
                    .pick(&["(", ")", "'", ",", ";", "$1", "\\", "\"", "--"]);
                let mut damaged = words.clone();
                damaged.insert(at, stray);
                damaged.join(" ")
            }
            _ => {
                let mut shuffled = words.clone();
                let other = self.random.below(words.len());
                shuffled.swap(at, other);
                shuffled.join(" ")
            }
        }
    }
}

/// Internal errors that are understood and accepted, by a piece of their
/// message.
const EXPLAINED: &[&str] = &[];

/// `WEIR_FUZZ_ROUNDS` rounds (1 by default), each on a fresh server with
/// its own seed.
async fn sql_fuzz() -> anyhow::Result<()> {
    let statements = setting("WEIR_FUZZ_STATEMENTS", 1500);
    let seed = setting("WEIR_FUZZ_SEED", 0x5eed_cafe);
    for round in 0..setting("WEIR_FUZZ_ROUNDS", 1) {
        fuzz_round(statements, seed.wrapping_add(round)).await?;
    }
    Ok(())
}

async fn fuzz_round(statements: u64, seed: u64) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let server = crate::start_server(dir.path()).await?;
    let port = server.local_addr().port();
    let mut client = connect(port).await?;
    client
        .batch_execute(
            "CREATE TABLE t1 (k BIGINT PRIMARY KEY, v BIGINT, s TEXT, ts TIMESTAMP);
             CREATE TABLE t2 (a BIGINT, b DOUBLE);
             INSERT INTO t1 SELECT value, value % 5, 'r', TIMESTAMP '2026-01-01 00:00:00' FROM generate_series(1, 50);
             INSERT INTO t2 SELECT value, value * 0.5 FROM generate_series(1, 50)",
        )
        .await?;
    // Mixed, so that neighbouring seeds (one per round) differ.
    let mut generator = Generator {
        random: Random(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1),
        views: 0,
        savepoints: 0,
    };
    let (mut answered, mut refused) = (0u64, 0u64);
    let mut codes: BTreeMap<String, u64> = BTreeMap::new();
    let mut internal: Vec<(String, String)> = Vec::new();
    for n in 0..statements {
        let sql = generator.statement();
        let result = tokio::time::timeout(Duration::from_secs(60), client.simple_query(&sql))
            .await
            .with_context(|| format!("statement {n} hung for a minute: {sql}"))?;
        match result {
            Ok(_) => answered += 1,
            Err(e) => {
                let Some(db) = e.as_db_error() else {
                    if client.is_closed() {
                        // The session may be gone by design (an idle timeout),
                        // but the server must still be there.
                        client = connect(port)
                            .await
                            .with_context(|| format!("the server is gone after: {sql}"))?;
                        continue;
                    }
                    bail!("statement {n} failed without a SQLSTATE ({e}): {sql}");
                };
                refused += 1;
                *codes.entry(db.code().code().to_string()).or_default() += 1;
                if db.code().code() == "25P02" {
                    // As a client would: end the failed block.
                    let _ = client.batch_execute("ROLLBACK").await;
                }
                if db.code().code().starts_with("XX")
                    && !EXPLAINED.iter().any(|known| db.message().contains(known))
                {
                    internal.push((sql.clone(), db.message().to_string()));
                }
            }
        }
    }
    // A statement left the session in a failed block, perhaps.
    let _ = client.batch_execute("ROLLBACK").await;
    println!(
        "    {statements} statements (seed {seed:#x}): {answered} answered, {refused} refused; codes {codes:?}"
    );
    ensure!(
        internal.is_empty(),
        "{} internal errors, first: {:?}",
        internal.len(),
        &internal[..internal.len().min(5)]
    );
    // The server still answers correctly, to a new session (this one may
    // carry a short statement_timeout the fuzz set).
    drop(client);
    let client = connect(port).await?;
    client
        .batch_execute("CREATE TABLE fuzz_end (x INT); INSERT INTO fuzz_end VALUES (1), (2)")
        .await?;
    ensure!(one_i64(&client, "SELECT sum(x)::BIGINT FROM fuzz_end").await? == 3);
    drop(client);
    server.shutdown().await;
    Ok(())
}

/// The server process's resident memory, in bytes.
fn resident_bytes() -> anyhow::Result<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm")?;
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .context("no resident size in statm")?
        .parse()?;
    Ok(pages * 4096)
}

/// A frame that is wrong in one of the ways a client can be wrong.
fn malformed_frame(random: &mut Random) -> Vec<u8> {
    let kinds = b"QPBEDSHCFXcdfpz\x00\xff";
    let kind = kinds[random.below(kinds.len())];
    let body_len = random.below(64);
    let body: Vec<u8> = (0..body_len).map(|_| random.next() as u8).collect();
    let declared: u32 = match random.below(5) {
        0 => 0,
        1 => 3,
        2 => u32::MAX,
        3 => 0x4000_0000,
        _ => body_len as u32 + 4,
    };
    let mut frame = vec![kind];
    frame.extend_from_slice(&declared.to_be_bytes());
    frame.extend_from_slice(&body);
    frame
}

async fn protocol_fuzz() -> anyhow::Result<()> {
    let connections = setting("WEIR_FUZZ_CONNECTIONS", 300);
    let seed = setting("WEIR_FUZZ_SEED", 0x5eed_cafe);
    let dir = tempfile::tempdir()?;
    let server = crate::start_server(dir.path()).await?;
    let port = server.local_addr().port();
    let survivor = connect(port).await?;
    survivor
        .batch_execute("CREATE TABLE t (a INT PRIMARY KEY); INSERT INTO t VALUES (1)")
        .await?;
    let before = resident_bytes()?;
    let mut random = Random(seed | 1);
    for _ in 0..connections {
        let mut socket = TcpStream::connect(("127.0.0.1", port)).await?;
        if random.chance(70) {
            // Past a proper startup, then garbage.
            let body: &[u8] = b"\x00\x03\x00\x00user\0weir\0database\0weir\0\0";
            socket
                .write_all(&(body.len() as u32 + 4).to_be_bytes())
                .await?;
            socket.write_all(body).await?;
        }
        for _ in 0..=random.below(3) {
            let frame = malformed_frame(&mut random);
            if socket.write_all(&frame).await.is_err() {
                break;
            }
        }
        let _ = socket.shutdown().await;
        let mut sink = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), socket.read_to_end(&mut sink))
            .await
            .context("a malformed connection was neither answered nor closed in 10 s")?
            .ok();
    }
    let after = resident_bytes()?;
    println!(
        "    {connections} malformed connections; resident memory {} MB before, {} MB after",
        before >> 20,
        after >> 20
    );
    ensure!(
        after < before + (256 << 20),
        "resident memory grew from {} MB to {} MB",
        before >> 20,
        after >> 20
    );
    ensure!(one_i64(&survivor, "SELECT count(*) FROM t").await? == 1);
    connect(port)
        .await?
        .batch_execute("INSERT INTO t VALUES (2)")
        .await?;
    server.shutdown().await;
    Ok(())
}
