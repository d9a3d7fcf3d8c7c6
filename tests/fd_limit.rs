//! Out of file descriptors: `sluice serve` under a low fd limit keeps answering on the
//! connections it has, logs one warning per episode, and accepts again once the sockets that
//! sent nothing are closed by the first-byte deadline; on the router port and the API port
//! alike. The limit is lowered on the running server with util-linux's `prlimit --pid`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use sluice_test_support::{Sluice, SluiceOptions, wait_for};

const BIN: &str = env!("CARGO_BIN_EXE_sluice");
/// The first-byte deadline the server runs with.
const FIRST_BYTE: Duration = Duration::from_millis(1000);
/// Descriptors the server may open beyond those it has when the limit is lowered.
const HEADROOM: usize = 16;
/// Idle sockets opened: more than the headroom, so accepting fails, but few enough that once
/// the accepted ones are closed the rest fit (one episode, not several).
const IDLE: usize = HEADROOM + 6;
const DEADLINE: Duration = Duration::from_secs(30);

/// One HTTP/1.1 keep-alive connection, read with a deadline.
struct Conn(TcpStream);

impl Conn {
    fn open(addr: &str, read_timeout: Duration) -> std::io::Result<Conn> {
        let stream = TcpStream::connect(addr)?;
        stream.set_read_timeout(Some(read_timeout))?;
        Ok(Conn(stream))
    }

    /// Sends `GET path` for `host` and returns the status code of the answer, read whole.
    fn get(&mut self, host: &str, path: &str) -> std::io::Result<u16> {
        write!(self.0, "GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n")?;
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            match self.0.read(&mut chunk)? {
                0 => return Err(std::io::ErrorKind::UnexpectedEof.into()),
                n => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .ok_or_else(|| std::io::Error::other(format!("no content-length in {head}")))?;
        while buf.len() < head_end + length {
            match self.0.read(&mut chunk)? {
                0 => return Err(std::io::ErrorKind::UnexpectedEof.into()),
                n => buf.extend_from_slice(&chunk[..n]),
            }
        }
        head.get(9..12).and_then(|c| c.parse().ok()).ok_or_else(|| std::io::Error::other(head.clone()))
    }
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map(Iterator::count).expect("the server's fd table")
}

/// Lowers the server's fd limit to `n`; false (with the reason printed) where that cannot be done.
fn lower_limit(pid: u32, n: usize) -> bool {
    match Command::new("prlimit").args(["--pid", &pid.to_string(), &format!("--nofile={n}:{n}")]).status() {
        Ok(status) if status.success() => true,
        Ok(status) => {
            eprintln!("skipped: prlimit --pid {pid} --nofile={n}:{n} failed ({status})");
            false
        }
        Err(e) => {
            eprintln!("skipped: prlimit (util-linux) is not available: {e}");
            false
        }
    }
}

/// Lines of `log` that `is_warning` picks.
fn count(log: &str, is_warning: fn(&str) -> bool) -> usize {
    log.lines().filter(|l| is_warning(l)).count()
}

fn router_warning(line: &str) -> bool {
    line.contains("WARN") && line.contains("accept failed;") && !line.contains("api server")
}

fn api_warning(line: &str) -> bool {
    line.contains("WARN") && line.contains("api server accept failed;")
}

/// One port under test: where it is, how to ask it something, what it answers, and how its
/// warning reads.
struct Port<'a> {
    addr: &'a str,
    ask: &'a dyn Fn(&mut Conn) -> std::io::Result<u16>,
    answer: u16,
    is_warning: fn(&str) -> bool,
}

/// One episode on `port`: idle sockets exhaust the descriptors; a connection opened before
/// keeps being answered while accepting fails, which is logged once; once the first-byte
/// deadline has closed the idle sockets, a new connection is answered again.
fn episode(s: &Sluice, port: &Port<'_>) {
    let pid = s.pid().expect("running");
    let fds_before = open_fds(pid);
    let before = count(&s.log_text(), port.is_warning);
    let mut busy = Conn::open(port.addr, Duration::from_secs(5)).expect("connect");
    assert_eq!((port.ask)(&mut busy).expect("answered"), port.answer);
    let idle: Vec<TcpStream> =
        (0..IDLE).map(|_| TcpStream::connect(port.addr).expect("the kernel queues it")).collect();
    let started = Instant::now();
    let mut answered_while_failing = 0;
    wait_for("the accept failure to be logged", DEADLINE, || {
        // Asked every 20 ms, which also keeps it from idling out.
        assert_eq!((port.ask)(&mut busy).expect("an open connection is answered"), port.answer);
        let failing = count(&s.log_text(), port.is_warning) > before;
        answered_while_failing += usize::from(failing);
        (failing && answered_while_failing >= 3).then_some(())
    })
    .expect("accept fails and is logged");
    // The idle sockets stay open on this side: only the server's deadline frees them.
    let back = wait_for("a new connection to be answered", DEADLINE, || {
        let mut fresh = Conn::open(port.addr, Duration::from_millis(500)).ok()?;
        (port.ask)(&mut fresh).ok()
    })
    .expect("serving new connections again");
    assert_eq!(back, port.answer);
    assert!(started.elapsed() >= FIRST_BYTE, "freed by the deadline, not before it");
    assert_eq!(count(&s.log_text(), port.is_warning), before + 1, "one warning per episode:\n{}", s.log_text());
    // The next episode starts from the same descriptors: the server closes the sockets it
    // accepted from these once it reads their end, which takes a moment after they are dropped.
    drop(idle);
    drop(busy);
    wait_for("the server to close this episode's sockets", DEADLINE, || (open_fds(pid) <= fds_before).then_some(()))
        .expect("the episode's sockets are closed");
}

#[test]
fn both_ports_keep_serving_and_recover_when_the_fd_limit_is_reached() {
    let opts = SluiceOptions {
        args: vec!["--no-controllers".into(), "--header-read-timeout-ms".into(), FIRST_BYTE.as_millis().to_string()],
        ..SluiceOptions::default()
    };
    let s = Sluice::start_with(BIN, opts).expect("start sluice");
    let pid = s.pid().expect("running");
    let router = s.http.clone().expect("router address");
    let api = s.api.trim_start_matches("http://").to_string();
    if !lower_limit(pid, open_fds(pid) + HEADROOM) {
        return;
    }
    let ask_router = |c: &mut Conn| c.get("nothing.default.localhost", "/");
    episode(&s, &Port { addr: &router, ask: &ask_router, answer: 404, is_warning: router_warning });
    let ask_api = |c: &mut Conn| c.get(&api, "/readyz");
    episode(&s, &Port { addr: &api, ask: &ask_api, answer: 200, is_warning: api_warning });
    let log = s.log_text();
    assert_eq!(count(&log, |l| l.contains(" accepting connections again") && !l.contains("api server")), 1, "{log}");
    assert_eq!(count(&log, |l| l.contains("api server accepting connections again")), 1, "{log}");
}
