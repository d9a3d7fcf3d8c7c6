//! The API server admits only the holder of its bearer token: no token is 401 and another
//! token 403 (Kubernetes `Status` bodies) on reads, writes and watches, so nobody who can merely
//! reach the port can have Sluice run a command; `/version` and the health checks stay open.
//! The token lives in `<state-dir>/token` (0600, kept across restarts) and in the kubeconfig
//! (0600), and every client finds it.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use http::{Method, StatusCode};
use serde_json::{Value, json};
use sluice_test_support::http::{Client, Response};
use sluice_test_support::wire::lines;
use sluice_test_support::{Sluice, SluiceOptions, apply, kubectl, wait_for};

const BIN: &str = env!("CARGO_BIN_EXE_sluice");
const CONFIGMAPS: &str = "/api/v1/namespaces/default/configmaps";
const SERVICES: &str = "/apis/serving.knative.dev/v1/namespaces/default/services";

fn unauthorized() -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": "Unauthorized", "reason": "Unauthorized", "code": 401})
}

fn forbidden() -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": "forbidden: the bearer token is not valid for this server", "reason": "Forbidden", "code": 403})
}

fn config_map(name: &str) -> String {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"k": "v"}}).to_string()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).expect("file exists").permissions().mode() & 0o777
}

/// A list, a create and a watch sent with `auth` (an `Authorization` value, or none).
async fn list_create_watch(s: &Sluice, auth: Option<&str>) -> (Response, Response, StatusCode, String) {
    let c = Client::new();
    let headers: Vec<(&str, &str)> = auth.map(|a| ("authorization", a)).into_iter().collect();
    let list = c.get(&format!("{}{CONFIGMAPS}", s.api), &headers).await.expect("list");
    let mut create_headers = headers.clone();
    create_headers.push(("content-type", "application/json"));
    let create = c
        .send(Method::POST, &format!("{}{CONFIGMAPS}", s.api), &create_headers, config_map("sneaky"))
        .await
        .expect("create");
    let token = auth.and_then(|a| a.strip_prefix("Bearer "));
    let (status, mut rx) = lines(&format!("{}{CONFIGMAPS}?watch=true", s.api), token).await.expect("watch");
    let mut body = String::new();
    while let Ok(Some(line)) = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await {
        body.push_str(&line);
    }
    (list, create, status, body)
}

#[tokio::test]
async fn no_token_is_401_and_another_token_403_on_lists_creates_and_watches() {
    let s = Sluice::start_api_only(BIN).expect("start sluice");
    for auth in [None, Some("Basic c2x1aWNlOnNsdWljZQ=="), Some("Bearer"), Some("Bearer  two spaces")] {
        let (list, create, watch, watch_body) = list_create_watch(&s, auth).await;
        for (what, res) in [("list", &list), ("create", &create)] {
            assert_eq!(res.status, StatusCode::UNAUTHORIZED, "{what} with {auth:?}: {}", res.text());
            assert_eq!(res.json(), unauthorized(), "{what} with {auth:?}");
            assert_eq!(
                res.headers.get("www-authenticate").map(|v| v.to_str().unwrap_or_default()),
                Some("Bearer realm=\"sluice\"")
            );
        }
        assert_eq!(watch, StatusCode::UNAUTHORIZED, "watch with {auth:?}");
        assert_eq!(serde_json::from_str::<Value>(&watch_body).ok(), Some(unauthorized()), "watch with {auth:?}");
    }
    let wrong = format!("Bearer {}", "0".repeat(s.token().len()));
    let (list, create, watch, watch_body) = list_create_watch(&s, Some(&wrong)).await;
    for (what, res) in [("list", &list), ("create", &create)] {
        assert_eq!(res.status, StatusCode::FORBIDDEN, "{what}: {}", res.text());
        assert_eq!(res.json(), forbidden(), "{what}");
    }
    assert_eq!(watch, StatusCode::FORBIDDEN);
    assert_eq!(serde_json::from_str::<Value>(&watch_body).ok(), Some(forbidden()));

    // Nothing was stored by the refused creates; the right token lists and creates.
    let c = s.client();
    let listed = c.get(&format!("{}{CONFIGMAPS}", s.api), &[]).await.expect("list");
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.text());
    assert_eq!(listed.json()["items"], json!([]), "a refused create stored something");
    let created = c
        .send(
            Method::POST,
            &format!("{}{CONFIGMAPS}", s.api),
            &[("content-type", "application/json")],
            config_map("ok"),
        )
        .await
        .expect("create");
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text());
}

