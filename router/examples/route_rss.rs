//! The router's memory per route as the process pays it (resident set, glibc's malloc), to
//! check `tests/memory.rs`'s counted figure: programs N Knative Services' routes one by one
//! through the embedded router's [`Publisher`], as the controller does (four hosts and one
//! revision each, its owners named as the runtime names them), and prints the resident set
//! before and after.
//!
//! ```text
//! cargo run -p sluice-router --example route_rss -- 1000
//! ```
//!
//! (A debug build lays the structures out as a release build does; benches/RESULTS.md 11b
//! and 11c used one.)
//!
//! Each `set_route` rebuilds the whole table, as in the router, so N = 10,000 takes minutes.

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use sluice_router::endpoints::{Endpoints, Owners, RevisionKey};
use sluice_router::publish::{Publisher, RoutePublisher};
use sluice_router::table::{Protocol, RouteConfig, RoutingTable, Target};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: usize = std::env::args().nth(1).map_or(Ok(2_000), |a| a.parse())?;
    let endpoints = Endpoints::new();
    let publisher = Publisher::new(Arc::new(ArcSwap::from_pointee(RoutingTable::default())), endpoints.clone());
    // The base: one route programmed, so every lazily built piece of the path exists.
    program(&publisher, &endpoints, 0);
    let before = resident()?;
    for i in 1..=n {
        program(&publisher, &endpoints, i);
    }
    let after = resident()?;
    let routes = publisher.table().load().len() - 1;
    println!(
        "{routes} routes: resident set {} KiB -> {} KiB, {} bytes per route",
        before / 1024,
        after / 1024,
        (after - before) / routes as u64
    );
    Ok(())
}

/// The Service `svc-{i}`'s route and revision.
fn program(publisher: &Publisher, endpoints: &Endpoints, i: usize) {
    let name = format!("svc-{i}");
    let key = RevisionKey::new("default", format!("{name}-00001"));
    endpoints.revision(&key).owners().set(Owners { configuration: name.clone(), service: name.clone() });
    let spec = RouteConfig {
        namespace: "default".into(),
        hosts: vec![
            format!("{name}.default.localhost"),
            format!("{name}.default"),
            format!("{name}.default.svc"),
            format!("{name}.default.svc.cluster.local"),
        ],
        traffic: vec![(
            100,
            Target {
                revision: key,
                timeout: Duration::from_secs(300),
                response_start: None,
                idle: None,
                protocol: Protocol::Http1,
            },
        )],
        name,
        ..RouteConfig::default()
    };
    publisher.set_route(&format!("00000000-0000-4000-8000-{i:012}"), spec);
}

/// The process's resident set in bytes (`/proc/self/statm`, pages of 4 KiB).
fn resident() -> Result<u64, Box<dyn std::error::Error>> {
    let statm = std::fs::read_to_string("/proc/self/statm")?;
    let pages: u64 = statm.split_whitespace().nth(1).ok_or_else(|| format!("statm: {statm}"))?.parse()?;
    Ok(pages * 4096)
}
