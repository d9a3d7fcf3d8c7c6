//! The runtime's README claims through the real binary: a crash-looping instance restarts at
//! once, then after 100 ms doubling, and a 10 s healthy run resets the backoff; an `exec`
//! readiness probe gates routing, `failureThreshold` misses take a ready instance out (requests
//! are held, then 504 at the revision's timeout) and a passing probe brings it back; `sluice logs -f` follows new output;
//! `--images FILE` maps an image to a command; SIGINT stops `sluice serve` with exit 0.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use kube::api::Api;
use sluice_api::Revision;
use sluice_api::conditions::{ConditionStatus, find};
use sluice_runtime::instance_pids;
use sluice_test_support::logs::{Marker, markers};
use sluice_test_support::traffic::Traffic;
use sluice_test_support::{Sluice, SluiceOptions, apply, eventually, until, wait_for};

const BIN: &str = env!("CARGO_BIN_EXE_sluice");
const WAIT: Duration = Duration::from_secs(60);

fn client(s: &Sluice) -> kube::Client {
    s.kube_client().expect("client")
}

/// A Service `name` whose container is `container` (YAML lines under `- `, indented 10).
fn service(name: &str, container: &str) -> String {
    format!(
        "apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: {name}
spec:
  template:
    spec:
      containers:
        - {}
",
        container.trim_start()
    )
}

/// The log of revision `rev` in namespace default.
fn revision_log(s: &Sluice, rev: &str) -> String {
    std::fs::read_to_string(s.state_dir.join("logs/default").join(format!("{rev}.log"))).unwrap_or_default()
}

fn alive(pid: u32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    !stat.is_empty() && !stat.contains(") Z ")
}

/// A child process killed and reaped when dropped.
struct Owned(Child);

