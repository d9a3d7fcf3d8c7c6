//! `sluice bench`, the real binary against the real hello sample on a loopback port: a short
//! closed-loop run reports every response in JSON, a non-2xx status is counted and not
//! dropped, and `--compare` interleaves its targets and draws the plot; and the scenarios, each
//! against a real `sluice serve` they start (`cold-start` from zero is the one slow test: it
//! waits twice for a revision to scale to zero, about 8 s each).

use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;
use sluice_test_support::wait_for;

const BIN: &str = env!("CARGO_BIN_EXE_sluice");
/// A short run: two connections, 100 ms of warm-up, 300 ms measured.
const SHORT: [&str; 6] = ["-c", "2", "--duration", "300ms", "--warmup", "100ms"];

/// `sluice sample hello` on a free port, killed on drop.
struct Hello {
    child: Child,
    url: String,
}

impl Hello {
    fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
        let child = Command::new(BIN)
            .args(["sample", "hello"])
            .env("PORT", port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the sample");
        let url = format!("http://127.0.0.1:{port}");
        wait_for("the sample to listen", Duration::from_secs(30), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).ok().map(|_| ())
        })
        .expect("sample up");
        Self { child, url }
    }
}

impl Drop for Hello {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn bench(args: &[&str]) -> (Output, Value) {
    let out = Command::new(BIN).arg("bench").args(args).output().expect("run sluice bench");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let json = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {text}\nstderr: {}", String::from_utf8_lossy(&out.stderr)));
    (out, json)
}

#[test]
fn a_short_run_reports_every_response_as_json() {
    let hello = Hello::start();
    let (out, v) = bench(&["--json", "-c", "4", "--duration", "1s", "--warmup", "200ms", &format!("{}/", hello.url)]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let requests = v["requests"].as_u64().expect("requests");
    assert!(requests > 100, "{v}");
    assert_eq!(v["statuses"]["200"].as_u64(), Some(requests), "{v}");
    assert_eq!(v["non_2xx"], 0);
    assert_eq!(v["errors"], serde_json::json!({}));
    assert!(v["rps"].as_f64().expect("rps") > 0.0);
    for p in ["p50", "p90", "p99", "p99.9", "max"] {
        assert!(v["latency_us"][p].as_f64().expect(p) > 0.0, "{p}: {v}");
    }
    assert!(v["cpu_us_per_request"]["generator"].is_number(), "{v}");
    assert!(v["layout"].as_str().expect("layout").contains("unpinned"));
}

#[test]
fn non_2xx_answers_are_counted_not_dropped() {
    let hello = Hello::start();
    let url = format!("{}/status/503", hello.url);
    let (_, v) = bench(&["--json", "-c", "2", "--requests", "300", "--warmup", "0s", &url]);
    assert_eq!(v["statuses"], serde_json::json!({"503": 300}), "{v}");
    assert_eq!(v["non_2xx"], 300);
}

#[test]
fn compare_interleaves_targets_and_plots_them() {
    let hello = Hello::start();
    let dir = tempfile::tempdir().expect("tmp");
    let svg = dir.path().join("p.svg");
    let a = format!("a={}/", hello.url);
    let b = format!("b={}/,host=other.example", hello.url);
    let plot = ["--plot", svg.to_str().expect("utf-8 path")];
    let (out, v) = bench(&[&["--json", "--compare", &a, &b, "--trials", "2"][..], &SHORT, &plot].concat());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let order: Vec<&str> =
        v["trials"].as_array().expect("trials").iter().filter_map(|t| t["target"].as_str()).collect();
    assert_eq!(order, ["a", "b", "a", "b"]);
    let targets = v["targets"].as_array().expect("targets");
    assert_eq!(targets[0]["rps_ratio"], 1.0);
    assert!(targets[1]["rps"].as_f64().expect("rps") > 0.0);
    let plot = std::fs::read_to_string(&svg).expect("the plot was written");
    assert!(plot.contains("<svg") && plot.contains("\na\n") && plot.contains("\nb\n"), "both targets named");
}

#[test]
fn a_bad_target_spec_is_refused_with_the_reason() {
    let out = Command::new(BIN).args(["bench", "--compare", "nourl", "--duration", "1s"]).output().expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("\"nourl\"") && err.contains("NAME=URL"), "{err}");
}

#[test]
fn steady_compares_direct_sluice_and_nginx_when_installed() {
    // Two workers each (nginx's worker processes, serve's router threads): the default is one.
    let (out, v) = bench(&[&["steady", "--json", "--trials", "1", "--workers", "2"][..], &SHORT].concat());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let names: Vec<&str> =
        v["targets"].as_array().expect("targets").iter().filter_map(|t| t["target"].as_str()).collect();
    let nginx_here = ["/usr/sbin/nginx", "/usr/bin/nginx"].iter().any(|p| std::path::Path::new(p).is_file());
    if nginx_here {
        assert_eq!(names, ["direct", "sluice", "nginx"], "{v}");
    } else {
        eprintln!("nginx is not installed: steady runs without it");
        assert_eq!(names, ["direct", "sluice"], "{v}");
        assert!(stderr.contains("skipped nginx"), "the reason is printed: {stderr}");
    }
    for t in v["targets"].as_array().expect("targets") {
        assert!(t["rps"].as_f64().expect("rps") > 0.0, "{t}");
        assert_eq!((t["non_2xx"].as_u64(), t["errors"].as_u64()), (Some(0), Some(0)), "{t}");
    }
    let sluice = &v["targets"][1];
    assert!(sluice["cpu_us_per_request"]["sluice"].as_f64().expect("sluice CPU") > 0.0, "{sluice}");
}

#[test]
fn cold_start_of_a_new_service_times_the_app_alone_and_through_sluice() {
    let (out, v) = bench(&["cold-start", "--new-service", "--iterations", "2", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!((v["kind"].as_str(), v["iterations"].as_u64()), (Some("new-service"), Some(2)), "{v}");
    let process = v["process_us"]["p50"].as_f64().expect("process p50");
    let sluice = v["sluice_us"]["p50"].as_f64().expect("sluice p50");
    assert!(process > 0.0 && sluice > 0.0, "{v}");
    assert!((v["sluice_share_p50_us"].as_f64().expect("share") - (sluice - process)).abs() < 1.0, "{v}");
}

/// Slow (about 20 s): two waits for the revision to scale to zero.
#[test]
fn cold_start_from_zero_splits_the_first_byte_into_the_instance_s_start_and_sluice_s_share() {
    let (out, v) = bench(&["cold-start", "--from-zero", "--iterations", "2", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!((v["kind"].as_str(), v["iterations"].as_u64()), (Some("from-zero"), Some(2)), "{v}");
    let process = v["process_us"]["p50"].as_f64().expect("process p50");
    let sluice = v["sluice_us"]["p50"].as_f64().expect("sluice p50");
    let ready = v["spawn_to_ready_us"]["p50"].as_f64().expect("the instance's spawn → ready, from its log");
    assert!(process > 0.0 && ready > 0.0, "{v}");
    assert!(sluice > ready, "the first byte through Sluice comes after its instance is ready: {v}");
    assert!(v["outside_start_us"]["max"].as_f64().expect("the rest") > 0.0, "{v}");
    assert!((v["sluice_share_p50_us"].as_f64().expect("share") - (sluice - process)).abs() < 1.0, "{v}");
    assert!(v["zero_wait_p50_s"].as_f64().expect("zero wait") > 1.0, "it waited for zero: {v}");
}

#[test]
fn route_edit_sees_every_split_and_no_failed_request() {
    let (out, v) =
        bench(&["route-edit", "--json", "--edits", "2", "--interval", "700ms", "-c", "2", "--warmup", "200ms"]);
    assert!(out.status.success(), "{}\n{v}", String::from_utf8_lossy(&out.stderr));
    let edits = v["edits"].as_array().expect("edits");
    let splits: Vec<&str> = edits.iter().filter_map(|e| e["split"].as_str()).collect();
    assert_eq!(splits, ["50/50", "0/100"], "{v}");
    for e in edits {
        let visible = e["visible_ms"].as_f64().unwrap_or_else(|| panic!("edit not seen within the interval: {e}"));
        assert!(visible < 700.0, "{e}");
        assert!(e["responses"].as_u64().expect("responses") > 0, "{e}");
        assert_eq!(e["non_200"], 0, "{e}");
    }
    let share = edits[0]["new_share"].as_f64().expect("share of 50/50");
    assert!((0.2..0.8).contains(&share), "about half the answers came from revision 2 at 50/50: {v}");
    assert_eq!(edits[1]["new_share"], 1.0, "after 0/100 became visible, only revision 2 answered: {v}");
    let load = &v["load"];
    assert_eq!(
        load["statuses"].as_object().map(|m| m.keys().cloned().collect::<Vec<_>>()),
        Some(vec!["200".to_string()]),
        "{v}"
    );
    assert_eq!(load["errors"], serde_json::json!({}), "{v}");
    assert_eq!((v["unclassified"].as_u64(), v["not_visible"].as_u64()), (Some(0), Some(0)), "{v}");
}

#[test]
fn a_burst_at_a_revision_at_zero_is_answered_whole() {
    let (out, v) = bench(&["burst", "-n", "20", "--json"]);
    assert!(out.status.success(), "{}\n{v}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(v["load"]["statuses"], serde_json::json!({"200": 20}), "{v}");
    assert_eq!(v["load"]["errors"], serde_json::json!({}), "{v}");
    assert!(v["load"]["latency_us"]["max"].as_f64().expect("max") > 0.0, "{v}");
    assert!(v["zero_after_s"].as_f64().expect("zero wait") > 1.0, "it waited for zero: {v}");
    let (peak, polls) = (v["queue_peak"].as_f64().expect("peak"), v["polls"].as_u64().expect("polls"));
    assert!(polls > 0 && peak <= 20.0, "{v}");
}

#[test]
fn nginx_config_writes_the_harness_config_and_nginx_proxies_with_it() {
    let prefix = tempfile::tempdir().expect("tempdir");
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let hello = Hello::start();
    let upstream = hello.url.trim_start_matches("http://");
    let listen = format!("127.0.0.1:{port}");
    let out = Command::new(BIN)
        .args(["bench", "nginx-config", "--listen", &listen, "--upstream", upstream, "--prefix"])
        .arg(prefix.path())
        .output()
        .expect("run sluice bench nginx-config");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let nginx = ["/usr/sbin/nginx", "/usr/bin/nginx"].into_iter().find(|p| std::path::Path::new(p).is_file());
    let Some(nginx) = nginx else {
        eprintln!("nginx is not installed: only the refusal is checked");
        assert!(!out.status.success() && stderr.contains("nginx is not installed"), "{stderr}");
        return;
    };
    assert!(out.status.success(), "{stderr}");
    let conf = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let text = std::fs::read_to_string(&conf).expect("the config is where it says");
    for line in ["worker_processes 1;", &format!("server {upstream};"), "keepalive 64;", &format!("listen {listen};")] {
        assert!(text.contains(line), "{line:?} in {text}");
    }
    let mut child = Command::new(nginx)
        .arg("-p")
        .arg(prefix.path())
        .arg("-e")
        .arg(prefix.path().join("error.log"))
        .args(["-c", &conf])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start nginx");
    let answered = wait_for("nginx to proxy", Duration::from_secs(20), || {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
        use std::io::{Read, Write};
        s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").ok()?;
        let mut answer = String::new();
        s.read_to_string(&mut answer).ok()?;
        answer.starts_with("HTTP/1.1 200").then_some(answer)
    });
    // SIGTERM to the master (foreground, not daemonized) stops its workers too.
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let _ = child.wait();
    let answer = answered.expect("nginx answered through the generated config");
    assert!(answer.ends_with("Hello World!\n"), "{answer}");
}
