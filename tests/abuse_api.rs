//! The API server under abusive input, through the real binary: bodies built to make it work
//! far more than their size are refused at once, and the server keeps answering.

use http::{Method, StatusCode};
use serde_json::json;
use sluice_test_support::Sluice;

const BIN: &str = env!("CARGO_BIN_EXE_sluice");
const CONFIGMAPS: &str = "/api/v1/namespaces/default/configmaps";

/// A ConfigMap whose data is a YAML alias bomb: nine levels of nine aliases, about 500 bytes
/// naming 9^9 strings.
fn alias_bomb() -> String {
    let mut doc = String::from("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: bomb}\nx:\n");
    doc.push_str("  a0: &a0 [x, x, x, x, x, x, x, x, x]\n");
    for i in 1..9 {
        let prev = format!("*a{}", i - 1);
        doc.push_str(&format!("  a{i}: &a{i} [{}]\n", [prev.as_str(); 9].join(", ")));
    }
    doc
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_yaml_alias_bomb_is_refused_and_stores_nothing() {
    let s = Sluice::start_api_only(BIN).expect("start sluice");
    let c = s.client();
    let url = format!("{}{CONFIGMAPS}", s.api);
    let bomb = alias_bomb();
    assert!(bomb.len() < 700, "{} bytes", bomb.len());
    // Several at once, as the attack sent them; each is answered 400 naming the budget.
    let attempts = (0..8).map(|_| c.send(Method::POST, &url, &[("content-type", "application/yaml")], bomb.clone()));
    for res in futures::future::join_all(attempts).await {
        let res = res.expect("answered");
        assert_eq!(res.status, StatusCode::BAD_REQUEST, "{}", res.text());
        let status = res.json();
        assert_eq!(status["kind"], "Status");
        let message = status["message"].as_str().unwrap_or_default();
        assert!(message.starts_with("the request body is not valid YAML: "), "{message}");
        assert!(message.contains("budget breached"), "{message}");
    }
    let list = c.get(&url, &[]).await.expect("list").json();
    assert_eq!(list["items"], json!([]), "nothing stored");
    // An ordinary YAML write still works.
    let ok = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: fine}\ndata: {k: &v v, j: *v}\n";
    let res =
        c.send(Method::POST, &url, &[("content-type", "application/yaml")], ok.to_string()).await.expect("create");
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
    assert_eq!(res.json()["data"], json!({"k": "v", "j": "v"}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_namespace_in_the_path_that_no_namespace_could_have_is_not_found() {
    let s = Sluice::start_api_only(BIN).expect("start sluice");
    let c = s.client();
    let body = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "m"}, "data": {"k": "v"}});
    let long = "a".repeat(70);
    for (in_path, named) in [
        ("%2E%2E", ".."),
        ("..%2F..%2Ftmp", "../../tmp"),
        ("a%2Fb", "a/b"),
        ("UPPER", "UPPER"),
        (long.as_str(), long.as_str()),
        ("-dash", "-dash"),
    ] {
        let url = format!("{}/api/v1/namespaces/{in_path}/configmaps", s.api);
        let res =
            c.send(Method::POST, &url, &[("content-type", "application/json")], body.to_string()).await.expect("post");
        assert_eq!(res.status, StatusCode::NOT_FOUND, "{named}: {}", res.text());
        let status = res.json();
        assert_eq!(status["message"], format!("namespaces {named:?} not found"), "{status}");
        assert_eq!(status["reason"], "NotFound");
        let listed = c.get(&url, &[]).await.expect("list");
        assert_eq!(listed.status, StatusCode::NOT_FOUND, "{named}");
    }
    // Nothing was stored anywhere.
    let all = c.get(&format!("{}/api/v1/configmaps", s.api), &[]).await.expect("list all").json();
    assert_eq!(all["items"], json!([]));
    // A proper name of a namespace that does not exist is not found either, as in Kubernetes;
    // once the namespace is created, the same write succeeds.
    let url = format!("{}/api/v1/namespaces/team-a/configmaps", s.api);
    let post = async |url: &str, body: String| {
        c.send(Method::POST, url, &[("content-type", "application/json")], body).await.expect("post")
    };
    let res = post(&url, body.to_string()).await;
    assert_eq!(res.status, StatusCode::NOT_FOUND, "{}", res.text());
    assert_eq!(res.json()["message"], "namespaces \"team-a\" not found");
    let namespaces = format!("{}/api/v1/namespaces", s.api);
    let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a"}});
    assert_eq!(post(&namespaces, ns.to_string()).await.status, StatusCode::CREATED);
    let res = post(&url, body.to_string()).await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
    // `default` and `knative-serving` are always there.
    let listed = c.get(&namespaces, &[]).await.expect("list").json();
    let names: Vec<&str> =
        listed["items"].as_array().expect("items").iter().filter_map(|n| n["metadata"]["name"].as_str()).collect();
    assert_eq!(names, ["default", "knative-serving", "team-a"]);
}
