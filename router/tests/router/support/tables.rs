//! Building routing tables by hand.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sluice_router::endpoints::{Instance, RevisionEndpoints, RevisionKey};
use sluice_router::table::{Protocol, RouteConfig, RoutingTable, Target};

static NEXT_INSTANCE: AtomicU64 = AtomicU64::new(1);

/// Endpoints of `default/<name>` with one ready instance per address.
pub fn revision(name: &str, addrs: &[SocketAddr]) -> Arc<RevisionEndpoints> {
    let rev = RevisionEndpoints::new(RevisionKey::new("default", name));
    for addr in addrs {
        rev.add(Instance::new(NEXT_INSTANCE.fetch_add(1, Ordering::Relaxed), *addr));
    }
    rev
}

pub fn target(revision: &Arc<RevisionEndpoints>) -> Target {
    Target {
        revision: revision.clone(),
        timeout: Duration::from_secs(30),
        response_start: None,
        idle: None,
        protocol: Protocol::Http1,
    }
}

/// Route `default/<name>` on Knative's four default hosts.
pub fn route(name: &str, traffic: Vec<(u32, Target)>) -> RouteConfig {
    RouteConfig {
        namespace: "default".into(),
        name: name.into(),
        hosts: vec![
            format!("{name}.default.localhost"),
            format!("{name}.default"),
            format!("{name}.default.svc"),
            format!("{name}.default.svc.cluster.local"),
        ],
        traffic,
        ..RouteConfig::default()
    }
}

pub fn table(routes: Vec<RouteConfig>) -> RoutingTable {
    RoutingTable::new(routes).expect("valid table")
}

/// A table with `default/hello` sending everything to `revision`.
pub fn hello(revision: &Arc<RevisionEndpoints>) -> RoutingTable {
    table(vec![route("hello", vec![(100, target(revision))])])
}
