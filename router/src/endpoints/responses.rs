//! What the router measured on behalf of one revision: responses by exact status code,
//! their latency, time spent waiting at the revision's gate, the router's own errors by
//! reason, body bytes each way, and the names of the revision's owners for labelling them. Held by the revision's
//! [`RevisionEndpoints`](super::RevisionEndpoints), which a routing snapshot resolves once, so
//! recording a response is a few relaxed atomic adds: no lookup, lock or allocation per request.
//!
//! Codes are counted in two tiers, so a revision costs a few hundred bytes rather than a slot
//! for each of the 900 codes `http` accepts (7.2 KB, times 10,000 revisions): the codes real
//! traffic is made of ([`COMMON_CODES`]) have inline counters, and any other code is counted in
//! a table of its class's 100 codes, allocated the first time the revision answers one (at
//! most nine tables, never freed, so no count is lost: `OnceLock` hands every thread the same
//! table). Those tables, the gate's wait histogram and the router's error counters are only
//! ever recorded on rare paths, so they live together in one block allocated the first time
//! any of them is: a revision that only ever answers common codes pays for none of them.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use http::StatusCode;
use parking_lot::Mutex;

/// Status classes a response can have: `1xx` to `9xx` (`http` accepts codes up to 999).
const CLASSES: usize = 9;

/// Codes in one class (`2xx`: 200..=299).
const PER_CLASS: usize = 100;

/// The codes with an inline counter: nearly every response a revision sends has one of these.
const COMMON_CODES: [u16; 15] = [200, 201, 204, 301, 302, 304, 400, 401, 403, 404, 429, 500, 502, 503, 504];

/// Upper bounds of the latency buckets, in milliseconds (Knative's unit): 50 µs … 60 s.
pub const LATENCY_BUCKETS_MS: [f64; 20] = [
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0,
    20000.0, 30000.0, 60000.0,
];

/// The same bounds in nanoseconds, for recording without floating point.
const BUCKETS_NS: [u64; 20] = [
    50_000,
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
    2_500_000_000,
    5_000_000_000,
    10_000_000_000,
    20_000_000_000,
    30_000_000_000,
    60_000_000_000,
];

/// Why the router answered for a revision itself (its own 502/503/504), as the `reason` label
/// of `revision_proxy_errors_count`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// No connection could be made to an instance (502).
    Unreachable,
    /// The instance refused, reset or closed the exchange before a response head (502).
    UpstreamFailed,
    /// No response head within the revision's timeout (504).
    Timeout,
    /// The revision's queue of waiting requests was full (503).
    QueueFull,
    /// The request waited for capacity until the revision's timeout ran out (504).
    NoCapacity,
}

/// Every [`Failure`], in slot order.
pub const FAILURES: [Failure; 5] =
    [Failure::Unreachable, Failure::UpstreamFailed, Failure::Timeout, Failure::QueueFull, Failure::NoCapacity];

/// A histogram of durations over [`LATENCY_BUCKETS_MS`]: one atomic per bucket (not
/// cumulative; summed at scrape) and the sum in nanoseconds.
#[derive(Debug)]
pub struct Histogram {
    buckets: [AtomicU64; BUCKETS_NS.len() + 1],
    sum_ns: AtomicU64,
}

/// A histogram read at one moment: cumulative counts per bucket (the last is `+Inf`, equal to
/// the count) and the sum in milliseconds.
#[derive(Clone, Debug, PartialEq)]
pub struct HistogramSnapshot {
    /// Cumulative counts, one per bound of [`LATENCY_BUCKETS_MS`] then `+Inf`.
    pub cumulative: [u64; BUCKETS_NS.len() + 1],
    /// Sum of the observations, in milliseconds.
    pub sum_ms: f64,
}

