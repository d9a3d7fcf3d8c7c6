//! Header and path rules (`spec.rules`, Sluice's extension of Knative's Route and Service)
//! through the real binary: the user-agent canary, header `exact`, `prefix`, `present` (and
//! absent), path `prefix` and `exact`, rule order, a rule's own split, a revision named only in
//! a rule kept running, the order of the tag host, `Knative-Serving-Tag` and rules; rule edits
//! under load with nothing but 200s; the CloudEvents example; and every validation error over
//! the REST API and through `kubectl apply`, naming its field.

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use http::{Method, StatusCode};
use serde_json::{Value, json};
use sluice_test_support::http::Client;
use sluice_test_support::{Sluice, apply, kubectl, until};

const BIN: &str = env!("CARGO_BIN_EXE_sluice");
const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const WAIT: Duration = Duration::from_secs(60);
const HOST: &str = "shop.default.localhost";
const SERVICE: &str = "/apis/serving.knative.dev/v1/namespaces/default/services/shop";
const IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148";
const IPAD: &str = "Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148";
const DESKTOP: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";
const STABLE: &str = "Hello stable!\n";
const ALPHA: &str = "Hello alpha!\n";
const BETA: &str = "Hello beta!\n";

/// The `shop` Service with its template named `shop-{rev}` answering `Hello {rev}!`, and
/// `rest` (its traffic and rules, as YAML under `spec:`).
fn shop(rev: &str, rest: &str) -> String {
    format!(
        "apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: shop
spec:
  template:
    metadata:
      name: shop-{rev}
    spec:
      containers:
      - image: ghcr.io/knative/helloworld-go
        env:
        - name: TARGET
          value: {rev}
{rest}"
    )
}

/// Stable takes the default split; alpha is tagged at 0 %; beta is named only by rules.
const TRAFFIC: &str = "  traffic:
  - revisionName: shop-stable
    percent: 100
    tag: stable
  - revisionName: shop-alpha
    percent: 0
    tag: alpha
";

/// One rule per behaviour, in an order that matters.
const RULES: &str = r#"  rules:
  - name: iphone
    match:
      headers:
      - name: User-Agent
        regex: '.*\(iPhone;.*'
    traffic:
    - tag: alpha
      percent: 100
  - name: ipad-partial
    match:
      headers:
      - name: user-agent
        regex: 'iPad'
    traffic:
    - revisionName: shop-beta
      percent: 100
  - name: env-exact
    match:
      headers:
      - name: x-env
        exact: canary
    traffic:
    - revisionName: shop-beta
      percent: 100
  - name: cookie-prefix
    match:
      headers:
      - name: cookie
        prefix: group=b
    traffic:
    - revisionName: shop-beta
      percent: 100
  - name: debug-present
    match:
      headers:
      - name: x-debug
        present: true
    traffic:
    - tag: alpha
      percent: 100
  - name: order-first
    match:
      headers:
      - name: x-order
        exact: first
    traffic:
    - tag: alpha
      percent: 100
  - name: order-any
    match:
      headers:
      - name: x-order
        present: true
    traffic:
    - revisionName: shop-beta
      percent: 100
  - name: api-prefix
    match:
      path:
        prefix: /api/
    traffic:
    - revisionName: shop-beta
      percent: 100
  - name: private-exact-without-header
    match:
      headers:
      - name: x-internal
        present: false
      path:
        exact: /private
    traffic:
    - tag: alpha
      percent: 100
  - name: half
    match:
      headers:
      - name: x-split
        present: true
    traffic:
    - tag: alpha
      percent: 50
    - revisionName: shop-beta
      percent: 50
"#;

/// What a request is for, its path, its headers and the answer it must get.
type Case = (&'static str, &'static str, &'static [(&'static str, &'static str)], &'static str);

/// GET `path` on `host` through the router with `headers`: `"<status> <body>"` for a non-200,
/// the body for a 200.
async fn get(c: &Client, router: &str, host: &str, path: &str, headers: &[(&str, &str)]) -> String {
    let mut all = vec![("host", host)];
    all.extend_from_slice(headers);
    match c.get(&format!("http://{router}{path}"), &all).await {
        Ok(r) if r.status == StatusCode::OK => r.text(),
        Ok(r) => format!("{} {}", r.status.as_u16(), r.text()),
        Err(e) => format!("error {e}"),
    }
}

