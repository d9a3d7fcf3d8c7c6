//! TLS on the API port through the real binary: the local CA in `<state-dir>/tls` is made
//! once and kept (keys 0600), so the kubeconfig survives a restart; `--tls-cert/--tls-key`
//! serve the user's certificate, with the kubeconfig trusting only what `--tls-ca` names;
//! beyond loopback only TLS is served (plain HTTP gets Kubernetes' 400) and the CLI, kube-rs,
//! kubectl and Sluice's own controller all work over it with the server's name verified.

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use base64::Engine;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams, PostParams};
use sluice_test_support::http::blocking_get_ok_tls;
use sluice_test_support::{Sluice, SluiceOptions, kubectl, non_loopback_address, until};

const BIN: &str = env!("CARGO_BIN_EXE_sluice");

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).expect("file exists").permissions().mode() & 0o777
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A kube-rs client built from the kubeconfig the server wrote, as any kube-rs program would.
async fn from_kubeconfig(s: &Sluice) -> kube::Client {
    let kubeconfig = kube::config::Kubeconfig::read_from(s.kubeconfig()).expect("kubeconfig parses");
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await.expect("config");
    kube::Client::try_from(config).expect("client")
}

/// `sluice get configmaps` through the CLI as test-support sets it up (https, the CA given).
fn cli_get(s: &Sluice, extra_env: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = s.command(BIN);
    cmd.args(["get", "configmaps"]);
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    cmd.output().expect("run sluice get")
}

fn kubectl_get(s: &Sluice) -> Option<std::process::Output> {
    let Some(kubectl) = kubectl() else {
        eprintln!("skipping the kubectl part: kubectl is not installed");
        return None;
    };
    let out =
        Command::new(kubectl).args(["get", "configmaps", "-o", "name"]).env("KUBECONFIG", s.kubeconfig()).output();
    Some(out.expect("run kubectl"))
}

#[tokio::test]
async fn the_local_ca_persists_across_restarts_and_the_kubeconfig_is_unchanged() {
    let mut first = Sluice::start_api_only(BIN).expect("start sluice");
    let state_dir = first.state_dir.clone();
    let _keep = first.keep_state_dir();
    let tls = state_dir.join("tls");
    for key in ["ca.key", "apiserver.key"] {
        assert_eq!(mode(&tls.join(key)), 0o600, "{key}");
    }
    let (ca, cert, kubeconfig) =
        (read(&tls.join("ca.crt")), read(&tls.join("apiserver.crt")), read(&first.kubeconfig()));
    let ca_data = base64::engine::general_purpose::STANDARD.encode(&ca);
    assert!(kubeconfig.contains(&format!("    certificate-authority-data: {ca_data}\n")), "{kubeconfig}");
    assert!(kubeconfig.contains(&format!("    server: {}\n", first.api_https)), "{kubeconfig}");
    let out = cli_get(&first, &[]);
    assert!(out.status.success(), "sluice get over https: {}", String::from_utf8_lossy(&out.stderr));
    let api = first.api_https.trim_start_matches("https://").to_string();
    first.terminate(Duration::from_secs(30)).expect("clean exit");

    // The same address again, so the kubeconfig would name the same server.
    let opts = SluiceOptions {
        state_dir: Some(state_dir.clone()),
        args: vec!["--no-controllers".into(), "--api".into(), api],
        ..Default::default()
    };
    let second = Sluice::start_with(BIN, opts).expect("restart sluice");
    assert_eq!(read(&tls.join("ca.crt")), ca, "the CA changed across a restart");
    assert_eq!(read(&tls.join("apiserver.crt")), cert, "a certificate that still fits was reissued");
    assert_eq!(read(&second.kubeconfig()), kubeconfig, "the kubeconfig changed across a restart");
    for key in ["ca.key", "apiserver.key"] {
        assert_eq!(mode(&tls.join(key)), 0o600, "{key}");
    }
    let listed =
        Api::<ConfigMap>::namespaced(from_kubeconfig(&second).await, "default").list(&ListParams::default()).await;
    assert!(listed.is_ok(), "kube-rs with the kubeconfig: {listed:?}");
    let listed = Api::<ConfigMap>::namespaced(second.kube_client().expect("client"), "default")
        .list(&ListParams::default())
        .await;
    assert!(listed.is_ok(), "test-support's kube client: {listed:?}");
    if let Some(out) = kubectl_get(&second) {
        assert!(out.status.success(), "kubectl: {}", String::from_utf8_lossy(&out.stderr));
    }
}

