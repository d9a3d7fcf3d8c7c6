//! Request bodies that are produced a chunk at a time, and a digest to check them.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Body, Frame};
use tokio::sync::mpsc;

use super::{BoxError, TestBody};

/// `len` pseudo-random bytes produced 64 KiB at a time, never held whole.
pub struct Generated {
    remaining: u64,
    state: u64,
}

impl Generated {
    pub const CHUNK: usize = 64 * 1024;

    pub fn new(len: u64, seed: u64) -> Generated {
        Generated { remaining: len, state: seed | 1 }
    }
}

impl Body for Generated {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if self.remaining == 0 {
            return Poll::Ready(None);
        }
        let n = Self::CHUNK.min(usize::try_from(self.remaining).unwrap_or(Self::CHUNK));
        let mut chunk = Vec::with_capacity(n);
        while chunk.len() < n {
            // xorshift64
            let mut x = self.state;
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            self.state = x;
            let bytes = x.to_le_bytes();
            chunk.extend_from_slice(&bytes[..(n - chunk.len()).min(8)]);
        }
        self.remaining -= n as u64;
        Poll::Ready(Some(Ok(Frame::data(Bytes::from(chunk)))))
    }
}

/// A running FNV-1a checksum and byte count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Digest {
    pub len: u64,
    pub hash: u64,
}

impl Digest {
    pub fn new() -> Digest {
        Digest { len: 0, hash: 0xcbf2_9ce4_8422_2325 }
    }

    pub fn update(&mut self, data: &[u8]) {
        for b in data {
            self.hash = (self.hash ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
        self.len += data.len() as u64;
    }

    /// The digest of what `Generated::new(len, seed)` produces.
    pub async fn of_generated(len: u64, seed: u64) -> Digest {
        let mut body = Generated::new(len, seed);
        let mut digest = Digest::new();
        while let Some(frame) = body.frame().await {
            if let Ok(data) = frame.expect("generated").into_data() {
                digest.update(&data);
            }
        }
        digest
    }
}

/// A request body fed chunk by chunk through a channel; ends when the sender is dropped.
pub struct Channel {
    rx: mpsc::Receiver<Bytes>,
}

impl Channel {
    pub fn pair() -> (mpsc::Sender<Bytes>, TestBody) {
        let (tx, rx) = mpsc::channel(1);
        (tx, Channel { rx }.boxed_unsync())
    }
}

impl Body for Channel {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.rx.poll_recv(cx).map(|chunk| chunk.map(|c| Ok(Frame::data(c))))
    }
}
