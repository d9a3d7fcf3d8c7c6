//! `sluice serve` for the scenarios that drive its API while they measure (`route-edit`,
//! `burst`, `cold-start`): started on free ports with its metrics endpoint, its API reached
//! with the state directory's token (a PATCH is timed from the moment it is sent to the moment
//! its answer is read, which is the API's acknowledgement), manifests applied with
//! `sluice apply`, and single samples read from its Prometheus `/metrics`.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::ScenarioError;
use super::procs::Owned;
use crate::pin::Layout;

/// How long `sluice serve` gets to come up, and an object to become ready.
pub const READY: Duration = Duration::from_secs(60);
/// How long a revision may take to scale to zero, and how often that is checked.
const ZERO_DEADLINE: Duration = Duration::from_secs(60);
const ZERO_POLL: Duration = Duration::from_millis(50);
/// `config-autoscaler` for a quick scale to zero.
const FAST_SCALE_TO_ZERO: &str = "apiVersion: v1
kind: ConfigMap
metadata:
  name: config-autoscaler
  namespace: knative-serving
data:
  scale-to-zero-grace-period: \"1s\"
";
/// How long one API or metrics request may take.
const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// A running `sluice serve` and its endpoints.
pub struct Serve {
    /// The process.
    pub process: Owned,
    /// Its state directory.
    pub state: PathBuf,
    /// The API's address (plain HTTP on loopback).
    pub api: SocketAddr,
    /// The router's address.
    pub http: SocketAddr,
    /// The metrics endpoint's address.
    pub metrics: SocketAddr,
    token: String,
    sluice: PathBuf,
    dir: PathBuf,
}

// === impl Serve ===

