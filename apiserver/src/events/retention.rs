//! How long Events are kept and how many: each expires `ttl` after it was last seen
//! (Kubernetes' `--event-ttl`, 1 h by default), and a namespace holds at most `per_namespace`
//! (the least recently written go first, in the transaction that adds one more).

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use sluice_api::Kind;
use tokio_util::sync::CancellationToken;

use crate::store::{Store, meta};

/// Kubernetes' default `--event-ttl`.
pub const DEFAULT_TTL: Duration = Duration::from_secs(3600);
/// Events one namespace holds at most by default.
pub const DEFAULT_PER_NAMESPACE: usize = 1000;

/// The bounds on stored Events.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retention {
    /// How long after it was last seen an Event is deleted.
    pub ttl: Duration,
    /// Events one namespace holds at most.
    pub per_namespace: usize,
}

impl Default for Retention {
    fn default() -> Self {
        Self { ttl: DEFAULT_TTL, per_namespace: DEFAULT_PER_NAMESPACE }
    }
}

// === impl Retention ===

impl Retention {
    /// How often expired Events are looked for: a tenth of the TTL, between 50 ms and a minute,
    /// so an Event outlives its TTL by at most that.
    pub fn sweep_every(&self) -> Duration {
        (self.ttl / 10).clamp(Duration::from_millis(50), Duration::from_secs(60))
    }

    /// True when `event` (core shape) was last seen more than the TTL before `now`.
    pub fn expired(&self, event: &Value, now: jiff::Timestamp) -> bool {
        let ttl = jiff::SignedDuration::try_from(self.ttl).unwrap_or(jiff::SignedDuration::MAX);
        last_seen(event).is_some_and(|seen| now.duration_since(seen) > ttl)
    }
}

/// When an Event was last seen: the latest of its `lastTimestamp`, `series.lastObservedTime`,
/// `eventTime` and `creationTimestamp` (what a recorder moves on each repeat).
pub fn last_seen(event: &Value) -> Option<jiff::Timestamp> {
    let text = |pointer: &str| event.pointer(pointer).and_then(Value::as_str).unwrap_or("");
    [
        text("/lastTimestamp"),
        text("/series/lastObservedTime"),
        text("/eventTime"),
        meta::meta_str(event, "creationTimestamp"),
    ]
    .into_iter()
    .filter_map(|s| s.parse::<jiff::Timestamp>().ok())
    .max()
}

/// Deletes expired Events every [`Retention::sweep_every`] until `shutdown`.
pub async fn sweep(store: Arc<Store>, retention: Retention, shutdown: CancellationToken) {
    let mut every = tokio::time::interval(retention.sweep_every());
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = every.tick() => {}
        }
        let store = store.clone();
        let swept = tokio::task::spawn_blocking(move || {
            let now = jiff::Timestamp::now();
            store.delete_where(Kind::Event, |e| retention.expired(e, now))
        })
        .await;
        match swept {
            Ok(Ok(0)) => {}
            Ok(Ok(n)) => tracing::debug!(events = n, "expired events deleted"),
            Ok(Err(e)) => tracing::warn!(error = %e, "deleting expired events failed; trying again later"),
            Err(e) => tracing::warn!(error = %e, "the event sweep task failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn an_event_expires_a_ttl_after_it_was_last_seen() {
        let r = Retention { ttl: Duration::from_secs(60), per_namespace: 10 };
        let now: jiff::Timestamp = "2026-01-01T01:00:00Z".parse().expect("time");
        let e =
            json!({"metadata": {"creationTimestamp": "2026-01-01T00:00:00Z"}, "lastTimestamp": "2026-01-01T00:59:30Z"});
        assert!(!r.expired(&e, now), "seen 30 s ago");
        let e =
            json!({"metadata": {"creationTimestamp": "2026-01-01T00:00:00Z"}, "lastTimestamp": "2026-01-01T00:58:00Z"});
        assert!(r.expired(&e, now), "seen 2 min ago");
        let e = json!({"metadata": {"creationTimestamp": "2026-01-01T00:00:00Z"}, "series": {"lastObservedTime": "2026-01-01T00:59:59.500000Z"}});
        assert!(!r.expired(&e, now), "a series counts its last observation");
        assert!(!r.expired(&json!({}), now), "no time at all: kept (the cap still bounds it)");
        assert_eq!(Retention::default().sweep_every(), Duration::from_secs(60));
        assert_eq!(r.sweep_every(), Duration::from_secs(6));
    }
}
