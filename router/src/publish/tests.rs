use std::net::SocketAddr;
use std::time::Duration;

use super::*;
use crate::endpoints::Instance;
use crate::table::{HeaderMatch, Protocol, RuleConfig, TagConfig, Target, ValueMatch};

fn publisher() -> Publisher {
    Publisher::new(Arc::new(ArcSwap::from_pointee(RoutingTable::default())), Endpoints::new())
}

fn spec(revision: &str) -> RouteSpec {
    RouteConfig {
        namespace: "default".into(),
        name: "hello".into(),
        hosts: vec!["hello.default".into()],
        traffic: vec![(100, target(revision))],
        ..RouteConfig::default()
    }
}

fn target(revision: &str) -> Target<RevisionKey> {
    Target {
        revision: RevisionKey::new("default", revision),
        timeout: Duration::from_secs(300),
        response_start: None,
        idle: None,
        protocol: Protocol::Http1,
    }
}

/// The revision `hello.default` reaches now, if any.
fn reached(p: &Publisher) -> Option<Arc<crate::endpoints::RevisionEndpoints>> {
    p.table().load().target("hello.default", None, 0).map(|t| t.revision.clone())
}

#[test]
fn a_route_deleted_while_reconciling_is_not_programmed_again() {
    let publisher = publisher();
    publisher.set_route("a", spec("hello-00001"));
    assert_eq!(publisher.live_uids(), ["a"]);
    publisher.remove_route("default", "hello", "a");
    assert!(publisher.live_uids().is_empty());
    assert!(reached(&publisher).is_none(), "the table no longer serves it");
    // The reconcile that read the route before its deletion finishes late.
    publisher.set_route("a", spec("hello-00001"));
    assert!(publisher.live_uids().is_empty(), "a deleted route stays unpublished");
    // A new route under the same name is another object.
    publisher.set_route("b", spec("hello-00001"));
    assert_eq!(publisher.live_uids(), ["b"]);
    // The old route's deletion, seen late, does not take the new one down.
    publisher.remove_route("default", "hello", "a");
    assert_eq!(publisher.live_uids(), ["b"]);
}

#[test]
fn any_changed_field_is_published_and_an_unchanged_route_is_not() {
    let publisher = publisher();
    publisher.set_route("a", spec("hello-00001"));
    let first = publisher.table().load_full();
    publisher.set_route("a", spec("hello-00001"));
    assert!(Arc::ptr_eq(&first, &publisher.table().load_full()), "the same spec is not republished");

    // Every kind of change reaches the table, whichever field it is in.
    let mut changes: Vec<RouteSpec> = Vec::new();
    let mut s = spec("hello-00001");
    s.traffic[0].1.timeout = Duration::from_secs(5);
    changes.push(s.clone());
    s.traffic[0].1.protocol = Protocol::H2c;
    changes.push(s.clone());
    s.hosts.push("hello.default.svc".into());
    changes.push(s.clone());
    s.tags.push(TagConfig { tag: "v1".into(), hosts: vec!["v1-hello.default".into()], target: target("hello-00001") });
    changes.push(s.clone());
    s.traffic = vec![(50, target("hello-00001")), (50, target("hello-00002"))];
    changes.push(s);
    for change in changes {
        let before = publisher.table().load_full();
        publisher.set_route("a", change.clone());
        assert!(!Arc::ptr_eq(&before, &publisher.table().load_full()), "not republished: {change:?}");
    }
    let table = publisher.table().load_full();
    let t = table.target("hello.default", None, 99).expect("target");
    assert_eq!(t.revision.key.name, "hello-00002");
}

#[test]
fn a_forgotten_revision_is_routed_to_its_new_endpoints() {
    let publisher = publisher();
    publisher.set_route("a", spec("hello-00001"));
    let old = reached(&publisher).expect("routed");
    assert!(Arc::ptr_eq(&old, &publisher.endpoints.revision(&RevisionKey::new("default", "hello-00001"))));
    old.add(Instance::new(1, SocketAddr::from(([127, 0, 0, 1], 1))));

    // The revision is deleted and created again under the same name: the runtime registers the
    // new instances in the registry's new endpoints, and the table must point there.
    publisher.forget_revision(&RevisionKey::new("default", "hello-00001"));
    let new = reached(&publisher).expect("still routed");
    assert!(!Arc::ptr_eq(&old, &new), "the table moved off the deleted revision's endpoints");
    assert!(Arc::ptr_eq(&new, &publisher.endpoints.revision(&RevisionKey::new("default", "hello-00001"))));
    assert_eq!(new.ready_count(), 0);
}

#[test]
fn a_host_claimed_by_two_routes_is_served_by_the_first_only() {
    let publisher = publisher();
    let mut other = spec("other-00001");
    other.name = "other".into();
    other.hosts = vec!["hello.default".into(), "other.default".into()];
    publisher.set_route("a", spec("hello-00001"));
    publisher.set_route("b", other);
    let table = publisher.table().load_full();
    assert_eq!(table.target("hello.default", None, 0).map(|t| t.revision.key.name.as_str()), Some("hello-00001"));
    assert!(table.target("other.default", None, 0).is_none(), "the second route is left out whole");
}

