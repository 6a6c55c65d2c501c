use datafusion::common::ScalarValue;
use datafusion::physical_expr::expressions::col;
use weir_storage::MemoryStateStore;

use super::*;
use crate::operators::testing::{barrier, chunk, lines, messages, run, stop, stored_entries};

fn join(join_type: JoinType, left: Vec<Message>, right: Vec<Message>) -> Vec<String> {
    join_expiring(join_type, left, right, None)
}

fn join_expiring(
    join_type: JoinType,
    left: Vec<Message>,
    right: Vec<Message>,
    ttl: Option<Duration>,
) -> Vec<String> {
    let left = messages("I T", left);
    let right = messages("I I", right);
    let side = |input: BoxedOperator| {
        let key = col("c0", &input.info().schema).unwrap();
        JoinSide {
            visible: 2,
            keys: vec![key],
            input,
        }
    };
    let store: Arc<dyn StateStore> = Arc::new(MemoryStateStore::default());
    let operator = HashJoinOperator::new(
        side(left),
        side(right),
        join_type,
        None,
        store,
        1,
        "join".into(),
    )
    .unwrap();
    let operator = match ttl {
        Some(ttl) => operator.expire_after(ttl),
        None => operator,
    };
    futures::executor::block_on(run(Box::new(operator)))
}

/// Entries in the store after an inner join of rows (id, key, time),
/// with or without a time band.
fn stored_after(band: Option<TimeBand>) -> usize {
    band_join(band).1
}

/// The join's messages and the store's entries after it ran.
fn band_join(band: Option<TimeBand>) -> (Vec<Message>, usize) {
    let watermark = |value: i64| {
        Message::Watermark(Watermark {
            column: 2,
            value: ScalarValue::Int64(Some(value)),
        })
    };
    let t = "I I I";
    let left = messages(
        t,
        vec![
            Message::Chunk(chunk(t, "+ 1 7 100\n+ 2 7 200")),
            watermark(150),
            barrier(1),
            stop(2),
        ],
    );
    let right = messages(
        t,
        vec![
            Message::Chunk(chunk(t, "+ 3 7 105")),
            watermark(195),
            barrier(1),
            stop(2),
        ],
    );
    let side = |input: BoxedOperator| JoinSide {
        keys: vec![col("c1", &input.info().schema).unwrap()],
        visible: 3,
        input,
    };
    let store: Arc<dyn StateStore> = Arc::new(MemoryStateStore::default());
    let operator = HashJoinOperator::new(
        side(left),
        side(right),
        JoinType::Inner,
        None,
        Arc::clone(&store),
        1,
        "join".into(),
    )
    .unwrap();
    let operator = match band {
        Some(band) => operator.with_time_band(band),
        None => operator,
    };
    let messages =
        futures::executor::block_on(crate::operators::testing::collect(Box::new(operator)));
    (messages, stored_entries(&store))
}

#[test]
fn an_interval_join_passes_on_the_watermarks_its_band_allows() {
    let band = TimeBand {
        left: 2,
        right: 2,
        lower: -10,
        upper: 0,
    };
    let (messages, _) = band_join(Some(band));
    let watermarks: Vec<(usize, ScalarValue)> = messages
        .into_iter()
        .filter_map(|m| match m {
            Message::Watermark(w) => Some((w.column, w.value)),
            _ => None,
        })
        .collect();
    // Left 150, right 195: the left time (column 2) carries
    // min(150, 195 - 10), the right time (column 3 + 2) min(195, 150 - 0).
    let at = |v: i64| ScalarValue::Int64(Some(v));
    assert_eq!(watermarks, vec![(2, at(150)), (5, at(150))]);
    let (messages, _) = band_join(None);
    assert!(!messages.iter().any(|m| matches!(m, Message::Watermark(_))));
}

#[test]
fn an_interval_join_forgets_rows_the_watermarks_put_out_of_reach() {
    // left.t - right.t in [-10, 0]. Left watermark 150: a right row
    // older than 150 is out of reach (105 goes). Right watermark 195: a
    // left row older than 185 is (100 goes, 200 stays).
    let band = TimeBand {
        left: 2,
        right: 2,
        lower: -10,
        upper: 0,
    };
    assert_eq!(stored_after(None) - stored_after(Some(band)), 2);
}

#[test]
fn an_expired_key_retracts_its_joined_rows_and_is_forgotten() {
    let left = vec![
        Message::Chunk(chunk("I T", "+ 1 a\n+ 2 b")),
        barrier(1),
        Message::Chunk(chunk("I T", "+ 1 c")),
        barrier(2),
        stop(3),
    ];
    let right = vec![
        Message::Chunk(chunk("I I", "+ 1 10")),
        barrier(1),
        barrier(2),
        stop(3),
    ];
    // Every epoch's end expires what it changed. The left join pads
    // 2 b; after expiry, 1 c finds no right row left to join.
    let out = join_expiring(JoinType::Left, left, right, Some(Duration::ZERO));
    // The two sides' first chunks may come in either order; what each
    // epoch emits does not depend on it.
    let (first, rest) = out.split_at(out.len() - 4);
    let mut first = first.to_vec();
    first.sort();
    let expected_first = match first.len() {
        2 => lines("+ 1 a 1 10\n+ 2 b . ."),
        _ => lines("+ 1 a . .\n+ 1 a 1 10\n+ 2 b . .\n- 1 a . ."),
    };
    assert_eq!(first, expected_first);
    let mut expired = rest[..2].to_vec();
    expired.sort();
    assert_eq!(expired, lines("- 1 a 1 10\n- 2 b . ."));
    assert_eq!(rest[2..], lines("+ 1 c . .\n- 1 c . ."));
}

#[test]
fn left_join_pads_and_unpads() {
    let out = join(
        JoinType::Left,
        vec![
            Message::Chunk(chunk("I T", "+ 1 a\n+ 2 b")),
            barrier(1),
            stop(2),
        ],
        vec![
            barrier(1),
            Message::Chunk(chunk("I I", "+ 1 10\n+ 1 11\n- 1 10\n- 1 11")),
            stop(2),
        ],
    );
    assert_eq!(
        out,
        lines(
            "+ 1 a . .
             + 2 b . .
             - 1 a . .
             + 1 a 1 10
             + 1 a 1 11
             - 1 a 1 10
             - 1 a 1 11
             + 1 a . ."
        )
    );
}

#[test]
fn full_join_keeps_both_sides_and_skips_null_keys() {
    let out = join(
        JoinType::Full,
        vec![
            Message::Chunk(chunk("I T", "+ . x\n+ 3 c")),
            barrier(1),
            stop(2),
        ],
        vec![
            Message::Chunk(chunk("I I", "+ 3 30\n+ 4 40")),
            barrier(1),
            stop(2),
        ],
    );
    assert_eq!(
        out,
        lines(
            "+ . x . .
             + 3 c . .
             - 3 c . .
             + 3 c 3 30
             + . . 4 40"
        )
    );
}