/// The service's `status.rules` once its Route has taken the current spec, ready, and they
/// satisfy `want`.
async fn assigned_rules(s: &Sluice, want: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let c = s.client();
    until("shop to be Ready with the rules wanted", WAIT, async || {
        let svc = c.get(&format!("{}{SERVICE}", s.api), &[]).await.ok()?.json();
        let ready =
            svc["status"]["conditions"].as_array()?.iter().any(|c| c["type"] == "Ready" && c["status"] == "True");
        let current = svc["status"]["observedGeneration"] == svc["metadata"]["generation"];
        let got = svc["status"]["rules"].as_array().cloned().unwrap_or_default();
        (ready && current && want(&got)).then_some(got)
    })
    .await
    .expect("the rules to be assigned")
}

/// Waits for revision `shop-beta`, named only by rules, to be labelled routed (`active`).
async fn beta_is_routed(s: &Sluice) {
    let c = s.client();
    let url = format!("{}/apis/serving.knative.dev/v1/namespaces/default/revisions/shop-beta", s.api);
    until("shop-beta to be labelled routed", WAIT, async || {
        let beta = c.get(&url, &[]).await.ok()?.json();
        (beta["metadata"]["labels"]["serving.knative.dev/routingState"] == "active").then_some(())
    })
    .await
    .expect("shop-beta routed");
}

