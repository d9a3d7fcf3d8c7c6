//! Driving service traffic through the router in tests: wait for a URL to answer, count which
//! revision answered, keep a steady load running while the test edits routes, and hold one
//! request in flight on an instance for as long as the test needs.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use anyhow::{Context as _, bail};
use bytes::Bytes;
use http::{HeaderMap, Request};
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, Incoming};
use hyper_util::client::legacy::Client as Legacy;
use hyper_util::rt::TokioExecutor;
use parking_lot::Mutex;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::http::Client;

/// A router address and a client for it.
#[derive(Clone)]
pub struct Traffic {
    /// `127.0.0.1:PORT` of the router.
    pub router: String,
    client: Client,
}

/// Tallies of a steady load.
#[derive(Debug, Default)]
pub struct LoadReport {
    /// Responses by status code.
    pub statuses: BTreeMap<u16, u64>,
    /// Failed requests (no response at all), with a sample of the errors.
    pub errors: Vec<String>,
    /// Bodies of non-200 responses (a sample).
    pub failures: Vec<String>,
}

/// A load running in the background until stopped.
pub struct Load {
    stop: Arc<AtomicBool>,
    tasks: Vec<JoinHandle<()>>,
    report: Arc<Mutex<LoadReport>>,
    sent: Arc<AtomicU64>,
}

// === impl Traffic ===

impl Traffic {
    /// Traffic to the router at `router`.
    pub fn new(router: &str) -> Self {
        Self { router: router.to_string(), client: Client::new() }
    }

    /// GET `path` with `Host: host`; the status and body.
    pub async fn get(&self, host: &str, path: &str) -> anyhow::Result<(u16, String)> {
        let r = self.client.get(&format!("http://{}{path}", self.router), &[("host", host)]).await?;
        Ok((r.status.as_u16(), r.text()))
    }

