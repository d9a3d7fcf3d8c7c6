//! `rules`: the cost of header rules on the request path. Two live services behind the same
//! `sluice serve`: the helloworld-go sample, routed by its percent split alone, and `ruled`,
//! the same app with 10 header rules that never match (exact and prefix conditions on the
//! `Host` header the generator sends, so every rule finds its header and compares its value
//! before the split decides). Their trials interleave; the difference is what 10 rules cost.

use std::path::PathBuf;

use super::ScenarioError;
use super::procs::get;
use super::serve_api::{api_address, apply, write};
use super::sluice::{HELLO_ANSWER, HELLO_HOST, start_serve};
use crate::compare::{self, Comparison, Entry};
use crate::cpu::Watch;
use crate::load::LoadSpec;
use crate::outcome::Outcome;
use crate::pin::Layout;
use crate::target::{Protocol, Target};

/// The Host of the service with rules.
pub const RULED_HOST: &str = "ruled.default.localhost";
/// Rules on the route of `ruled`.
pub const RULES: usize = 10;
/// How long `ruled` gets to answer.
const READY: std::time::Duration = std::time::Duration::from_secs(60);

/// What `rules` needs.
pub struct Options {
    /// The `sluice` binary.
    pub sluice: PathBuf,
    /// The load of each trial.
    pub spec: LoadSpec,
    /// Trials per target.
    pub trials: usize,
    /// Core pinning (role `sluice`).
    pub layout: Layout,
    /// HTTP/1.1 or h2c (over h2c the host is `:authority`, no `Host` header: each rule then
    /// looks its header up and finds none).
    pub protocol: Protocol,
}

/// Runs `rules`; `note` sees each line worth telling, `each` every trial.
pub fn run(
    opts: &Options,
    mut note: impl FnMut(&str),
    each: impl FnMut(usize, &Outcome),
) -> Result<Comparison, ScenarioError> {
    let dir = super::workdir()?;
    let mut serve = start_serve(&opts.sluice, dir.path(), &opts.layout)?;
    let pid = serve.process.pid();
    let state = dir.path().join("state");
    let manifest = dir.path().join("ruled.yaml");
    write(&manifest, &ruled_yaml())?;
    apply(&opts.sluice, &api_address(&state)?, &state, &manifest)?;
    let addr = serve.addr;
    serve.process.wait_for("to answer for the service with rules", READY, || {
        get(addr, RULED_HOST, "/").filter(|(s, b)| *s == 200 && b == HELLO_ANSWER)
    })?;
    note(&format!(
        "sluice: serve's router on {addr} (pid {pid}); {HELLO_HOST} percent-only, {RULED_HOST} with {RULES} rules"
    ));
    let layout = opts.layout.describe(&[("sluice", Some(pid))]);
    note(&layout);
    let url = format!("http://{addr}/");
    let entries = [
        Entry {
            target: Target::new("percent-only", &url, Some(HELLO_HOST), opts.protocol)?,
            watch: vec![Watch::new("sluice", pid)],
        },
        Entry {
            target: Target::new(&format!("{RULES} rules"), &url, Some(RULED_HOST), opts.protocol)?,
            watch: vec![Watch::new("sluice", pid)],
        },
    ];
    let comparison = compare::run(&entries, &opts.spec, opts.trials, layout, each)?;
    drop(serve);
    Ok(comparison)
}

/// The `ruled` Service: the hello app, and [`RULES`] rules on `Host` that cannot match its
/// own host (exact and prefix alternately), each sending to its own revision.
pub fn ruled_yaml() -> String {
    let mut rules = String::new();
    for i in 0..RULES {
        let (kind, value) = if i % 2 == 0 {
            ("exact", format!("other-{i}.default.localhost"))
        } else {
            ("prefix", format!("other-{i}."))
        };
        rules.push_str(&format!(
            "  - name: rule-{i}
    match:
      headers:
      - name: host
        {kind}: {value}
    traffic:
    - revisionName: ruled-00001
      percent: 100
"
        ));
    }
    format!(
        "apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: ruled
  namespace: default
spec:
  template:
    metadata:
      name: ruled-00001
    spec:
      containers:
      - image: docker.io/{{username}}/helloworld-go
        env:
        - name: TARGET
          value: \"Go Sample v1\"
  traffic:
  - latestRevision: true
    percent: 100
  rules:
{rules}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_service_has_ten_rules_none_of_which_matches_its_host() {
        let text = ruled_yaml();
        assert_eq!(text.matches("- name: rule-").count(), RULES);
        assert_eq!(text.matches("name: host").count(), RULES);
        for line in text.lines().filter(|l| l.contains("exact:") || l.contains("prefix:")) {
            let value = line.rsplit(": ").next().unwrap_or_default();
            assert!(!RULED_HOST.starts_with(value), "{line} would match {RULED_HOST}");
        }
    }
}
