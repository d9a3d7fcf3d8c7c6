//! A programmed route as the [`Publisher`](super::Publisher) keeps it: its namespace and name,
//! the uid of the Route it came from and its spec, written into one allocation. A
//! [`RouteSpec`] as plain values is some ten allocations of strings and vectors (~680 bytes
//! for a Knative Service's route); written out it is one of ~130 bytes. The spec is read back
//! whole when the table is rebuilt, which copied it anyway.
//!
//! The encoding is private and only ever read by this module: lengths and numbers as LEB128
//! varints, strings as length and bytes, a host list front-coded (each host as the bytes it
//! shares with the one before and the rest: a service's four hosts share their
//! `name.namespace`), a revision's namespace left out when it is the route's, a uid in a
//! UUID's canonical form (as Kubernetes makes them) as its 16 bytes. It is exact:
//! two specs are equal exactly when their bytes are, so a repeated `set_route` is recognised
//! by comparing bytes.

use std::borrow::Borrow;
use std::fmt::Write as _;
use std::time::Duration;

use crate::endpoints::RevisionKey;
use crate::table::{HeaderMatch, HttpProtocol, PathMatch, Protocol, RuleConfig, TagConfig, Target, ValueMatch};

use super::RouteSpec;

/// One programmed route.
#[derive(Debug)]
pub(super) struct Stored {
    /// Publication order: a host two routes claim goes to the one programmed first, so a new
    /// route can never take over a URL another already serves.
    pub(super) since: u64,
    /// The key ([`key`]), the uid, then the spec's other fields.
    bytes: Box<[u8]>,
}

/// The key a route is stored under: its namespace, a NUL, its name. Ordered as the pair
/// (namespace, name) is, since NUL sorts before any other character. (Both are Kubernetes
/// names, which the API validates: neither holds a NUL.)
pub(super) fn key(namespace: &str, name: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(namespace.len() + 1 + name.len());
    key.extend_from_slice(namespace.as_bytes());
    key.push(0);
    key.extend_from_slice(name.as_bytes());
    key
}

// === impl Stored ===

impl Stored {
    /// `spec`, programmed from the Route with `uid`, `since` as given.
    pub(super) fn new(uid: &str, spec: &RouteSpec, since: u64) -> Self {
        let mut w = Writer(Vec::with_capacity(128));
        w.bytes(&key(&spec.namespace, &spec.name));
        w.uid(uid);
        w.spec(spec);
        Self { since, bytes: w.0.into_boxed_slice() }
    }

    /// Its key ([`key`]).
    pub(super) fn key(&self) -> &[u8] {
        Reader::new(&self.bytes).bytes()
    }

    /// The uid of the Route it came from.
    pub(super) fn uid(&self) -> String {
        let mut r = Reader::new(&self.bytes);
        r.bytes();
        r.uid()
    }

    /// The same route, from the same Route (the uid compared too).
    pub(super) fn same(&self, other: &Self) -> bool {
        self.bytes == other.bytes
    }

    /// The spec, read back.
    pub(super) fn spec(&self) -> RouteSpec {
        let mut r = Reader::new(&self.bytes);
        let key = r.bytes();
        let split = key.iter().position(|b| *b == 0).expect("a key holds its NUL");
        let namespace = std::str::from_utf8(&key[..split]).expect("written from a str").to_string();
        let name = std::str::from_utf8(&key[split + 1..]).expect("written from a str").to_string();
        r.uid();
        r.spec(namespace, name)
    }
}

impl Borrow<[u8]> for Stored {
    fn borrow(&self) -> &[u8] {
        Reader::new(&self.bytes).bytes()
    }
}

impl PartialEq for Stored {
    fn eq(&self, other: &Self) -> bool {
        Borrow::<[u8]>::borrow(self) == Borrow::<[u8]>::borrow(other)
    }
}

impl Eq for Stored {}

impl PartialOrd for Stored {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Stored {
    /// By key, as `Borrow` requires.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        Borrow::<[u8]>::borrow(self).cmp(Borrow::<[u8]>::borrow(other))
    }
}