    /// Polls `host` until it answers 200 with a body `accept`s, or fails after `deadline`.
    pub async fn wait_for(
        &self,
        host: &str,
        deadline: Duration,
        accept: impl Fn(&str) -> bool,
    ) -> anyhow::Result<String> {
        let start = tokio::time::Instant::now();
        let mut last;
        loop {
            match self.get(host, "/").await {
                Ok((200, body)) if accept(&body) => return Ok(body),
                Ok((code, body)) => last = format!("{code} {body}"),
                Err(e) => last = e.to_string(),
            }
            if start.elapsed() > deadline {
                bail!("{host} did not answer as expected within {deadline:?}; last answer: {last}");
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Sends `n` requests to `host` over `concurrency` connections and counts the bodies;
    /// any non-200 answer is counted under `"<status> <body>"`. The route's split sequence is
    /// shared in order of arrival, so when nothing else sends to the route and its table does
    /// not change meanwhile, the `n` requests are one consecutive run of it whatever the
    /// concurrency, and each target gets its share to within two requests. A task's panic
    /// fails the caller.
    pub async fn split(&self, host: &str, n: usize, concurrency: usize) -> BTreeMap<String, usize> {
        let counts = Arc::new(Mutex::new(BTreeMap::new()));
        let next = Arc::new(AtomicU64::new(0));
        let mut tasks = Vec::new();
        for _ in 0..concurrency {
            let (me, host, counts, next) = (self.clone(), host.to_string(), counts.clone(), next.clone());
            tasks.push(tokio::spawn(async move {
                while next.fetch_add(1, Ordering::Relaxed) < n as u64 {
                    let key = match me.get(&host, "/").await {
                        Ok((200, body)) => body.trim().to_string(),
                        Ok((code, body)) => format!("{code} {}", body.trim()),
                        Err(e) => format!("error {e}"),
                    };
                    *counts.lock().entry(key).or_insert(0) += 1;
                }
            }));
        }
        join_all(tasks).await;
        counts.lock().clone()
    }

    /// Starts `clients` loops of back-to-back requests to `host`.
    pub fn start_load(&self, host: &str, clients: usize) -> Load {
        self.start_load_on(host, "/", clients)
    }

    /// Starts `clients` loops of back-to-back `GET path` requests to `host`.
    pub fn start_load_on(&self, host: &str, path: &str, clients: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let report = Arc::new(Mutex::new(LoadReport::default()));
        let sent = Arc::new(AtomicU64::new(0));
        let tasks = (0..clients)
            .map(|_| {
                let (me, host, path, stop, report, sent) =
                    (self.clone(), host.to_string(), path.to_string(), stop.clone(), report.clone(), sent.clone());
                tokio::spawn(async move {
                    while !stop.load(Ordering::Relaxed) {
                        let result = me.get(&host, &path).await;
                        sent.fetch_add(1, Ordering::Relaxed);
                        let mut r = report.lock();
                        match result {
                            Ok((code, body)) => {
                                *r.statuses.entry(code).or_insert(0) += 1;
                                if code != 200 && r.failures.len() < 20 {
                                    r.failures.push(format!("{code} {}", body.trim()));
                                }
                            }
                            Err(e) => {
                                if r.errors.len() < 20 {
                                    r.errors.push(e.to_string());
                                }
                                *r.statuses.entry(0).or_insert(0) += 1;
                            }
                        }
                    }
                })
            })
            .collect();
        Load { stop, tasks, report, sent }
    }
}

// === impl Load ===

impl Load {
    /// Requests sent so far.
    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    /// Stops the load and returns what it saw; a load task's panic fails the caller.
    pub async fn stop(self) -> LoadReport {
        self.stop.store(true, Ordering::Relaxed);
        join_all(self.tasks).await;
        std::mem::take(&mut *self.report.lock())
    }
}

/// Awaits every task; a task that panicked fails the caller with the task's own panic, so a
/// failing load task fails the test.
async fn join_all(tasks: Vec<JoinHandle<()>>) {
    for t in tasks {
        if let Err(e) = t.await {
            match e.try_into_panic() {
                Ok(panic) => std::panic::resume_unwind(panic),
                Err(e) => panic!("a traffic task did not finish: {e}"),
            }
        }
    }
}

/// The share of `key` in `counts`, in percent.
pub fn percent(counts: &BTreeMap<String, usize>, key: &str) -> f64 {
    let total: usize = counts.values().sum();
    if total == 0 {
        return 0.0;
    }
    100.0 * *counts.get(key).unwrap_or(&0) as f64 / total as f64
}

/// One request held in flight on an instance: `POST /echo` to the sample app (`sluice sample
/// hello`) with its body still open. The instance has answered with its head (so the request
/// has certainly reached it and is in flight there) and echoed the first chunk; the request
/// cannot finish until [`finish`](Self::finish) ends the body.
pub struct InFlight {
    /// Status of the response head.
    pub status: u16,
    /// Headers of the response head; the sample app names its revision in `k-revision`.
    pub headers: HeaderMap,
    upload: mpsc::Sender<Bytes>,
    echo: Incoming,
    echoed: Vec<u8>,
}

/// A request body fed chunk by chunk from a channel; it ends when the sender is dropped.
struct Upload(mpsc::Receiver<Bytes>);

// === impl InFlight ===

impl InFlight {
    /// Sends `POST /echo` to `host` through `router` with `first` as the first chunk, and
    /// returns once the answer's head and that chunk's echo are back, or fails after `deadline`.
    pub async fn start(router: &str, host: &str, first: &str, deadline: Duration) -> anyhow::Result<Self> {
        let client: Legacy<_, Upload> = Legacy::builder(TokioExecutor::new()).build_http();
        let (upload, rx) = mpsc::channel(1);
        let req = Request::post(format!("http://{router}/echo")).header("host", host).body(Upload(rx))?;
        upload.send(Bytes::from(first.to_string())).await.context("queue the first chunk")?;
        let started = async {
            let res = client.request(req).await?;
            let (parts, mut echo) = res.into_parts();
            let mut echoed = Vec::new();
            while echoed.len() < first.len() {
                match echo.frame().await {
                    Some(frame) => echoed.extend_from_slice(frame?.data_ref().map_or(&[][..], |d| &d[..])),
                    None => bail!("the answer ended before the first chunk was echoed: {:?}", echoed),
                }
            }
            Ok(Self { status: parts.status.as_u16(), headers: parts.headers, upload, echo, echoed })
        };
        tokio::time::timeout(deadline, started)
            .await
            .with_context(|| format!("no answer head and echo from {host} within {deadline:?}"))?
    }

    /// The revision that answered, from the sample app's `k-revision` header.
    pub fn revision(&self) -> Option<&str> {
        self.headers.get("k-revision").and_then(|v| v.to_str().ok())
    }

    /// Sends `last`, ends the upload, and returns everything the instance echoed.
    pub async fn finish(mut self, last: &str) -> anyhow::Result<String> {
        self.upload.send(Bytes::from(last.to_string())).await.context("send the last chunk")?;
        drop(self.upload);
        let rest = self.echo.collect().await.context("read the rest of the echo")?.to_bytes();
        self.echoed.extend_from_slice(&rest);
        Ok(String::from_utf8_lossy(&self.echoed).into_owned())
    }
}

// === impl Upload ===

impl Body for Upload {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        self.0.poll_recv(cx).map(|chunk| chunk.map(|c| Ok(Frame::data(c))))
    }
}
