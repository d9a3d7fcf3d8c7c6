use std::io;

use parking_lot::Mutex;

use super::*;

/// What the writer wrote, readable by the test.
#[derive(Clone, Default)]
struct Sink(Arc<Mutex<Vec<u8>>>);

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Sink {
    fn lines(&self) -> Vec<serde_json::Value> {
        let text = String::from_utf8(self.0.lock().clone()).expect("utf-8");
        text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect()
    }
}

fn request(host: &str, path: &str) -> Request<()> {
    Request::get(path).header("host", host).body(()).expect("request")
}

#[test]
fn every_entry_is_one_json_line_and_a_full_queue_drops_and_counts() {
    let sink = Sink::default();
    let (log, writer) = AccessLog::with_capacity(sink.clone(), 2);
    for path in ["/a", "/b?q=%22x%22&r=2", "/c"] {
        let mut req = request("hello.default.localhost", path);
        let mut entry = log.begin(&mut req);
        entry.record().expect("record").status = Some(200);
        entry.sent(5);
        req.extensions().get::<BytesIn>().expect("counter in the request").add(3);
    }
    assert_eq!(log.dropped(), 1, "the third line found the queue of two full");
    let mut req = request("x", "/");
    drop(log.begin(&mut req));
    assert_eq!(log.dropped(), 2);
    let stop = CancellationToken::new();
    stop.cancel();
    writer.run(&stop);
    let lines = sink.lines();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(lines[1]["path"], "/b?q=%22x%22&r=2");
    for (k, v) in [("status", 200), ("bytes_in", 3), ("bytes_out", 5)] {
        assert_eq!(lines[0][k], v, "{k}: {lines:?}");
    }
    assert_eq!((&lines[0]["method"], &lines[0]["protocol"]), (&"GET".into(), &"HTTP/1.1".into()));
    assert_eq!(lines[0]["host"], "hello.default.localhost");
    for k in ["revision", "instance", "rule", "tag", "trace_id", "reason"] {
        assert!(lines[0][k].is_null(), "{k}: {lines:?}");
    }
}

#[test]
fn an_entry_dropped_before_any_response_says_the_client_went_away() {
    let sink = Sink::default();
    let (log, writer) = AccessLog::new(sink.clone());
    let mut req = request("hello", &format!("/{}", "p".repeat(3000)));
    drop(log.begin(&mut req));
    drop(log);
    writer.run(&CancellationToken::new());
    let lines = sink.lines();
    assert_eq!(lines.len(), 1);
    assert!(lines[0]["status"].is_null());
    assert_eq!(lines[0]["reason"], "the client went away before the response");
    assert_eq!(lines[0]["path"].as_str().map(str::len), Some(line::MAX_PATH), "cut");
}