/// Appends the encoding.
struct Writer(Vec<u8>);

/// Reads what [`Writer`] wrote. It only ever reads this module's own bytes, so running out or
/// finding a value it did not write is a bug, and panics.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

/// Where a canonical UUID has its hyphens.
const HYPHENS: [usize; 4] = [8, 13, 18, 23];

/// The 16 bytes of `uid` when it is a UUID in canonical form (lowercase hex, hyphens at
/// [`HYPHENS`]), the form that reads back to the same text.
fn uuid_bytes(uid: &str) -> Option<[u8; 16]> {
    let text = uid.as_bytes();
    if text.len() != 36 || HYPHENS.iter().any(|&at| text[at] != b'-') {
        return None;
    }
    let mut digits = text.iter().enumerate().filter(|(at, _)| !HYPHENS.contains(at)).map(|(_, d)| match d {
        b'0'..=b'9' => Some(d - b'0'),
        b'a'..=b'f' => Some(d - b'a' + 10),
        _ => None,
    });
    let mut bytes = [0u8; 16];
    for byte in &mut bytes {
        *byte = (digits.next()?? << 4) | digits.next()??;
    }
    Some(bytes)
}

/// A UUID's canonical text.
fn uuid_text(bytes: &[u8]) -> String {
    let mut text = String::with_capacity(36);
    for byte in bytes {
        if HYPHENS.contains(&text.len()) {
            text.push('-');
        }
        // Writing to a `String` cannot fail.
        let _ = write!(text, "{byte:02x}");
    }
    text
}

// === impl Writer ===

impl Writer {
    fn uint(&mut self, mut n: u64) {
        while n >= 0x80 {
            self.0.push((n as u8) | 0x80);
            n >>= 7;
        }
        self.0.push(n as u8);
    }

    fn len(&mut self, n: usize) {
        self.uint(n as u64);
    }

    fn bytes(&mut self, b: &[u8]) {
        self.len(b.len());
        self.0.extend_from_slice(b);
    }

    fn str(&mut self, s: &str) {
        self.bytes(s.as_bytes());
    }

    /// A UUID in canonical form as 0 and its 16 bytes, any other uid as an optional string.
    fn uid(&mut self, uid: &str) {
        match uuid_bytes(uid) {
            Some(bytes) => {
                self.uint(0);
                self.0.extend_from_slice(&bytes);
            }
            None => self.opt_str(Some(uid)),
        }
    }

    /// Which of several kinds, then the string.
    fn tagged(&mut self, kind: u64, s: &str) {
        self.uint(kind);
        self.str(s);
    }

    fn opt_str(&mut self, s: Option<&str>) {
        match s {
            None => self.uint(0),
            Some(s) => {
                self.len(s.len() + 1);
                self.0.extend_from_slice(s.as_bytes());
            }
        }
    }

    fn duration(&mut self, d: Duration) {
        self.uint(d.as_secs());
        self.uint(u64::from(d.subsec_nanos()));
    }

    fn opt_duration(&mut self, d: Option<Duration>) {
        match d {
            None => self.uint(0),
            Some(d) => {
                self.uint(1);
                self.duration(d);
            }
        }
    }

    /// Front-coded: each host as the length it shares with the one before, and the rest.
    fn hosts(&mut self, hosts: &[String]) {
        self.len(hosts.len());
        let mut before = "";
        for host in hosts {
            let mut shared = host.bytes().zip(before.bytes()).take_while(|(a, b)| a == b).count();
            while !host.is_char_boundary(shared) {
                shared -= 1;
            }
            self.len(shared);
            self.str(&host[shared..]);
            before = host;
        }
    }

    fn target(&mut self, t: &Target<RevisionKey>, namespace: &str) {
        let key = &t.revision;
        self.opt_str((key.namespace != namespace).then_some(key.namespace.as_str()));
        self.str(&key.name);
        self.duration(t.timeout);
        self.opt_duration(t.response_start);
        self.opt_duration(t.idle);
        self.uint(match t.protocol {
            Protocol::Http1 => 0,
            Protocol::H2c => 1,
        });
    }

