//! A cap on the size of one protocol message. A message's length comes
//! first, so a client could declare up to 1 GB and make the server buffer
//! it as it arrives. [`CappedStream`] reads the framing as the bytes pass
//! (the untyped startup message, then a type byte and a length each) and
//! fails the read as soon as a length above the cap is declared, before
//! its body is buffered.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Why a connection was closed: a message declared past the cap.
#[derive(Debug, thiserror::Error)]
#[error("a message of {declared} bytes is larger than max_message_size ({cap} bytes)")]
pub(crate) struct MessageTooLarge {
    pub declared: usize,
    pub cap: usize,
}

/// Where the reader is in the framing.
#[derive(Debug)]
struct Framing {
    /// The next header has no type byte (the startup message).
    untyped: bool,
    header: [u8; 5],
    header_len: usize,
    /// Body bytes of the current message still to pass.
    remaining: usize,
}

impl Framing {
    /// Follows `bytes` through the framing; an error once a message
    /// declares more than `cap` bytes.
    fn follow(&mut self, mut bytes: &[u8], cap: usize) -> Result<(), MessageTooLarge> {
        while !bytes.is_empty() {
            if self.remaining > 0 {
                let skipped = self.remaining.min(bytes.len());
                self.remaining -= skipped;
                bytes = &bytes[skipped..];
                continue;
            }
            let header_size = if self.untyped { 4 } else { 5 };
            let take = (header_size - self.header_len).min(bytes.len());
            self.header[self.header_len..self.header_len + take].copy_from_slice(&bytes[..take]);
            self.header_len += take;
            bytes = &bytes[take..];
            if self.header_len < header_size {
                continue;
            }
            let length_at = header_size - 4;
            let length = u32::from_be_bytes([
                self.header[length_at],
                self.header[length_at + 1],
                self.header[length_at + 2],
                self.header[length_at + 3],
            ]) as usize;
            if length > cap {
                return Err(MessageTooLarge {
                    declared: length,
                    cap,
                });
            }
            // A length below its own four bytes is the decoder's to refuse.
            self.remaining = length.saturating_sub(4);
            self.header_len = 0;
            self.untyped = false;
        }
        Ok(())
    }
}

/// A socket whose incoming messages may not exceed `cap` bytes.
pub(crate) struct CappedStream<S> {
    inner: S,
    cap: usize,
    framing: Framing,
}

impl<S> CappedStream<S> {
    /// The stream under the cap, to read past it (see
    /// `wire::close_after_refusal`).
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    pub fn new(inner: S, cap: usize) -> Self {
        Self {
            inner,
            cap,
            framing: Framing {
                untyped: true,
                header: [0; 5],
                header_len: 0,
                remaining: 0,
            },
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for CappedStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                let cap = this.cap;
                Poll::Ready(
                    this.framing
                        .follow(&buf.filled()[before..], cap)
                        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e)),
                )
            }
            other => other,
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for CappedStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framing() -> Framing {
        Framing {
            untyped: true,
            header: [0; 5],
            header_len: 0,
            remaining: 0,
        }
    }

    #[test]
    fn frames_are_followed_across_reads_and_oversized_ones_refused() {
        let mut startup = vec![0, 0, 0, 9, 0, 3, 0, 0, 0];
        let mut query = vec![b'Q', 0, 0, 0, 7, b'a', b'b', 0];
        let mut stream = Vec::new();
        stream.append(&mut startup);
        stream.append(&mut query.clone());
        stream.append(&mut query);
        let mut followed = framing();
        // Byte by byte: headers split across reads.
        for byte in &stream {
            followed.follow(std::slice::from_ref(byte), 100).unwrap();
        }
        assert_eq!((followed.header_len, followed.remaining), (0, 0));
        let error = followed.follow(&[b'Q', 0x40, 0, 0, 0], 100).unwrap_err();
        assert_eq!(error.declared, 0x4000_0000);
        assert!(framing().follow(&[0, 0, 1, 0], 255).is_err());
    }
}
