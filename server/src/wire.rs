//! Serving one TCP connection with pgwire: its message loop, as pgwire's
//! own `process_socket` runs it, over a [`CappedStream`] so that no message
//! may declare more than `max_message_size` bytes (pgwire's own bound is
//! 1 GB), and with the checks of Bind and Parse that pgwire leaves out.
//!
//! With TLS configured, an SSLRequest is answered `S` and the connection
//! goes on encrypted, as does a client that opens with a TLS handshake
//! (PostgreSQL 17's `sslnegotiation=direct`). Without, an SSLRequest is
//! answered `N` (the client goes on in plain text, or gives up) and a
//! direct handshake is closed. A GSSENCRequest is always answered `N`.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use pgwire::api::{
    ClientInfo, DefaultClient, ErrorHandler, PgWireConnectionState, PgWireServerHandlers, Type,
};
use pgwire::error::{ErrorInfo, PgWireError};
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};
use pgwire::tokio::TlsAcceptor;
use pgwire::tokio::server::{MaybeTls, PgWireMessageServerCodec, process_error, process_message};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::codec::Framed;

use crate::message_cap::{CappedStream, MessageTooLarge};

/// How long a client has to get through startup.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);
const SSL_REQUEST: [u8; 8] = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];
const GSSENC_REQUEST: [u8; 8] = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x30];
/// The first byte of a TLS handshake (a client using direct TLS).
const TLS_HANDSHAKE: u8 = 0x16;

/// Serves `socket` until the client leaves.
pub(crate) async fn serve_socket<H: PgWireServerHandlers>(
    socket: TcpStream,
    handlers: H,
    max_message_size: usize,
    tls: Option<TlsAcceptor>,
) -> io::Result<()> {
    socket.set_nodelay(true)?;
    let addr = socket.peer_addr()?;
    let startup = tokio::time::sleep(STARTUP_TIMEOUT);
    tokio::pin!(startup);
    let socket = tokio::select! {
        () = &mut startup => return Ok(()),
        socket = negotiate_encryption(socket, tls) => socket?,
    };
    let Some(socket) = socket else {
        return Ok(());
    };
    let secure = matches!(socket, MaybeTls::Tls(_));
    let mut socket = Framed::new(
        CappedStream::new(socket, max_message_size),
        PgWireMessageServerCodec::new(DefaultClient::new(addr, secure)),
    );
    socket.set_state(PgWireConnectionState::AwaitingStartup);
    let startup_handler = handlers.startup_handler();
    let simple_query_handler = handlers.simple_query_handler();
    let extended_query_handler = handlers.extended_query_handler();
    let copy_handler = handlers.copy_handler();
    let cancel_handler = handlers.cancel_handler();
    let error_handler = handlers.error_handler();
    loop {
        let starting = matches!(
            socket.state(),
            PgWireConnectionState::AwaitingStartup
                | PgWireConnectionState::AuthenticationInProgress
        );
        let message = if starting {
            tokio::select! {
                () = &mut startup => None,
                message = socket.next() => message,
            }
        } else {
            socket.next().await
        };
        let message = match message {
            // Terminate: the client is leaving; dropping the socket closes it.
            None | Some(Ok(PgWireFrontendMessage::Terminate(_))) => break,
            Some(Ok(message)) => message,
            Some(Err(e)) => {
                if let Some(too_large) = too_large(&e) {
                    let error =
                        ErrorInfo::new("FATAL".into(), "54000".into(), too_large.to_string());
                    let _ = socket
                        .send(PgWireBackendMessage::ErrorResponse(error.into()))
                        .await;
                    close_after_refusal(socket.get_mut().get_mut(), max_message_size).await;
                }
                break;
            }
        };
        let extended = match socket.state() {
            PgWireConnectionState::CopyInProgress(extended) => extended,
            _ => message.is_extended_query(),
        };
        if let Err(e) = checked(&message) {
            process_error(&mut socket, e, extended).await?;
            continue;
        }
        if let Err(mut e) = process_message(
            message,
            &mut socket,
            Arc::clone(&startup_handler),
            Arc::clone(&simple_query_handler),
            Arc::clone(&extended_query_handler),
            Arc::clone(&copy_handler),
            Arc::clone(&cancel_handler),
        )
        .await
        {
            error_handler.on_error(&socket, &mut e);
            process_error(&mut socket, e, extended).await?;
        }
    }
    Ok(())
}

