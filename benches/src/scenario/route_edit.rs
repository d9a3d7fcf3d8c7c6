//! `route-edit`: how soon a traffic split written through the API is what the router serves,
//! and whether any request fails meanwhile. A Service with two revisions (the hello sample
//! with `TARGET` v1 and v2, `min-scale: 1` so both keep an instance), its route at 100/0; then,
//! under closed-loop load, the split is patched 50/50, 0/100, 100/0, 50/50, … every
//! `interval`. Each response's revision is read from the `K-Revision` header the app returns
//! (a [`Tap`] on the generator). An edit is visible at the first response from the revision it
//! gave more traffic after which none from a revision it took all traffic from arrives; the time counted runs from the
//! API's acknowledgement (the PATCH's answer read) to that response's last byte. Every status
//! and error of the run is counted.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

use super::ScenarioError;
use super::control::{READY, Serve, Work, work};
use super::procs::get;
use crate::latency::{Latencies, Percentiles};
use crate::load::tap::{Seen, Tap};
use crate::load::{self, LoadSpec, Mode, Stop};
use crate::outcome::Summary;
use crate::pin::Layout;
use crate::target::{Protocol, Target};

/// The Service's name and its two revisions.
const SERVICE: &str = "edit";
const REVISIONS: [&str; 2] = ["edit-00001", "edit-00002"];
/// The splits applied in turn (percent to revision 1, to revision 2), from 100/0.
const SPLITS: [[u8; 2]; 3] = [[50, 50], [0, 100], [100, 0]];
/// Responses the tap keeps between two drains (one per edit): far more than an interval holds.
const TAP_CAP: usize = 4 << 20;

/// What `route-edit` needs.
pub struct Options {
    /// The `sluice` binary.
    pub sluice: std::path::PathBuf,
    /// Edits applied, in the order of [`SPLITS`].
    pub edits: usize,
    /// Time between edits (each edit must be visible within it).
    pub interval: Duration,
    /// Load connections and generator threads, and the warm-up before the first interval.
    pub connections: usize,
    /// Generator threads.
    pub threads: usize,
    /// Load before the measured window.
    pub warmup: Duration,
    /// Core pinning (roles `load`, `sluice`).
    pub layout: Layout,
}

/// One edit.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Edit {
    /// The split applied, `"50/50"` (percent to revision 1 / revision 2).
    pub split: String,
    /// How long the API took to acknowledge the PATCH (ms).
    pub api_ms: f64,
    /// Acknowledgement to the first response of the new split (ms); None when it was not seen
    /// within the interval. Negative when the router served it before the API's answer arrived.
    pub visible_ms: Option<f64>,
    /// Responses from the revision the edit gave more traffic, of all classified responses
    /// from the moment the edit became visible to the next edit (50/50 from 100/0: about 0.5;
    /// 0/100 and 100/0: 1.0).
    pub new_share: Option<f64>,
    /// Responses in this edit's interval.
    pub responses: u64,
    /// Responses in this edit's interval whose status was not 200.
    pub non_200: u64,
}

/// What `route-edit` measured.
#[derive(Clone, Debug, serde::Serialize)]
pub struct RouteEdit {
    /// Every edit, in order.
    pub edits: Vec<Edit>,
    /// Percentiles of `visible_ms` over the edits seen (µs, as every report's percentiles).
    pub visible_us: Percentiles,
    /// Edits not visible within their interval.
    pub not_visible: usize,
    /// The load over the whole measured window (every status and error counted).
    pub load: Summary,
    /// Responses with no known `K-Revision` (answered by neither revision).
    pub unclassified: u64,
    /// Responses the tap could not keep (its buffer was full): 0, or the figures are partial.
    pub tap_dropped: u64,
    /// What the control plane did from the first edit to the end of the run (from serve's
    /// metrics): where an edit's time goes between the API and the router.
    pub control_plane: Work,
    /// The core layout.
    pub layout: String,
}

// === impl RouteEdit ===

