//! The `sluice` CLI as a kn user drives it, through the real binary against a real `sluice
//! serve`: service create/update/describe/delete with `--wait`, a failing image's reason,
//! revision and route pages, `get -o name|wide|jsonpath`, `get -w`, `delete -f`, `logs SERVICE`
//! and completion scripts.

use std::io::{BufRead, BufReader};
use std::process::{Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use sluice_test_support::traffic::Traffic;
use sluice_test_support::{Sluice, SluiceOptions, wait_for};

const BIN: &str = env!("CARGO_BIN_EXE_sluice");
const IMAGE: &str = "ghcr.io/knative/helloworld-go:latest";
/// What a single command may take on a loaded machine (a wait for Ready included).
const WAIT: Duration = Duration::from_secs(60);

fn run(s: &Sluice, args: &[&str]) -> (bool, String, String) {
    let out: Output = s.command(BIN).args(args).stdin(Stdio::null()).output().expect("run sluice");
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.success(), text(&out.stdout), text(&out.stderr))
}

/// Runs and asserts success; stdout.
fn ok(s: &Sluice, args: &[&str]) -> String {
    let (success, stdout, stderr) = run(s, args);
    assert!(success, "sluice {args:?} failed:\n{stdout}{stderr}");
    stdout
}

/// GET the service's host once (no retry: `--wait` said it was ready).
fn answer(s: &Sluice, host: &str) -> (u16, String) {
    let traffic = Traffic::new(s.http.as_deref().expect("router address"));
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    rt.block_on(traffic.get(host, "/")).expect("the router answers")
}

const SPLIT: &str = "apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: hello
spec:
  template:
    spec:
      containers:
      - image: ghcr.io/knative/helloworld-go:latest
        env:
        - name: TARGET
          value: two
  traffic:
  - revisionName: hello-00001
    percent: 30
    tag: old
  - latestRevision: true
    percent: 70
";