impl Serve {
    /// Starts `sluice serve` (role `sluice`) in `dir` with every listener on a free loopback
    /// port and `extra` flags, and waits for its endpoints.json.
    pub fn start(sluice: &Path, dir: &Path, layout: &Layout, extra: &[String]) -> Result<Self, ScenarioError> {
        let state = dir.join("state");
        let mut cmd = layout.command("sluice", sluice);
        cmd.arg("serve").arg("--state-dir").arg(&state);
        cmd.args(["--api", "127.0.0.1:0", "--http", "127.0.0.1:0", "--metrics", "127.0.0.1:0"]);
        cmd.args(extra);
        let mut process = Owned::spawn("sluice serve", cmd, &dir.join("serve.log"))?;
        let endpoints = state.join("endpoints.json");
        let (api, http, metrics) = process.wait_for("to write endpoints.json", READY, || {
            let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&endpoints).ok()?).ok()?;
            let addr = |k: &str| v[k].as_str()?.trim_start_matches("http://").parse::<SocketAddr>().ok();
            Some((addr("api")?, addr("http")?, addr("metrics")?))
        })?;
        let token_file = state.join("token");
        let token = std::fs::read_to_string(&token_file)
            .map_err(|e| ScenarioError::Io(format!("{}: {e}", token_file.display())))?
            .trim()
            .to_string();
        Ok(Self { process, state, api, http, metrics, token, sluice: sluice.to_path_buf(), dir: dir.to_path_buf() })
    }

    /// `sluice apply` of `yaml` (written to `name`.yaml in the scenario's directory).
    pub fn apply(&self, name: &str, yaml: &str) -> Result<(), ScenarioError> {
        let file = self.dir.join(format!("{name}.yaml"));
        std::fs::write(&file, yaml).map_err(|e| ScenarioError::Io(format!("{}: {e}", file.display())))?;
        let out = Command::new(&self.sluice)
            .arg("apply")
            .args(["--api", &format!("http://{}", self.api)])
            .arg("--state-dir")
            .arg(&self.state)
            .arg("-f")
            .arg(&file)
            .output()
            .map_err(|e| ScenarioError::Start { what: "sluice apply".into(), reason: e.to_string() })?;
        if !out.status.success() {
            let reason = String::from_utf8_lossy(&out.stderr).trim().to_string();
            return Err(ScenarioError::Start { what: format!("sluice apply {name}"), reason });
        }
        Ok(())
    }

    /// A JSON merge patch of the object at `path` (under the API root); Ok once the API has
    /// answered 200, that is, acknowledged the change.
    pub fn merge_patch(&self, path: &str, patch: &serde_json::Value) -> Result<(), ScenarioError> {
        let body = patch.to_string();
        let (status, text) = self.api_request("PATCH", path, Some(("application/merge-patch+json", &body)))?;
        if status != 200 {
            return Err(ScenarioError::Io(format!("PATCH {path}: {status}: {}", text.trim())));
        }
        Ok(())
    }

    /// The object at `path` (under the API root), or None when the API answered 404.
    pub fn get(&self, path: &str) -> Result<Option<serde_json::Value>, ScenarioError> {
        let (status, text) = self.api_request("GET", path, None)?;
        match status {
            200 => serde_json::from_str(&text).map(Some).map_err(|e| ScenarioError::Io(format!("GET {path}: {e}"))),
            404 => Ok(None),
            _ => Err(ScenarioError::Io(format!("GET {path}: {status}: {}", text.trim()))),
        }
    }

    /// Applies `config-autoscaler` with the shortest scale-to-zero Sluice allows: a grace period
    /// of 1 s (the autoscaler decides once a second, so a shorter one changes nothing); with
    /// [`scale_to_zero_service`]'s 6 s window (the least Knative allows), a revision is at zero
    /// about 8 s after its last request.
    pub fn fast_scale_to_zero(&self) -> Result<(), ScenarioError> {
        self.apply("config-autoscaler", FAST_SCALE_TO_ZERO)
    }

    /// Waits until `revision`'s autoscaler wants no instance and none runs (its
    /// `autoscaler_desired_pods` and `autoscaler_actual_pods`, the instance processes running,
    /// both 0), polling serve's `/metrics` every 50 ms; the time it took.
    pub fn wait_for_zero(&mut self, revision: &str) -> Result<Duration, ScenarioError> {
        let start = std::time::Instant::now();
        let (metrics, revision) = (self.metrics, revision.to_string());
        let poll = || -> Option<()> {
            let (status, text) = request(metrics, "GET", "/metrics", None, None).ok()?;
            let zero = |name| sample(&text, name, &revision) == Some(0.0);
            (status == 200 && zero("autoscaler_desired_pods") && zero("autoscaler_actual_pods")).then_some(())
        };
        loop {
            if poll().is_some() {
                return Ok(start.elapsed());
            }
            self.process.check_running()?;
            if start.elapsed() > ZERO_DEADLINE {
                return Err(ScenarioError::Timeout {
                    what: format!("{revision} to scale to zero"),
                    after: ZERO_DEADLINE,
                });
            }
            std::thread::sleep(ZERO_POLL);
        }
    }

    /// serve's whole `/metrics` text.
    pub fn metrics_text(&self) -> Result<String, ScenarioError> {
        let (status, text) = request(self.metrics, "GET", "/metrics", None, None)?;
        if status != 200 {
            return Err(ScenarioError::Io(format!("GET /metrics: {status}")));
        }
        Ok(text)
    }

    fn api_request(
        &self,
        method: &str,
        path: &str,
        body: Option<(&str, &str)>,
    ) -> Result<(u16, String), ScenarioError> {
        request(self.api, method, path, Some(&self.token), body)
    }
}

/// Control-plane work between two scrapes of serve's `/metrics`.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Work {
    /// Durable store writes (each a redb commit with fsync, before the API answers).
    pub store_writes: Timed,
    /// Reconciles finished, by kind.
    pub reconciles: BTreeMap<String, Timed>,
    /// Reconciles that ended in a write conflict (409) and were requeued, by kind.
    pub conflicts: BTreeMap<String, u64>,
}

/// How many of something happened, and their mean duration.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize)]
pub struct Timed {
    /// How many.
    pub count: u64,
    /// Their mean duration, ms.
    pub mean_ms: f64,
}