/// Responses sent on behalf of one revision, by exact code (the instance's own responses and
/// the router's 502/503/504 for it), their latency, the gate's waits and the router's errors.
#[derive(Debug)]
pub struct Responses {
    /// One counter per code of [`COMMON_CODES`], in its order.
    common: [AtomicU64; COMMON_CODES.len()],
    latency: Histogram,
    /// Body bytes read from clients and sent on to the revision's instances.
    request_bytes: AtomicU64,
    /// Body bytes of the instances' responses sent on to clients.
    response_bytes: AtomicU64,
    /// What only a rare path records, allocated the first time one does (most revisions never
    /// do; inline, these were a third of a revision's memory).
    cold: OnceLock<Box<Cold>>,
}

/// The counters of the rare paths: codes outside [`COMMON_CODES`], waits at the gate, and
/// the router's own errors.
#[derive(Debug, Default)]
struct Cold {
    /// Per class (`1xx` first), the counters of its other codes, allocated on first use.
    rare: [OnceLock<Box<ClassCounts>>; CLASSES],
    queue_wait: Histogram,
    failures: [AtomicU64; FAILURES.len()],
}

/// A counter for each code of one class (index: code % 100).
type ClassCounts = [AtomicU64; PER_CLASS];

/// The Configuration and Service a revision belongs to (empty when unknown or none), as
/// metric labels want them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Owners {
    /// Its Configuration.
    pub configuration: String,
    /// Its Service; empty for a revision of a bare Configuration.
    pub service: String,
}

/// The owners of a revision, set by the control path when it learns them and read when the
/// counters are exposed (never on a request's path, so a lock is fine). Both names are kept in
/// one allocation, and none until they are set: as an `Arc<Owners>` they were ~160 bytes of
/// every revision.
#[derive(Debug, Default)]
pub struct OwnerCell(Mutex<Option<JoinedOwners>>);

/// The configuration's name then the service's, in one string.
#[derive(Debug)]
struct JoinedOwners {
    text: Box<str>,
    /// Where the configuration's name ends in `text`.
    configuration_len: usize,
}

// === impl Responses ===

impl Default for Responses {
    fn default() -> Self {
        Self::new()
    }
}

impl Responses {
    /// Every counter at zero (`const`, so a shared zero set can be a `static`).
    pub const fn new() -> Self {
        Self {
            common: [const { AtomicU64::new(0) }; COMMON_CODES.len()],
            latency: Histogram::new(),
            request_bytes: AtomicU64::new(0),
            response_bytes: AtomicU64::new(0),
            cold: OnceLock::new(),
        }
    }

    /// Counts one response with `status`, without its latency (tests, and callers that have
    /// no arrival time).
    pub fn record(&self, status: StatusCode) {
        let code = status.as_u16();
        match common_index(code) {
            Some(i) => self.common[i].fetch_add(1, Ordering::Relaxed),
            None => {
                let (class, i) = class_index(code);
                let counts =
                    self.cold().rare[class].get_or_init(|| Box::new(std::array::from_fn(|_| AtomicU64::new(0))));
                counts[i].fetch_add(1, Ordering::Relaxed)
            }
        };
    }

    /// Counts one response with `status` whose head went out `elapsed` after the request
    /// arrived.
    pub fn record_timed(&self, status: StatusCode, elapsed: Duration) {
        self.record(status);
        self.latency.record(elapsed);
    }

