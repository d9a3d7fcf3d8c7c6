//! The API server's watch limits over HTTP through the real binary: `timeoutSeconds` is parsed
//! strictly (400 on garbage, huge values clamped to a working watch); clients that never read
//! cost bounded memory and are closed while a reading watcher sees every event; watches beyond
//! `--max-watches` get 429.

use std::time::Duration;

use http::{Method, StatusCode};
use serde_json::{Value, json};
use sluice_test_support::http::Client;
use sluice_test_support::wire::{authorization, exchange, lines};
use sluice_test_support::{Sluice, SluiceOptions, until};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

const BIN: &str = env!("CARGO_BIN_EXE_sluice");
const CONFIGMAPS: &str = "/api/v1/namespaces/default/configmaps";

fn config_map(name: &str, value: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"k": value}})
}

/// Creates ConfigMap `name` holding `value`.
async fn create(c: &Client, s: &Sluice, name: &str, value: &str) {
    let res = c
        .send(
            Method::POST,
            &format!("{}{CONFIGMAPS}", s.api),
            &[("content-type", "application/json")],
            config_map(name, value).to_string(),
        )
        .await
        .expect("create");
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
}

fn authority(s: &Sluice) -> &str {
    s.api.trim_start_matches("http://")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_timeout_seconds_garbage_is_a_bad_request_and_huge_values_still_watch() {
    let s = Sluice::start_api_only(BIN).expect("start sluice");
    for bad in ["abc", "-1", "1.5"] {
        let req = format!(
            "GET {CONFIGMAPS}?watch=true&timeoutSeconds={bad} HTTP/1.1\r\nHost: x\r\n{}Connection: close\r\n\r\n",
            authorization(s.token())
        );
        let res = exchange(authority(&s), &req, Duration::from_secs(5)).await.expect("a complete answer, not a watch");
        assert!(res.status_line.starts_with("HTTP/1.1 400"), "{bad}: {}", res.status_line);
        let status: Value = serde_json::from_str(&res.body).expect("Status JSON");
        assert_eq!((&status["kind"], &status["reason"]), (&json!("Status"), &json!("BadRequest")), "{status}");
    }

    let c = s.client();
    for (i, huge) in ["9223372036854775807", "99999999999999999999999"].into_iter().enumerate() {
        let (status, mut events) = lines(
            &format!("{}{CONFIGMAPS}?watch=true&resourceVersion=0&timeoutSeconds={huge}", s.api),
            Some(s.token()),
        )
        .await
        .expect("watch");
        assert_eq!(status, StatusCode::OK);
        let name = format!("after-{i}");
        create(&c, &s, &name, "v").await;
        // The watch task is alive: it delivers the change (before the fix it panicked at once
        // computing its deadline, and the stream ended empty).
        let event = loop {
            let line = tokio::time::timeout(Duration::from_secs(10), events.recv())
                .await
                .unwrap_or_else(|_| panic!("no event within 10s on timeoutSeconds={huge}"))
                .unwrap_or_else(|| panic!("the watch with timeoutSeconds={huge} ended"));
            let e: Value = serde_json::from_str(&line).expect("event JSON");
            if e["object"]["metadata"]["name"] == json!(name) {
                break e;
            }
        };
        assert_eq!(event["type"], "ADDED", "{event}");
    }
    let version = c.get(&format!("{}/version", s.api), &[]).await.expect("the server still answers");
    assert_eq!(version.status, StatusCode::OK);
}

/// `VmRSS` and `VmHWM` (peak) of process `pid`, in MiB.
fn memory_mib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .unwrap_or_else(|| panic!("no {name} in /proc/{pid}/status"))
            / 1024
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// A watch from `rv` on a socket with a 4 KiB receive buffer that is never read.
async fn stalled_watch(s: &Sluice, rv: &str) -> TcpStream {
    let socket = TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("SO_RCVBUF");
    let mut stream = socket.connect(authority(s).parse().expect("addr")).await.expect("connect");
    let req = format!(
        "GET {CONFIGMAPS}?watch=true&resourceVersion={rv} HTTP/1.1\r\nHost: x\r\n{}\r\n",
        authorization(s.token())
    );
    stream.write_all(req.as_bytes()).await.expect("send watch");
    stream
}

/// Reads `stream` to its end; true when the server closed it within `deadline`.
async fn closed_within(stream: &mut TcpStream, deadline: Duration) -> bool {
    let mut buf = vec![0u8; 1 << 16];
    let drain = async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(deadline, drain).await.is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watchers_that_never_read_are_closed_and_memory_stays_bounded() {
    const STALLED: usize = 10;
    const WRITES: usize = 40;
    let s = Sluice::start_api_only(BIN).expect("start sluice");
    let pid = s.pid().expect("pid");
    let c = s.client();
    let big = "x".repeat(1_000_000);
    // One large write first, so what the store itself keeps for large objects is in the baseline.
    create(&c, &s, "warm-up", &big).await;
    let rv = c.get(&format!("{}{CONFIGMAPS}", s.api), &[]).await.expect("list").json()["metadata"]["resourceVersion"]
        .as_str()
        .expect("rv")
        .to_string();
    let (before, _) = memory_mib(pid);

    let mut stalled = Vec::new();
    for _ in 0..STALLED {
        stalled.push(stalled_watch(&s, &rv).await);
    }
    let (status, mut reader) =
        lines(&format!("{}{CONFIGMAPS}?watch=true&resourceVersion={rv}", s.api), Some(s.token()))
            .await
            .expect("reading watch");
    assert_eq!(status, StatusCode::OK);
    let mut seen = Vec::new();
    for i in 0..WRITES {
        create(&c, &s, &format!("big-{i}"), &format!("{i}{big}")).await;
        // The reading watcher keeps up as it goes (its own client buffers only so much).
        while let Ok(line) = reader.try_recv() {
            seen.push(line);
        }
    }
    let (_, peak) = memory_mib(pid);
    let growth = peak.saturating_sub(before);
    eprintln!("sluice RSS {before} MiB before the stalled watchers, peak {peak} MiB after {WRITES} large writes");
    // Unbounded, each stalled watcher held every event (~1 MB each): 10 x 40 MB on top.
    assert!(growth < 250, "RSS grew by {growth} MiB (from {before} MiB) with {STALLED} stalled watchers");

    // The server gives up on a stalled watch once its buffer has stayed full for the stall
    // timeout (5 s). Reading a stalled socket before then would make room and keep that watch
    // alive, so nothing is read until the log says every stalled watch was closed.
    let closed = until("every stalled watch closed by the server", Duration::from_secs(60), async || {
        (s.log_text().matches("watch client fell behind").count() >= STALLED).then_some(())
    })
    .await;
    if let Err(e) = closed {
        panic!("{e}:\n{}", s.log_text());
    }
    for (i, stream) in stalled.iter_mut().enumerate() {
        assert!(closed_within(stream, Duration::from_secs(20)).await, "stalled watch {i} was never closed");
    }
    while seen.len() < WRITES {
        let line = tokio::time::timeout(Duration::from_secs(10), reader.recv())
            .await
            .unwrap_or_else(|_| panic!("the reading watcher saw only {} of {WRITES} events", seen.len()))
            .expect("the reading watch ended");
        seen.push(line);
    }
    let names: Vec<String> = seen
        .iter()
        .map(|l| {
            let e: Value = serde_json::from_str(l).expect("event JSON");
            assert_eq!(e["type"], "ADDED", "{}", &l[..l.len().min(200)]);
            e["object"]["metadata"]["name"].as_str().expect("name").to_string()
        })
        .collect();
    assert_eq!(names, (0..WRITES).map(|i| format!("big-{i}")).collect::<Vec<_>>());
    let log = s.log_text();
    assert!(log.contains("fell behind"), "no log line about closing a slow watch:\n{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watches_beyond_the_cap_get_too_many_requests() {
    let opts = SluiceOptions {
        args: vec!["--no-controllers".into(), "--max-watches".into(), "3".into()],
        ..Default::default()
    };
    let s = Sluice::start_with(BIN, opts).expect("start sluice");
    let url = format!("{}{CONFIGMAPS}?watch=true", s.api);
    let mut open = Vec::new();
    // The third ends by itself after 5 s, giving its slot back.
    for query in ["", "", "&timeoutSeconds=5"] {
        let (status, rx) = lines(&format!("{url}{query}"), Some(s.token())).await.expect("watch");
        assert_eq!(status, StatusCode::OK);
        open.push(rx);
    }
    let c = s.client();
    let refused = c.get(&url, &[]).await.expect("fourth watch");
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS, "{}", refused.text());
    let status = refused.json();
    assert_eq!(
        (&status["kind"], &status["reason"], &status["code"]),
        (&json!("Status"), &json!("TooManyRequests"), &json!(429))
    );
    assert_eq!(refused.headers.get("retry-after").map(|v| v.as_bytes()), Some(&b"1"[..]));

    until("a watch slot freed by a watch that ended", Duration::from_secs(20), async || {
        let (status, rx) = lines(&url, Some(s.token())).await.ok()?;
        (status == StatusCode::OK).then_some(rx)
    })
    .await
    .expect("a new watch once one closed");
}