impl Drop for Owned {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The restart delays the runtime announced (`restarting in 100ms`), and for each, how long
/// after the exit it noted the next start actually came.
fn restarts(notes: &[Marker]) -> Vec<(String, Duration)> {
    let mut out = Vec::new();
    for (i, note) in notes.iter().enumerate() {
        let Some(delay) = note.text.split("; restarting in ").nth(1) else { continue };
        let next_start = notes[i..].iter().find(|n| n.text.contains(" starting on port "));
        if let Some(start) = next_start {
            out.push((delay.to_string(), start.at.saturating_sub(note.at)));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_loop_backs_off_from_100_ms_doubling_and_a_10_s_healthy_run_resets_it() {
    let s = Sluice::start(BIN).expect("start sluice");
    let dir = tempfile::tempdir().expect("tempdir");
    let runs = dir.path().join("runs");
    // Runs 1-6 and 8 on exit at once; run 7 serves (the sample app) for 11 s, then exits.
    let script = format!(
        "n=0; [ -f {runs} ] && read n < {runs}; n=`expr $n + 1`; echo $n > {runs}; echo run $n; \
         [ $n -eq 7 ] && exec timeout 11 {BIN} sample hello; exit 1",
        runs = runs.display()
    );
    let container = format!(
        "image: example.com/crashy:v1\n          command: [\"sh\", \"-c\", {}]\n",
        serde_json::to_string(&script).expect("json")
    );
    apply(BIN, &s, &service("crashy", &container)).expect("apply");

    // Six announced delays: 100 ms, 200, 400, 800, 1.6 s, then (after the healthy run) 100 ms.
    let record = eventually("six announced restart delays", Duration::from_secs(40), || {
        let r = restarts(&markers(&revision_log(&s, "crashy-00001")));
        (r.len() >= 6).then_some(r)
    })
    .await
    .expect("the crash loop to go on");
    let log = revision_log(&s, "crashy-00001");
    let announced: Vec<&str> = record.iter().take(6).map(|(d, _)| d.as_str()).collect();
    assert_eq!(announced, ["100ms", "200ms", "400ms", "800ms", "1.6s", "100ms"], "{log}");
    for (delay, took) in record.iter().take(6) {
        let want = match delay.as_str() {
            "1.6s" => Duration::from_millis(1600),
            ms => Duration::from_millis(ms.trim_end_matches("ms").parse().expect("ms")),
        };
        assert!(
            took >= &want && *took < want + Duration::from_secs(2),
            "restart after {took:?}, announced {delay}\n{log}"
        );
    }
    // The first exit and the exit after the healthy run restart at once, unannounced.
    let notes = markers(&log);
    let exits: Vec<&Marker> = notes.iter().filter(|n| n.text.ends_with("exited with code 1")).collect();
    assert!(!exits[0].text.contains("restarting"), "{log}");
    let starts: Vec<&Marker> = notes.iter().filter(|n| n.text.contains(" starting on port ")).collect();
    assert!(starts.len() >= 8, "{log}");
    assert!(starts[1].at - exits[0].at < Duration::from_secs(1), "the first restart is immediate\n{log}");
    let healthy_end =
        notes.iter().find(|n| n.at > starts[6].at && n.text.contains(" exited with code ")).expect("run 7 exited");
    assert!(healthy_end.at - starts[6].at >= Duration::from_secs(10), "run 7 served 10 s\n{log}");
    assert!(starts[7].at - healthy_end.at < Duration::from_secs(1), "backoff reset after a healthy run\n{log}");

    let revisions: Api<Revision> = Api::namespaced(client(&s), "default");
    let count = until("restartCount to count the restarts", WAIT, async || {
        let rev = revisions.get("crashy-00001").await.ok()?;
        let n = rev.status?.extra.get("restartCount").and_then(serde_json::Value::as_u64)?;
        (n >= 8).then_some(n)
    })
    .await
    .expect("restartCount");
    assert!(count >= 8, "{count}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exec_probe_gates_routing_and_failure_threshold_misses_take_an_instance_out_until_it_passes() {
    let s = Sluice::start(BIN).expect("start sluice");
    let traffic = Traffic::new(s.http.as_deref().expect("router"));
    let dir = tempfile::tempdir().expect("tempdir");
    let ready = dir.path().join("ready");
    let container = format!(
        "image: ghcr.io/knative/helloworld-go
          env:
            - name: TARGET
              value: probed
          readinessProbe:
            exec:
              command: [\"test\", \"-f\", \"{}\"]
            periodSeconds: 1
            failureThreshold: 3
",
        ready.display()
    );
    // A 5 s request timeout: what a request waiting for a ready instance may wait.
    let manifest = service("probed", &container)
        .replace("    spec:\n      containers:", "    spec:\n      timeoutSeconds: 5\n      containers:");
    apply(BIN, &s, &manifest).expect("apply");
    let host = "probed.default.localhost";
    let rev = "probed-00001";

    // The app answers on its port, but until the probe passes the revision is not Ready.
    let port: u16 = eventually("the instance to start", WAIT, || {
        let log = revision_log(&s, rev);
        let line = log.lines().find(|l| l.contains(" starting on port "))?;
        line.split(" starting on port ").nth(1)?.split(':').next()?.parse().ok()
    })
    .await
    .expect("instance started");
    let direct = Traffic::new(&format!("127.0.0.1:{port}"));
    until("the app to answer on its own port", WAIT, async || {
        matches!(direct.get(host, "/").await, Ok((200, _))).then_some(())
    })
    .await
    .expect("app up");
    let revisions: Api<Revision> = Api::namespaced(client(&s), "default");
    // The app can answer before the revision's first status is written (seen on a loaded
    // machine): wait for that status rather than expect it.
    let status =
        until("the revision's first status", WAIT, async || revisions.get(rev).await.ok().and_then(|r| r.status))
            .await
            .expect("status");
    assert_ne!(find(&status.conditions, "Ready").map(|c| c.status), Some(ConditionStatus::True));
    // (Once the route is programmed: before that the host is unknown.)
    let (code, body) = until("the route to be programmed", WAIT, async || {
        traffic.get(host, "/").await.ok().filter(|(code, _)| *code != 404)
    })
    .await
    .expect("the route");
    assert_eq!((code, body.as_str()), (503, "route default/probed has no traffic target\n"));

    std::fs::write(&ready, "").expect("probe passes");
    traffic.wait_for(host, WAIT, |b| b == "Hello probed!\n").await.expect("routed once the probe passes");

    // The probe fails: two misses (at 1 s apart) keep it in routing; the third takes it out.
    std::fs::remove_file(&ready).expect("probe fails");
    let failing_since = tokio::time::Instant::now();
    while failing_since.elapsed() < Duration::from_millis(1500) {
        let answer = tokio::time::timeout(Duration::from_secs(1), traffic.get(host, "/")).await;
        assert!(
            matches!(&answer, Ok(Ok((200, _)))),
            "still in routing {:?} after the probe began failing: {answer:?}",
            failing_since.elapsed()
        );
    }
    until("requests to be held", Duration::from_secs(15), async || {
        tokio::time::timeout(Duration::from_millis(500), traffic.get(host, "/")).await.is_err().then_some(())
    })
    .await
    .expect("the instance to leave routing");
    // A held request gets 504 once the revision's timeout (5 s) has passed waiting.
    let held = tokio::time::Instant::now();
    let (code, body) = traffic.get(host, "/").await.expect("answer");
    assert_eq!(
        (code, body.as_str()),
        (504, "no instance of revision default/probed-00001 could take the request within its timeout of 5s\n")
    );
    assert!(held.elapsed() >= Duration::from_millis(4500), "held for {:?}", held.elapsed());

    // A request held while the probe fails is sent on as soon as it passes again.
    let waiting = {
        let traffic = traffic.clone();
        tokio::spawn(async move {
            let start = tokio::time::Instant::now();
            (traffic.get(host, "/").await, start.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    std::fs::write(&ready, "").expect("probe passes again");
    let (answer, took) = waiting.await.expect("join");
    assert_eq!(answer.expect("answer"), (200, "Hello probed!\n".to_string()));
    assert!(took >= Duration::from_millis(500) && took < Duration::from_secs(5), "answered after {took:?}");
    assert_eq!(traffic.get(host, "/").await.expect("back"), (200, "Hello probed!\n".to_string()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sluice_logs_follow_prints_what_the_instance_writes_later() {
    let s = Sluice::start(BIN).expect("start sluice");
    let traffic = Traffic::new(s.http.as_deref().expect("router"));
    apply(BIN, &s, &service("chatty", "image: ghcr.io/knative/helloworld-go\n")).expect("apply");
    let host = "chatty.default.localhost";
    traffic.wait_for(host, WAIT, |b| b == "Hello World!\n").await.expect("served");

    let mut follower = Owned(
        s.command(BIN)
            .args(["logs", "chatty-00001", "-f", "--api", &s.api])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("sluice logs -f"),
    );
    let stdout = follower.0.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let mut seen = Vec::new();
    let read_until = |what: &str, seen: &mut Vec<String>| {
        wait_for(what, Duration::from_secs(20), || {
            seen.extend(rx.try_iter());
            seen.iter().any(|l| l.contains(what)).then_some(())
        })
    };
    read_until("starting on port", &mut seen).expect("the log so far");
    assert!(!seen.iter().any(|l| l.contains("exit code 9")), "{seen:?}");

    // New output after the follower started: the app's last words, the exit, the restart.
    let _ = traffic.get(host, "/crash?code=9").await;
    read_until("crashing on request with exit code 9", &mut seen).expect("the app's new output");
    read_until("exited with code 9", &mut seen).expect("the runtime's note");
    wait_for("the restart to be followed", Duration::from_secs(20), || {
        seen.extend(rx.try_iter());
        (seen.iter().filter(|l| l.contains("starting on port")).count() == 2).then_some(())
    })
    .expect("the restart");
    assert!(follower.0.try_wait().expect("status").is_none(), "-f keeps following");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_images_file_maps_an_image_to_a_command() {
    let dir = tempfile::tempdir().expect("tempdir");
    let images = dir.path().join("images.yaml");
    // `$(PORT)` in the table is the instance's port, as the README's example uses it.
    let table = format!(
        "images:\n  example.com/team/greeter: [\"sh\", \"-c\", \"echo listening on $1; PORT=$1 exec \\\"$0\\\" sample hello\", \"{BIN}\", \"$(PORT)\"]\n"
    );
    std::fs::write(&images, table).expect("write images.yaml");
    let args = vec!["--images".to_string(), images.display().to_string()];
    let s = Sluice::start_with(BIN, SluiceOptions { args, ..Default::default() }).expect("start sluice");
    let traffic = Traffic::new(s.http.as_deref().expect("router"));
    let greeter = "image: example.com/team/greeter:v3
          env:
            - name: TARGET
              value: from the image table
";
    apply(BIN, &s, &service("greeter", greeter)).expect("greeter");
    apply(BIN, &s, &service("stranger", "image: example.com/team/stranger:v1\n")).expect("stranger");
    traffic
        .wait_for("greeter.default.localhost", WAIT, |b| b == "Hello from the image table!\n")
        .await
        .expect("the mapped image runs its command");
    let log = revision_log(&s, "greeter-00001");
    let port = log
        .lines()
        .find_map(|l| l.split(" starting on port ").nth(1)?.split(':').next().map(str::to_string))
        .expect("start note");
    assert!(log.contains(&format!("listening on {port}")), "$(PORT) expanded: {log}");

    // An image the table does not know does not run, and its revision says why.
    let revisions: Api<Revision> = Api::namespaced(client(&s), "default");
    let cond = until("the unmapped image to be reported", WAIT, async || {
        let rev = revisions.get("stranger-00001").await.ok()?;
        find(&rev.status?.conditions, "ContainerHealthy").filter(|c| c.status == ConditionStatus::False).cloned()
    })
    .await
    .expect("ContainerHealthy False");
    assert_eq!(cond.reason.as_deref(), Some("ContainerMissing"));
    let message = cond.message.unwrap_or_default();
    assert!(message.contains("\"example.com/team/stranger:v1\" is not in the local image table"), "{message}");
}

/// Sends `signal` (e.g. `INT`) to `pid` with kill(1).
fn signal(pid: u32, signal: &str) {
    let status = Command::new("kill").args([&format!("-{signal}"), &pid.to_string()]).status().expect("kill");
    assert!(status.success(), "kill -{signal} {pid}");
}

/// True once `pid` has exited (a zombie its parent has not reaped yet, or gone).
fn exited(pid: u32) -> bool {
    let path = format!("/proc/{pid}/stat");
    std::fs::read_to_string(Path::new(&path)).map_or(true, |stat| stat.contains(") Z "))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_drains_stops_instances_and_exits_0() {
    let s = Sluice::start(BIN).expect("start sluice");
    let state = s.state_dir.canonicalize().expect("state dir");
    let traffic = Traffic::new(s.http.as_deref().expect("router"));
    apply(BIN, &s, &service("hello", "image: ghcr.io/knative/helloworld-go\n")).expect("apply");
    let host = "hello.default.localhost";
    traffic.wait_for(host, WAIT, |b| b == "Hello World!\n").await.expect("served");
    let instances = instance_pids(&state);
    assert_eq!(instances.len(), 1, "{instances:?}");

    let slow = {
        let traffic = traffic.clone();
        tokio::spawn(async move { traffic.get(host, "/sleep?ms=1500").await })
    };
    // Give the request time to reach the instance before the signal.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let pid = s.pid().expect("pid");
    signal(pid, "INT");
    eventually("sluice serve to exit after SIGINT", Duration::from_secs(30), || exited(pid).then_some(()))
        .await
        .expect("exit");
    let (code, body) = slow.await.expect("join").expect("the in-flight request is answered");
    assert_eq!((code, body.as_str()), (200, "slept 1500 ms\n"));
    assert!(instances.iter().all(|p| !alive(*p)), "instances stopped with the server: {instances:?}");
    // It has exited on SIGINT alone; `terminate` only reaps it (a signal to a zombie is a no-op).
    let mut s = s;
    let status = s.terminate(Duration::from_secs(5)).expect("reap");
    assert_eq!(status.code(), Some(0), "{status:?}\n{}", s.log_text());
    assert!(s.log_text().contains("SIGINT: shutting down"), "{}", s.log_text());
}