/// The store writes and reconciles between the scrapes `before` and `after`.
pub fn work(before: &str, after: &str) -> Work {
    let timed = |name: &str, label: &str| {
        let delta = |suffix: &str| {
            let key = format!("{name}_{suffix}");
            value(after, &key, label).unwrap_or(0.0) - value(before, &key, label).unwrap_or(0.0)
        };
        let count = delta("count").max(0.0);
        Timed { count: count as u64, mean_ms: if count > 0.0 { delta("sum") * 1000.0 / count } else { 0.0 } }
    };
    const KINDS: [&str; 4] = ["Service", "Configuration", "Route", "Revision"];
    let reconciles = KINDS
        .into_iter()
        .map(|k| (k.to_string(), timed("sluice_reconcile_duration_seconds", &format!("kind=\"{k}\""))))
        .filter(|(_, t)| t.count > 0)
        .collect();
    let conflicts = KINDS
        .into_iter()
        .map(|k| {
            let label = format!("kind=\"{k}\",result=\"requeue\"");
            let at = |text| value(text, "sluice_reconcile_count", &label).unwrap_or(0.0);
            (k.to_string(), (at(after) - at(before)).max(0.0) as u64)
        })
        .filter(|(_, n)| *n > 0)
        .collect();
    Work { store_writes: timed("sluice_store_write_duration_seconds", ""), reconciles, conflicts }
}

/// The hello sample as Service `name`, with the shortest stable window Knative allows (6 s).
pub fn scale_to_zero_service(name: &str) -> String {
    format!(
        "apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: {name}
  namespace: default
spec:
  template:
    metadata:
      annotations:
        autoscaling.knative.dev/window: \"6s\"
    spec:
      containers:
      - image: docker.io/{{username}}/helloworld-go
        env:
        - name: TARGET
          value: \"Go Sample v1\"
"
    )
}

/// The value of `name{…revision_name="revision"…}` in a Prometheus text exposition.
pub fn sample(text: &str, name: &str, revision: &str) -> Option<f64> {
    value(text, name, &format!("revision_name=\"{revision}\""))
}

/// The value of the first series `name` whose labels include `label` (`key="value"`; empty:
/// any series of that name, labelled or not).
pub fn value(text: &str, name: &str, label: &str) -> Option<f64> {
    text.lines()
        .filter_map(|l| l.strip_prefix(name))
        .filter_map(|rest| match rest.strip_prefix('{') {
            Some(labelled) => labelled.split_once('}').filter(|(labels, _)| labels.contains(label)).map(|(_, v)| v),
            None => rest.starts_with(' ').then_some(rest),
        })
        .find_map(|v| v.trim().parse().ok())
}

/// One HTTP/1.1 request over a fresh connection (`Connection: close`): (status, body).
fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<(&str, &str)>,
) -> Result<(u16, String), ScenarioError> {
    let fail = |e: String| ScenarioError::Io(format!("{method} http://{addr}{path}: {e}"));
    let mut s = TcpStream::connect_timeout(&addr, IO_TIMEOUT).map_err(|e| fail(e.to_string()))?;
    s.set_read_timeout(Some(IO_TIMEOUT)).map_err(|e| fail(e.to_string()))?;
    s.set_nodelay(true).map_err(|e| fail(e.to_string()))?;
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if let Some(t) = token {
        head.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    let (ct, text) = body.unwrap_or(("", ""));
    if body.is_some() {
        head.push_str(&format!("Content-Type: {ct}\r\nContent-Length: {}\r\n", text.len()));
    }
    head.push_str("\r\n");
    head.push_str(text);
    s.write_all(head.as_bytes()).map_err(|e| fail(e.to_string()))?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).map_err(|e| fail(e.to_string()))?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").ok_or_else(|| fail("no response head".into()))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| fail(format!("no status in {:?}", head.lines().next())))?;
    let chunked = head.lines().any(|l| {
        l.split_once(':').is_some_and(|(k, v)| {
            k.eq_ignore_ascii_case("transfer-encoding") && v.trim().eq_ignore_ascii_case("chunked")
        })
    });
    let body = if chunked { dechunk(body) } else { body.to_string() };
    Ok((status, body))
}

