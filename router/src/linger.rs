//! Lingering close for client connections: when the router closes a connection it first sends
//! its FIN, then reads and discards whatever the client still sends for a while before closing
//! the socket (nginx's `lingering_close`). Closing a socket with unread bytes makes the kernel
//! send a reset, and a client still writing a request body the router stopped reading (after
//! relaying an instance's early answer, say) would see that reset and could lose the response
//! it was sent just before.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Sleep;

/// The longest the router keeps reading a connection it has closed its side of (nginx's
/// `lingering_timeout` default). A client that has read the response stops sending and closes
/// long before that; one that does not is cut off.
const LINGER: Duration = Duration::from_secs(5);

/// A client connection whose shutdown lingers (see the module docs).
#[derive(Debug)]
pub(crate) struct Lingering<S = TcpStream> {
    stream: S,
    /// Set once the router's side is shut: when to stop reading. Boxed because only closing
    /// connections need it.
    until: Option<Pin<Box<Sleep>>>,
}

// === impl Lingering ===

impl<S: AsyncRead + AsyncWrite + Unpin> Lingering<S> {
    pub(crate) fn new(stream: S) -> Self {
        Self { stream, until: None }
    }

    /// The stream.
    pub(crate) fn get_ref(&self) -> &S {
        &self.stream
    }

    /// Reads and discards until the client closes, fails, or `LINGER` has passed.
    fn poll_discard(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let mut scratch = [0u8; 4096];
        loop {
            if let Some(until) = self.until.as_mut()
                && until.as_mut().poll(cx).is_ready()
            {
                return Poll::Ready(());
            }
            let mut buf = ReadBuf::new(&mut scratch);
            match ready!(Pin::new(&mut self.stream).poll_read(cx, &mut buf)) {
                Ok(()) if !buf.filled().is_empty() => {}
                Ok(()) | Err(_) => return Poll::Ready(()),
            }
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for Lingering<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Lingering<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.until.is_none() {
            ready!(Pin::new(&mut self.stream).poll_shutdown(cx))?;
            self.until = Some(Box::pin(tokio::time::sleep(LINGER)));
        }
        self.poll_discard(cx).map(Ok)
    }
}