/// A CA and a server certificate it issued for `localhost` and `127.0.0.1`, as PEM files in
/// `dir`: (ca, cert, key).
fn users_certificate(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let ca_key = rcgen::KeyPair::generate().expect("key");
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(rcgen::DnType::CommonName, "test users' CA");
    let ca_cert = ca_params.self_signed(&ca_key).expect("CA");
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let key = rcgen::KeyPair::generate().expect("key");
    let params = rcgen::CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).expect("params");
    let cert = params.signed_by(&key, &issuer).expect("certificate");
    let paths = (dir.join("ca.pem"), dir.join("server.pem"), dir.join("server-key.pem"));
    std::fs::write(&paths.0, ca_cert.pem()).expect("write");
    std::fs::write(&paths.1, cert.pem()).expect("write");
    std::fs::write(&paths.2, key.serialize_pem()).expect("write");
    paths
}

#[tokio::test]
async fn the_users_certificate_is_served_and_the_kubeconfig_trusts_only_what_tls_ca_names() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (ca, cert, key) = users_certificate(dir.path());
    let arg = |p: &Path| p.to_str().expect("utf-8 path").to_string();
    let tls_args = vec!["--no-controllers".into(), "--tls-cert".into(), arg(&cert), "--tls-key".into(), arg(&key)];

    let mut args = tls_args.clone();
    args.extend(["--tls-ca".into(), arg(&ca)]);
    let s = Sluice::start_with(BIN, SluiceOptions { args, ca: Some(ca.clone()), ..Default::default() }).expect("start");
    assert!(blocking_get_ok_tls(&format!("{}/version", s.api_https), &ca), "a client trusting the user's CA connects");
    assert!(!s.state_dir.join("tls/ca.crt").exists(), "no local CA is made when the user gives a certificate");
    let kubeconfig = read(&s.kubeconfig());
    let ca_data = base64::engine::general_purpose::STANDARD.encode(read(&ca));
    assert!(kubeconfig.contains(&format!("certificate-authority-data: {ca_data}\n")), "{kubeconfig}");
    let listed = Api::<ConfigMap>::namespaced(from_kubeconfig(&s).await, "default").list(&ListParams::default()).await;
    assert!(listed.is_ok(), "kube-rs with the kubeconfig: {listed:?}");
    let out = cli_get(&s, &[]);
    assert!(out.status.success(), "sluice get --certificate-authority: {}", String::from_utf8_lossy(&out.stderr));
    if let Some(out) = kubectl_get(&s) {
        assert!(out.status.success(), "kubectl: {}", String::from_utf8_lossy(&out.stderr));
    }
    drop(s);

    // No --tls-ca: the kubeconfig names no CA (the system's trust store decides), and a client
    // that is not told the CA refuses this certificate, saying how to give it.
    let s = Sluice::start_with(BIN, SluiceOptions { args: tls_args, ca: Some(ca.clone()), ..Default::default() })
        .expect("start");
    let kubeconfig = read(&s.kubeconfig());
    assert!(!kubeconfig.contains("certificate-authority"), "{kubeconfig}");
    let out = cli_get(&s, &[]);
    assert!(out.status.success(), "with the CA: {}", String::from_utf8_lossy(&out.stderr));
    let untrusted = s.command(BIN).args(["get", "configmaps"]).env_remove("SLUICE_CERTIFICATE_AUTHORITY").output();
    let untrusted = untrusted.expect("run sluice get");
    let stderr = String::from_utf8_lossy(&untrusted.stderr);
    assert!(!untrusted.status.success(), "an untrusted certificate was accepted: {stderr}");
    assert!(stderr.contains("certificate") && stderr.contains("--certificate-authority"), "{stderr}");
}

#[test]
fn unusable_certificate_files_stop_serve_with_the_file_and_the_reason() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_, cert, _) = users_certificate(dir.path());
    let (other_ca, _, other_key) = users_certificate(&{
        let d = dir.path().join("other");
        std::fs::create_dir(&d).expect("mkdir");
        d
    });
    let serve = |cert: &Path, key: &Path| {
        let out = Command::new(BIN)
            .args(["serve", "--no-controllers", "--api", "127.0.0.1:0", "--http", "127.0.0.1:0", "--state-dir"])
            .arg(dir.path().join("state"))
            .arg("--tls-cert")
            .arg(cert)
            .arg("--tls-key")
            .arg(key)
            .output()
            .expect("run sluice serve");
        assert!(!out.status.success(), "serve started with {} and {}", cert.display(), key.display());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let missing = dir.path().join("missing.pem");
    let err = serve(&missing, &other_key);
    assert!(err.contains("missing.pem") && err.contains("No such file"), "{err}");
    let err = serve(&cert, &other_key);
    assert!(err.contains("server.pem") && err.contains("other/server-key.pem"), "mismatch: {err}");
    let err = serve(&cert, &other_ca);
    assert!(err.contains("other/ca.pem") && err.contains("no private key"), "{err}");
}