    fn traffic(&mut self, traffic: &[(u32, Target<RevisionKey>)], namespace: &str) {
        self.len(traffic.len());
        for (percent, target) in traffic {
            self.uint(u64::from(*percent));
            self.target(target, namespace);
        }
    }

    /// Every field but the namespace and name (the key holds them).
    fn spec(&mut self, spec: &RouteSpec) {
        let ns = spec.namespace.as_str();
        self.hosts(&spec.hosts);
        self.traffic(&spec.traffic, ns);
        self.len(spec.tags.len());
        for tag in &spec.tags {
            self.str(&tag.tag);
            self.hosts(&tag.hosts);
            self.target(&tag.target, ns);
        }
        self.uint(u64::from(spec.tag_header_routing));
        self.uint(match spec.http_protocol {
            None => 0,
            Some(HttpProtocol::Enabled) => 1,
            Some(HttpProtocol::Redirected) => 2,
            Some(HttpProtocol::Disabled) => 3,
        });
        self.len(spec.rules.len());
        for rule in &spec.rules {
            self.opt_str(rule.name.as_deref());
            self.len(rule.headers.len());
            for header in &rule.headers {
                self.str(&header.name);
                match &header.value {
                    ValueMatch::Exact(v) => self.tagged(0, v),
                    ValueMatch::Prefix(v) => self.tagged(1, v),
                    ValueMatch::Regex(v) => self.tagged(2, v),
                    ValueMatch::Present(p) => {
                        self.uint(3);
                        self.uint(u64::from(*p));
                    }
                }
            }
            match &rule.path {
                None => self.uint(0),
                Some(PathMatch::Exact(p)) => self.tagged(1, p),
                Some(PathMatch::Prefix(p)) => self.tagged(2, p),
            }
            self.traffic(&rule.traffic, ns);
        }
    }
}