#[test]
fn the_tag_header_feature_rebuilds_the_table() {
    let publisher = publisher();
    let mut s = spec("hello-00001");
    s.tags.push(TagConfig { tag: "v2".into(), hosts: vec!["v2-hello.default".into()], target: target("hello-00002") });
    publisher.set_route("a", s);
    let via_header =
        |p: &Publisher| p.table().load().target("hello.default", Some("v2"), 0).map(|t| t.revision.key.name.clone());
    assert_eq!(via_header(&publisher).as_deref(), Some("hello-00001"));
    publisher.set_tag_header_routing(true);
    assert_eq!(via_header(&publisher).as_deref(), Some("hello-00002"));
    publisher.set_tag_header_routing(false);
    assert_eq!(via_header(&publisher).as_deref(), Some("hello-00001"));
}

#[test]
fn the_http_protocol_is_published_and_kept_across_route_changes() {
    let publisher = publisher();
    assert_eq!(publisher.table().load().http_protocol(), HttpProtocol::Enabled);
    publisher.set_http_protocol(HttpProtocol::Redirected);
    assert_eq!(publisher.table().load().http_protocol(), HttpProtocol::Redirected);
    publisher.set_route("a", spec("hello-00001"));
    assert_eq!(publisher.table().load().http_protocol(), HttpProtocol::Redirected, "a route edit keeps it");
    publisher.set_http_protocol(HttpProtocol::Enabled);
    assert_eq!(publisher.table().load().http_protocol(), HttpProtocol::Enabled);
}

#[test]
fn a_host_stays_with_the_route_programmed_first_whatever_the_names() {
    let publisher = publisher();
    // Route `b-a` serves `b-a.default`; then route `a` comes with tag `b`, whose host is the
    // same. `a` sorts first by name, but `b-a` was there first and keeps its URL.
    let mut first = spec("b-a-00001");
    first.name = "b-a".into();
    first.hosts = vec!["b-a.default".into()];
    let mut second = spec("a-00001");
    second.name = "a".into();
    second.hosts = vec!["a.default".into()];
    second.tags.push(TagConfig { tag: "b".into(), hosts: vec!["b-a.default".into()], target: target("a-00002") });
    publisher.set_route("uid-b-a", first.clone());
    publisher.set_route("uid-a", second.clone());
    let name_at =
        |p: &Publisher, host: &str| p.table().load().target(host, None, 0).map(|t| t.revision.key.name.clone());
    assert_eq!(name_at(&publisher, "b-a.default").as_deref(), Some("b-a-00001"));
    assert_eq!(name_at(&publisher, "a.default"), None, "the second route is left out whole");

    // An edit of the first keeps its place; once it is deleted, the second is published.
    first.traffic[0].1.timeout = Duration::from_secs(9);
    publisher.set_route("uid-b-a", first);
    assert_eq!(name_at(&publisher, "b-a.default").as_deref(), Some("b-a-00001"));
    publisher.remove_route("default", "b-a", "uid-b-a");
    assert_eq!(name_at(&publisher, "b-a.default").as_deref(), Some("a-00002"));
    assert_eq!(name_at(&publisher, "a.default").as_deref(), Some("a-00001"));
}

#[test]
fn a_route_the_table_refuses_is_left_out_and_the_others_still_published() {
    let publisher = publisher();
    let mut bad = spec("bad-00001");
    bad.name = "bad".into();
    bad.hosts = vec!["bad.default".into()];
    // Valid as the API checks it, but the router's regex size limit refuses it.
    let huge = ValueMatch::Regex(r"(?:\w{100}){100}".into());
    bad.rules.push(RuleConfig {
        name: None,
        headers: vec![HeaderMatch { name: "x".into(), value: huge }],
        path: None,
        traffic: vec![(100, target("bad-00001"))],
    });
    publisher.set_route("uid-bad", bad.clone());
    publisher.set_route("uid-a", spec("hello-00001"));
    let name_at =
        |p: &Publisher, host: &str| p.table().load().target(host, None, 0).map(|t| t.revision.key.name.clone());
    assert_eq!(name_at(&publisher, "hello.default").as_deref(), Some("hello-00001"), "the good route is served");
    assert_eq!(name_at(&publisher, "bad.default"), None, "the refused route is left out whole");
    publisher.set_route("uid-a", spec("hello-00002"));
    assert_eq!(name_at(&publisher, "hello.default").as_deref(), Some("hello-00002"), "and its edits published");

    bad.rules[0].headers[0].value = ValueMatch::Regex(r"\w+".into());
    publisher.set_route("uid-bad", bad);
    assert_eq!(name_at(&publisher, "bad.default").as_deref(), Some("bad-00001"), "published once fixed");
}
