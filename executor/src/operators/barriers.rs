//! Every operator forwards each barrier exactly once, in order, whatever
//! the chunks around it. New operators join the list in [`every_operator`].

use std::sync::Arc;

use datafusion::logical_expr::Operator as BinaryOp;
use datafusion::physical_expr::expressions::{BinaryExpr, col, lit};
use weir_storage::MemoryStateStore;

use super::testing::{barrier, chunk, collect, messages, stop};
use super::{
    FilterOperator, HashAggOperator, HashJoinOperator, JoinSide, Limit, MaterializeOperator,
    ProjectOperator, TopNOperator, UnionOperator,
};
use crate::aggregate::{AggCall, AggKind};
use crate::message::{Epoch, Message};
use crate::operator::BoxedOperator;
use crate::state::StateTableId;
use datafusion::arrow::datatypes::{DataType, Field};
use datafusion::logical_expr::JoinType;
use weir_storage::StateStore;

const TYPES: &str = "I T";

fn input() -> BoxedOperator {
    messages(
        TYPES,
        vec![
            barrier(1),
            Message::Chunk(chunk(TYPES, "+ 1 a\n+ 2 b")),
            barrier(2),
            barrier(3),
            Message::Chunk(chunk(TYPES, "- 1 a\nU- 2 b\nU+ 2 c")),
            Message::Chunk(chunk(TYPES, "")),
            stop(4),
        ],
    )
}

fn every_operator() -> Vec<BoxedOperator> {
    let schema = Arc::clone(&input().info().schema);
    let predicate = Arc::new(BinaryExpr::new(
        col("c0", &schema).unwrap(),
        BinaryOp::Gt,
        lit(1i64),
    ));
    let columns = vec![
        (col("c0", &schema).unwrap(), "k".into()),
        (col("c1", &schema).unwrap(), "v".into()),
    ];
    let store = || -> Arc<dyn StateStore> { Arc::new(MemoryStateStore::default()) };
    let count = AggCall {
        kind: AggKind::Count,
        arg: None,
        distinct: false,
        filter: None,
        output: Field::new("n", DataType::Int64, false),
    };
    let groups = vec![(col("c1", &schema).unwrap(), "g".to_string())];
    let side = || JoinSide {
        input: input(),
        keys: vec![col("c0", &schema).unwrap()],
        visible: 2,
    };
    let top = Limit {
        offset: 0,
        fetch: 1,
    };
    vec![
        Box::new(FilterOperator::new(input(), predicate, "filter".into())),
        Box::new(ProjectOperator::new(input(), columns, "project".into()).unwrap()),
        Box::new(
            MaterializeOperator::new(
                input(),
                store(),
                StateTableId(1),
                None,
                "materialize".into(),
            )
            .unwrap(),
        ),
        Box::new(
            HashAggOperator::new(input(), groups, vec![count], store(), 1, "agg".into()).unwrap(),
        ),
        Box::new(
            HashJoinOperator::new(
                side(),
                side(),
                JoinType::Full,
                None,
                store(),
                1,
                "join".into(),
            )
            .unwrap(),
        ),
        Box::new(
            TopNOperator::new(
                input(),
                vec![],
                vec![(1, Default::default())],
                top,
                store(),
                1,
                "top".into(),
            )
            .unwrap(),
        ),
        Box::new(UnionOperator::new(vec![input(), input()], vec![0], "union".into()).unwrap()),
    ]
}

#[tokio::test]
async fn every_operator_forwards_each_barrier_once() {
    for operator in every_operator() {
        let identity = operator.info().identity.clone();
        let epochs: Vec<Epoch> = collect(operator)
            .await
            .into_iter()
            .filter_map(|m| match m {
                Message::Barrier(b) => Some(b.epoch),
                _ => None,
            })
            .collect();
        assert_eq!(
            epochs,
            vec![Epoch(1), Epoch(2), Epoch(3), Epoch(4)],
            "{identity}"
        );
    }
}