#[test]
fn service_create_update_describe_and_delete_as_with_kn() {
    let s = Sluice::start(BIN).expect("start sluice");
    let host = "hello.default.localhost";

    let out = ok(
        &s,
        &[
            "service",
            "create",
            "hello",
            "--image",
            IMAGE,
            "--env",
            "TARGET=one",
            "--port",
            "8080",
            "--annotation",
            "team=a",
            "--annotation",
            "autoscaling.knative.dev/target=10",
            "--scale-max",
            "3",
            "--concurrency-limit",
            "5",
            "--wait-timeout",
            "60",
        ],
    );
    assert!(out.starts_with("Creating service 'hello' in namespace 'default':\n"), "{out}");
    assert!(
        out.ends_with("Service 'hello' created to latest revision 'hello-00001' is available at URL:\nhttp://hello.default.localhost\n"),
        "{out}"
    );
    assert_eq!(answer(&s, host), (200, "Hello one!\n".into()), "Ready means the URL answers at once");
    let annotations = ok(&s, &["get", "ksvc", "hello", "-o", "jsonpath={.metadata.annotations.team}"]);
    assert_eq!(annotations, "a", "plain annotations go on the service too");

    // As kn: create refuses a service that exists.
    let (success, _, err) = run(&s, &["service", "create", "hello", "--image", IMAGE]);
    assert!(!success && err.contains("because the service already exists"), "{err}");

    // Update changes only what is given: a new revision with the new env, same image.
    let out = ok(&s, &["service", "update", "hello", "--env", "TARGET=two", "--env", "EXTRA=1"]);
    assert!(out.contains("Service 'hello' updated to latest revision 'hello-00002' is available at URL:"), "{out}");
    assert_eq!(answer(&s, host), (200, "Hello two!\n".into()));
    let out = ok(&s, &["service", "update", "hello", "--env", "EXTRA-"]);
    assert!(out.contains("latest revision 'hello-00003'"), "`NAME-` removes a variable, a new revision: {out}");
    let env = ok(&s, &["get", "ksvc", "hello", "-o", "jsonpath={.spec.template.spec.containers[0].env[*].name}"]);
    assert_eq!(env, "TARGET");

    // A split with a tag (through apply --wait), then the pages show percent and tag.
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("split.yaml");
    std::fs::write(&file, SPLIT).expect("write");
    let out = ok(&s, &["apply", "-f", file.to_str().expect("utf8"), "--wait"]);
    assert!(out.contains("service.serving.knative.dev \"hello\" is ready at http://hello.default.localhost"), "{out}");
    let page = ok(&s, &["service", "describe", "hello"]);
    for want in [
        "Name:        hello\n",
        "URL:         http://hello.default.localhost\n",
        "   70%  @latest (hello-00004) [4] (",
        "   30%  hello-00001 #old [1] (",
        "        Image:     ghcr.io/knative/helloworld-go:latest\n",
        "Conditions:\n",
        "  ++ Ready ",
        "  ++ RoutesReady ",
    ] {
        assert!(page.contains(want), "{want:?} in:\n{page}");
    }
    // Events: shown when the server keeps them (a server without them answers 404, and the
    // section is left out rather than failing the page).
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let events = rt
        .block_on(s.client().get(&format!("{}/api/v1/namespaces/default/events", s.api), &[]))
        .expect("the API answers");
    match events.status.as_u16() {
        404 => assert!(!page.contains("Events"), "{page}"),
        200 if events.text().contains("\"hello\"") => assert!(page.contains("\nEvents:\n  Type "), "{page}"),
        code => assert!(code == 200, "events: {code} {}", events.text()),
    }
    let rev = ok(&s, &["revision", "describe", "hello-00001"]);
    assert!(rev.contains("Traffic:     30%\n") && rev.contains("Tags:        old\n"), "{rev}");
    for want in [
        "Env:         TARGET=one\n",
        "Port:        8080\n",
        "Concurrency: limit 5\n",
        "autoscaling.knative.dev/max-scale=3, autoscaling.knative.dev/target=10,",
    ] {
        assert!(rev.contains(want), "{want:?} in:\n{rev}");
    }
    let route = ok(&s, &["route", "describe", "hello"]);
    assert!(route.contains("   30%  hello-00001 #old\n        URL:  http://old-hello.default.localhost\n"), "{route}");
    let revs = ok(&s, &["revision", "list", "-s", "hello"]);
    assert_eq!(revs.lines().count(), 5, "a header and four revisions: {revs}");

    // Output formats.
    assert_eq!(ok(&s, &["service", "list", "-o", "name"]), "service.serving.knative.dev/hello\n");
    let names = ok(&s, &["get", "rev", "-o", "jsonpath={range .items[*]}{.metadata.name}{\"\\n\"}{end}"]);
    assert_eq!(names, "hello-00001\nhello-00002\nhello-00003\nhello-00004\n");
    let wide = ok(&s, &["get", "ksvc", "-o", "wide"]);
    let header = wide.lines().next().unwrap_or("");
    assert!(header.split_whitespace().rev().take(3).eq(["TRAFFIC", "IMAGE", "AGE"]), "{wide}");
    assert!(wide.contains("hello-00001#old=30%,hello-00004=70%"), "{wide}");
    let ready = ok(&s, &["get", "ksvc", "hello", "-o", "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}"]);
    assert_eq!(ready, "True");
    let (success, _, err) = run(&s, &["get", "ksvc", "-o", "jsonpath={.items[?(@.x<1)]}"]);
    assert!(!success && err.contains("at character 7: this filter is not supported"), "{err}");

    // logs SERVICE: the latest ready revision's log, every line prefixed.
    let log = ok(&s, &["logs", "hello"]);
    assert!(log.contains("[hello-00004] [sluice] ") && log.contains(" instance "), "{log}");
    assert!(log.lines().all(|l| l.starts_with("[hello-00004] ")), "{log}");

    // delete -f deletes what the file names; a second time it is not found (unless ignored).
    let out = ok(&s, &["delete", "-f", file.to_str().expect("utf8")]);
    assert_eq!(out, "service.serving.knative.dev \"hello\" deleted\n");
    let (success, _, err) = run(&s, &["delete", "-f", file.to_str().expect("utf8")]);
    assert!(!success && err.contains("not found"), "{err}");
    ok(&s, &["delete", "-f", file.to_str().expect("utf8"), "--ignore-not-found"]);
    assert_eq!(ok(&s, &["service", "list"]), "No resources found.\n");
}