impl RouteEdit {
    /// Responses not 200, plus failed requests, over the whole run.
    pub fn failures(&self) -> u64 {
        let non_200: u64 = self.load.statuses.iter().filter(|(s, _)| s.as_str() != "200").map(|(_, n)| n).sum();
        non_200 + self.load.errors.values().sum::<u64>()
    }
}

/// Runs `route-edit`; `note` sees each line worth telling as it happens.
pub fn run(opts: &Options, mut note: impl FnMut(&str)) -> Result<RouteEdit, ScenarioError> {
    if opts.edits == 0 {
        return Err(ScenarioError::Io("--edits must be at least 1".into()));
    }
    let dir = super::workdir()?;
    let mut serve = Serve::start(&opts.sluice, dir.path(), &opts.layout, &[])?;
    note(&format!("sluice: serve's router on {} (pid {})", serve.http, serve.process.pid()));
    let host = format!("{SERVICE}.default.localhost");
    serve.apply("v1", &service_yaml("v1", None))?;
    wait_answer(&mut serve, &host, "Hello v1!\n")?;
    serve.apply("v2", &service_yaml("v2", Some([100, 0])))?;
    wait_ready(&mut serve, REVISIONS[1])?;
    note(&format!("{SERVICE}: revisions {} (v1) and {} (v2), both running; split 100/0", REVISIONS[0], REVISIONS[1]));

    let tap = Arc::new(Tap::new("K-Revision", &REVISIONS, TAP_CAP));
    let spec = LoadSpec {
        connections: opts.connections,
        threads: opts.threads,
        mode: Mode::Closed,
        stop: Stop::Duration(opts.interval * (opts.edits as u32 + 1)),
        warmup: opts.warmup,
        timeout: Duration::from_secs(10),
        cpus: opts.layout.get("load").cloned(),
        progress: false,
        tap: Some(tap.clone()),
    };
    spec.validate()?;
    let target = Target::new("sluice", &format!("http://{}/", serve.http), Some(&host), Protocol::Http1)?;
    let layout = opts.layout.describe(&[("sluice", Some(serve.process.pid()))]);
    let start = Instant::now();
    let loader = std::thread::Builder::new()
        .name("bench-route-edit".into())
        .spawn(move || load::run(&target, &spec, &[]))
        .map_err(|e| ScenarioError::Io(format!("cannot start the load: {e}")))?;
    let before = serve.metrics_text();
    let edited = apply_edits(&serve, opts, start + opts.warmup, &tap, &mut note);
    let outcome = loader.join().map_err(|_| ScenarioError::Io("the load thread panicked".into()))??;
    // Every response has completed once the load has returned: the last edit's window ends here.
    let end = Instant::now();
    let control_plane = work(&before?, &serve.metrics_text()?);
    let (marks, mut seen) = edited?;
    seen.extend(tap.drain());
    let edits = analyse(&marks, &seen, end);
    let mut visible = Latencies::new();
    for ms in edits.iter().filter_map(|e| e.visible_ms) {
        visible.record(Duration::from_secs_f64(ms.max(0.0) / 1000.0));
    }
    Ok(RouteEdit {
        not_visible: edits.iter().filter(|e| e.visible_ms.is_none()).count(),
        visible_us: visible.percentiles(),
        edits,
        load: outcome.summary(),
        unclassified: seen.iter().filter(|s| s.class.is_none()).count() as u64,
        tap_dropped: tap.dropped(),
        control_plane,
        layout,
    })
}

/// When an edit was sent and acknowledged, and the split it applied.
struct Mark {
    sent: Instant,
    acked: Instant,
    before: [u8; 2],
    after: [u8; 2],
}