/// What pgwire takes without looking, checked as PostgreSQL does: Bind
/// format codes are 0 (text) or 1 (binary), one for all or one per value
/// (22023, 08P01); Parse names only types that exist (42704).
fn checked(message: &PgWireFrontendMessage) -> Result<(), PgWireError> {
    let error = |code: &str, message: String| {
        PgWireError::UserError(Box::new(ErrorInfo::new(
            "ERROR".into(),
            code.into(),
            message,
        )))
    };
    match message {
        PgWireFrontendMessage::Bind(bind) => {
            let codes = bind
                .parameter_format_codes
                .iter()
                .chain(&bind.result_column_format_codes);
            if let Some(code) = codes.into_iter().find(|c| !matches!(c, 0 | 1)) {
                return Err(error("22023", format!("unsupported format code: {code}")));
            }
            let formats = bind.parameter_format_codes.len();
            if formats > 1 && formats != bind.parameters.len() {
                return Err(error(
                    "08P01",
                    format!(
                        "bind message has {formats} parameter formats but {} parameters",
                        bind.parameters.len()
                    ),
                ));
            }
            Ok(())
        }
        PgWireFrontendMessage::Parse(parse) => {
            match parse
                .type_oids
                .iter()
                .find(|&&oid| oid != 0 && Type::from_oid(oid).is_none())
            {
                Some(oid) => Err(error(
                    "42704",
                    format!("type with OID {oid} does not exist"),
                )),
                None => Ok(()),
            }
        }
        _ => Ok(()),
    }
}

/// Closes a connection whose message was refused, without losing the
/// refusal: the client is likely still sending that message, and closing
/// a socket with unread input resets it, which can discard the error
/// before the client reads it. So the write side is shut first, then what
/// still arrives is read and dropped, bounded in bytes and time.
async fn close_after_refusal(socket: &mut MaybeTls, max_message_size: usize) {
    const LINGER: Duration = Duration::from_secs(2);
    let _ = socket.shutdown().await;
    let mut rest = socket.take(2 * max_message_size as u64 + (1 << 20));
    let _ = tokio::time::timeout(LINGER, tokio::io::copy(&mut rest, &mut tokio::io::sink())).await;
}

/// The cap a failed read ran into, if that is why it failed.
fn too_large(error: &PgWireError) -> Option<&MessageTooLarge> {
    match error {
        PgWireError::IoError(e) => e.get_ref()?.downcast_ref::<MessageTooLarge>(),
        _ => None,
    }
}

/// Answers requests for encryption until the client sends its startup
/// message: TLS where it is configured, `N` otherwise; `None` if the client
/// left, or wanted direct TLS where there is none.
async fn negotiate_encryption(
    mut socket: TcpStream,
    tls: Option<TlsAcceptor>,
) -> io::Result<Option<MaybeTls>> {
    loop {
        let mut head = [0u8; 8];
        let seen = loop {
            let seen = socket.peek(&mut head).await?;
            if seen == 0 {
                return Ok(None);
            }
            if head[0] == TLS_HANDSHAKE {
                return match tls {
                    Some(tls) => Ok(Some(MaybeTls::Tls(Box::new(tls.accept(socket).await?)))),
                    None => Ok(None),
                };
            }
            // Anything but an 8-byte request is for the decoder to judge.
            if seen >= 8 || (seen >= 4 && head[..4] != [0, 0, 0, 8]) {
                break seen;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        if seen >= 8 && (head == SSL_REQUEST || head == GSSENC_REQUEST) {
            socket.read_exact(&mut head).await?;
            if let (true, Some(tls)) = (head == SSL_REQUEST, &tls) {
                socket.write_all(b"S").await?;
                return Ok(Some(MaybeTls::Tls(Box::new(tls.accept(socket).await?))));
            }
            socket.write_all(b"N").await?;
            continue;
        }
        return Ok(Some(MaybeTls::Plain(socket)));
    }
}
