//! `weir bench nexmark`: events per second through Nexmark queries as
//! materialized views, with checkpoints every second to RocksDB state, as
//! NEXMARK.md asks.
//!
//! Each query runs on a fresh server over a bounded run (`max_events`) of
//! the nexmark source (100,000 events per second of event time by default,
//! with a watermark 4 s behind the newest event, as Nexmark's own runs
//! have). The clock runs from `CREATE MATERIALIZED VIEW` until every
//! source reader of the view has passed the last event
//! (`weir_catalog.view_sources`) and a `FLUSH` has made the result
//! visible. The view's row count is then checked against the batch answer
//! over the same events (untimed); for `EMIT ON WINDOW CLOSE` queries,
//! over the windows that closed.
//!
//! Window-closing queries also print how their aggregate's state evolved:
//! the groups it kept open at each tenth of the run, and the state bytes of
//! its checkpoints.

use std::time::{Duration, Instant};

use anyhow::{bail, ensure};
use tokio_postgres::Client;

use crate::bench::BenchServer;

/// Every query the bench knows, as (name, view query).
const QUERIES: &[(&str, &str)] = &[
    (
        "q0",
        "SELECT auction, bidder, price, date_time, extra FROM bid",
    ),
    (
        "q1",
        "SELECT auction, bidder, 0.908 * price AS price, date_time, extra FROM bid",
    ),
    (
        "q2",
        "SELECT auction, price FROM bid WHERE auction % 123 = 0",
    ),
    (
        "q3",
        "SELECT P.name, P.city, P.state, A.id FROM auction AS A INNER JOIN person AS P ON A.seller = P.id WHERE A.category = 10 AND (P.state = 'OR' OR P.state = 'ID' OR P.state = 'CA')",
    ),
    (
        "q4",
        "SELECT Q.category, AVG(Q.final) AS avg FROM (SELECT MAX(B.price) AS final, A.category FROM auction A, bid B WHERE A.id = B.auction AND B.date_time BETWEEN A.date_time AND A.expires GROUP BY A.id, A.category) Q GROUP BY Q.category",
    ),
    (
        "q5",
        "SELECT AuctionBids.auction, AuctionBids.num FROM (SELECT auction, count(*) AS num, window_start AS starttime, window_end AS endtime FROM HOP(bid, date_time, INTERVAL '2' SECOND, INTERVAL '10' SECOND) GROUP BY auction, window_start, window_end) AS AuctionBids JOIN (SELECT max(CountBids.num) AS maxn, CountBids.starttime, CountBids.endtime FROM (SELECT count(*) AS num, window_start AS starttime, window_end AS endtime FROM HOP(bid, date_time, INTERVAL '2' SECOND, INTERVAL '10' SECOND) GROUP BY auction, window_start, window_end) AS CountBids GROUP BY CountBids.starttime, CountBids.endtime) AS MaxBids ON AuctionBids.starttime = MaxBids.starttime AND AuctionBids.endtime = MaxBids.endtime AND AuctionBids.num >= MaxBids.maxn",
    ),
    (
        "q7",
        "SELECT B.auction, B.price, B.bidder, B.date_time, B.extra FROM bid B JOIN (SELECT MAX(price) AS maxprice, window_end as date_time FROM TUMBLE(bid, date_time, INTERVAL '10' SECOND) GROUP BY window_start, window_end) B1 ON B.price = B1.maxprice WHERE B.date_time BETWEEN B1.date_time - INTERVAL '10' SECOND AND B1.date_time",
    ),
    (
        "q8",
        "SELECT P.id, P.name, P.starttime FROM (SELECT id, name, window_start AS starttime, window_end AS endtime FROM TUMBLE(person, date_time, INTERVAL '10' SECOND) GROUP BY id, name, window_start, window_end) P JOIN (SELECT seller, window_start AS starttime, window_end AS endtime FROM TUMBLE(auction, date_time, INTERVAL '10' SECOND) GROUP BY seller, window_start, window_end) A ON P.id = A.seller AND P.starttime = A.starttime AND P.endtime = A.endtime",
    ),
    (
        "q9",
        "SELECT id, item_name, description, initial_bid, reserve, date_time, expires, seller, category, auction, bidder, price, bid_date_time FROM (SELECT A.*, B.auction, B.bidder, B.price, B.date_time AS bid_date_time, ROW_NUMBER() OVER (PARTITION BY A.id ORDER BY B.price DESC, B.date_time ASC) AS rownum FROM auction A, bid B WHERE A.id = B.auction AND B.date_time BETWEEN A.date_time AND A.expires) WHERE rownum <= 1",
    ),
    (
        "q12",
        "SELECT bidder, count(*) AS bid_count, window_start, window_end FROM TUMBLE(bid, proctime(), INTERVAL '10' SECOND) GROUP BY bidder, window_start, window_end",
    ),
    (
        "q14",
        "SELECT auction, bidder, 0.908 * price as price, CASE WHEN extract(hour from date_time) >= 8 AND extract(hour from date_time) <= 18 THEN 'dayTime' WHEN extract(hour from date_time) <= 6 OR extract(hour from date_time) >= 20 THEN 'nightTime' ELSE 'otherTime' END AS bidTimeType, date_time, extra FROM bid WHERE 0.908 * price > 1000000 AND 0.908 * price < 50000000",
    ),
    (
        "q15",
        "SELECT to_char(date_time, '%Y-%m-%d') as day, count(*) AS total_bids, count(*) filter (where price < 10000) AS rank1_bids, count(*) filter (where price >= 10000 and price < 1000000) AS rank2_bids, count(*) filter (where price >= 1000000) AS rank3_bids, count(distinct bidder) AS total_bidders, count(distinct bidder) filter (where price < 10000) AS rank1_bidders, count(distinct auction) AS total_auctions FROM bid GROUP BY to_char(date_time, '%Y-%m-%d')",
    ),
    (
        "q16",
        "SELECT channel, to_char(date_time, '%Y-%m-%d') as day, max(to_char(date_time, '%H:%M')) as minute, count(*) AS total_bids, count(distinct bidder) AS total_bidders, count(distinct auction) filter (where price >= 1000000) AS rank3_auctions FROM bid GROUP BY channel, to_char(date_time, '%Y-%m-%d')",
    ),
    (
        "q17",
        "SELECT auction, to_char(date_time, '%Y-%m-%d') AS day, count(*) AS total_bids, count(*) filter (where price < 10000) AS rank1_bids, min(price) AS min_price, max(price) AS max_price, avg(price) AS avg_price, sum(price) AS sum_price FROM bid GROUP BY auction, to_char(date_time, '%Y-%m-%d')",
    ),
    (
        "q18",
        "SELECT auction, bidder, price, channel, url, date_time, extra FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY bidder, auction ORDER BY date_time DESC) AS rank_number FROM bid) WHERE rank_number <= 1",
    ),
    (
        "q19",
        "SELECT * FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY auction ORDER BY price DESC, date_time) AS rank_number FROM bid) WHERE rank_number <= 10",
    ),
    (
        "q20",
        "SELECT auction, bidder, price, channel, url, B.date_time, B.extra, item_name, description, initial_bid, reserve, A.date_time AS a_date_time, expires, seller, category FROM bid AS B INNER JOIN auction AS A on B.auction = A.id WHERE A.category = 10",
    ),
    (
        "q21",
        "SELECT auction, bidder, price, channel, CASE WHEN lower(channel) = 'apple' THEN '0' WHEN lower(channel) = 'google' THEN '1' WHEN lower(channel) = 'facebook' THEN '2' WHEN lower(channel) = 'baidu' THEN '3' ELSE (regexp_match(url, '(&|^)channel_id=([^&]*)'))[2] END AS channel_id FROM bid WHERE (regexp_match(url, '(&|^)channel_id=([^&]*)'))[2] IS NOT NULL OR lower(channel) IN ('apple', 'google', 'facebook', 'baidu')",
    ),
    (
        "q22",
        "SELECT auction, bidder, price, channel, split_part(url, '/', 4) AS dir1, split_part(url, '/', 5) AS dir2, split_part(url, '/', 6) AS dir3 FROM bid",
    ),
    (
        "agg",
        "SELECT auction, count(*) AS bids, max(price) AS top FROM bid GROUP BY auction",
    ),
    (
        "q5_eowc",
        "SELECT auction, window_start, count(*) AS bids FROM HOP(bid, date_time, INTERVAL '2' SECOND, INTERVAL '10' SECOND) GROUP BY auction, window_start",
    ),
    (
        "q7_eowc",
        "SELECT window_start, max(price) AS top, count(*) AS bids FROM TUMBLE(bid, date_time, INTERVAL '10' SECOND) GROUP BY window_start",
    ),
];

