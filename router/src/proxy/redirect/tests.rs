use std::time::Duration;

use super::*;
use crate::endpoints::{RevisionEndpoints, RevisionKey};
use crate::table::{Protocol, RouteConfig, Target};

fn table(protocol: HttpProtocol) -> RoutingTable {
    let target = Target {
        revision: RevisionEndpoints::new(RevisionKey::new("default", "hello-00001")),
        timeout: Duration::from_secs(300),
        response_start: None,
        idle: None,
        protocol: Protocol::Http1,
    };
    let route = RouteConfig {
        namespace: "default".into(),
        name: "hello".into(),
        hosts: vec!["hello.default.example.com".into(), "hello.default".into()],
        traffic: vec![(100, target)],
        ..RouteConfig::default()
    };
    RoutingTable::new(vec![route]).expect("table").with_http_protocol(protocol)
}

fn request(host: &str, target: &str) -> Request<()> {
    Request::get(target).header("host", host).body(()).expect("request")
}

fn https(port: u16) -> Redirect {
    Redirect::new(Some(HttpsListener { port, domain: "Example.com".into() }))
}

#[test]
fn redirected_service_hosts_get_301_to_the_https_port_with_path_and_query() {
    let res = https(8443)
        .answer(&table(HttpProtocol::Redirected), &request("Hello.default.example.com:8080", "/a/b?x=1&y"))
        .expect("redirected");
    assert_eq!(res.status(), StatusCode::MOVED_PERMANENTLY);
    assert_eq!(res.headers()[LOCATION], "https://Hello.default.example.com:8443/a/b?x=1&y");
    let res = https(443)
        .answer(&table(HttpProtocol::Redirected), &request("hello.default.example.com", "/"))
        .expect("redirected");
    assert_eq!(res.headers()[LOCATION], "https://hello.default.example.com/", "443 is left out");
}

#[test]
fn cluster_local_and_unknown_hosts_are_never_redirected() {
    let t = table(HttpProtocol::Redirected);
    assert!(https(8443).answer(&t, &request("hello.default", "/")).is_none());
    assert!(https(8443).answer(&t, &request("nope.default.example.com", "/")).is_none());
}

#[test]
fn enabled_proxies_and_disabled_answers_404() {
    assert!(https(8443).answer(&table(HttpProtocol::Enabled), &request("hello.default.example.com", "/")).is_none());
    let res = https(8443)
        .answer(&table(HttpProtocol::Disabled), &request("hello.default.example.com", "/"))
        .expect("refused");
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
}

#[test]
fn a_routes_own_setting_wins_over_the_tables() {
    let with_route = |own: Option<HttpProtocol>, cluster| {
        let t = table(HttpProtocol::Enabled);
        let route = RouteConfig {
            namespace: "default".into(),
            name: "own".into(),
            hosts: vec!["own.default.example.com".into()],
            http_protocol: own,
            ..RouteConfig::default()
        };
        t.rebuild(vec![route]).expect("table").with_http_protocol(cluster)
    };
    let req = request("own.default.example.com", "/");
    let status = |t: &RoutingTable| https(8443).answer(t, &req).map(|r| r.status());
    assert_eq!(
        status(&with_route(Some(HttpProtocol::Redirected), HttpProtocol::Enabled)),
        Some(StatusCode::MOVED_PERMANENTLY)
    );
    assert_eq!(status(&with_route(Some(HttpProtocol::Enabled), HttpProtocol::Redirected)), None);
    assert_eq!(status(&with_route(None, HttpProtocol::Disabled)), Some(StatusCode::NOT_FOUND));
}

#[test]
fn without_an_https_listener_nothing_is_redirected() {
    let plain = Redirect::new(None);
    for protocol in [HttpProtocol::Redirected, HttpProtocol::Disabled] {
        assert!(plain.answer(&table(protocol), &request("hello.default.example.com", "/")).is_none());
    }
    assert!(plain.warned.load(Ordering::Relaxed), "the missing listener is logged");
}
