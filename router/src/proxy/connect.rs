//! The HTTP/1.1 upstream transport: an instance that answers before it has read the whole
//! request body and then closes (a 413, say; HTTP/1.1 allows such early answers) makes the
//! kernel reset the connection under the body still being written. hyper's client would fail
//! the exchange on that write error even when the answer is already in the socket. Here a write
//! refused because the peer is gone instead parks the writer for good, so hyper goes on reading:
//! the answer (head and body, up to its length or the close) reaches the client, and the end of
//! the stream that follows finishes the connection, which is then never pooled. An instance that
//! closed without answering still fails the exchange, on that end of stream.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// A connection to an instance whose writes, once the peer has gone, park instead of failing.
#[derive(Debug)]
pub(crate) struct EarlyAnswerIo {
    io: TokioIo<TcpStream>,
    /// Set once a write found the peer gone; nothing is written after that.
    peer_gone: bool,
}

// === impl EarlyAnswerIo ===

impl EarlyAnswerIo {
    pub(crate) fn new(stream: TcpStream) -> Self {
        Self { io: TokioIo::new(stream), peer_gone: false }
    }

    /// Parks a write the peer refused: hyper's read side is woken by the answer or the end of
    /// stream that must follow, and no waker is needed here because nothing will ever be written.
    fn park_if_gone<T>(&mut self, polled: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        match polled {
            Poll::Ready(Err(e)) if peer_gone(&e) => {
                tracing::debug!(error = %e, "instance stopped reading the request; waiting for its answer");
                self.peer_gone = true;
                Poll::Pending
            }
            other => other,
        }
    }
}

/// True for the errors of writing to a peer that has closed or reset the connection.
fn peer_gone(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted)
}

impl Read for EarlyAnswerIo {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: ReadBufCursor<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl Write for EarlyAnswerIo {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        if self.peer_gone {
            return Poll::Pending;
        }
        let polled = Pin::new(&mut self.io).poll_write(cx, buf);
        self.park_if_gone(polled)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if self.peer_gone {
            return Poll::Pending;
        }
        let polled = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        self.park_if_gone(polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.peer_gone {
            return Poll::Pending;
        }
        let polled = Pin::new(&mut self.io).poll_flush(cx);
        self.park_if_gone(polled)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.peer_gone {
            // Nothing left to say to a peer that is gone; the socket closes on drop.
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}
