//! `sluice serve --otlp-endpoint`: with the `otlp` feature, a request proxied with a client's
//! `traceparent` becomes a span in that trace, POSTed (OTLP/HTTP, protobuf) to a real HTTP
//! receiver in this test; without the feature the flag is refused with a message saying so.

#[cfg(feature = "otlp")]
mod with_feature {
    use std::convert::Infallible;
    use std::time::Duration;

    use bytes::Bytes;
    use http::{Request, Response};
    use http_body_util::{BodyExt, Full};
    use hyper::body::Incoming;
    use hyper_util::rt::TokioIo;
    use sluice_test_support::traffic::Traffic;
    use sluice_test_support::{Sluice, SluiceOptions, apply};
    use tokio::net::TcpListener;
    use tokio::sync::mpsc;

    const BIN: &str = env!("CARGO_BIN_EXE_sluice");
    const WAIT: Duration = Duration::from_secs(60);
    const HOST: &str = "spans.default.localhost";
    const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
    const PARENT: &str = "00f067aa0ba902b7";

    const SERVICE: &str = "apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: spans
spec:
  template:
    spec:
      containers:
        - image: ghcr.io/knative/helloworld-go:latest
";

    /// A receiver answering every POST 200 (an empty export response), its paths and bodies
    /// sent on.
    async fn receiver() -> (String, mpsc::Receiver<(String, Bytes)>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (tx, rx) = mpsc::channel(64);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let tx = tx.clone();
                let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                    let tx = tx.clone();
                    async move {
                        let path = req.uri().path().to_string();
                        let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                        let _ = tx.send((path, body)).await;
                        let mut res = Response::new(Full::new(Bytes::new()));
                        res.headers_mut().insert("content-type", "application/x-protobuf".parse().expect("value"));
                        Ok::<_, Infallible>(res)
                    }
                });
                tokio::spawn(hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), svc));
            }
        });
        (format!("http://{addr}/v1/traces"), rx)
    }

    fn bytes(hex: &str) -> Vec<u8> {
        (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex")).collect()
    }

    fn contains(haystack: &[u8], needle: &[u8]) -> bool {
        haystack.windows(needle.len()).any(|w| w == needle)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_proxied_request_is_exported_as_a_span_of_the_clients_trace() {
        let (endpoint, mut bodies) = receiver().await;
        let args = vec!["--otlp-endpoint".to_string(), endpoint];
        let mut s = Sluice::start_with(BIN, SluiceOptions { args, ..Default::default() }).expect("start sluice");
        apply(BIN, &s, SERVICE).expect("apply");
        let traffic = Traffic::new(s.http.as_deref().expect("router"));
        traffic.wait_for(HOST, WAIT, |b| b == "Hello World!\n").await.expect("serves");
        let traceparent = format!("00-{TRACE}-{PARENT}-01");
        let url = format!("http://{}/headers", traffic.router);
        let res = s.client().get(&url, &[("host", HOST), ("traceparent", &traceparent)]).await.expect("GET");
        assert_eq!(res.status.as_u16(), 200);
        // The batch goes out within the processor's delay, or at the latest when serve stops.
        let status = s.terminate(WAIT).expect("stops");
        assert!(status.success(), "{status:?}");
        let (trace, parent) = (bytes(TRACE), bytes(PARENT));
        let mut seen = Vec::new();
        let found = tokio::time::timeout(WAIT, async {
            while let Some((path, body)) = bodies.recv().await {
                seen.push(path.clone());
                if path == "/v1/traces"
                    && contains(&body, &trace)
                    && contains(&body, &parent)
                    && contains(&body, b"proxy")
                {
                    return Some(body);
                }
            }
            None
        })
        .await;
        let body = found.ok().flatten().unwrap_or_else(|| panic!("no span of trace {TRACE} exported; POSTs: {seen:?}"));
        for attribute in [&b"http.response.status_code"[..], b"sluice.revision", b"default/spans-00001", b"sluice"] {
            assert!(contains(&body, attribute), "{:?} missing", String::from_utf8_lossy(attribute));
        }
    }
}

#[cfg(not(feature = "otlp"))]
#[test]
fn without_the_feature_the_flag_is_refused_saying_why() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["serve", "--api", "127.0.0.1:0", "--http", "127.0.0.1:0", "--metrics", "off"])
        .args(["--otlp-endpoint", "http://127.0.0.1:4318/v1/traces"])
        .env("SLUICE_STATE_DIR", tempfile::tempdir().expect("tempdir").path())
        .output()
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--otlp-endpoint") && err.contains("built without the `otlp` feature"), "{err}");
}
