//! The wire side of `COPY ... FROM STDIN`: the statement puts the session
//! in copy mode, CopyData messages gather here, and CopyDone writes the
//! rows ([`Database::copy_in`]) and answers `COPY n`; CopyFail, or an
//! error, writes nothing. Inside a transaction block an error fails it.

use std::fmt::Debug;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use futures::{Sink, SinkExt, stream};
use pgwire::api::ClientInfo;
use pgwire::api::copy::CopyHandler;
use pgwire::api::results::{CopyResponse, Response, Tag};
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::PgWireBackendMessage;
use pgwire::messages::copy::{CopyData, CopyDone, CopyFail};
use weir_planner::{CopyIn, Error};

use crate::connection::Connection;
use crate::errors::to_pgwire;

/// A COPY waiting for its rows, and what has come of them so far.
#[derive(Default)]
pub(crate) struct CopyInProgress {
    copy: Option<CopyIn>,
    data: Vec<u8>,
}

impl CopyInProgress {
    /// Starts receiving rows for `copy`: the response that tells the
    /// client to send them (in the COPY's format, one column each).
    pub fn start(&mut self, copy: CopyIn) -> Response {
        let columns = copy.columns.len();
        let format = i8::from(copy.format.binary);
        self.copy = Some(copy);
        self.data.clear();
        Response::CopyIn(CopyResponse::new(format, columns, stream::empty()))
    }

    fn take(&mut self) -> Option<(CopyIn, Vec<u8>)> {
        let copy = self.copy.take()?;
        Some((copy, std::mem::take(&mut self.data)))
    }
}

pub(crate) fn lock(progress: &Mutex<CopyInProgress>) -> MutexGuard<'_, CopyInProgress> {
    progress.lock().unwrap_or_else(|e| e.into_inner())
}

#[async_trait]
impl CopyHandler for Connection {
    async fn on_copy_data<C>(&self, _client: &mut C, copy_data: CopyData) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        lock(self.copy_progress())
            .data
            .extend_from_slice(&copy_data.data);
        Ok(())
    }

    async fn on_copy_done<C>(&self, client: &mut C, _done: CopyDone) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let Some((copy, data)) = lock(self.copy_progress()).take() else {
            return Err(to_pgwire(Error::user("08P01", "CopyDone outside COPY")));
        };
        match self.copy_rows(&copy, &data).await {
            Ok(rows) => {
                let tag = Tag::new("COPY").with_rows(rows as usize);
                client
                    .send(PgWireBackendMessage::CommandComplete(tag.into()))
                    .await?;
                Ok(())
            }
            Err(e) => {
                self.copy_failed();
                Err(to_pgwire(e))
            }
        }
    }

    async fn on_copy_fail<C>(&self, _client: &mut C, fail: CopyFail) -> PgWireError
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        lock(self.copy_progress()).take();
        self.copy_failed();
        to_pgwire(Error::user(
            "57014",
            format!("COPY from stdin failed: {}", fail.message),
        ))
    }
}

/// The shared progress of a session's COPY.
pub(crate) type SharedCopy = Arc<Mutex<CopyInProgress>>;
