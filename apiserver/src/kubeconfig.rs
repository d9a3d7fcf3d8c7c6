//! The kubeconfig `sluice serve` writes into its state directory, so kubectl (and kube-rs) reach
//! the embedded API server with `KUBECONFIG=<state>/kubeconfig`.

use std::io::Write;
use std::path::Path;

/// The name used for the cluster, user and context entries.
pub const CONTEXT: &str = "sluice";

/// The kubeconfig text for a server at `server` (e.g. `http://127.0.0.1:6443`).
pub fn render(server: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: {CONTEXT}\n  cluster:\n    server: {server}\nusers:\n- name: {CONTEXT}\n  user: {{}}\ncontexts:\n- name: {CONTEXT}\n  context:\n    cluster: {CONTEXT}\n    user: {CONTEXT}\n    namespace: default\ncurrent-context: {CONTEXT}\npreferences: {{}}\n"
    )
}

/// Writes the kubeconfig to `path` atomically (temporary file, fsync, rename).
pub fn write(path: &Path, server: &str) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(render(server).as_bytes())?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubeconfig_names_the_server_and_context() {
        let text = render("http://127.0.0.1:1234");
        assert!(text.contains("server: http://127.0.0.1:1234"));
        assert!(text.contains("current-context: sluice"));
    }
}