#[tokio::test]
async fn version_and_health_checks_answer_without_a_token_and_nothing_else_does() {
    let s = Sluice::start_api_only(BIN).expect("start sluice");
    let c = Client::new();
    for path in ["/version", "/healthz", "/livez", "/readyz"] {
        let res = c.get(&format!("{}{path}", s.api), &[]).await.expect("request");
        assert_eq!(res.status, StatusCode::OK, "{path}: {}", res.text());
    }
    // Discovery and the root list what the server holds: Kubernetes keeps them behind
    // authentication too.
    for path in ["/", "/api", "/apis", "/openapi/v3", "/healthz/extra"] {
        let res = c.get(&format!("{}{path}", s.api), &[]).await.expect("request");
        assert_eq!(res.status, StatusCode::UNAUTHORIZED, "{path}: {}", res.text());
    }
}

/// The finding itself: a Service whose container command writes a file, POSTed without a
/// token, is refused and nothing runs. The same request with the token does run it, which
/// shows the payload would have worked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_posted_without_a_token_is_refused_and_its_command_never_runs() {
    let s = Sluice::start(BIN).expect("start sluice");
    let marker_dir = tempfile::tempdir().expect("tempdir");
    let marker = marker_dir.path().join("pwned");
    let service = |name: &str| {
        json!({"apiVersion": "serving.knative.dev/v1", "kind": "Service", "metadata": {"name": name},
            "spec": {"template": {"spec": {"containers": [{"image": "attacker/shell",
                "command": ["/bin/sh", "-c", format!("touch {}; exec sleep 60", marker.display())]}]}}}})
        .to_string()
    };
    let url = format!("{}{SERVICES}", s.api);
    let json_ct = ("content-type", "application/json");
    let res = Client::new().send(Method::POST, &url, &[json_ct], service("attack")).await.expect("post");
    assert_eq!(res.status, StatusCode::UNAUTHORIZED, "{}", res.text());
    assert_eq!(res.json(), unauthorized());
    // Were it stored, the controllers would start it within a second or two.
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        assert!(!marker.exists(), "the unauthenticated service's command ran");
        std::thread::sleep(Duration::from_millis(50));
    }
    let listed = s.client().get(&url, &[]).await.expect("list");
    assert_eq!(listed.json()["items"], json!([]), "the refused service was stored");

    let res = s.client().send(Method::POST, &url, &[json_ct], service("allowed")).await.expect("post");
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
    wait_for("the authorized service's command to run", Duration::from_secs(30), || marker.exists().then_some(()))
        .expect("the same payload runs when the token is given");
}

#[tokio::test]
async fn the_token_and_kubeconfig_are_private_and_the_token_survives_a_restart() {
    let mut first = Sluice::start_api_only(BIN).expect("start sluice");
    let state_dir = first.state_dir.clone();
    let _keep = first.keep_state_dir();
    let token_file = state_dir.join("token");
    assert_eq!(mode(&token_file), 0o600);
    assert_eq!(mode(&first.kubeconfig()), 0o600);
    let token = first.token().to_string();
    assert_eq!(token.len(), 64, "32 random bytes, hex: {token}");
    assert!(token.bytes().all(|b| b.is_ascii_hexdigit()), "{token}");
    let kubeconfig = std::fs::read_to_string(first.kubeconfig()).expect("kubeconfig");
    assert!(kubeconfig.contains(&format!("  user:\n    token: \"{token}\"\n")), "{kubeconfig}");
    first.terminate(Duration::from_secs(30)).expect("clean exit");

    let opts = SluiceOptions {
        state_dir: Some(state_dir.clone()),
        args: vec!["--no-controllers".into()],
        ..Default::default()
    };
    let second = Sluice::start_with(BIN, opts).expect("restart sluice");
    assert_eq!(second.token(), token, "the token changed across a restart");
    assert_eq!(std::fs::read_to_string(&token_file).expect("token file").trim(), token);
    assert_eq!(mode(&token_file), 0o600);
    assert_eq!(mode(&second.kubeconfig()), 0o600);
    let res = second.client().get(&format!("{}{CONFIGMAPS}", second.api), &[]).await.expect("list");
    assert_eq!(res.status, StatusCode::OK, "the old token still works: {}", res.text());

    let Some(kubectl) = kubectl() else {
        eprintln!("skipping the kubectl part: kubectl is not installed");
        return;
    };
    let out = Command::new(kubectl)
        .args(["get", "configmaps", "-o", "name"])
        .env("KUBECONFIG", second.kubeconfig())
        .output()
        .expect("run kubectl");
    assert!(out.status.success(), "kubectl with the kubeconfig: {}", String::from_utf8_lossy(&out.stderr));
}