/// A chunked body's data (what a `Connection: close` read left whole).
fn dechunk(mut rest: &str) -> String {
    let mut out = String::new();
    while let Some((size, tail)) = rest.split_once("\r\n") {
        let n = usize::from_str_radix(size.split(';').next().unwrap_or("").trim(), 16).unwrap_or(0);
        if n == 0 || tail.len() < n {
            break;
        }
        out.push_str(&tail[..n]);
        rest = tail[n..].trim_start_matches("\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sample_is_found_by_name_and_revision() {
        let text = "# TYPE autoscaler_actual_pods gauge
autoscaler_actual_pods{namespace_name=\"default\",revision_name=\"b-00001\"} 2
autoscaler_actual_pods{namespace_name=\"default\",revision_name=\"a-00001\"} 0
autoscaler_actual_pods_x{revision_name=\"a-00001\"} 9
revision_queue_depth{revision_name=\"a-00001\"} 17
";
        assert_eq!(sample(text, "autoscaler_actual_pods", "a-00001"), Some(0.0));
        assert_eq!(sample(text, "autoscaler_actual_pods", "b-00001"), Some(2.0));
        assert_eq!(sample(text, "revision_queue_depth", "a-00001"), Some(17.0));
        assert_eq!(sample(text, "revision_queue_depth", "c-00001"), None);
        let text = "sluice_store_write_duration_seconds_sum 0.25\nsluice_store_write_duration_seconds_count 5\n\
                    sluice_reconcile_duration_seconds_count{kind=\"Route\"} 3\n";
        assert_eq!(value(text, "sluice_store_write_duration_seconds_sum", ""), Some(0.25));
        assert_eq!(value(text, "sluice_store_write_duration_seconds_count", ""), Some(5.0));
        assert_eq!(value(text, "sluice_reconcile_duration_seconds_count", "kind=\"Route\""), Some(3.0));
        assert_eq!(value(text, "sluice_reconcile_duration_seconds_count", "kind=\"Service\""), None);
    }

    #[test]
    fn work_is_the_difference_of_two_scrapes() {
        let before = "sluice_store_write_duration_seconds_sum 1.0\nsluice_store_write_duration_seconds_count 10\n\
                      sluice_reconcile_duration_seconds_sum{kind=\"Route\"} 0.5\n\
                      sluice_reconcile_duration_seconds_count{kind=\"Route\"} 5\n";
        let after = "sluice_store_write_duration_seconds_sum 1.02\nsluice_store_write_duration_seconds_count 14\n\
                     sluice_reconcile_duration_seconds_sum{kind=\"Route\"} 0.506\n\
                     sluice_reconcile_duration_seconds_count{kind=\"Route\"} 8\n\
                     sluice_reconcile_duration_seconds_sum{kind=\"Service\"} 0.003\n\
                     sluice_reconcile_duration_seconds_count{kind=\"Service\"} 1\n\
                     sluice_reconcile_count{kind=\"Route\",result=\"requeue\"} 2\n";
        let w = work(before, after);
        assert_eq!(w.store_writes.count, 4);
        assert!((w.store_writes.mean_ms - 5.0).abs() < 1e-6, "{w:?}");
        assert_eq!(w.reconciles["Route"].count, 3);
        assert!((w.reconciles["Route"].mean_ms - 2.0).abs() < 1e-6, "{w:?}");
        assert!((w.reconciles["Service"].mean_ms - 3.0).abs() < 1e-6, "a series new since the first scrape");
        assert!(!w.reconciles.contains_key("Revision"), "kinds that did nothing are left out");
        assert_eq!(w.conflicts, BTreeMap::from([("Route".to_string(), 2)]));
    }

    #[test]
    fn chunked_bodies_are_joined() {
        assert_eq!(dechunk("5\r\nhello\r\n6;x=1\r\n world\r\n0\r\n\r\n"), "hello world");
    }
}