/// Starts `shop` with revisions stable, alpha and beta, and the rules above.
async fn shop_with_rules(s: &Sluice, router: &str) {
    let c = Client::new();
    apply(BIN, s, &shop("stable", "")).expect("stable");
    until("stable to answer", WAIT, async || (get(&c, router, HOST, "/", &[]).await == STABLE).then_some(()))
        .await
        .expect("stable serves");
    apply(BIN, s, &shop("alpha", "  traffic:\n  - revisionName: shop-stable\n    percent: 100\n")).expect("alpha");
    apply(BIN, s, &shop("beta", &format!("{TRAFFIC}{RULES}"))).expect("beta and the rules");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_go_by_the_first_rule_that_matches_else_by_the_default_split() {
    let s = Sluice::start(BIN).expect("start sluice");
    let router = s.http.clone().expect("router");
    shop_with_rules(&s, &router).await;
    let rules = assigned_rules(&s, |r| r.len() == 10).await;
    // Each target resolved to a revision: a tag to the tag's, a name to itself.
    assert_eq!(rules[0]["name"], "iphone");
    assert_eq!(
        rules[0]["traffic"],
        json!([{"tag": "alpha", "revisionName": "shop-alpha", "latestRevision": false, "percent": 100}])
    );
    assert_eq!(rules[2]["traffic"], json!([{"revisionName": "shop-beta", "latestRevision": false, "percent": 100}]));
    assert_eq!(rules[0]["match"]["headers"][0]["name"], "User-Agent", "the match is copied");
    // Beta is named only by rules, and is labelled routed like any routed revision.
    beta_is_routed(&s).await;

    let c = Client::new();
    let cases: &[Case] = &[
        ("no rule matches", "/", &[("user-agent", DESKTOP)], STABLE),
        ("the user-agent regex", "/", &[("user-agent", IPHONE)], ALPHA),
        ("a regex matches the whole value, not a part", "/", &[("user-agent", IPAD)], STABLE),
        ("header exact", "/", &[("x-env", "canary")], BETA),
        ("header exact is exact", "/", &[("x-env", "canary2")], STABLE),
        ("header names are case-insensitive", "/", &[("X-ENV", "canary")], BETA),
        ("header prefix", "/", &[("cookie", "group=b; theme=dark")], BETA),
        ("header prefix is a prefix", "/", &[("cookie", "theme=dark; group=b")], STABLE),
        ("header present, any value", "/", &[("x-debug", "")], ALPHA),
        ("the first matching rule wins", "/", &[("x-order", "first")], ALPHA),
        ("a later rule when the first does not hold", "/", &[("x-order", "second")], BETA),
        ("an earlier rule wins over a later one", "/", &[("user-agent", IPHONE), ("x-env", "canary")], ALPHA),
        ("path prefix", "/api/orders", &[], BETA),
        ("path prefix, not a match", "/apis", &[], STABLE),
        ("the query is not part of the path", "/api/?x=1", &[], BETA),
        ("path exact with an absent header", "/private", &[], ALPHA),
        ("path exact is exact", "/private/x", &[], STABLE),
        ("an absent header must be absent", "/private", &[("x-internal", "1")], STABLE),
    ];
    for (what, path, headers, want) in cases {
        for _ in 0..3 {
            assert_eq!(get(&c, &router, HOST, path, headers).await, *want, "{what}: {path} {headers:?}");
        }
    }
    // A rule's own split: half and half, within a few requests over 200.
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for _ in 0..200 {
        *counts.entry(get(&c, &router, HOST, "/", &[("x-split", "1")]).await).or_default() += 1;
    }
    assert_eq!(counts.len(), 2, "{counts:?}");
    for body in [ALPHA, BETA] {
        let n = counts.get(body).copied().unwrap_or(0);
        assert!(n.abs_diff(100) <= 4, "{body}: {n} of 200: {counts:?}");
    }

    // Still routed after all that: nothing took it for unreferenced.
    beta_is_routed(&s).await;
    // And the route said what its rules now do.
    let events = format!("{}/api/v1/namespaces/default/events", s.api);
    let api = s.client();
    let moved = until("a RulesMoved event", WAIT, async || {
        let list = api.get(&events, &[]).await.ok()?.json();
        list["items"]
            .as_array()?
            .iter()
            .find(|e| e["reason"] == "RulesMoved" && e["involvedObject"]["kind"] == "Route")
            .cloned()
    })
    .await
    .expect("the event");
    let message = moved["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with("Rules now send iphone: 100% to shop-alpha; ipad-partial: 100% to shop-beta;"),
        "{message}"
    );
    assert!(message.ends_with("half: 50% to shop-alpha, 50% to shop-beta"), "{message}");

    // Knative's order: a tag host first, then the Knative-Serving-Tag header, then rules.
    let tag_host = "alpha-shop.default.localhost";
    assert_eq!(get(&c, &router, tag_host, "/", &[("x-env", "canary")]).await, ALPHA, "a tag host ignores rules");
    assert_eq!(get(&c, &router, "stable-shop.default.localhost", "/", &[("user-agent", IPHONE)]).await, STABLE);
    let features = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: config-features\n  namespace: knative-serving\ndata:\n  tag-header-based-routing: Enabled\n";
    apply(BIN, &s, features).expect("tag header routing on");
    let tagged = [("user-agent", IPHONE), ("knative-serving-tag", "stable")];
    until("the tag header to win over the rules", WAIT, async || {
        (get(&c, &router, HOST, "/", &tagged).await == STABLE).then_some(())
    })
    .await
    .expect("tag header routing");
    for _ in 0..5 {
        assert_eq!(get(&c, &router, HOST, "/", &tagged).await, STABLE, "the tag header names a known tag");
        let unknown = [("user-agent", IPHONE), ("knative-serving-tag", "nope")];
        assert_eq!(get(&c, &router, HOST, "/", &unknown).await, ALPHA, "an unknown tag: the rules decide");
        let beta = [("x-env", "canary"), ("knative-serving-tag", "alpha")];
        assert_eq!(get(&c, &router, HOST, "/", &beta).await, ALPHA);
    }
}

/// The rules as a variant of the set above for edit `n`: the iPhone rule's target and the
/// order of the two `x-order` rules change with each edit.
fn edited_rules(n: usize) -> String {
    let (iphone, other) = if n.is_multiple_of(2) {
        ("tag: alpha", "revisionName: shop-beta")
    } else {
        ("revisionName: shop-beta", "tag: alpha")
    };
    format!(
        "  rules:
  - name: iphone
    match:
      headers:
      - name: user-agent
        regex: '.*\\(iPhone;.*'
    traffic:
    - {iphone}
      percent: 100
  - name: env-exact-{n}
    match:
      headers:
      - name: x-env
        exact: canary
    traffic:
    - {other}
      percent: 100
"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_edited_under_load_answer_nothing_but_200() {
    let s = Sluice::start(BIN).expect("start sluice");
    let router = s.http.clone().expect("router");
    shop_with_rules(&s, &router).await;
    assign_and_check(&s, &router, 0).await;

    // Clients sending requests that rules pick, and plain ones, back to back.
    let stop = Arc::new(AtomicBool::new(false));
    let header_sets: [&[(&str, &str)]; 4] =
        [&[("user-agent", IPHONE)], &[("x-env", "canary")], &[("user-agent", DESKTOP)], &[]];
    let tasks: Vec<_> = header_sets
        .into_iter()
        .map(|headers| {
            let (stop, router) = (stop.clone(), router.clone());
            tokio::spawn(async move {
                let c = Client::new();
                let mut seen: BTreeMap<String, u64> = BTreeMap::new();
                while !stop.load(Ordering::Relaxed) {
                    *seen.entry(get(&c, &router, HOST, "/", headers).await).or_default() += 1;
                }
                seen
            })
        })
        .collect();
    for n in 1..=5 {
        assign_and_check(&s, &router, n).await;
    }
    stop.store(true, Ordering::Relaxed);
    let mut seen: BTreeMap<String, u64> = BTreeMap::new();
    for t in tasks {
        for (answer, n) in t.await.expect("a load task") {
            *seen.entry(answer).or_default() += n;
        }
    }
    let total: u64 = seen.values().sum();
    assert!(total > 200, "the load ran across the edits: {seen:?}");
    let answers: Vec<&str> = seen.keys().map(String::as_str).collect();
    for answer in &answers {
        assert!([STABLE, ALPHA, BETA].contains(answer), "only 200s from the three revisions: {seen:?}");
    }
}

/// Applies edit `n` of the rules, waits for it to be assigned, and checks it is what routes.
async fn assign_and_check(s: &Sluice, router: &str, n: usize) {
    apply(BIN, s, &shop("beta", &format!("{TRAFFIC}{}", edited_rules(n)))).expect("edit");
    let name = format!("env-exact-{n}");
    let rules = assigned_rules(s, |r| r.len() == 2 && r[1]["name"] == name.as_str()).await;
    assert_eq!(rules[1]["match"]["headers"][0]["exact"], "canary");
    let (iphone, env) = if n.is_multiple_of(2) { (ALPHA, BETA) } else { (BETA, ALPHA) };
    let c = Client::new();
    // The router is programmed before the status says so.
    assert_eq!(get(&c, router, HOST, "/", &[("user-agent", IPHONE)]).await, iphone, "edit {n}");
    assert_eq!(get(&c, router, HOST, "/", &[("x-env", "canary")]).await, env, "edit {n}");
    assert_eq!(get(&c, router, HOST, "/", &[("x-debug", "1")]).await, STABLE, "edit {n}: the old rule is gone");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cloudevents_example_dispatches_binary_mode_events_by_type() {
    let s = Sluice::start(BIN).expect("start sluice");
    let router = s.http.clone().expect("router");
    let manifest =
        std::fs::read_to_string(format!("{ROOT}/manifests/examples/cloudevents-by-type.yaml")).expect("the example");
    apply(BIN, &s, &manifest).expect("apply the example");
    let c = Client::new();
    let host = "orders.default.localhost";
    let event = |ty: &'static str| {
        let (c, router) = (c.clone(), router.clone());
        async move {
            let headers = [
                ("host", host),
                ("ce-specversion", "1.0"),
                ("ce-type", ty),
                ("ce-source", "/shop/checkout"),
                ("ce-id", "a-1"),
                ("content-type", "application/json"),
            ];
            match c.send(Method::POST, &format!("http://{router}/"), &headers, r#"{"order": 42}"#).await {
                Ok(r) => format!("{} {}", r.status.as_u16(), r.text()),
                Err(e) => format!("error {e}"),
            }
        }
    };
    until("the orders route to dispatch by type", WAIT, async || {
        (event("com.example.order.shipped").await == "200 Hello shipped events!\n").then_some(())
    })
    .await
    .expect("dispatch");
    for _ in 0..5 {
        assert_eq!(event("com.example.order.created").await, "200 Hello created events!\n");
        assert_eq!(event("com.example.order.shipped").await, "200 Hello shipped events!\n");
        assert_eq!(event("com.example.order.shipped.v2").await, "200 Hello shipped events!\n", "a prefix");
        assert_eq!(event("com.example.invoice.paid").await, "200 Hello other events!\n", "the default");
    }
    // A structured-mode event carries its type in the body: the rules do not see it.
    let structured = c
        .send(
            Method::POST,
            &format!("http://{router}/"),
            &[("host", host), ("content-type", "application/cloudevents+json")],
            r#"{"specversion": "1.0", "type": "com.example.order.created", "source": "/x", "id": "1"}"#,
        )
        .await
        .expect("structured");
    assert_eq!(structured.text(), "Hello other events!\n");
}

/// Rules (in a Route with tags `stable` and `alpha`) and the field path and message fragment
/// their refusal must show.
fn refusals() -> Vec<(Value, &'static str, &'static str)> {
    let to_alpha = json!([{"tag": "alpha", "percent": 100}]);
    let anywhere = json!({"path": {"prefix": "/"}});
    let header = |h: Value| json!([{"match": {"headers": [h]}, "traffic": to_alpha}]);
    let named = |name: &str| json!({"name": name, "match": anywhere, "traffic": to_alpha});
    let many_headers: Vec<Value> = (0..17).map(|i| json!({"name": format!("x-{i}"), "present": true})).collect();
    vec![
        (
            header(json!({"name": "user-agent", "regex": "(iPhone"})),
            "spec.rules[0].match.headers[0].regex",
            "regex parse error",
        ),
        (
            header(json!({"name": "user-agent", "regex": "\\w{2000}"})),
            "spec.rules[0].match.headers[0].regex",
            "exceeds size limit",
        ),
        (json!([{"match": {}, "traffic": to_alpha}]), "spec.rules[0].match", "empty match"),
        (header(json!({"name": "x"})), "spec.rules[0].match.headers[0].exact", "expected exactly one, got neither"),
        (
            header(json!({"name": "x", "exact": "a", "regex": "a"})),
            "spec.rules[0].match.headers[0].regex",
            "expected exactly one, got both",
        ),
        (
            json!([{"match": {"path": {"exact": "/a", "prefix": "/"}}, "traffic": to_alpha}]),
            "spec.rules[0].match.path.prefix",
            "expected exactly one, got both",
        ),
        (
            json!([{"match": {"path": {"prefix": "api"}}, "traffic": to_alpha}]),
            "spec.rules[0].match.path.prefix",
            "a path starts with '/'",
        ),
        (
            json!([{"match": anywhere, "traffic": [{"tag": "beta", "percent": 100}]}]),
            "spec.rules[0].traffic[0].tag",
            "a rule's target may name a tag of spec.traffic",
        ),
        (
            json!([{"match": anywhere, "traffic": [{"tag": "alpha", "percent": 60}]}]),
            "spec.rules[0].traffic",
            "Traffic targets sum to 60, want 100",
        ),
        (
            json!([{"match": anywhere, "traffic": [{"tag": "alpha", "revisionName": "x", "percent": 100}]}]),
            "spec.rules[0].traffic[0].revisionName",
            "must not set the field(s)",
        ),
        (json!([named("twice"), named("twice")]), "spec.rules[1].name", "Multiple definitions for \"twice\""),
        (json!([named("Not_DNS")]), "spec.rules[0].name", "not a DNS 1035 label"),
        (
            header(json!({"name": "user agent", "present": true})),
            "spec.rules[0].match.headers[0].name",
            "a header name is an HTTP token",
        ),
        (Value::Array(vec![named("a"); 65]), "spec.rules", "at most 64 rules are allowed, got 65"),
        (
            json!([{"match": {"headers": many_headers}, "traffic": to_alpha}]),
            "spec.rules[0].match.headers",
            "at most 16 header matches",
        ),
        (
            header(json!({"name": "x", "exact": "a".repeat(1025)})),
            "spec.rules[0].match.headers[0].exact",
            "longer than 1024 bytes",
        ),
    ]
}

fn route_with(name: &str, rules: &Value) -> Value {
    json!({
        "apiVersion": "serving.knative.dev/v1", "kind": "Route", "metadata": {"name": name, "namespace": "default"},
        "spec": {"traffic": [{"revisionName": "r-1", "percent": 100, "tag": "stable"},
                             {"revisionName": "r-2", "percent": 0, "tag": "alpha"}],
                 "rules": rules}
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rule_error_is_refused_over_rest_and_kubectl_naming_its_field() {
    let s = Sluice::start_api_only(BIN).expect("start sluice");
    let c = s.client();
    let url = format!("{}/apis/serving.knative.dev/v1/namespaces/default/routes", s.api);
    for (i, (rules, path, fragment)) in refusals().into_iter().enumerate() {
        let body = route_with(&format!("bad-{i}"), &rules).to_string();
        let r = c.send(Method::POST, &url, &[("content-type", "application/json")], body).await.expect("post");
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "case {i} ({path}): {}", r.text());
        let status = r.json();
        let message = status["message"].as_str().unwrap_or_default();
        assert!(message.contains(fragment) && message.contains(path), "case {i}: {path} {fragment:?} in {message}");
        let causes = status["details"]["causes"].as_array().cloned().unwrap_or_default();
        assert!(
            causes.iter().any(|c| c["field"] == path && c["message"].as_str().is_some_and(|m| m.contains(fragment))),
            "case {i}: a cause at {path}: {causes:?}"
        );
    }
    // A valid rule set is stored as written, with no warning.
    let good = route_with(
        "good",
        &json!([{"name": "ok", "match": {"headers": [{"name": "x", "present": true}]},
        "traffic": [{"tag": "alpha", "percent": 100}]}]),
    );
    let r = c
        .send(
            Method::POST,
            &format!("{url}?fieldValidation=Strict"),
            &[("content-type", "application/json")],
            good.to_string(),
        )
        .await
        .expect("post");
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    assert!(r.headers.get("warning").is_none(), "rules are honoured: {:?}", r.headers);
    assert_eq!(r.json()["spec"]["rules"], good["spec"]["rules"]);

    let Some(kubectl) = kubectl() else {
        eprintln!("skipping the kubectl half: kubectl is not installed");
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    for (i, (rules, path, fragment)) in refusals().into_iter().enumerate() {
        let file = dir.path().join(format!("bad-{i}.json"));
        std::fs::write(&file, route_with(&format!("bad-{i}"), &rules).to_string()).expect("write");
        let out = Command::new(&kubectl)
            .args(["apply", "-f"])
            .arg(&file)
            .env("KUBECONFIG", s.kubeconfig())
            .output()
            .expect("kubectl");
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(!out.status.success(), "case {i}: {text}");
        assert!(
            text.contains(path) && text.contains(fragment),
            "case {i}: kubectl shows {path} and {fragment:?}: {text}"
        );
    }
    // The schema knows the field: kubectl explains it.
    let out = Command::new(&kubectl)
        .args(["explain", "route.spec.rules.match.headers"])
        .env("KUBECONFIG", s.kubeconfig())
        .output()
        .expect("kubectl explain");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    for field in ["regex", "present", "prefix", "exact"] {
        assert!(text.contains(field), "{field} in {text}");
    }
    let out = Command::new(&kubectl)
        .args(["explain", "ksvc.spec.rules"])
        .env("KUBECONFIG", s.kubeconfig())
        .output()
        .expect("kubectl explain");
    assert!(String::from_utf8_lossy(&out.stdout).contains("traffic"), "{}", String::from_utf8_lossy(&out.stdout));
}
