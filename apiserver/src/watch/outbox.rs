//! A watch's bounded send buffer: at most so many lines and so many bytes wait between the
//! watch task and the connection, and a watch whose client does not make room in time is
//! refused as [`Refused::Behind`] — so a client that never reads costs a bounded amount of
//! memory and is then closed, as Kubernetes closes a watcher that falls behind.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio_stream::Stream;

/// Why a line was not sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// The client has gone (the body was dropped).
    Closed,
    /// The buffer stayed full for the whole stall timeout: the client is not reading.
    Behind,
}

/// How much one watch may buffer, and for how long it may stay full.
#[derive(Clone, Copy, Debug)]
pub struct BufferLimits {
    /// Lines waiting at most.
    pub events: usize,
    /// Bytes waiting at most; one line larger than this is let through alone.
    pub bytes: usize,
    /// How long a send waits for room before the watch is declared behind.
    pub stall: Duration,
}

/// The sending half, owned by the watch task.
pub struct Outbox {
    tx: mpsc::Sender<Entry>,
    bytes: Arc<Semaphore>,
    max_bytes: u32,
    stall: Duration,
}

/// The receiving half: the lines of the response body, in order.
pub struct Lines(mpsc::Receiver<Entry>);

/// A line and its share of the byte budget, given back when the line leaves the buffer.
struct Entry {
    line: Bytes,
    _bytes: OwnedSemaphorePermit,
}

/// A buffer bounded by `limits`.
pub fn outbox(limits: BufferLimits) -> (Outbox, Lines) {
    let (tx, rx) = mpsc::channel(limits.events.max(1));
    // Semaphore permits are counted in u32 when taken several at once.
    let max_bytes = u32::try_from(limits.bytes).unwrap_or(u32::MAX).max(1);
    let bytes = Arc::new(Semaphore::new(max_bytes as usize));
    (Outbox { tx, bytes, max_bytes, stall: limits.stall }, Lines(rx))
}

// === impl Outbox ===

impl Outbox {
    /// Queues `line`, waiting up to the stall timeout for room.
    pub async fn send(&self, line: Bytes) -> Result<(), Refused> {
        let want = u32::try_from(line.len()).unwrap_or(u32::MAX).min(self.max_bytes);
        let deliver = async {
            let permit = self.bytes.clone().acquire_many_owned(want).await.map_err(|_| Refused::Closed)?;
            self.tx.send(Entry { line, _bytes: permit }).await.map_err(|_| Refused::Closed)
        };
        tokio::time::timeout(self.stall, deliver).await.unwrap_or(Err(Refused::Behind))
    }

    /// Completes when the receiving half is dropped.
    pub async fn closed(&self) {
        self.tx.closed().await;
    }

    /// Lines waiting now.
    pub fn queued(&self) -> usize {
        self.tx.max_capacity() - self.tx.capacity()
    }
}

// === impl Lines ===

impl Stream for Lines {
    type Item = Bytes;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        // The permit drops here: the connection has taken the line, so its bytes leave the budget.
        self.0.poll_recv(cx).map(|entry| entry.map(|e| e.line))
    }
}

#[cfg(test)]
mod tests {
    use tokio_stream::StreamExt;

    use super::*;

    // Real time, kept short: tokio's paused clock needs its `test-util` feature, which this
    // workspace does not build.
    const STALL: Duration = Duration::from_millis(50);

    fn limits(events: usize, bytes: usize) -> BufferLimits {
        BufferLimits { events, bytes, stall: STALL }
    }

    #[tokio::test]
    async fn a_full_buffer_that_is_not_drained_is_behind_after_the_stall() {
        let (out, mut lines) = outbox(limits(2, 1024));
        out.send(Bytes::from_static(b"a")).await.expect("room");
        out.send(Bytes::from_static(b"b")).await.expect("room");
        let start = tokio::time::Instant::now();
        assert_eq!(out.send(Bytes::from_static(b"c")).await, Err(Refused::Behind));
        assert!(start.elapsed() >= STALL, "refused only after the stall timeout");
        assert_eq!(lines.next().await, Some(Bytes::from_static(b"a")));
        out.send(Bytes::from_static(b"d")).await.expect("room again once read");
    }

    #[tokio::test]
    async fn bytes_are_bounded_and_an_oversized_line_goes_alone() {
        let (out, mut lines) = outbox(limits(100, 10));
        out.send(Bytes::from_static(b"123456")).await.expect("room");
        assert_eq!(out.send(Bytes::from_static(b"123456")).await, Err(Refused::Behind), "12 bytes > 10");
        lines.next().await.expect("first line");
        out.send(Bytes::from(vec![b'x'; 50])).await.expect("an empty buffer takes a line of any size");
        assert_eq!(out.send(Bytes::from_static(b"1")).await, Err(Refused::Behind));
        assert_eq!(lines.next().await.map(|l| l.len()), Some(50));
        out.send(Bytes::from_static(b"1")).await.expect("room again");
        assert_eq!(out.queued(), 1);
    }

    #[tokio::test]
    async fn a_dropped_receiver_is_closed_not_behind() {
        let (out, lines) = outbox(limits(1, 10));
        drop(lines);
        assert_eq!(out.send(Bytes::from_static(b"a")).await, Err(Refused::Closed));
    }
}