/// `GET /version` in plain HTTP to `addr`; the whole answer.
fn plain_get(addr: &str) -> String {
    let mut tcp = std::net::TcpStream::connect(addr).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    write!(tcp, "GET /version HTTP/1.1\r\nHost: {addr}\r\n\r\n").expect("send");
    let mut answer = String::new();
    let _ = tcp.read_to_string(&mut answer);
    answer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beyond_loopback_only_tls_is_served_and_every_client_verifies_the_server() {
    let ip = match non_loopback_address() {
        Ok(ip) => ip,
        Err(why) => {
            eprintln!(
                "skipping: this machine has no address beyond loopback to bind ({why}); the policy is covered by the apiserver's conn tests"
            );
            return;
        }
    };
    let bind = std::net::SocketAddr::new(ip, 0).to_string();
    let s = Sluice::start_with(BIN, SluiceOptions { args: vec!["--api".into(), bind], ..Default::default() })
        .expect("start sluice");
    let warning =
        s.log_text().lines().find(|l| l.contains("WARN") && l.contains("beyond this machine")).map(str::to_string);
    let warning = warning.unwrap_or_else(|| panic!("no warning: {}", s.log_text()));
    assert!(warning.contains("run commands as this user") && warning.contains("Only TLS"), "{warning}");
    let authority = s.api_https.trim_start_matches("https://").to_string();
    assert!(authority.starts_with(&ip.to_string()), "{authority}");
    assert_eq!(s.api, s.api_https, "the controller, too, reaches this address over https");

    let answer = plain_get(&authority);
    assert!(answer.starts_with("HTTP/1.0 400 Bad Request"), "{answer}");
    assert!(answer.contains("Client sent an HTTP request to an HTTPS server."), "{answer}");

    let out = cli_get(&s, &[]);
    assert!(out.status.success(), "sluice get over https: {}", String::from_utf8_lossy(&out.stderr));
    let plain = cli_get(&s, &[("SLUICE_API", &format!("http://{authority}"))]);
    let stderr = String::from_utf8_lossy(&plain.stderr);
    assert!(!plain.status.success() && stderr.contains("clear text"), "the CLI sent the token in clear: {stderr}");
    if let Some(out) = kubectl_get(&s) {
        assert!(out.status.success(), "kubectl: {}", String::from_utf8_lossy(&out.stderr));
    }

    // kube-rs from the kubeconfig writes; the controller (in the server, over TLS to this
    // address) reads it and writes back.
    let client = from_kubeconfig(&s).await;
    let cm: ConfigMap = serde_json::from_value(serde_json::json!({"metadata": {"name": "over-tls"}})).expect("cm");
    Api::<ConfigMap>::namespaced(client.clone(), "default").create(&PostParams::default(), &cm).await.expect("create");
    let service = serde_json::json!({"apiVersion": "serving.knative.dev/v1", "kind": "Service",
        "metadata": {"name": "tls-hello"},
        "spec": {"template": {"spec": {"containers": [{"image": "gcr.io/knative-samples/helloworld-go"}]}}}});
    let mut cmd = s.command(BIN);
    let mut child = cmd
        .args(["apply", "-f", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("sluice apply");
    child.stdin.take().expect("stdin").write_all(service.to_string().as_bytes()).expect("write");
    let applied = child.wait_with_output().expect("apply");
    assert!(applied.status.success(), "{}", String::from_utf8_lossy(&applied.stderr));
    let configs: Api<kube::api::DynamicObject> = Api::namespaced_with(
        client,
        "default",
        &kube::api::ApiResource {
            group: "serving.knative.dev".into(),
            version: "v1".into(),
            api_version: "serving.knative.dev/v1".into(),
            kind: "Configuration".into(),
            plural: "configurations".into(),
        },
    );
    until("the controller to create the service's configuration", Duration::from_secs(30), async || {
        configs.get_opt("tls-hello").await.ok().flatten()
    })
    .await
    .unwrap_or_else(|e| panic!("{e}: {}", s.log_text()));
}