#[test]
fn waiting_for_a_service_whose_image_cannot_run_fails_with_the_reason() {
    let s = Sluice::start(BIN).expect("start sluice");
    let (success, out, err) = run(&s, &["service", "create", "broken", "--image", "example.com/nope:1"]);
    assert!(!success, "a failed revision fails the command:\n{out}{err}");
    assert!(out.starts_with("Creating service 'broken' in namespace 'default':\n"), "{out}");
    assert!(
        err.contains("service 'broken' failed: RevisionFailed:")
            && err.contains("example.com/nope:1")
            && err.contains("(revision broken-00001: ContainerMissing)"),
        "{err}"
    );
    // Without waiting, the write alone succeeds.
    let out = ok(&s, &["service", "update", "broken", "--image", "example.com/nope:2", "--no-wait"]);
    assert_eq!(out, "Service 'broken' updated in namespace 'default'.\n");
    // A short --wait-timeout on a revision that keeps starting is a timeout naming the state.
    let (success, _, err) =
        run(&s, &["service", "create", "slow", "--image", IMAGE, "--scale-min", "1", "--wait-timeout", "0"]);
    assert!(!success && err.contains("timeout: service 'slow' not ready after 0 s"), "{err}");
    // The broken generation's Ready turns False once its revision is found unable to run: a
    // moment after the write, later on a loaded machine.
    wait_for("the broken generation to fail", WAIT, || {
        ok(&s, &["service", "describe", "broken"]).contains("  !! Ready ").then_some(())
    })
    .unwrap_or_else(|e| panic!("{e}:\n{}", ok(&s, &["service", "describe", "broken"])));
    // Fixing the image: the wait sees the False of the broken generation pass and ends Ready.
    let out = ok(&s, &["service", "update", "broken", "--image", IMAGE]);
    assert!(out.contains("Service 'broken' updated to latest revision 'broken-00003' is available at URL:"), "{out}");
}

/// A child process killed when dropped (a failed assertion leaves none behind).
struct Reaped(std::process::Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_wait_outlives_a_restart_of_the_server() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let api = format!("127.0.0.1:{port}");
    let args = |extra: &[&str]| ["--api", api.as_str()].iter().chain(extra).map(|a| a.to_string()).collect();
    // First without controllers: the service is stored but never becomes Ready.
    let opts = SluiceOptions { args: args(&["--no-controllers"]), ..Default::default() };
    let mut first = Sluice::start_with(BIN, opts).expect("start sluice");
    let state_dir = first.state_dir.clone();
    let _keep = first.keep_state_dir();
    let child = first
        .command(BIN)
        .args(["service", "create", "r", "--image", IMAGE, "--wait-timeout", "60"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn create");
    let mut waiting = Reaped(child);
    wait_for("the service to be written", WAIT, || run(&first, &["get", "ksvc", "r"]).0.then_some(()))
        .expect("written");
    first.terminate(WAIT).expect("stop the first server");
    // The same address and state, now with controllers: the wait goes on to Ready.
    let opts = SluiceOptions { state_dir: Some(state_dir), args: args(&[]), ..Default::default() };
    let _second = Sluice::start_with(BIN, opts).expect("restart sluice");
    let (mut stdout, mut stderr) = (String::new(), String::new());
    use std::io::Read;
    waiting.0.stdout.take().expect("stdout").read_to_string(&mut stdout).expect("read");
    waiting.0.stderr.take().expect("stderr").read_to_string(&mut stderr).expect("read");
    let status = waiting.0.wait().expect("wait");
    assert!(status.success(), "{stdout}{stderr}");
    assert!(
        stdout.ends_with(
            "Service 'r' created to latest revision 'r-00001' is available at URL:\nhttp://r.default.localhost\n"
        ),
        "{stdout}"
    );
    assert!(!stderr.contains("ERROR"), "the client's own error log stays quiet: {stderr}");
}

#[test]
fn get_watch_prints_a_row_for_each_change() {
    let s = Sluice::start(BIN).expect("start sluice");
    // One service first, so the listing has a row to show before the watch begins.
    ok(&s, &["service", "create", "first", "--image", IMAGE, "--no-wait"]);
    let (rx, watch, reader) = watch_lines(&s, &["get", "ksvc", "-w"]);
    let deadline = std::time::Instant::now() + WAIT;
    let mut lines = Vec::new();
    let mut read_until = |until: &dyn Fn(&str) -> bool| read_lines(&rx, deadline, &mut lines, until);
    assert!(read_until(&|l| l.starts_with("first ")), "the listing");
    // Created after the listing: every change of it comes from the watch.
    ok(&s, &["service", "create", "watched", "--image", IMAGE, "--no-wait"]);
    let ready = read_until(&|l| l.starts_with("watched ") && l.contains(" True "));
    drop(watch);
    let _ = reader.join();
    assert!(ready, "a Ready row for the new service: {lines:#?}");
    assert!(lines[0].starts_with("NAME ") && lines[0].contains("LATESTREADY"), "the header first: {lines:#?}");
    assert_eq!(lines.iter().filter(|l| l.starts_with("NAME ")).count(), 1, "one header: {lines:#?}");
    let watched: Vec<&String> = lines.iter().filter(|l| l.starts_with("watched ")).collect();
    assert!(
        watched.len() >= 2 && !watched[0].contains(" True "),
        "a row when it was added (not yet Ready), and rows as it changed: {lines:#?}"
    );

    // -o wide: the wide columns on the listing and on every change (here, traffic moving).
    let (rx, watch, reader) = watch_lines(&s, &["get", "ksvc", "first", "-w", "-o", "wide"]);
    let mut lines = Vec::new();
    let mut read_until = |until: &dyn Fn(&str) -> bool| read_lines(&rx, deadline, &mut lines, until);
    assert!(read_until(&|l| l.starts_with("first ") && l.contains("first-00001=100%")), "the wide listing");
    ok(&s, &["service", "update", "first", "--env", "X=1", "--no-wait"]);
    assert!(read_until(&|l| l.starts_with("first ") && l.contains("first-00002=100%")), "a wide row after the change");
    drop(watch);
    let _ = reader.join();
    assert!(lines[0].split_whitespace().rev().take(3).eq(["TRAFFIC", "IMAGE", "AGE"]), "{lines:#?}");
}

type Lines = (mpsc::Receiver<String>, Reaped, std::thread::JoinHandle<()>);

/// Runs `args` and sends its stdout's lines to the receiver (the child reaped when dropped).
fn watch_lines(s: &Sluice, args: &[&str]) -> Lines {
    let child = s.command(BIN).args(args).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().expect("spawn");
    let mut child = Reaped(child);
    let stdout = child.0.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (rx, child, reader)
}

/// Receives lines into `lines` until one satisfies `until` (true) or the deadline (false).
fn read_lines(
    rx: &mpsc::Receiver<String>,
    deadline: std::time::Instant,
    lines: &mut Vec<String>,
    until: &dyn Fn(&str) -> bool,
) -> bool {
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                let done = until(&line);
                lines.push(line);
                if done {
                    return true;
                }
            }
            Err(_) => return false,
        }
    }
}

