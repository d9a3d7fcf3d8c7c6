//! The generator against a real hyper server on a loopback port: exact status counts, the
//! open loop's latency charged from the intended send time across a stall, connect errors,
//! h2c, and the warm-up left out.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::Full;
use hyper_util::rt::{TokioExecutor, TokioIo};

use super::*;
use crate::outcome::ErrorKind;
use crate::target::Protocol;

/// A hello server on its own thread and runtime; `answer(n)` says how request n (from 0) is
/// answered: its status and how long to wait first.
struct Server {
    addr: std::net::SocketAddr,
    seen: Arc<AtomicU64>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl Server {
    fn start(answer: impl Fn(u64) -> (u16, Duration) + Send + Sync + 'static) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("addr");
        let seen = Arc::new(AtomicU64::new(0));
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let (answer, counter) = (Arc::new(answer), seen.clone());
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                loop {
                    let stream = tokio::select! {
                        s = listener.accept() => match s { Ok((s, _)) => s, Err(_) => continue },
                        _ = &mut stopped => return,
                    };
                    let (answer, counter) = (answer.clone(), counter.clone());
                    let svc = hyper::service::service_fn(move |_req| {
                        let n = counter.fetch_add(1, Ordering::SeqCst);
                        let (status, delay) = answer(n);
                        async move {
                            if !delay.is_zero() {
                                tokio::time::sleep(delay).await;
                            }
                            let mut res = Response::new(Full::new(Bytes::from_static(b"hello\n")));
                            *res.status_mut() = StatusCode::from_u16(status).expect("status");
                            // Which of two backends "answered", for the tap.
                            let parity = if n % 2 == 0 { "even" } else { "odd" };
                            res.headers_mut().insert("k-revision", http::HeaderValue::from_static(parity));
                            Ok::<_, Infallible>(res)
                        }
                    });
                    tokio::spawn(async move {
                        let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                        let _ = builder.serve_connection(TokioIo::new(stream), svc).await;
                    });
                }
            });
        });
        Self { addr, seen, _stop: stop }
    }

    fn target(&self, protocol: Protocol) -> Target {
        Target::new("local", &format!("http://{}/", self.addr), Some("hello.test"), protocol).expect("target")
    }
}

fn spec(connections: usize, threads: usize, mode: Mode, stop: Stop) -> LoadSpec {
    LoadSpec { connections, threads, mode, stop, warmup: Duration::ZERO, ..LoadSpec::default() }
}

#[test]
fn every_status_is_counted_exactly() {
    // 7 in 10 answered 200, 2 answered 404, 1 answered 503.
    let server = Server::start(|n| {
        (
            match n % 10 {
                0..7 => 200,
                7 | 8 => 404,
                _ => 503,
            },
            Duration::ZERO,
        )
    });
    let o = run(&server.target(Protocol::Http1), &spec(4, 2, Mode::Closed, Stop::Requests(1000)), &[]).expect("run");
    assert_eq!(o.tally.statuses, BTreeMap::from([(200, 700), (404, 200), (503, 100)]));
    assert_eq!((o.tally.non_2xx(), o.tally.errors_total()), (300, 0));
    assert_eq!(server.seen.load(Ordering::SeqCst), 1000, "no request more than asked");
    assert_eq!(o.tally.latency.len(), 1000);
    assert!(o.rps() > 0.0 && !o.elapsed.is_zero());
}

#[test]
fn an_open_loop_charges_a_stall_to_every_request_it_delayed() {
    // Request 50 stalls 300 ms. At 200 req/s on one connection, the ~60 requests due during
    // the stall go late: measured from when they were due, a fifth of all requests are slow.
    let server = Server::start(|n| (200, if n == 50 { Duration::from_millis(300) } else { Duration::ZERO }));
    let target = server.target(Protocol::Http1);
    let open = run(&target, &spec(1, 1, Mode::Open { rate: 200.0 }, Stop::Duration(Duration::from_millis(1500))), &[])
        .expect("open run");
    let p = open.tally.latency.percentiles();
    let service = open.tally.service.percentiles();
    assert!(p.p90 >= 50_000.0, "the stall shows in the p90 from the intended time: {p:?}");
    assert!(p.max >= 250_000.0, "{p:?}");
    assert!(service.p90 < 50_000.0, "each request itself was fast: {service:?}");
    let sent = open.tally.responses();
    assert!((250..=305).contains(&sent), "the schedule held about 300 requests in 1.5 s: {sent}");
}

