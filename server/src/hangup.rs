//! Noticing a client that has gone while its statement runs.
//!
//! pgwire reads a connection only between statements, so a client that
//! disconnects mid-query is seen only when the answer is written, which
//! for a long aggregate may be minutes of wasted work. Each connection's
//! socket is therefore duplicated: pgwire serves one handle, and the other
//! only waits for the peer's end of stream (epoll's read-hangup), which the
//! kernel reports however much unread input is queued.

use std::io;

use tokio::io::Interest;
use tokio::net::TcpStream;

/// The socket twice: the handle to serve and the handle to watch.
pub(crate) fn watched(socket: TcpStream) -> io::Result<(TcpStream, TcpStream)> {
    let socket = socket.into_std()?;
    let watch = socket.try_clone()?;
    Ok((TcpStream::from_std(socket)?, TcpStream::from_std(watch)?))
}

/// Resolves once the peer has closed the connection (or it failed).
pub(crate) async fn client_gone(watch: &TcpStream) {
    loop {
        match watch.ready(Interest::READABLE).await {
            Ok(ready) if !ready.is_read_closed() => {
                // Input for pgwire: forget this readiness without reading,
                // and wait for the next event.
                let _ = watch.try_io(Interest::READABLE, || {
                    Err::<(), _>(io::ErrorKind::WouldBlock.into())
                });
            }
            _ => return,
        }
    }
}
