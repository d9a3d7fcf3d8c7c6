//! nginx as the reference proxy: the config the harness writes (one worker, a keep-alive
//! upstream, HTTP/1.1 to it, no access log, every path inside its own prefix directory so it
//! runs without root), checked with `nginx -t`, and started in the foreground.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::ScenarioError;
use super::procs::{Owned, get};
use crate::pin::Layout;

/// How long nginx gets to answer through the proxy.
const READY: Duration = Duration::from_secs(20);

/// The temp-path directives of modules an nginx build may leave out (`--without-…`).
const OPTIONAL_TEMP_PATHS: [(&str, &str); 3] =
    [("fastcgi", "fastcgi_temp_path"), ("uwsgi", "uwsgi_temp_path"), ("scgi", "scgi_temp_path")];

/// A running nginx and its worker processes.
pub struct Nginx {
    /// The master process.
    pub process: Owned,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its workers' pids (whose CPU time is charged to requests).
    pub workers: Vec<u32>,
}

/// The nginx binary on PATH, or why there is none.
pub fn find() -> Result<PathBuf, String> {
    let path = std::env::var_os("PATH").ok_or("PATH is not set")?;
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin")])
        .map(|d| d.join("nginx"))
        .find(|p| p.is_file())
        .ok_or_else(|| "nginx is not installed (Debian: apt-get install nginx-light)".to_string())
}

/// The modules `nginx -V` says this build was configured without (of fastcgi, uwsgi, scgi).
pub fn modules_without(nginx: &Path) -> Vec<String> {
    let Ok(out) = Command::new(nginx).arg("-V").output() else { return Vec::new() };
    let text = String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    OPTIONAL_TEMP_PATHS
        .iter()
        .filter(|(m, _)| text.contains(&format!("--without-http_{m}_module")))
        .map(|(m, _)| m.to_string())
        .collect()
}

/// The config: `workers` worker processes (1 in the project's reference measurements)
/// proxying `listen` to `upstream` over a keep-alive pool of 64.
pub fn config(prefix: &Path, listen: SocketAddr, upstream: SocketAddr, without: &[String], workers: usize) -> String {
    let p = prefix.display();
    let mut temp = format!("    client_body_temp_path {p}/client_body;\n    proxy_temp_path {p}/proxy;\n");
    for (module, directive) in OPTIONAL_TEMP_PATHS {
        if !without.iter().any(|w| w == module) {
            temp.push_str(&format!("    {directive} {p}/{module};\n"));
        }
    }
    format!(
        "# Written by `sluice bench`: nginx as a reverse proxy with a keep-alive upstream.
daemon off;
master_process on;
worker_processes {workers};
pid {p}/nginx.pid;
error_log {p}/error.log warn;

events {{
    worker_connections 4096;
}}

http {{
    access_log off;
{temp}
    upstream backend {{
        server {upstream};
        keepalive 64;
    }}

    server {{
        listen {listen};
        location / {{
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection \"\";
            proxy_set_header Host $host;
        }}
    }}
}}
"
    )
}

/// Writes the config into `prefix` and has `nginx -t` check it: Err holds nginx's words.
pub fn write_and_test(
    nginx: &Path,
    prefix: &Path,
    listen: SocketAddr,
    upstream: SocketAddr,
    workers: usize,
) -> Result<PathBuf, ScenarioError> {
    let conf = prefix.join("nginx.conf");
    let text = config(prefix, listen, upstream, &modules_without(nginx), workers);
    std::fs::write(&conf, text).map_err(|e| ScenarioError::Io(format!("{}: {e}", conf.display())))?;
    let out = Command::new(nginx)
        .arg("-t")
        .arg("-p")
        .arg(prefix)
        .arg("-e")
        .arg(prefix.join("error.log"))
        .arg("-c")
        .arg(&conf)
        .output()
        .map_err(|e| ScenarioError::Start { what: "nginx -t".into(), reason: e.to_string() })?;
    if !out.status.success() {
        return Err(ScenarioError::Start {
            what: "nginx -t".into(),
            reason: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(conf)
}

/// Starts nginx with `workers` worker processes proxying a free port to `upstream`, and waits
/// until a request through it is answered 200 and every worker has started.
pub fn start(
    nginx: &Path,
    prefix: &Path,
    upstream: SocketAddr,
    layout: &Layout,
    workers: usize,
) -> Result<Nginx, ScenarioError> {
    let addr = SocketAddr::from(([127, 0, 0, 1], super::procs::free_port()?));
    let conf = write_and_test(nginx, prefix, addr, upstream, workers)?;
    let mut cmd = layout.command("nginx", nginx);
    cmd.arg("-p").arg(prefix).arg("-e").arg(prefix.join("error.log")).arg("-c").arg(&conf);
    let mut process = Owned::spawn("nginx", cmd, &prefix.join("stderr.log"))?;
    process
        .wait_for("to answer through the proxy", READY, || get(addr, "localhost", "/").filter(|(s, _)| *s == 200))?;
    let master = process.pid();
    let workers = process.wait_for("to start its workers", READY, || {
        // Under taskset the master is taskset's child, exec'd in place: the same pid.
        let w = crate::cpu::children(master);
        (w.len() >= workers.max(1)).then_some(w)
    })?;
    Ok(Nginx { process, addr, workers })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addrs() -> (SocketAddr, SocketAddr) {
        ("127.0.0.1:18081".parse().expect("addr"), "127.0.0.1:18080".parse().expect("addr"))
    }

    #[test]
    fn the_config_proxies_to_a_keepalive_upstream_with_one_worker() {
        let (listen, upstream) = addrs();
        let text = config(Path::new("/tmp/x"), listen, upstream, &["uwsgi".to_string()], 1);
        for needle in [
            "worker_processes 1;",
            "daemon off;",
            "listen 127.0.0.1:18081;",
            "server 127.0.0.1:18080;",
            "keepalive 64;",
            "proxy_http_version 1.1;",
            "proxy_set_header Connection \"\";",
            "access_log off;",
            "pid /tmp/x/nginx.pid;",
            "fastcgi_temp_path /tmp/x/fastcgi;",
        ] {
            assert!(text.contains(needle), "no {needle:?} in\n{text}");
        }
        assert!(!text.contains("uwsgi_temp_path"), "a module left out of the build gets no directive");
        let opens = text.matches('{').count();
        assert_eq!(opens, text.matches('}').count(), "balanced blocks");
        assert_eq!(opens, 5, "events, http, upstream, server, location");
        for line in text.lines().map(str::trim) {
            let directive = !(line.is_empty() || line.starts_with('#') || line.ends_with('{') || line == "}");
            assert!(!directive || line.ends_with(';'), "unterminated directive {line:?}");
        }
    }

    #[test]
    fn nginx_accepts_the_config_it_is_given() {
        let nginx = match find() {
            Ok(n) => n,
            Err(why) => {
                eprintln!("skipped: {why}; the config was checked structurally only");
                return;
            }
        };
        let dir = tempfile::tempdir().expect("tmp");
        let (listen, upstream) = addrs();
        for workers in [1, 2] {
            let conf = write_and_test(&nginx, dir.path(), listen, upstream, workers).expect("nginx -t accepts it");
            assert!(conf.is_file());
            let text = std::fs::read_to_string(&conf).expect("written");
            assert!(text.contains(&format!("worker_processes {workers};")), "{text}");
        }
    }
}
