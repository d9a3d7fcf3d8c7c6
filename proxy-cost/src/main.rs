//! The router's CPU per proxied request, for callgrind: three roles in separate processes so
//! only the router runs under valgrind.
//!
//! ```text
//! proxy_cost backend                 # prints its address; answers every request 200 "ok"
//! proxy_cost router BACKEND N [off]  # prints its address; exits after N responses
//!                                    # (`off`: no traceparent generation)
//! proxy_cost client ROUTER N         # N GETs, one after another, on one keep-alive connection
//! proxy_cost relay BACKEND           # prints its address; a byte relay (see below)
//! ```
//!
//! The router is the real one (`sluice_router::server::serve`, one route `bench.default` to
//! one instance at BACKEND, default config) on a current-thread runtime. Run it under
//! `valgrind --tool=callgrind` twice with different N: the difference in instructions over the
//! difference in N is the cost of one request, start-up and shutdown cancelled out
//! (`scripts/proxy-cost.sh` runs it). It is a crate of its own, not an example of
//! `sluice-router`, so that its tokio is the `sluice` binary's: see its Cargo.toml.
//!
//! `relay` is the floor any proxy on this kernel stands on: each client connection gets its own
//! connection to BACKEND and bytes are copied both ways as they come (tokio's
//! `copy_bidirectional`), with no parsing, routing, pool or admission. It makes the same four
//! system calls per request as the router and nginx, and next to no user-space work, so its
//! throughput against nginx's bounds what any proxy's could be here (`scripts/relay-floor.sh`).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use sluice_router::endpoints::{Instance, RevisionEndpoints, RevisionKey};
use sluice_router::table::{Protocol, RouteConfig, RoutingTable, Target};
use sluice_router::{Router, RouterConfig};

/// The allocator the `sluice` binary runs with.
#[global_allocator]
static ALLOCATOR: sluice_allocator::Allocator = sluice_allocator::Allocator;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

type Error = Box<dyn std::error::Error + Send + Sync>;

fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["backend"] => rt.block_on(backend()),
        ["router", backend, n] => rt.block_on(router(backend.parse()?, n.parse()?, true)),
        ["router", backend, n, "off"] => rt.block_on(router(backend.parse()?, n.parse()?, false)),
        ["client", router, n] => rt.block_on(client(router.parse()?, n.parse()?)),
        ["relay", backend] => rt.block_on(relay(backend.parse()?)),
        _ => Err("usage: proxy_cost backend | router BACKEND N [off] | client ROUTER N | relay BACKEND".into()),
    }
}

async fn backend() -> Result<(), Error> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    println!("{}", listener.local_addr()?);
    loop {
        let (stream, _) = listener.accept().await?;
        let svc = hyper::service::service_fn(|_req: Request<Incoming>| async {
            Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"ok\n"))))
        });
        tokio::spawn(hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), svc));
    }
}

async fn router(backend: SocketAddr, n: u64, generate_traceparent: bool) -> Result<(), Error> {
    let revision = RevisionEndpoints::new(RevisionKey::new("default", "bench-00001"));
    revision.add(Instance::new(1, backend));
    let target = Target {
        revision: revision.clone(),
        timeout: Duration::from_secs(30),
        response_start: None,
        idle: None,
        protocol: Protocol::Http1,
    };
    let route = RouteConfig {
        namespace: "default".into(),
        name: "bench".into(),
        hosts: vec!["bench.default".into()],
        traffic: vec![(100, target)],
        ..RouteConfig::default()
    };
    let table = Arc::new(ArcSwap::from_pointee(RoutingTable::new(vec![route])?));
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    println!("{}", listener.local_addr()?);
    let stop = CancellationToken::new();
    // LANE=off sends every request through hyper's server (for before/after figures).
    let fast_lane = std::env::var("LANE").map_or(true, |v| v != "off");
    let router = Router::new(table, RouterConfig { generate_traceparent, fast_lane, ..RouterConfig::default() });
    let serve = tokio::spawn(sluice_router::server::serve(listener, router, stop.clone(), Duration::from_secs(1)));
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    while revision.requests() < n {
        tick.tick().await;
    }
    stop.cancel();
    serve.await?;
    Ok(())
}

async fn relay(backend: SocketAddr) -> Result<(), Error> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    println!("{}", listener.local_addr()?);
    loop {
        let (mut client, _) = listener.accept().await?;
        client.set_nodelay(true)?;
        tokio::spawn(async move {
            let mut upstream = TcpStream::connect(backend).await?;
            upstream.set_nodelay(true)?;
            tokio::io::copy_bidirectional(&mut client, &mut upstream).await?;
            Ok::<_, std::io::Error>(())
        });
    }
}

async fn client(router: SocketAddr, n: u64) -> Result<(), Error> {
    let (mut send, conn) =
        hyper::client::conn::http1::handshake(TokioIo::new(TcpStream::connect(router).await?)).await?;
    tokio::spawn(conn);
    for _ in 0..n {
        let req = Request::get("/").header("host", "bench.default").body(Empty::<Bytes>::new())?;
        let res = send.send_request(req).await?;
        if !res.status().is_success() {
            return Err(format!("router answered {}", res.status()).into());
        }
        res.into_body().collect().await?;
    }
    Ok(())
}