#[test]
fn on_a_terminal_the_progress_is_one_line_rewritten_in_place() {
    // util-linux `script` gives the command a pseudo-terminal.
    if std::process::Command::new("script").arg("--version").output().is_err() {
        eprintln!("skipped: no `script` to run the CLI on a pseudo-terminal");
        return;
    }
    let s = Sluice::start(BIN).expect("start sluice");
    let cmd = format!("{BIN} service create tty --image {IMAGE}");
    let out = s.command("script").args(["-qec", &cmd, "/dev/null"]).output().expect("script");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("\r\x1b[K") && text.contains("Ready to serve."), "{text:?}");
    let progress = text.split("\r\x1b[K").count() - 1;
    assert!(progress >= 2, "the line is rewritten for each new state: {text:?}");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "header, one progress line, and the two lines of the result: {text:?}");
}

#[test]
fn completion_scripts_complete_subcommands_and_flags() {
    let script = std::process::Command::new(BIN).args(["completion", "bash"]).output().expect("completion");
    assert!(script.status.success());
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("sluice.bash");
    std::fs::write(&file, &script.stdout).expect("write");
    // Complete `sluice ser` and `sluice service create x --im` with the script in a real bash.
    let probe = format!(
        "source {}; COMP_WORDS=(sluice ser); COMP_CWORD=1; _sluice; echo \"${{COMPREPLY[*]}}\"; \
         COMP_WORDS=(sluice service create x --im); COMP_CWORD=4; _sluice; echo \"${{COMPREPLY[*]}}\"",
        file.display()
    );
    let out = std::process::Command::new("bash").args(["-c", &probe]).output().expect("bash");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "serve service\n--image\n", "{out:?}");
    for (shell, want) in [("zsh", "bashcompinit"), ("fish", "complete -c sluice")] {
        let out = std::process::Command::new(BIN).args(["completion", shell]).output().expect("completion");
        assert!(out.status.success() && String::from_utf8_lossy(&out.stdout).contains(want), "{shell}");
    }
}
