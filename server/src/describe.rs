//! Describe of a prepared statement, answered as PostgreSQL answers it:
//! ParameterDescription, then RowDescription when the statement returns
//! rows and NoData when it does not.
//!
//! pgwire sends NoData only when a statement has neither parameters nor
//! result columns, so `INSERT ... VALUES ($1)` was described with an empty
//! RowDescription. pgjdbc reads that as "this statement returns rows", and
//! once it had prepared the statement on the server it failed the
//! `executeUpdate` that had just written its row.

use std::fmt::Debug;

use futures::{Sink, SinkExt};
use pgwire::api::query::send_describe_response;
use pgwire::api::results::{DescribeResponse, DescribeStatementResponse};
use pgwire::api::{ClientInfo, Type};
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::PgWireBackendMessage;
use pgwire::messages::data::{NoData, ParameterDescription};

/// Sends `response` for a Describe of a statement.
pub(crate) async fn send_statement_description<C>(
    client: &mut C,
    response: &DescribeStatementResponse,
) -> PgWireResult<()>
where
    C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send,
    C::Error: Debug,
    PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
{
    if !response.fields().is_empty() {
        return send_describe_response(client, response).await;
    }
    let parameters = response
        .parameters()
        .unwrap_or_default()
        .iter()
        .map(Type::oid)
        .collect();
    client
        .feed(PgWireBackendMessage::ParameterDescription(
            ParameterDescription::new(parameters),
        ))
        .await?;
    client
        .send(PgWireBackendMessage::NoData(NoData::new()))
        .await?;
    Ok(())
}
