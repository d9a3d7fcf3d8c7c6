//! `sluice sample autoscale`: the app Knative's `autoscale-go` image resolves to locally, for
//! trying the autoscaler. Every request may ask for work, as autoscale-go's do: `?sleep=MS`
//! holds it that long (without using a CPU), `?prime=N` finds the largest prime up to N (N at
//! most 10,000,000), `?bloat=MB` allocates and touches that many MiB for the request (at most
//! 1,024); the answer is a line per job saying what was done. It counts the requests it holds
//! at once; with `--test-endpoints` (Sluice's tests only) `GET /stats` answers
//! `{"in_flight": n, "max_in_flight": m, "served": k}` for this instance (not counted itself).
//! It reads every request body to its end before it answers.

use std::convert::Infallible;
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::time::Duration;

use http::{Request, Response, StatusCode};
use hyper::body::Incoming;

use super::{Body, drained, query, serve, text};

/// The largest `?prime=N` computed; larger values are capped to it.
pub const MAX_PRIME: u64 = 10_000_000;
/// The largest `?bloat=MB` allocated; larger values are capped to it.
pub const MAX_BLOAT_MB: u64 = 1024;
/// The longest `?sleep=MS` held (ten minutes); larger values are capped to it.
pub const MAX_SLEEP_MS: u64 = 600_000;

/// Requests held now, the most ever held at once, and requests answered.
#[derive(Debug, Default)]
struct Stats {
    in_flight: AtomicU64,
    max_in_flight: AtomicU64,
    served: AtomicU64,
}

/// One request held: counted in flight until dropped.
struct Held<'a>(&'a Stats);

/// Serves until SIGTERM/SIGINT, then lets open requests finish.
pub async fn autoscale(test_endpoints: bool) -> anyhow::Result<()> {
    let stats = Arc::new(Stats::default());
    serve(move |req| handle(req, stats.clone(), test_endpoints)).await
}

async fn handle(req: Request<Incoming>, stats: Arc<Stats>, test_endpoints: bool) -> Result<Response<Body>, Infallible> {
    if test_endpoints && req.uri().path() == "/stats" {
        let _ = drained(req).await;
        return Ok(text(StatusCode::OK, stats.json()));
    }
    let held = Held::new(&stats);
    let req = drained(req).await;
    let param = |key| query(&req, key).and_then(|v| v.parse::<u64>().ok());
    let mut answer = String::new();
    if let Some(ms) = param("sleep") {
        let ms = ms.min(MAX_SLEEP_MS);
        tokio::time::sleep(Duration::from_millis(ms)).await;
        let _ = writeln!(answer, "Slept for {ms} milliseconds.");
    }
    if let Some(n) = param("prime") {
        let n = n.min(MAX_PRIME);
        // CPU work belongs off the threads that serve connections.
        let largest = tokio::task::spawn_blocking(move || largest_prime(n)).await.ok().flatten();
        match largest {
            Some(p) => {
                let _ = writeln!(answer, "The largest prime up to {n} is {p}.");
            }
            None => {
                let _ = writeln!(answer, "There is no prime up to {n}.");
            }
        }
    }
    if let Some(mb) = param("bloat") {
        let mb = mb.min(MAX_BLOAT_MB);
        let touched = tokio::task::spawn_blocking(move || bloat(mb)).await.unwrap_or(0);
        let _ = writeln!(answer, "Allocated {touched} MiB of memory.");
    }
    if answer.is_empty() {
        answer.push_str("Nothing asked: try ?sleep=MS, ?prime=N or ?bloat=MB.\n");
    }
    drop(held);
    stats.served.fetch_add(1, SeqCst);
    Ok(text(StatusCode::OK, answer))
}

/// The largest prime `<= n` (a sieve of Eratosthenes), None below 2.
fn largest_prime(n: u64) -> Option<u64> {
    let n = usize::try_from(n).ok()?;
    if n < 2 {
        return None;
    }
    let mut composite = vec![false; n + 1];
    let mut i = 2;
    while i * i <= n {
        if !composite[i] {
            (i * i..=n).step_by(i).for_each(|j| composite[j] = true);
        }
        i += 1;
    }
    (2..=n).rev().find(|&k| !composite[k]).and_then(|p| u64::try_from(p).ok())
}

/// Allocates `mb` MiB and writes to every page of it, so the memory is really used; returns the
/// MiB touched (0 when the allocation failed).
fn bloat(mb: u64) -> u64 {
    const MIB: usize = 1 << 20;
    let Some(bytes) = usize::try_from(mb).ok().and_then(|mb| mb.checked_mul(MIB)) else { return 0 };
    let mut buf: Vec<u8> = Vec::new();
    if buf.try_reserve_exact(bytes).is_err() {
        return 0;
    }
    buf.resize(bytes, 1);
    // Read it back so the work is not optimised away.
    let sum: u64 = buf.iter().step_by(4096).map(|&b| u64::from(b)).sum();
    sum.saturating_mul(4096) / u64::try_from(MIB).unwrap_or(u64::MAX)
}

// === impl Stats ===

impl Stats {
    fn json(&self) -> String {
        serde_json::json!({
            "in_flight": self.in_flight.load(SeqCst),
            "max_in_flight": self.max_in_flight.load(SeqCst),
            "served": self.served.load(SeqCst),
        })
        .to_string()
    }
}

// === impl Held ===

impl<'a> Held<'a> {
    fn new(stats: &'a Stats) -> Self {
        let now = stats.in_flight.fetch_add(1, SeqCst) + 1;
        stats.max_in_flight.fetch_max(now, SeqCst);
        Self(stats)
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn largest_prime_up_to_n() {
        assert_eq!(largest_prime(0), None);
        assert_eq!(largest_prime(1), None);
        assert_eq!(largest_prime(2), Some(2));
        assert_eq!(largest_prime(10), Some(7));
        assert_eq!(largest_prime(97), Some(97));
        assert_eq!(largest_prime(100), Some(97));
    }

    #[test]
    fn bloat_touches_what_it_allocates() {
        assert_eq!(bloat(0), 0);
        assert_eq!(bloat(3), 3);
    }

    #[test]
    fn held_requests_are_counted_with_their_peak() {
        let stats = Stats::default();
        {
            let _a = Held::new(&stats);
            let _b = Held::new(&stats);
            assert_eq!(stats.in_flight.load(SeqCst), 2);
        }
        let _c = Held::new(&stats);
        assert_eq!((stats.in_flight.load(SeqCst), stats.max_in_flight.load(SeqCst)), (1, 2));
    }
}