/// `sluice` run with no token source at all: no flag, no environment, and a home whose
/// default state directory holds no token.
fn sluice_without_token(s: &Sluice, home: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .args(["--api", &s.api])
        .env_remove("SLUICE_TOKEN")
        .env_remove("SLUICE_STATE_DIR")
        .env_remove("SLUICE_API")
        .env("HOME", home)
        .env("XDG_STATE_HOME", home.join("state"))
        .stdin(Stdio::null())
        .output()
        .expect("run sluice")
}

#[tokio::test]
async fn the_cli_finds_the_token_from_flag_environment_or_state_dir_and_says_how_when_it_has_none() {
    let s = Sluice::start_api_only(BIN).expect("start sluice");
    let home = tempfile::tempdir().expect("tempdir");
    let manifest = s.state_dir.join("cm.json");
    std::fs::write(&manifest, config_map("from-cli")).expect("manifest");
    let file = manifest.to_str().expect("utf-8 path");

    let out = sluice_without_token(&s, home.path(), &["apply", "-f", file]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "applied without a token: {stderr}");
    for how in ["no API token", "--token", "SLUICE_TOKEN", "--state-dir"] {
        assert!(stderr.contains(how), "the error does not mention {how:?}: {stderr}");
    }

    let wrong = sluice_without_token(&s, home.path(), &["get", "configmaps", "--token", "not-the-token"]);
    let stderr = String::from_utf8_lossy(&wrong.stderr);
    assert!(!wrong.status.success(), "{stderr}");
    assert!(stderr.contains("not valid for this server") && stderr.contains("--token"), "{stderr}");

    let state_dir = s.state_dir.to_str().expect("utf-8 path");
    let by_dir = sluice_without_token(&s, home.path(), &["apply", "-f", file, "--state-dir", state_dir]);
    assert!(by_dir.status.success(), "--state-dir: {}", String::from_utf8_lossy(&by_dir.stderr));
    let by_flag = sluice_without_token(&s, home.path(), &["get", "configmaps", "--token", s.token()]);
    assert!(by_flag.status.success(), "--token: {}", String::from_utf8_lossy(&by_flag.stderr));
    assert!(
        String::from_utf8_lossy(&by_flag.stdout).contains("from-cli"),
        "{}",
        String::from_utf8_lossy(&by_flag.stdout)
    );
    // And through the environment, as test-support's `apply` passes it.
    apply(BIN, &s, &config_map("from-env")).expect("SLUICE_TOKEN");
}

#[tokio::test]
async fn an_api_on_every_address_warns_and_the_kubeconfig_names_loopback() {
    let opts = SluiceOptions {
        args: vec!["--no-controllers".into(), "--api".into(), "0.0.0.0:0".into()],
        ..Default::default()
    };
    let s = Sluice::start_with(BIN, opts).expect("start sluice");
    let log = s.log_text();
    let warning = log.lines().find(|l| l.contains("WARN") && l.contains("beyond this machine")).unwrap_or_default();
    assert!(warning.contains("run commands as this user") && warning.contains("Only TLS is served"), "{log}");
    let port = s.api.rsplit(':').next().expect("port");
    assert_eq!(s.api, format!("http://127.0.0.1:{port}"), "endpoints.json names a connectable address");
    let kubeconfig = std::fs::read_to_string(s.kubeconfig()).expect("kubeconfig");
    assert!(kubeconfig.contains(&format!("server: https://127.0.0.1:{port}\n")), "{kubeconfig}");
    assert!(kubeconfig.contains("certificate-authority-data: "), "{kubeconfig}");
    // Plain HTTP still answers on loopback (a connection to 127.0.0.1 comes from this machine).
    let res = s.client().get(&format!("{}{CONFIGMAPS}", s.api), &[]).await.expect("list");
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    // From any other address only TLS is served.
    match sluice_test_support::non_loopback_address() {
        Ok(ip) => {
            let res = Client::new().get(&format!("http://{ip}:{port}/version"), &[]).await.expect("request");
            assert_eq!(res.status, StatusCode::BAD_REQUEST, "{}", res.text());
            assert_eq!(res.text(), "Client sent an HTTP request to an HTTPS server.\n");
        }
        Err(why) => eprintln!("skipping the plain-HTTP-refused part: no address beyond loopback ({why})"),
    }
}