/// Applies the edits on their schedule (the first one interval after `from`); every response
/// the tap saw meanwhile.
fn apply_edits(
    serve: &Serve,
    opts: &Options,
    from: Instant,
    tap: &Tap,
    note: &mut impl FnMut(&str),
) -> Result<(Vec<Mark>, Vec<Seen>), ScenarioError> {
    let path = format!("/apis/serving.knative.dev/v1/namespaces/default/services/{SERVICE}");
    let mut marks = Vec::with_capacity(opts.edits);
    let mut seen = Vec::new();
    let mut before = [100, 0];
    for j in 0..opts.edits {
        let due = from + opts.interval * (j as u32 + 1);
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
        let after = SPLITS[j % SPLITS.len()];
        seen.extend(tap.drain());
        let sent = Instant::now();
        serve.merge_patch(&path, &json!({"spec": {"traffic": traffic(after)}}))?;
        let acked = Instant::now();
        note(&format!("edit {}: {}/{} acknowledged in {:.2} ms", j + 1, after[0], after[1], ms(acked - sent)));
        marks.push(Mark { sent, acked, before, after });
        before = after;
    }
    Ok((marks, seen))
}

/// Each edit's figures from the responses seen (in completion order, any thread).
fn analyse(marks: &[Mark], seen: &[Seen], end: Instant) -> Vec<Edit> {
    let mut seen = seen.to_vec();
    seen.sort_by_key(|s| s.at);
    marks
        .iter()
        .enumerate()
        .map(|(j, m)| {
            let until = marks.get(j + 1).map_or(end, |n| n.sent);
            let window: Vec<&Seen> = seen.iter().filter(|s| s.at >= m.sent && s.at < until).collect();
            let share = |c: Option<u8>, split: &[u8; 2]| c.and_then(|c| split.get(usize::from(c)).copied());
            let raised = |c: Option<u8>| share(c, &m.after) > share(c, &m.before);
            let removed = |c: Option<u8>| share(c, &m.before) > Some(0) && share(c, &m.after) == Some(0);
            let last_removed = window.iter().rposition(|s| removed(s.class));
            let from = last_removed.map_or(0, |i| i + 1);
            let first = window[from..].iter().position(|s| raised(s.class)).map(|i| from + i);
            let visible_ms = first.map(|i| signed_ms(window[i].at, m.acked));
            let new_share = first.map(|i| {
                let rest: Vec<&&Seen> = window[i..].iter().filter(|s| s.class.is_some()).collect();
                rest.iter().filter(|s| raised(s.class)).count() as f64 / rest.len().max(1) as f64
            });
            Edit {
                split: format!("{}/{}", m.after[0], m.after[1]),
                api_ms: ms(m.acked - m.sent),
                visible_ms,
                new_share,
                responses: window.len() as u64,
                non_200: window.iter().filter(|s| s.status != 200).count() as u64,
            }
        })
        .collect()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// `at - since` in milliseconds, negative when `at` came first.
fn signed_ms(at: Instant, since: Instant) -> f64 {
    match at.checked_duration_since(since) {
        Some(d) => ms(d),
        None => -ms(since - at),
    }
}

/// The Service's traffic block for a split.
fn traffic(split: [u8; 2]) -> serde_json::Value {
    json!([
        {"revisionName": REVISIONS[0], "percent": split[0]},
        {"revisionName": REVISIONS[1], "percent": split[1]},
    ])
}

/// Waits until the router answers `host` with `body`.
fn wait_answer(serve: &mut Serve, host: &str, body: &str) -> Result<(), ScenarioError> {
    let addr = serve.http;
    serve.process.wait_for("to answer through the router", READY, || {
        get(addr, host, "/").filter(|(s, b)| *s == 200 && b == body)
    })?;
    Ok(())
}

/// Waits until `revision` is Ready with an instance, and the Service has caught up with its
/// latest generation (its route programmed with the 100/0 split).
fn wait_ready(serve: &mut Serve, revision: &str) -> Result<(), ScenarioError> {
    let rev = format!("/apis/serving.knative.dev/v1/namespaces/default/revisions/{revision}");
    let svc = format!("/apis/serving.knative.dev/v1/namespaces/default/services/{SERVICE}");
    let mut last_error = None;
    let deadline = Instant::now() + READY;
    loop {
        match (serve.get(&rev), serve.get(&svc)) {
            (Ok(Some(r)), Ok(Some(s))) => {
                let running = r["status"]["actualReplicas"].as_i64().unwrap_or(0) >= 1;
                let caught_up = s["status"]["observedGeneration"] == s["metadata"]["generation"];
                if is_ready(&r) && running && is_ready(&s) && caught_up {
                    return Ok(());
                }
            }
            (Err(e), _) | (_, Err(e)) => last_error = Some(e.to_string()),
            _ => {}
        }
        serve.process.check_running()?;
        if Instant::now() > deadline {
            let why = last_error.map(|f| format!(" (last error: {f})")).unwrap_or_default();
            return Err(ScenarioError::Timeout { what: format!("{revision} to be ready{why}"), after: READY });
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// True when the object's Ready condition is True.
pub(super) fn is_ready(v: &serde_json::Value) -> bool {
    v["status"]["conditions"]
        .as_array()
        .is_some_and(|cs| cs.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"))
}

/// The Service: the hello sample answering `Hello {target}!`, one instance kept at all times;
/// with `split`, the traffic block naming both revisions.
fn service_yaml(target: &str, split: Option<[u8; 2]>) -> String {
    let traffic = split.map_or(String::new(), |s| {
        format!(
            "  traffic:\n  - revisionName: {}\n    percent: {}\n  - revisionName: {}\n    percent: {}\n",
            REVISIONS[0], s[0], REVISIONS[1], s[1]
        )
    });
    format!(
        "apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: {SERVICE}
  namespace: default
spec:
  template:
    metadata:
      annotations:
        autoscaling.knative.dev/min-scale: \"1\"
    spec:
      containers:
      - image: docker.io/{{username}}/helloworld-go
        env:
        - name: TARGET
          value: \"{target}\"
{traffic}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(base: Instant, ms: u64) -> Instant {
        base + Duration::from_millis(ms)
    }

    #[test]
    fn an_edit_is_visible_at_the_first_added_response_after_the_last_removed_one() {
        let t = Instant::now();
        let s = |ms, class| Seen { at: at(t, ms), status: 200, class: Some(class) };
        let marks = [
            // 100/0 → 50/50 sent at 10, acknowledged at 12: revision 2 first answers at 15.
            Mark { sent: at(t, 10), acked: at(t, 12), before: [100, 0], after: [50, 50] },
            // 50/50 → 0/100 sent at 100, acknowledged at 101: revision 1 answers last at 104.
            Mark { sent: at(t, 100), acked: at(t, 101), before: [50, 50], after: [0, 100] },
            // 0/100 → 100/0: revision 1 never answers again.
            Mark { sent: at(t, 200), acked: at(t, 202), before: [0, 100], after: [100, 0] },
        ];
        let seen = [
            s(5, 0),
            s(11, 0),
            s(15, 1),
            s(16, 0),
            s(17, 1),
            s(102, 1),
            s(103, 0),
            s(104, 0),
            s(106, 1),
            s(107, 1),
            s(203, 1),
            s(250, 1),
        ];
        let edits = analyse(&marks, &seen, at(t, 300));
        assert_eq!(edits[0].visible_ms, Some(3.0));
        assert_eq!(edits[0].new_share, Some(2.0 / 3.0));
        assert_eq!(edits[0].responses, 4);
        assert_eq!(edits[1].visible_ms, Some(5.0), "the last revision-1 answer at 104, then 106");
        assert_eq!(edits[1].new_share, Some(1.0));
        assert_eq!(edits[2].visible_ms, None, "no revision-1 answer after the edit");
        assert_eq!(edits.iter().map(|e| e.split.as_str()).collect::<Vec<_>>(), ["50/50", "0/100", "100/0"]);
    }

    #[test]
    fn an_edit_served_before_its_acknowledgement_reads_negative_and_non_200s_are_counted() {
        let t = Instant::now();
        let marks = [Mark { sent: at(t, 10), acked: at(t, 14), before: [100, 0], after: [50, 50] }];
        let seen =
            [Seen { at: at(t, 12), status: 200, class: Some(1) }, Seen { at: at(t, 13), status: 503, class: None }];
        let edits = analyse(&marks, &seen, at(t, 100));
        assert_eq!(edits[0].visible_ms, Some(-2.0));
        assert_eq!((edits[0].responses, edits[0].non_200), (2, 1));
    }
}
