use std::time::Duration;

use tokio::io::AsyncReadExt;

use super::*;

fn request(host: &str, path: &str) -> Request<()> {
    Request::get(path).header("host", host).body(()).expect("request")
}

#[tokio::test]
async fn every_entry_is_one_json_line_and_a_full_queue_drops_and_counts() {
    let (out, mut read) = tokio::io::duplex(1 << 20);
    let (log, writer) = AccessLog::with_capacity(out, 2);
    for path in ["/a", "/b?q=%22x%22&r=2", "/c"] {
        let mut req = request("hello.default.localhost", path);
        let mut entry = log.begin(&mut req);
        entry.status = Some(200);
        entry.sent(5);
        req.extensions().get::<BytesIn>().expect("counter in the request").add(3);
    }
    assert_eq!(log.dropped(), 1, "the third line found the queue of two full");
    let mut req = request("x", "/");
    drop(log.begin(&mut req));
    assert_eq!(log.dropped(), 2);
    let stop = CancellationToken::new();
    stop.cancel();
    writer.run(stop).await;
    let mut text = String::new();
    tokio::time::timeout(Duration::from_secs(5), read.read_to_string(&mut text)).await.expect("ends").expect("read");
    let lines: Vec<serde_json::Value> =
        text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert_eq!(lines[1]["path"], "/b?q=%22x%22&r=2");
    for (k, v) in [("status", 200), ("bytes_in", 3), ("bytes_out", 5)] {
        assert_eq!(lines[0][k], v, "{k}: {text}");
    }
    assert_eq!((&lines[0]["method"], &lines[0]["protocol"]), (&"GET".into(), &"HTTP/1.1".into()));
    assert_eq!(lines[0]["host"], "hello.default.localhost");
    for k in ["revision", "instance", "rule", "tag", "trace_id", "reason"] {
        assert!(lines[0][k].is_null(), "{k}: {text}");
    }
}

#[tokio::test]
async fn an_entry_dropped_before_any_response_says_the_client_went_away() {
    let (out, mut read) = tokio::io::duplex(1 << 16);
    let (log, writer) = AccessLog::new(out);
    let mut req = request("hello", &format!("/{}", "p".repeat(3000)));
    drop(log.begin(&mut req));
    drop(log);
    writer.run(CancellationToken::new()).await;
    let mut text = String::new();
    read.read_to_string(&mut text).await.expect("read");
    let line: serde_json::Value = serde_json::from_str(text.trim_end()).expect("json");
    assert!(line["status"].is_null());
    assert_eq!(line["reason"], "the client went away before the response");
    assert_eq!(line["path"].as_str().map(str::len), Some(line::MAX_PATH), "cut");
}