/// Queries named `*_eowc` run with `EMIT ON WINDOW CLOSE`.
fn emits_on_window_close(name: &str) -> bool {
    name.ends_with("_eowc")
}

/// What to count in the view and in the batch answer, which must agree:
/// the rows, but only of closed windows for `*_eowc`, and for q12, whose
/// windows are of processing time, the bids.
fn counts(name: &str, sql: &str) -> (String, String) {
    if name == "q12" {
        return (
            "SELECT sum(bid_count) FROM q".into(),
            "SELECT count(*) FROM bid".into(),
        );
    }
    let closed = if emits_on_window_close(name) {
        " WHERE window_start <= (SELECT max(window_start) FROM q)"
    } else {
        ""
    };
    (
        "SELECT count(*) FROM q".into(),
        format!("SELECT count(*) FROM ({sql}){closed}"),
    )
}

async fn number(client: &Client, sql: &str) -> anyhow::Result<i64> {
    let row = client.query_one(sql, &[]).await?;
    Ok(row.get::<_, Option<i64>>(0).unwrap_or(0))
}

pub async fn nexmark(queries: &[String], events: u64, event_rate: u64) -> anyhow::Result<()> {
    let selected: Vec<&(&str, &str)> = if queries.is_empty() {
        QUERIES.iter().collect()
    } else {
        queries
            .iter()
            .map(
                |name| match QUERIES.iter().find(|(known, _)| known == name) {
                    Some(query) => Ok(query),
                    None => {
                        let known: Vec<&str> = QUERIES.iter().map(|(n, _)| *n).collect();
                        bail!("unknown query {name}; known: {}", known.join(", "))
                    }
                },
            )
            .collect::<anyhow::Result<_>>()?
    };
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "nexmark, {events} events per query, {event_rate} events/s of event time, \
         checkpoints every 1s (rocksdb), {cores} cores"
    );
    println!(
        "{:<6} {:>9} {:>12} {:>14} {:>10} {:>12} {:>12}",
        "query", "seconds", "events/s", "events/s/core", "rows", "checkpoints", "p99 ckpt ms"
    );
    let mut state_reports = Vec::new();
    for (name, sql) in selected {
        if let Some(report) = run(name, sql, events, event_rate, cores).await? {
            state_reports.push(report);
        }
    }
    for report in state_reports {
        println!("{report}");
    }
    Ok(())
}