#[test]
fn a_refused_connection_is_counted_not_hidden() {
    let addr = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr");
    // The listener is dropped: nothing accepts there now.
    let target = Target::new("gone", &format!("http://{addr}/"), None, Protocol::Http1).expect("target");
    let o = run(&target, &spec(2, 1, Mode::Closed, Stop::Duration(Duration::from_millis(200))), &[]).expect("run");
    assert_eq!(o.tally.responses(), 0);
    assert!(o.tally.errors.get(&ErrorKind::Connect).is_some_and(|n| *n > 0), "{:?}", o.tally.errors);
}

#[test]
fn h2c_requests_are_answered_and_counted() {
    let server = Server::start(|_| (200, Duration::ZERO));
    let o = run(&server.target(Protocol::H2c), &spec(2, 1, Mode::Closed, Stop::Requests(300)), &[]).expect("run");
    assert_eq!(o.tally.statuses, BTreeMap::from([(200, 300)]));
}

#[test]
fn the_warm_up_is_left_out_and_the_generator_cpu_is_charged() {
    let server = Server::start(|_| (200, Duration::ZERO));
    let spec = LoadSpec { warmup: Duration::from_millis(200), ..spec(2, 1, Mode::Closed, Stop::Requests(200)) };
    let o = run(&server.target(Protocol::Http1), &spec, &[Watch::generator()]).expect("run");
    assert_eq!(o.tally.responses(), 200);
    assert!(server.seen.load(Ordering::SeqCst) > 200, "warm-up requests were sent but not counted");
    assert!(o.cpu_us_per_request.contains_key("generator"));
}

#[test]
fn a_tap_sees_every_response_with_its_class_over_both_protocols() {
    // Request n is answered with `K-Revision: even` or `odd` (n's parity), and 503 every fourth.
    let server = Server::start(|n| (if n % 4 == 0 { 503 } else { 200 }, Duration::ZERO));
    for protocol in [Protocol::Http1, Protocol::H2c] {
        let tap = Arc::new(tap::Tap::new("K-Revision", &["odd", "even"], 1000));
        let spec = LoadSpec { tap: Some(tap.clone()), ..spec(1, 1, Mode::Closed, Stop::Requests(200)) };
        let o = run(&server.target(protocol), &spec, &[]).expect("run");
        let seen = tap.drain();
        assert_eq!(seen.len() as u64, o.tally.responses(), "{protocol:?}");
        // One connection, one request at a time: the answers alternate.
        let classes: Vec<Option<u8>> = seen.iter().map(|s| s.class).collect();
        assert!(classes.iter().all(Option::is_some), "{protocol:?}: {:?}", &classes[..8]);
        assert!(classes.windows(2).all(|w| w[0] != w[1]), "{protocol:?}: {:?}", &classes[..8]);
        let unavailable = seen.iter().filter(|s| s.status == 503).count() as u64;
        assert_eq!(unavailable, o.tally.statuses[&503], "{protocol:?}");
        assert!(seen.iter().filter(|s| s.status == 503).all(|s| s.class == Some(1)), "503s are the even ones");
        assert!(seen.windows(2).all(|w| w[0].at <= w[1].at), "in completion order");
        assert_eq!(tap.dropped(), 0);
    }
}

#[test]
fn inconsistent_settings_are_refused_by_name() {
    let t = Target::new("x", "http://127.0.0.1:9/", None, Protocol::Http1).expect("target");
    for (s, needle) in [
        (spec(0, 1, Mode::Closed, Stop::Requests(1)), "--connections"),
        (spec(1, 2, Mode::Closed, Stop::Requests(1)), "--threads"),
        (spec(1, 1, Mode::Open { rate: 0.0 }, Stop::Requests(1)), "--rate"),
        (spec(1, 1, Mode::Closed, Stop::Requests(0)), "--requests"),
        (spec(1, 1, Mode::Closed, Stop::Duration(Duration::ZERO)), "--duration"),
    ] {
        let err = run(&t, &s, &[]).expect_err(needle).to_string();
        assert!(err.contains(needle), "{err}");
    }
}