    /// Counts one of the router's own errors for the revision (its response is counted by
    /// [`record_timed`](Self::record_timed) as any other).
    pub fn record_failure(&self, failure: Failure) {
        self.cold().failures[failure as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Records `waited` spent at the revision's gate by a request that left it (admitted or
    /// timed out).
    pub fn record_queue_wait(&self, waited: Duration) {
        self.cold().queue_wait.record(waited);
    }

    /// The rare paths' counters, allocated by the first to record (`OnceLock` hands every
    /// thread the same ones, so no count is lost).
    fn cold(&self) -> &Cold {
        self.cold.get_or_init(Box::default)
    }

    /// A rare code's class table, if that class was ever answered.
    fn rare(&self, class: usize) -> Option<&ClassCounts> {
        self.cold.get()?.rare[class].get().map(|t| &**t)
    }

    /// Counts `n` body bytes read from a client for one of the revision's instances.
    pub fn add_request_bytes(&self, n: usize) {
        self.request_bytes.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// Counts `n` body bytes of an instance's response sent on to the client.
    pub fn add_response_bytes(&self, n: usize) {
        self.response_bytes.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// Request body bytes so far.
    pub fn request_bytes(&self) -> u64 {
        self.request_bytes.load(Ordering::Relaxed)
    }

    /// Response body bytes so far.
    pub fn response_bytes(&self) -> u64 {
        self.response_bytes.load(Ordering::Relaxed)
    }

    /// Responses so far whose status is `class`xx (1 to 9); 0 for any other class.
    pub fn class(&self, class: u16) -> u64 {
        if !(1..=9).contains(&class) {
            return 0;
        }
        let inline: u64 = COMMON_CODES
            .iter()
            .zip(&self.common)
            .filter(|(code, _)| **code / 100 == class)
            .map(|(_, n)| n.load(Ordering::Relaxed))
            .sum();
        let rare = self.rare(usize::from(class - 1)).map_or(0, |t| t.iter().map(|n| n.load(Ordering::Relaxed)).sum());
        inline + rare
    }

    /// Every class with its count, `1xx` first.
    pub fn snapshot(&self) -> [(u16, u64); CLASSES] {
        std::array::from_fn(|i| {
            let class = u16::try_from(i + 1).expect("nine classes fit in u16");
            (class, self.class(class))
        })
    }

    /// Every code answered at least once, with its count, in code order.
    pub fn codes(&self) -> Vec<(u16, u64)> {
        (100u16..=999).map(|code| (code, self.code(code))).filter(|&(_, n)| n > 0).collect()
    }

    /// Responses so far with exactly `code`.
    pub fn code(&self, code: u16) -> u64 {
        if !(100..=999).contains(&code) {
            return 0;
        }
        if let Some(i) = common_index(code) {
            return self.common[i].load(Ordering::Relaxed);
        }
        let (class, i) = class_index(code);
        self.rare(class).map_or(0, |t| t[i].load(Ordering::Relaxed))
    }

    /// The router's own errors so far, by failure.
    pub fn failures(&self) -> [(Failure, u64); FAILURES.len()] {
        let cold = self.cold.get();
        std::array::from_fn(|i| (FAILURES[i], cold.map_or(0, |c| c.failures[i].load(Ordering::Relaxed))))
    }

    /// Latency from arrival to response head.
    pub fn latency(&self) -> HistogramSnapshot {
        self.latency.snapshot()
    }

    /// Time spent waiting at the revision's gate.
    pub fn queue_wait(&self) -> HistogramSnapshot {
        match self.cold.get() {
            Some(cold) => cold.queue_wait.snapshot(),
            None => Histogram::default().snapshot(),
        }
    }

    /// All responses so far.
    pub fn total(&self) -> u64 {
        (1..=9).map(|class| self.class(class)).sum()
    }
}

/// The inline counter of `code`, when it is one of [`COMMON_CODES`].
fn common_index(code: u16) -> Option<usize> {
    // A match compiles to a jump table: no search per response.
    Some(match code {
        200 => 0,
        201 => 1,
        204 => 2,
        301 => 3,
        302 => 4,
        304 => 5,
        400 => 6,
        401 => 7,
        403 => 8,
        404 => 9,
        429 => 10,
        500 => 11,
        502 => 12,
        503 => 13,
        504 => 14,
        _ => return None,
    })
}

/// The class table (`1xx` is 0) and the slot in it where `code` is counted. `StatusCode` holds
/// 100..=999; anything else is clamped into that range rather than trusted.
fn class_index(code: u16) -> (usize, usize) {
    let code = usize::from(code.clamp(100, 999));
    (code / PER_CLASS - 1, code % PER_CLASS)
}

// === impl Failure ===

impl Failure {
    /// The `reason` label.
    pub fn reason(self) -> &'static str {
        match self {
            Self::Unreachable => "unreachable",
            Self::UpstreamFailed => "upstream_failed",
            Self::Timeout => "timeout",
            Self::QueueFull => "queue_full",
            Self::NoCapacity => "no_capacity",
        }
    }

    /// The status the router answers with.
    pub fn status(self) -> u16 {
        match self {
            Self::Unreachable | Self::UpstreamFailed => 502,
            Self::QueueFull => 503,
            Self::Timeout | Self::NoCapacity => 504,
        }
    }
}

// === impl Histogram ===

impl Default for Histogram {
    fn default() -> Self {
        Self::new()
    }
}

impl Histogram {
    /// Empty.
    const fn new() -> Self {
        Self { buckets: [const { AtomicU64::new(0) }; BUCKETS_NS.len() + 1], sum_ns: AtomicU64::new(0) }
    }

    /// Records one observation.
    pub fn record(&self, d: Duration) {
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        let i = BUCKETS_NS.partition_point(|&bound| bound < ns);
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.sum_ns.fetch_add(ns, Ordering::Relaxed);
    }

    /// The counts now, cumulative as the exposition wants them.
    pub fn snapshot(&self) -> HistogramSnapshot {
        let mut cumulative = [0; BUCKETS_NS.len() + 1];
        let mut running = 0;
        for (c, b) in cumulative.iter_mut().zip(&self.buckets) {
            running += b.load(Ordering::Relaxed);
            *c = running;
        }
        #[allow(clippy::cast_precision_loss)]
        let sum_ms = self.sum_ns.load(Ordering::Relaxed) as f64 / 1e6;
        HistogramSnapshot { cumulative, sum_ms }
    }
}

impl HistogramSnapshot {
    /// Observations so far.
    pub fn count(&self) -> u64 {
        self.cumulative[self.cumulative.len() - 1]
    }
}

// === impl OwnerCell ===

impl OwnerCell {
    /// The owners now (empty names until set).
    pub fn get(&self) -> Owners {
        match &*self.0.lock() {
            Some(joined) => {
                let (configuration, service) = joined.text.split_at(joined.configuration_len);
                Owners { configuration: configuration.to_string(), service: service.to_string() }
            }
            None => Owners::default(),
        }
    }

    /// Records the owners.
    pub fn set(&self, owners: Owners) {
        let configuration_len = owners.configuration.len();
        let text = (owners.configuration + &owners.service).into_boxed_str();
        *self.0.lock() = Some(JoinedOwners { text, configuration_len });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_response_is_counted_once_under_its_class() {
        let r = Responses::default();
        for code in [200, 204, 201, 302, 404, 500, 502, 503, 504, 101] {
            r.record(StatusCode::from_u16(code).expect("status"));
        }
        assert_eq!((r.class(1), r.class(2), r.class(3), r.class(4), r.class(5)), (1, 3, 1, 1, 4));
        assert_eq!(r.total(), 10);
        assert_eq!(r.class(0), 0);
        assert_eq!(r.class(10), 0);
    }

    #[test]
    fn codes_beyond_599_keep_their_own_class() {
        let r = Responses::default();
        r.record(StatusCode::from_u16(999).expect("status"));
        r.record(StatusCode::from_u16(600).expect("status"));
        assert_eq!(r.class(9), 1);
        assert_eq!(r.class(6), 1);
        assert_eq!(r.snapshot()[8], (9, 1));
    }

    #[test]
    fn exact_codes_and_latency_buckets() {
        let r = Responses::default();
        r.record_timed(StatusCode::OK, Duration::from_micros(40));
        r.record_timed(StatusCode::OK, Duration::from_micros(50));
        r.record_timed(StatusCode::from_u16(599).expect("status"), Duration::from_secs(61));
        assert_eq!(r.codes(), vec![(200, 2), (599, 1)]);
        assert_eq!((r.code(200), r.code(99), r.code(1000)), (2, 0, 0));
        let l = r.latency();
        assert_eq!((l.cumulative[0], l.cumulative[19], l.count()), (2, 2, 3));
        assert!((l.sum_ms - 61_000.09).abs() < 1e-6, "{}", l.sum_ms);
        r.record_failure(Failure::QueueFull);
        assert_eq!(r.failures()[3], (Failure::QueueFull, 1));
        assert_eq!(FAILURES.iter().map(|f| f.status()).collect::<Vec<_>>(), [502, 502, 504, 503, 504]);
    }

    #[test]
    fn common_codes_have_their_own_slots() {
        for (i, code) in COMMON_CODES.iter().enumerate() {
            assert_eq!(common_index(*code), Some(i), "{code}");
        }
        assert_eq!((100..=999).filter_map(common_index).count(), COMMON_CODES.len());
    }

    #[test]
    fn a_rare_code_is_counted_exactly_and_allocates_only_its_class() {
        let r = Responses::default();
        assert!(r.cold.get().is_none(), "nothing allocated up front");
        r.record(StatusCode::OK);
        assert!(r.cold.get().is_none(), "nor for a common code");
        for _ in 0..3 {
            r.record(StatusCode::IM_A_TEAPOT);
        }
        r.record(StatusCode::NOT_FOUND);
        r.record(StatusCode::from_u16(499).expect("status"));
        assert_eq!((r.code(418), r.code(499), r.code(404), r.code(400)), (3, 1, 1, 0));
        assert_eq!(r.codes(), vec![(200, 1), (404, 1), (418, 3), (499, 1)]);
        assert_eq!((r.class(4), r.total()), (5, 6));
        let allocated: Vec<usize> = (0..CLASSES).filter(|&c| r.rare(c).is_some()).collect();
        assert_eq!(allocated, [3], "only the 4xx table");
    }

    #[test]
    fn concurrent_increments_are_all_counted() {
        let r = Responses::default();
        let (threads, each) = (8u64, 20_000u64);
        // Every thread's first response is a rare code of a class no table exists for yet, so
        // the threads race to allocate it.
        std::thread::scope(|s| {
            for t in 0..threads {
                let r = &r;
                s.spawn(move || {
                    for i in 0..each {
                        let code = match (t + i) % 4 {
                            0 => 207,
                            1 => 200,
                            2 => 599,
                            _ => 503,
                        };
                        r.record(StatusCode::from_u16(code as u16).expect("status"));
                    }
                });
            }
        });
        let n = threads * each / 4;
        assert_eq!(r.codes(), vec![(200, n), (207, n), (503, n), (599, n)]);
        assert_eq!(r.total(), threads * each);
    }

    #[test]
    fn a_revision_s_counters_are_small() {
        // The 900-slot table they replace was 7,200 bytes; 672 with every counter inline.
        assert!(std::mem::size_of::<Responses>() <= 336, "{}", std::mem::size_of::<Responses>());
    }

    #[test]
    fn the_rare_paths_counters_start_at_zero_and_count_once_allocated() {
        let r = Responses::default();
        assert_eq!(r.queue_wait(), Histogram::default().snapshot());
        assert!(r.failures().iter().all(|(_, n)| *n == 0));
        assert!(r.cold.get().is_none(), "reading allocates nothing");
        r.record_queue_wait(Duration::from_millis(3));
        r.record_failure(Failure::QueueFull);
        assert_eq!(r.queue_wait().cumulative.last(), Some(&1));
        assert_eq!(r.failures()[3], (Failure::QueueFull, 1));
        assert_eq!(r.failures().iter().map(|(_, n)| n).sum::<u64>(), 1);
    }

    #[test]
    fn bucket_bounds_agree() {
        for (ms, ns) in LATENCY_BUCKETS_MS.iter().zip(BUCKETS_NS) {
            assert!((ms * 1e6 - ns as f64).abs() < 0.5, "{ms} ms vs {ns} ns");
        }
    }

    #[test]
    fn owners_read_back_as_set() {
        let cell = OwnerCell::default();
        assert_eq!(cell.get(), Owners::default());
        let owners = Owners { configuration: "hello".into(), service: "hello-svc".into() };
        cell.set(owners.clone());
        assert_eq!(cell.get(), owners);
        let bare = Owners { configuration: "bare".into(), service: String::new() };
        cell.set(bare.clone());
        assert_eq!(cell.get(), bare, "replaced");
    }
}
