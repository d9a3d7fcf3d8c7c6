//! Driving service traffic through the router in tests: wait for a URL to answer, count which
//! revision answered, and keep a steady load running while the test edits routes.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use anyhow::bail;
use parking_lot::Mutex;

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
    tasks: Vec<tokio::task::JoinHandle<()>>,
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
    /// any non-200 answer is counted under `"<status> <body>"`.
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
        for t in tasks {
            let _ = t.await;
        }
        counts.lock().clone()
    }

    /// Starts `clients` loops of back-to-back requests to `host`.
    pub fn start_load(&self, host: &str, clients: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let report = Arc::new(Mutex::new(LoadReport::default()));
        let sent = Arc::new(AtomicU64::new(0));
        let tasks = (0..clients)
            .map(|_| {
                let (me, host, stop, report, sent) =
                    (self.clone(), host.to_string(), stop.clone(), report.clone(), sent.clone());
                tokio::spawn(async move {
                    while !stop.load(Ordering::Relaxed) {
                        let result = me.get(&host, "/").await;
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

    /// Stops the load and returns what it saw.
    pub async fn stop(self) -> LoadReport {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.tasks {
            let _ = t.await;
        }
        std::mem::take(&mut *self.report.lock())
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
