//! The kubeconfig `sluice serve` writes into its state directory, so kubectl (and kube-rs) reach
//! the embedded API server with `KUBECONFIG=<state>/kubeconfig`. It carries the API token, so
//! it is written readable by its owner only; and it names the server by `https://` with the CA
//! that issued its certificate (none with the user's own certificate and no `--tls-ca`: then
//! clients use the system's trust store), since client-go sends no credentials to a plain
//! `http://` server.

use std::path::Path;

use crate::auth::{self, Token};

/// The name used for the cluster, user and context entries.
pub const CONTEXT: &str = "sluice";

/// The kubeconfig text for a server at `server` (e.g. `https://127.0.0.1:6443`) whose
/// certificate chains to `authority_data` (base64 of a PEM CA; None: the system's trust store)
/// and whose user authenticates with `token`.
pub fn render(server: &str, authority_data: Option<&str>, token: &Token) -> String {
    // A generated or parsed token is printable ASCII without spaces; quoting keeps YAML from
    // reading one that looks like a number or a boolean as anything but a string.
    let token = token.as_str();
    let authority = authority_data.map(|data| format!("    certificate-authority-data: {data}\n")).unwrap_or_default();
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: {CONTEXT}\n  cluster:\n    server: {server}\n{authority}users:\n- name: {CONTEXT}\n  user:\n    token: \"{token}\"\ncontexts:\n- name: {CONTEXT}\n  context:\n    cluster: {CONTEXT}\n    user: {CONTEXT}\n    namespace: default\ncurrent-context: {CONTEXT}\npreferences: {{}}\n"
    )
}

/// Writes the kubeconfig to `path` atomically (temporary file, fsync, rename), mode 0600.
pub fn write(path: &Path, server: &str, authority_data: Option<&str>, token: &Token) -> std::io::Result<()> {
    auth::write_private(path, render(server, authority_data, token).as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubeconfig_names_the_server_context_and_token() {
        let token = Token::parse("abc123").expect("token");
        let text = render("https://127.0.0.1:1234", Some("Q0E="), &token);
        assert!(text.contains("server: https://127.0.0.1:1234\n    certificate-authority-data: Q0E=\nusers:\n"));
        let system = render("https://api.example.test:1234", None, &token);
        assert!(system.contains("server: https://api.example.test:1234\nusers:\n"), "{system}");
        assert!(text.contains("current-context: sluice"));
        assert!(text.contains("  user:\n    token: \"abc123\"\n"), "{text}");
    }
}