// === impl Reader ===

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, at: 0 }
    }

    fn uint(&mut self) -> u64 {
        let mut n = 0u64;
        let mut shift = 0;
        loop {
            let b = self.bytes[self.at];
            self.at += 1;
            n |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return n;
            }
            shift += 7;
        }
    }

    fn len(&mut self) -> usize {
        usize::try_from(self.uint()).expect("a length written from a usize")
    }

    fn take(&mut self, n: usize) -> &'a [u8] {
        let b = &self.bytes[self.at..self.at + n];
        self.at += n;
        b
    }

    fn bytes(&mut self) -> &'a [u8] {
        let n = self.len();
        self.take(n)
    }

    fn str(&mut self) -> &'a str {
        std::str::from_utf8(self.bytes()).expect("written from a str")
    }

    fn string(&mut self) -> String {
        self.str().to_string()
    }

    fn opt_string(&mut self) -> Option<String> {
        match self.len() {
            0 => None,
            n => Some(std::str::from_utf8(self.take(n - 1)).expect("written from a str").to_string()),
        }
    }

    fn uid(&mut self) -> String {
        match self.len() {
            0 => uuid_text(self.take(16)),
            n => std::str::from_utf8(self.take(n - 1)).expect("written from a str").to_string(),
        }
    }

    fn duration(&mut self) -> Duration {
        let secs = self.uint();
        let nanos = u32::try_from(self.uint()).expect("nanoseconds written from a u32");
        Duration::new(secs, nanos)
    }

    fn opt_duration(&mut self) -> Option<Duration> {
        (self.uint() == 1).then(|| self.duration())
    }

    fn hosts(&mut self) -> Vec<String> {
        let n = self.len();
        let mut hosts: Vec<String> = Vec::with_capacity(n);
        for _ in 0..n {
            let shared = self.len();
            let mut host = hosts.last().map_or_else(String::new, |before| before[..shared].to_string());
            host.push_str(self.str());
            hosts.push(host);
        }
        hosts
    }

    fn target(&mut self, namespace: &str) -> Target<RevisionKey> {
        let revision_namespace = self.opt_string().unwrap_or_else(|| namespace.to_string());
        let name = self.string();
        Target {
            revision: RevisionKey::new(revision_namespace, name),
            timeout: self.duration(),
            response_start: self.opt_duration(),
            idle: self.opt_duration(),
            protocol: if self.uint() == 1 { Protocol::H2c } else { Protocol::Http1 },
        }
    }

    fn traffic(&mut self, namespace: &str) -> Vec<(u32, Target<RevisionKey>)> {
        (0..self.len())
            .map(|_| {
                let percent = u32::try_from(self.uint()).expect("a percent written from a u32");
                (percent, self.target(namespace))
            })
            .collect()
    }

    fn spec(&mut self, namespace: String, name: String) -> RouteSpec {
        let ns = namespace.as_str();
        let hosts = self.hosts();
        let traffic = self.traffic(ns);
        let tags = (0..self.len())
            .map(|_| TagConfig { tag: self.string(), hosts: self.hosts(), target: self.target(ns) })
            .collect();
        let tag_header_routing = self.uint() == 1;
        let http_protocol = match self.uint() {
            0 => None,
            1 => Some(HttpProtocol::Enabled),
            2 => Some(HttpProtocol::Redirected),
            _ => Some(HttpProtocol::Disabled),
        };
        let rules = (0..self.len()).map(|_| self.rule(ns)).collect();
        RouteSpec { namespace, name, hosts, traffic, tags, tag_header_routing, http_protocol, rules }
    }

    fn rule(&mut self, namespace: &str) -> RuleConfig<RevisionKey> {
        let name = self.opt_string();
        let headers = (0..self.len())
            .map(|_| {
                let name = self.string();
                let value = match self.uint() {
                    0 => ValueMatch::Exact(self.string()),
                    1 => ValueMatch::Prefix(self.string()),
                    2 => ValueMatch::Regex(self.string()),
                    _ => ValueMatch::Present(self.uint() == 1),
                };
                HeaderMatch { name, value }
            })
            .collect();
        let path = match self.uint() {
            0 => None,
            1 => Some(PathMatch::Exact(self.string())),
            _ => Some(PathMatch::Prefix(self.string())),
        };
        RuleConfig { name, headers, path, traffic: self.traffic(namespace) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(namespace: &str, name: &str, secs: u64) -> Target<RevisionKey> {
        Target {
            revision: RevisionKey::new(namespace, name),
            timeout: Duration::new(secs, 7),
            response_start: Some(Duration::from_millis(1500)),
            idle: None,
            protocol: Protocol::H2c,
        }
    }

    /// A route using every field, each kind of value once.
    fn everything() -> RouteSpec {
        RouteSpec {
            namespace: "team-a".into(),
            name: "hello".into(),
            hosts: vec![
                "hello.team-a.example.com".into(),
                "hello.team-a".into(),
                "hello.team-a.svc".into(),
                "héllo.team-a.svc".into(),
                String::new(),
            ],
            traffic: vec![(90, target("team-a", "hello-00001", 300)), (10, target("other", "x", u64::MAX))],
            tags: vec![TagConfig {
                tag: "canary".into(),
                hosts: vec!["canary-hello.team-a.example.com".into()],
                target: target("team-a", "hello-00002", 30),
            }],
            tag_header_routing: true,
            http_protocol: Some(HttpProtocol::Redirected),
            rules: vec![
                RuleConfig {
                    name: Some(String::new()),
                    headers: vec![
                        HeaderMatch { name: "x-a".into(), value: ValueMatch::Exact("1".into()) },
                        HeaderMatch { name: "x-b".into(), value: ValueMatch::Prefix("2".into()) },
                        HeaderMatch { name: "x-c".into(), value: ValueMatch::Regex("^3+$".into()) },
                        HeaderMatch { name: "x-d".into(), value: ValueMatch::Present(false) },
                        HeaderMatch { name: "x-e".into(), value: ValueMatch::Present(true) },
                    ],
                    path: Some(PathMatch::Prefix("/api".into())),
                    traffic: vec![(100, target("team-a", "hello-00002", 1))],
                },
                RuleConfig {
                    name: None,
                    headers: vec![],
                    path: Some(PathMatch::Exact("/".into())),
                    traffic: vec![(100, target("team-a", "hello-00001", 0))],
                },
            ],
        }
    }

    #[test]
    fn a_spec_reads_back_as_written() {
        let spec = everything();
        let stored = Stored::new("uid-1", &spec, 4);
        assert_eq!(stored.spec(), spec);
        assert_eq!((stored.uid().as_str(), stored.since), ("uid-1", 4));
        let empty = RouteSpec { namespace: "n".into(), name: "e".into(), ..RouteSpec::default() };
        assert_eq!(Stored::new("", &empty, 0).spec(), empty);
    }

    #[test]
    fn uids_read_back_as_given_and_uuids_take_16_bytes() {
        let spec = RouteSpec { namespace: "n".into(), name: "r".into(), ..RouteSpec::default() };
        let uuid = "0a1b2c3d-4e5f-4000-8abc-def012345678";
        for uid in [uuid, "0A1B2C3D-4E5F-4000-8ABC-DEF012345678", "0a1b2c3d-4e5f-4000-8abc-def01234567g", "uid-1", ""] {
            let stored = Stored::new(uid, &spec, 0);
            assert_eq!(stored.uid(), uid);
            assert_eq!(stored.spec(), spec, "{uid}");
        }
        let len = |uid| Stored::new(uid, &spec, 0).bytes.len();
        assert_eq!(len(uuid), len("") + 16, "a UUID in canonical form is its bytes");
        assert_eq!(len("0A1B2C3D-4E5F-4000-8ABC-DEF012345678"), len("") + 36, "any other uid is its text");
    }

    #[test]
    fn equal_bytes_exactly_when_equal_specs_and_uids() {
        let spec = everything();
        let a = Stored::new("uid-1", &spec, 1);
        assert!(a.same(&Stored::new("uid-1", &spec, 2)), "since is not compared");
        assert!(!a.same(&Stored::new("uid-2", &spec, 1)));
        let mut edited = spec.clone();
        edited.rules[0].headers[3].value = ValueMatch::Present(true);
        assert!(!a.same(&Stored::new("uid-1", &edited, 1)));
        let mut edited = spec;
        edited.traffic[0].1.timeout += Duration::from_nanos(1);
        assert!(!a.same(&Stored::new("uid-1", &edited, 1)));
    }

    #[test]
    fn routes_order_by_namespace_then_name() {
        let at = |namespace: &str, name: &str| {
            Stored::new("u", &RouteSpec { namespace: namespace.into(), name: name.into(), ..RouteSpec::default() }, 0)
        };
        // As strings "a-b/x" < "a/x"; as (namespace, name) pairs "a" comes first.
        let mut routes = [at("a-b", "x"), at("a", "x"), at("a", "b")];
        routes.sort();
        let keys: Vec<(String, String)> = routes.iter().map(|s| (s.spec().namespace, s.spec().name)).collect();
        assert_eq!(keys, [("a".into(), "b".into()), ("a".into(), "x".into()), ("a-b".into(), "x".into())]);
        let set: std::collections::BTreeSet<Stored> = routes.into_iter().collect();
        assert!(set.contains(&key("a", "x")[..]));
        assert!(!set.contains(&key("a", "y")[..]));
    }

    #[test]
    fn a_service_route_is_one_small_allocation() {
        let name = "svc-123";
        let spec = RouteSpec {
            namespace: "default".into(),
            name: name.into(),
            hosts: ["default.localhost", "default", "default.svc", "default.svc.cluster.local"]
                .iter()
                .map(|suffix| format!("{name}.{suffix}"))
                .collect(),
            traffic: vec![(100, target("default", "svc-123-00001", 300))],
            ..RouteSpec::default()
        };
        let stored = Stored::new("00000000-0000-4000-8000-000000000123", &spec, 1);
        assert_eq!(stored.spec(), spec);
        assert!(stored.bytes.len() <= 140, "{} bytes", stored.bytes.len());
    }
}