/// The groups a window-closing aggregate keeps open, sampled at each tenth
/// of the events read.
#[derive(Default)]
struct OpenGroups {
    samples: Vec<(u64, i64)>,
}

impl OpenGroups {
    async fn sample(&mut self, client: &Client, read: u64, events: u64) -> anyhow::Result<()> {
        let tenth = (events / 10).max(1);
        let due = (self.samples.len() as u64 + 1) * tenth;
        if read >= due {
            let open = number(
                client,
                "SELECT coalesce(max(open_groups), 0) FROM weir_catalog.watermarks WHERE view = 'q'",
            )
            .await?;
            self.samples.push((read, open));
        }
        Ok(())
    }
}

async fn run(
    name: &str,
    sql: &str,
    events: u64,
    event_rate: u64,
    cores: usize,
) -> anyhow::Result<Option<String>> {
    let bench = BenchServer::start().await?;
    let client = bench.connect().await?;
    client
        .batch_execute(&format!(
            "CREATE SOURCE nexmark (WATERMARK FOR date_time AS date_time - INTERVAL '4' SECOND)
             WITH (connector = 'nexmark', event_rate = '{event_rate}', max_events = '{events}');
             SET checkpoint_interval = '1s';"
        ))
        .await?;
    let eowc = emits_on_window_close(name);
    let clause = if eowc { " EMIT ON WINDOW CLOSE" } else { "" };
    let started = Instant::now();
    client
        .batch_execute(&format!("CREATE MATERIALIZED VIEW q AS {sql}{clause}"))
        .await?;
    let least_read =
        "SELECT coalesce(min(\"offset\"), 0) FROM weir_catalog.view_sources WHERE view = 'q'";
    let mut open_groups = OpenGroups::default();
    loop {
        let read = number(&client, least_read).await?.max(0) as u64;
        if eowc {
            open_groups.sample(&client, read, events).await?;
        }
        if read >= events {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    client.batch_execute("FLUSH").await?;
    let seconds = started.elapsed().as_secs_f64();
    let checkpoints = client
        .query_one(
            "SELECT count(*), coalesce(approx_percentile_cont(duration_ms, 0.99), 0)::DOUBLE
             FROM weir_catalog.checkpoints WHERE status = 'completed' AND trigger = 'interval'",
            &[],
        )
        .await?;
    let (taken, p99): (i64, f64) = (checkpoints.get(0), checkpoints.get(1));
    let (view_count, batch_count) = counts(name, sql);
    let rows = number(&client, "SELECT count(*) FROM q").await?;
    let counted = number(&client, &view_count).await?;
    let expected = number(&client, &batch_count).await?;
    ensure!(
        counted == expected,
        "{name}: the view counts {counted}, the batch answer {expected}"
    );
    let rate = events as f64 / seconds;
    println!(
        "{:<6} {:>9.2} {:>12.0} {:>14.0} {:>10} {:>12} {:>12.0}",
        name,
        seconds,
        rate,
        rate / cores as f64,
        rows,
        taken,
        p99
    );
    let report = if eowc {
        Some(state_report(name, &client, &open_groups).await?)
    } else {
        None
    };
    drop(client);
    bench.server.shutdown().await;
    Ok(report)
}

/// How a window-closing query's aggregate state evolved over the run.
async fn state_report(name: &str, client: &Client, open: &OpenGroups) -> anyhow::Result<String> {
    let bytes: Vec<i64> = client
        .query(
            "SELECT state_bytes FROM weir_catalog.checkpoint_operators
             WHERE view = 'q' AND operator LIKE '%HashAggregate' ORDER BY checkpoint_id",
            &[],
        )
        .await?
        .iter()
        .map(|row| row.get(0))
        .collect();
    let samples: Vec<String> = open
        .samples
        .iter()
        .map(|(read, groups)| format!("{}M:{groups}", *read as f64 / 1e6))
        .collect();
    let kb = |b: &i64| format!("{}", b / 1024);
    let shown: Vec<String> = bytes.iter().map(kb).collect();
    Ok(format!(
        "{name}: open groups by events read: {}\n{name}: aggregate state per checkpoint, KiB: {}",
        samples.join(" "),
        shown.join(" ")
    ))
}
