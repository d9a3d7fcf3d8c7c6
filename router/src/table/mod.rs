//! The routing snapshot: plain, immutable data built whole from [`RouteConfig`]s (by
//! [`crate::publish`]) and published with `ArcSwap::store`. Everything a request needs is
//! precomputed here: lowercased host keys, cumulative weights, tag lookups and error bodies.
//! Each route (and each of its rules) keeps its own split sequence ([`Roller`]), carried over
//! when the table is rebuilt, so one route's traffic never skews another's shares.
//!
//! A table is built whole ([`RoutingTable::rebuild`]) or as an edit of another
//! ([`RoutingTable::with_route`], [`RoutingTable::without_route`]): an edit compiles only the
//! route it sets and copies the rest (compiled routes share their parts by `Arc`; the host text
//! and slots are plain bytes), so one route's change no longer costs a compilation of every
//! route.
//!
//! A request on a default host is decided in this order: the `Knative-Serving-Tag` header
//! (when on), then the route's first rule that matches (module `rules`), then the default split.
//! A tag host goes to its tag before any of these.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use http::header::HOST;
use http::{HeaderName, Request};

use crate::endpoints::{RevisionEndpoints, RevisionKey};
use crate::reason::Reason;

mod choice;
mod error;
mod host;
mod hosts;
mod rules;
mod split;

use choice::{ChoiceScope, Choices};
use hosts::{HostEntry, Hosts, Span};
use rules::{Rule, Seen};
use split::{Roller, Split};

pub use choice::{Choice, ChoiceKind, MAX_CHOICES};
pub use error::TableError;
pub use sluice_api::validation::rules::REGEX_SIZE_LIMIT;

/// A configured host as the table keys it (lowercase, no trailing dot; empty when blank).
pub(crate) fn host_key(raw: &str) -> Box<str> {
    host::config_key(raw).unwrap_or_default()
}

/// Knative's tag header: names the tag whose target a request on a default host should reach.
pub static KNATIVE_SERVING_TAG: HeaderName = HeaderName::from_static("knative-serving-tag");

/// How the router speaks to a revision's instances.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// HTTP/1.1 with keep-alive.
    #[default]
    Http1,
    /// HTTP/2 with prior knowledge over plain TCP (the container port is named `h2c`).
    H2c,
}

/// Where a share of traffic goes: a revision and how to reach it. `R` is how the revision is
/// referred to: by [`RevisionKey`](crate::endpoints::RevisionKey) as the controller describes
/// it (plain data, compared with `==`), or as its live endpoints once resolved for the table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target<R = Arc<RevisionEndpoints>> {
    /// The revision (its ready instances and counters, once resolved).
    pub revision: R,
    /// How long a request may take from its arrival to the end of its response, waiting
    /// included (the revision's `timeoutSeconds`, Knative's hard cap).
    pub timeout: Duration,
    /// How long the response head may take to start (`responseStartTimeoutSeconds`); applied
    /// when shorter than `timeout`, as in Knative.
    pub response_start: Option<Duration>,
    /// The longest gap allowed between parts of the response body (`idleTimeoutSeconds`).
    pub idle: Option<Duration>,
    /// HTTP/1.1 or h2c.
    pub protocol: Protocol,
}

/// A tagged target: its own hosts reach it alone, whatever its percent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TagConfig<R = Arc<RevisionEndpoints>> {
    /// The tag, e.g. `canary`.
    pub tag: String,
    /// Hosts of the tag, e.g. `canary-hello.default.localhost`.
    pub hosts: Vec<String>,
    /// The revision the tag names.
    pub target: Target<R>,
}

/// One route as the controller hands it over (`R` as for [`Target`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteConfig<R = Arc<RevisionEndpoints>> {
    /// Namespace of the Route.
    pub namespace: String,
    /// Name of the Route.
    pub name: String,
    /// Hosts served by the default split, e.g. `hello.default.localhost`, `hello.default`,
    /// `hello.default.svc`, `hello.default.svc.cluster.local`.
    pub hosts: Vec<String>,
    /// The default split as (percent, target); percents sum to 100 unless the list is empty.
    pub traffic: Vec<(u32, Target<R>)>,
    /// Tagged targets.
    pub tags: Vec<TagConfig<R>>,
    /// Knative's `tag-header-based-routing`: a `Knative-Serving-Tag: <tag>` header on a default
    /// host picks that tag's target; an unknown tag falls back to the default split.
    pub tag_header_routing: bool,
    /// The route's own `http-protocol` (Knative's `networking.knative.dev/http-protocol`
    /// annotation), over the cluster's `config-network` setting.
    pub http_protocol: Option<HttpProtocol>,
    /// Header and path rules (Sluice's `spec.rules`), tried in order on a default host before
    /// the split; the first whose match holds picks the request's target by its own split.
    pub rules: Vec<RuleConfig<R>>,
}

/// One rule of a route (`R` as for [`Target`]): when every header match and the path match
/// hold, the request goes by the rule's own split.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleConfig<R = Arc<RevisionEndpoints>> {
    /// The rule's name, if it has one (for status, metrics and the access log).
    pub name: Option<String>,
    /// Header conditions; all must hold.
    pub headers: Vec<HeaderMatch>,
    /// The path condition, if any.
    pub path: Option<PathMatch>,
    /// The rule's split as (percent, target); percents sum to 100.
    pub traffic: Vec<(u32, Target<R>)>,
}

/// One header condition of a rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeaderMatch {
    /// The header's name (matched case-insensitively).
    pub name: String,
    /// What its value must be.
    pub value: ValueMatch,
}

/// What a header's value must be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ValueMatch {
    /// Exactly this value.
    Exact(String),
    /// A value starting with this.
    Prefix(String),
    /// A value this regular expression matches whole (compiled when the table is built).
    Regex(String),
    /// The header is present (true) or absent (false), whatever its value.
    Present(bool),
}

/// What a request's path (without the query) must be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PathMatch {
    /// Exactly this path.
    Exact(String),
    /// A path starting with this.
    Prefix(String),
}

/// Knative's `http-protocol` (ConfigMap `config-network` in `knative-serving`): what a
/// plain-HTTP request for a service host gets when the router also serves HTTPS.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum HttpProtocol {
    /// Served over HTTP as over HTTPS.
    #[default]
    Enabled,
    /// `301 Moved Permanently` to the same URL on HTTPS.
    Redirected,
    /// `404`: the service is reachable over HTTPS only.
    Disabled,
}

/// An `http-protocol` value Knative does not define.
#[derive(Debug, thiserror::Error)]
#[error("http-protocol {0:?} is not one of Enabled, Redirected, Disabled")]
pub struct UnknownHttpProtocol(pub String);

/// Why the table has no backend for a request. [`crate::proxy`] turns it into the response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Miss {
    /// The request names no host (no `Host` header and no URI authority).
    MissingHost,
    /// The request carries more than one `Host` header (and no URI authority): which one it
    /// meant cannot be told, and proxies that picked differently could be played off each other.
    DuplicateHost,
    /// No route serves the host.
    UnknownHost(Box<str>),
    /// The route has no traffic target; the reason names the route.
    NoTraffic(Reason),
}

/// The immutable routing snapshot.
#[derive(Debug, Default)]
pub struct RoutingTable {
    /// Every host, and the routes' names.
    hosts: Hosts,
    /// Each tag's backend and the index of its route (a tag host's entry indexes this).
    tags: Vec<(Arc<Backend>, usize)>,
    routes: Vec<Route>,
    http_protocol: HttpProtocol,
    /// The rule and tag targets' counters, carried over by [`rebuild`](Self::rebuild).
    choices: Choices,
}

/// The backend chosen for a request and how it was chosen.
#[derive(Clone, Copy, Debug)]
pub struct Resolved<'t> {
    /// Where the request goes.
    pub backend: &'t Arc<Backend>,
    /// What picked it.
    pub via: Via<'t>,
}

/// What picked a request's backend (for metrics and the access log; costs nothing to keep).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Via<'t> {
    /// The request's host is a tag host.
    TagHost,
    /// The `Knative-Serving-Tag` header named a tag.
    TagHeader,
    /// A rule matched: its position in the route's rules and its name, if any.
    Rule {
        /// Position in `spec.rules`.
        index: usize,
        /// The rule's name.
        name: Option<&'t str>,
    },
    /// The route's default split.
    Split,
}

/// A target with the error bodies a request to it may need, built the first time one is.
#[derive(Debug)]
pub struct Backend {
    /// Where the traffic goes.
    pub target: Target,
    /// The rule or tag whose target this is (None for the default split's), with its counter.
    pub choice: Option<Arc<Choice>>,
    /// Formatted on the first error response for this target, then kept: most backends never
    /// answer one, and five bodies formatted up front were an eighth of a route's memory.
    reasons: OnceLock<Box<Reasons>>,
}

/// The bodies of the router's own errors for one target (they name its revision and timeout).
#[derive(Debug)]
struct Reasons {
    queue_full: Reason,
    no_capacity: Reason,
    unreachable: Reason,
    failed: Reason,
    timed_out: Reason,
}

/// A compiled route. Cloning shares its parts (a table edit copies every route it keeps).
#[derive(Clone, Debug)]
struct Route {
    /// `namespace/name`, in the table's text.
    name: Span,
    /// Where the namespace ends in `name` (labels want the two apart).
    namespace_len: u32,
    /// The route's own `http-protocol`, over the table's.
    http_protocol: Option<HttpProtocol>,
    split: Split,
    /// The route's own position in the split sequence.
    roller: Arc<Roller>,
    /// What most routes do not have, in one box: inline, their empty forms were 48 bytes of
    /// every route; a route without any of them is one `None` check on a request's path.
    extra: Option<Arc<Extra>>,
}

/// A route's rules, tag header map and programmed percents, when it has any of them.
#[derive(Debug, Default)]
struct Extra {
    /// The default split as programmed: each revision's percent (a revision listed twice
    /// summed, 0 % kept), in the order first listed; empty when the split says the same (no
    /// revision twice, none at 0 %).
    percents: Box<[(Arc<RevisionEndpoints>, u32)]>,
    /// Tag → target, present only when tag-header routing is on.
    header_tags: Option<HashMap<Box<str>, Arc<Backend>>>,
    /// Header and path rules, in order.
    rules: Vec<Rule>,
}

// === impl HttpProtocol ===

impl std::str::FromStr for HttpProtocol {
    type Err = UnknownHttpProtocol;

    /// Knative's values, in any case (it lowercases them).
    fn from_str(s: &str) -> Result<Self, UnknownHttpProtocol> {
        match s.trim().to_ascii_lowercase().as_str() {
            "enabled" => Ok(Self::Enabled),
            "redirected" => Ok(Self::Redirected),
            "disabled" => Ok(Self::Disabled),
            _ => Err(UnknownHttpProtocol(s.to_string())),
        }
    }
}

// === impl Target ===

impl<R> Target<R> {
    /// The same target with its revision reference mapped by `f`.
    pub fn map<S>(self, f: &mut impl FnMut(R) -> S) -> Target<S> {
        Target {
            revision: f(self.revision),
            timeout: self.timeout,
            response_start: self.response_start,
            idle: self.idle,
            protocol: self.protocol,
        }
    }

    /// How long after its arrival a request's response head must have started.
    pub fn head_timeout(&self) -> Duration {
        self.response_start.filter(|r| *r < self.timeout).unwrap_or(self.timeout)
    }
}

impl Target {
    /// The same revision (the same live endpoints, not only the same name) reached the same way.
    fn same_as(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.revision, &other.revision)
            && (self.timeout, self.response_start, self.idle, self.protocol)
                == (other.timeout, other.response_start, other.idle, other.protocol)
    }
}

// === impl RouteConfig ===

impl<R> Default for RouteConfig<R> {
    fn default() -> Self {
        Self {
            namespace: String::new(),
            name: String::new(),
            hosts: Vec::new(),
            traffic: Vec::new(),
            tags: Vec::new(),
            tag_header_routing: false,
            http_protocol: None,
            rules: Vec::new(),
        }
    }
}

impl<R> RouteConfig<R> {
    /// The same route with every target's revision reference mapped by `f` (e.g. a
    /// [`RevisionKey`](crate::endpoints::RevisionKey) resolved to its live endpoints).
    pub fn map<S>(self, mut f: impl FnMut(R) -> S) -> RouteConfig<S> {
        RouteConfig {
            namespace: self.namespace,
            name: self.name,
            hosts: self.hosts,
            traffic: self.traffic.into_iter().map(|(p, t)| (p, t.map(&mut f))).collect(),
            tags: self
                .tags
                .into_iter()
                .map(|t| TagConfig { tag: t.tag, hosts: t.hosts, target: t.target.map(&mut f) })
                .collect(),
            tag_header_routing: self.tag_header_routing,
            http_protocol: self.http_protocol,
            rules: self
                .rules
                .into_iter()
                .map(|r| RuleConfig {
                    name: r.name,
                    headers: r.headers,
                    path: r.path,
                    traffic: r.traffic.into_iter().map(|(p, t)| (p, t.map(&mut f))).collect(),
                })
                .collect(),
        }
    }

    /// Every revision the route sends traffic to, tags and rules included.
    pub fn revisions(&self) -> impl Iterator<Item = &R> {
        self.traffic
            .iter()
            .map(|(_, t)| &t.revision)
            .chain(self.tags.iter().map(|t| &t.target.revision))
            .chain(self.rules.iter().flat_map(|r| r.traffic.iter().map(|(_, t)| &t.revision)))
    }
}

// === impl RoutingTable ===

impl RoutingTable {
    /// Compiles `routes`; fails naming the route (and host) at fault. Each route's split
    /// sequence starts at a random point.
    pub fn new(routes: Vec<RouteConfig>) -> Result<Self, TableError> {
        Self::default().rebuild(routes)
    }

    /// Compiles `routes` as [`new`](Self::new) does, but a route this table already serves
    /// (same namespace and name) continues its split sequence where it is, so a rebuild for
    /// another route's sake does not disturb its shares.
    pub fn rebuild(&self, routes: Vec<RouteConfig>) -> Result<Self, TableError> {
        let mut table = Self { http_protocol: self.http_protocol, ..Self::default() };
        table.routes.reserve(routes.len());
        // Each route finds its predecessor by name in one lookup: a search of the old routes
        // per route made a rebuild quadratic (0.43 s at 10,000 routes, on every route change).
        let before: HashMap<&str, &Route> = self.routes.iter().map(|r| (self.hosts.text(r.name), r)).collect();
        for config in routes {
            let name = format!("{}/{}", config.namespace, config.name);
            let previous = before.get(name.as_str()).copied();
            let route = table.compile(&name, config, table.routes.len(), previous, &self.choices)?;
            table.routes.push(route);
        }
        table.hosts.shrink();
        if table.choices.over_cap > 0 {
            tracing::warn!(
                uncounted = table.choices.over_cap,
                cap = MAX_CHOICES,
                "more rule and tag targets than the metrics registry holds: route_rule_request_count and route_tag_request_count leave these out"
            );
        }
        Ok(table)
    }

    /// This table with route `config.namespace/config.name` set to `config`: replaced where
    /// the table serves it (its split sequences, counters and unchanged backends carried over as
    /// by [`rebuild`](Self::rebuild)), else added. Only `config` is compiled; every other route
    /// is shared with this table. Fails as `rebuild` would for the route (e.g. a host another
    /// route serves); `Ok(None)` when the edit cannot be made alone (the registry of rule and
    /// tag counters is full: which ones it holds depends on every route), so rebuild whole.
    pub fn with_route(&self, config: RouteConfig) -> Result<Option<Self>, TableError> {
        let name = format!("{}/{}", config.namespace, config.name);
        self.edit(&name, Some(config))
    }

    /// This table without route `namespace/name`; None when it does not serve that route, or
    /// when the edit cannot be made alone (as for [`with_route`](Self::with_route)).
    pub fn without_route(&self, namespace: &str, name: &str) -> Option<Self> {
        let name = format!("{namespace}/{name}");
        self.position(&name)?;
        self.edit(&name, None).ok().flatten()
    }

    /// The routes (namespace, name) that send traffic to revision `key` or list a percent
    /// for it, each once, in no particular order.
    pub fn routes_naming(&self, key: &RevisionKey) -> Vec<(&str, &str)> {
        let names = |b: &Arc<Backend>| b.target.revision.key == *key;
        let mut naming: Vec<usize> = self
            .routes
            .iter()
            .enumerate()
            .filter(|(_, r)| {
                r.percents().any(|(rev, _)| rev.key == *key)
                    || r.rules().iter().any(|rule| rule.split.backends().any(names))
            })
            .map(|(i, _)| i)
            .chain(self.tags.iter().filter(|(b, _)| names(b)).map(|(_, route)| *route))
            .collect();
        naming.sort_unstable();
        naming.dedup();
        naming.iter().filter_map(|i| self.routes.get(*i)).map(|r| self.labels(r)).collect()
    }

    /// The index of route `name` (`namespace/name`).
    fn position(&self, name: &str) -> Option<usize> {
        self.routes.iter().position(|r| self.hosts.text(r.name) == name)
    }

    /// This table with route `name` set to `config`, or removed (None). Copies the routes,
    /// tags, host slots and text, drops the old route's entries and compiles the new one in its
    /// place (a removed route's place goes to the last route).
    fn edit(&self, name: &str, config: Option<RouteConfig>) -> Result<Option<Self>, TableError> {
        if self.choices.over_cap > 0 {
            return Ok(None);
        }
        let at = self.position(name);
        let moved = match (&config, at) {
            (None, Some(r)) if r + 1 < self.routes.len() => Some(self.routes.len() - 1),
            _ => None,
        };
        let more = config.as_ref().map_or(0, |c| {
            let tag_hosts = c.tags.iter().flat_map(|t| t.hosts.iter());
            name.len() + c.hosts.iter().chain(tag_hosts).map(String::len).sum::<usize>()
        });
        let mut hosts = self.hosts.copy(more);
        let mut tags = Vec::with_capacity(self.tags.len() + config.as_ref().map_or(0, |c| c.tags.len()));
        let mut choices = self.choices.clone();
        if let Some(r) = at {
            // Each old tag's index in the new table (None: the edited route's).
            let mut tag_at = Vec::with_capacity(self.tags.len());
            for (backend, route) in &self.tags {
                if *route == r {
                    tag_at.push(None);
                    continue;
                }
                tag_at.push(Some(tags.len()));
                tags.push((backend.clone(), if Some(*route) == moved { r } else { *route }));
            }
            let dropped = hosts.remap(|entry| match entry {
                HostEntry::Route(i) if i == r => None,
                HostEntry::Route(i) if Some(i) == moved => Some(HostEntry::Route(r)),
                HostEntry::Route(_) => Some(entry),
                HostEntry::Tag(t) => tag_at.get(t).copied().flatten().map(HostEntry::Tag),
            });
            let old = &self.routes[r];
            let (name_start, name_end) = (old.name.start(), old.name.start() + old.name.len());
            let (start, end) = dropped.map_or((name_start, name_end), |(s, e)| (s.min(name_start), e.max(name_end)));
            hosts.bury(end - start);
            let (namespace, short_name) = self.labels(old);
            choices.forget_route(namespace, short_name);
        } else {
            tags.extend(self.tags.iter().cloned());
        }
        let grows = usize::from(at.is_none() && config.is_some());
        let mut routes = Vec::with_capacity(self.routes.len() + grows);
        routes.extend(self.routes.iter().cloned());
        let mut table = Self { hosts, tags, routes, http_protocol: self.http_protocol, choices };
        match (config, at) {
            (None, Some(r)) => {
                table.routes.swap_remove(r);
            }
            (None, None) => {}
            (Some(config), _) => {
                let index = at.unwrap_or(table.routes.len());
                let previous = at.and_then(|r| self.routes.get(r));
                let route = table.compile(name, config, index, previous, &self.choices)?;
                match table.routes.get_mut(index) {
                    Some(place) => *place = route,
                    None => table.routes.push(route),
                }
            }
        }
        if table.choices.over_cap > 0 {
            return Ok(None);
        }
        if table.hosts.wants_compaction() {
            table.compact();
        }
        table.hosts.shrink_text();
        table.hosts.shrink_if_sparse();
        Ok(Some(table))
    }

    /// Rewrites the host text with only what the routes use (module `hosts`).
    fn compact(&mut self) {
        let Self { hosts, routes, tags, .. } = self;
        let names = routes.iter_mut().map(|r| &mut r.name).collect();
        hosts.compact(names, |entry| match entry {
            HostEntry::Route(i) => i,
            HostEntry::Tag(t) => tags.get(t).map_or(usize::MAX, |(_, route)| *route),
        });
    }

    /// Every rule and tag target's counter the table exposes, in no particular order.
    pub fn choices(&self) -> impl Iterator<Item = &Arc<Choice>> {
        self.choices.iter()
    }

    /// Each route's default split as programmed: (namespace, route, revision, percent), a
    /// revision listed twice summed.
    pub fn traffic_percents(&self) -> impl Iterator<Item = (&str, &str, &str, u32)> {
        self.routes.iter().flat_map(|r| {
            let (namespace, name) = self.labels(r);
            r.percents().map(move |(rev, p)| (namespace, name, rev.key.name.as_str(), p))
        })
    }

    /// The same table with Knative's `http-protocol` set to `protocol`.
    pub fn with_http_protocol(mut self, protocol: HttpProtocol) -> Self {
        self.http_protocol = protocol;
        self
    }

    /// Knative's `http-protocol`, as published with this table.
    pub fn http_protocol(&self) -> HttpProtocol {
        self.http_protocol
    }

    /// The host `req` asks for (its port and any trailing dot removed) when a route serves
    /// it, and the `http-protocol` that applies to it: its route's, else the table's.
    pub fn served_host<'r, B>(&self, req: &'r Request<B>) -> Option<(&'r str, HttpProtocol)> {
        let raw = request_host(req).ok()?;
        let index = host::with_key(raw, |key| self.hosts.get(key).map(|entry| self.route_of(entry)))?;
        let protocol = self.routes.get(index).and_then(|r| r.http_protocol).unwrap_or(self.http_protocol);
        Some((host::strip(raw), protocol))
    }

    /// Number of routes.
    pub fn len(&self) -> usize {
        self.routes.len()
    }

    /// True when no route is programmed.
    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    /// Every host served (normalized), in no particular order.
    pub fn hosts(&self) -> impl Iterator<Item = &str> {
        self.hosts.keys()
    }

    /// The target a request for `host` carrying tag header `tag` (and no header or path a
    /// rule matches) would reach when the split rolls `roll` (0..100); None for an unknown
    /// host or an empty split.
    pub fn target(&self, host: &str, tag: Option<&str>, roll: u32) -> Option<&Target> {
        self.lookup(host, || tag, |_| false, |_| roll).ok().map(|r| &r.backend.target)
    }

    /// The backend for a request, from its head: the host (URI authority, else `Host`), then a
    /// tag host, the `Knative-Serving-Tag` header, the route's first matching rule, or the
    /// route's split. Reads only what the route needs and allocates nothing on success.
    pub fn resolve<B>(&self, req: &Request<B>) -> Result<&Arc<Backend>, Miss> {
        self.decide(req).map(|r| r.backend)
    }

    /// As [`resolve`](Self::resolve), saying also what picked the backend.
    pub fn decide<'s, B>(&'s self, req: &Request<B>) -> Result<Resolved<'s>, Miss> {
        let host = request_host(req)?;
        let tag = || req.headers().get(&KNATIVE_SERVING_TAG).and_then(|v| v.to_str().ok());
        let mut seen = Seen::new(req.headers());
        let matches = |rule: &'s Rule| rule.matches(&mut seen, req.uri().path());
        self.lookup(host, tag, matches, Roller::roll)
    }

    /// As [`decide`](Self::decide) for a request whose route needs no more of it than its
    /// `host` (and, when asked, its `Knative-Serving-Tag` header's value from `tag`): `Ok(None)`
    /// when the route has rules, which need its path and headers (nothing is rolled then).
    pub(crate) fn decide_host<'s, 't>(
        &'s self,
        host: &str,
        tag: impl FnOnce() -> Option<&'t str>,
    ) -> Result<Option<Resolved<'s>>, Miss> {
        match self.find(host)? {
            Found::Resolved(resolved) => Ok(Some(resolved)),
            Found::Route(route) if !route.rules().is_empty() => Ok(None),
            Found::Route(route) => self.pick(route, tag, |_| false, Roller::roll).map(Some),
        }
    }

    /// Host lookup, then a tag host, a tag header, the first rule `matches` accepts, or the
    /// split. `tag` is called only when the route has tag-header routing on; `roll` gives the
    /// next roll of the rule's or the route's sequence.
    fn lookup<'s, 't>(
        &'s self,
        raw_host: &str,
        tag: impl FnOnce() -> Option<&'t str>,
        matches: impl FnMut(&'s Rule) -> bool,
        roll: impl FnMut(&Roller) -> u32,
    ) -> Result<Resolved<'s>, Miss> {
        match self.find(raw_host)? {
            Found::Resolved(resolved) => Ok(resolved),
            Found::Route(route) => self.pick(route, tag, matches, roll),
        }
    }

    /// What `raw_host` names: a tag host's backend, or a route.
    fn find(&self, raw_host: &str) -> Result<Found<'_>, Miss> {
        match host::with_key(raw_host, |key| self.hosts.get(key)) {
            None => Err(Miss::UnknownHost(raw_host.into())),
            Some(HostEntry::Tag(i)) => Ok(Found::Resolved(Resolved { backend: &self.tags[i].0, via: Via::TagHost })),
            Some(HostEntry::Route(i)) => Ok(Found::Route(&self.routes[i])),
        }
    }

    /// A tag header, the first rule `matches` accepts, or the split of `route`.
    fn pick<'s, 't>(
        &'s self,
        route: &'s Route,
        tag: impl FnOnce() -> Option<&'t str>,
        mut matches: impl FnMut(&'s Rule) -> bool,
        mut roll: impl FnMut(&Roller) -> u32,
    ) -> Result<Resolved<'s>, Miss> {
        if let Some(tags) = route.header_tags()
            && let Some(backend) = tag().and_then(|tag| tags.get(tag))
        {
            return Ok(Resolved { backend, via: Via::TagHeader });
        }
        for (index, rule) in route.rules().iter().enumerate() {
            // A compiled rule's split is never empty (its percents sum to 100).
            if matches(rule)
                && let Some(backend) = rule.split.pick(roll(&rule.roller))
            {
                return Ok(Resolved { backend, via: Via::Rule { index, name: rule.name.as_deref() } });
            }
        }
        match route.split.pick(roll(&route.roller)) {
            Some(backend) => Ok(Resolved { backend, via: Via::Split }),
            // Formatted here, on the miss: a route without traffic is rare and short-lived.
            None => Err(Miss::NoTraffic(Reason::new(format_args!(
                "route {} has no traffic target",
                self.hosts.text(route.name)
            )))),
        }
    }

    /// Compiles route `name` to take index `index`: places and indexes its hosts, registers
    /// its tags and choices; `previous` is the route it replaces, `carried` the replaced table's
    /// choices.
    fn compile(
        &mut self,
        name: &str,
        config: RouteConfig,
        index: usize,
        previous: Option<&Route>,
        carried: &Choices,
    ) -> Result<Route, TableError> {
        let (namespace, short_name) = (config.namespace.clone(), config.name.clone());
        if !config.traffic.is_empty() {
            let sum: u64 = config.traffic.iter().map(|(p, _)| u64::from(*p)).sum();
            if sum != 100 {
                return Err(TableError::PercentSum { route: name.to_string(), sum });
            }
        }
        let from = self.hosts.mark();
        self.place_hosts(&config, from, name)?;
        let name_span = self.hosts.place(name, from, name)?;
        for raw in &config.hosts {
            self.claim(raw, HostEntry::Route(index), index, from, name)?;
        }
        let mut header_tags = config.tag_header_routing.then(HashMap::new);
        let mut seen = Vec::with_capacity(config.tags.len());
        for tag in config.tags {
            if seen.contains(&tag.tag) {
                return Err(TableError::DuplicateTag { route: name.to_string(), tag: tag.tag });
            }
            let choice =
                ChoiceScope { namespace: &namespace, route: &short_name, previous: carried, next: &mut self.choices }
                    .choice(ChoiceKind::Tag, &tag.tag, &tag.target.revision.key.name);
            let backend = Backend::new(tag.target, Some(choice));
            let tag_index = self.tags.len();
            self.tags.push((backend.clone(), index));
            for raw in &tag.hosts {
                self.claim(raw, HostEntry::Tag(tag_index), index, from, name)?;
            }
            if let Some(tags) = &mut header_tags {
                tags.insert(tag.tag.clone().into_boxed_str(), backend);
            }
            seen.push(tag.tag);
        }
        let mut scope =
            ChoiceScope { namespace: &namespace, route: &short_name, previous: carried, next: &mut self.choices };
        let rules = rules::compile(name, config.rules, previous.map_or(&[], |r| r.rules()), &mut scope)?;
        let mut percents: Vec<(Arc<RevisionEndpoints>, u32)> = Vec::new();
        for (p, t) in &config.traffic {
            match percents.iter_mut().find(|(rev, _)| rev.key.name == t.revision.key.name) {
                Some((_, sum)) => *sum += p,
                None => percents.push((t.revision.clone(), *p)),
            }
        }
        let roller = previous.map_or_else(|| Arc::new(Roller::random()), |r| r.roller.clone());
        let kept = previous.map(|r| &r.split);
        let split = Split::new(config.traffic.into_iter().map(|(p, t)| (p, Backend::reuse(kept, t))));
        let said_by_split = percents.len() == split.shares().count()
            && percents
                .iter()
                .zip(split.shares())
                .all(|((rev, p), (share, b))| Arc::ptr_eq(rev, &b.target.revision) && *p == share);
        let extra =
            Extra { percents: if said_by_split { Box::default() } else { percents.into() }, header_tags, rules };
        let has_extra = !extra.percents.is_empty() || extra.header_tags.is_some() || !extra.rules.is_empty();
        Ok(Route {
            name: name_span,
            namespace_len: u32::try_from(namespace.len())
                .map_err(|_| TableError::TooLarge { route: name.to_string() })?,
            http_protocol: config.http_protocol,
            split,
            roller,
            extra: has_extra.then(|| Arc::new(extra)),
        })
    }

    /// Places the text of the route's hosts, longest first, so that a host inside another
    /// (`svc.ns` in `svc.ns.svc.cluster.local`) takes no bytes of its own.
    fn place_hosts(&mut self, config: &RouteConfig, from: usize, route: &str) -> Result<(), TableError> {
        let mut keys: Vec<Box<str>> = config
            .hosts
            .iter()
            .chain(config.tags.iter().flat_map(|t| t.hosts.iter()))
            .filter_map(|raw| host::config_key(raw))
            .collect();
        keys.sort_unstable_by_key(|k| std::cmp::Reverse(k.len()));
        for key in &keys {
            self.hosts.place(key, from, route)?;
        }
        Ok(())
    }

    /// Indexes host `raw` to `entry` of route `index` (named `route`, its text from `from` on).
    fn claim(&mut self, raw: &str, entry: HostEntry, index: usize, from: usize, route: &str) -> Result<(), TableError> {
        let key = host::config_key(raw).ok_or_else(|| TableError::EmptyHost { route: route.to_string() })?;
        match self.hosts.get(&key) {
            None => self.hosts.insert(&key, entry, from, route),
            // A host listed twice for the same purpose (e.g. a domain that makes two of the
            // default forms coincide) is harmless.
            Some(first) if first == entry => Ok(()),
            Some(first) => {
                let owner = self.route_of(first);
                let first = match self.routes.get(owner) {
                    Some(r) if owner != index => self.hosts.text(r.name).to_string(),
                    _ => route.to_string(),
                };
                Err(TableError::DuplicateHost { host: key.into_string(), first, second: route.to_string() })
            }
        }
    }

    /// The index of the route a host entry belongs to.
    fn route_of(&self, entry: HostEntry) -> usize {
        match entry {
            HostEntry::Route(i) => i,
            HostEntry::Tag(t) => self.tags[t].1,
        }
    }

    /// A route's namespace and name.
    fn labels(&self, route: &Route) -> (&str, &str) {
        let name = self.hosts.text(route.name);
        let (namespace, rest) = name.split_at(route.namespace_len as usize);
        (namespace, rest.strip_prefix('/').unwrap_or(rest))
    }
}

/// What a host names in the table.
enum Found<'s> {
    /// A tag host: its backend.
    Resolved(Resolved<'s>),
    Route(&'s Route),
}

/// The host the client asked for: the URI authority (h2's `:authority`, or an absolute-form
/// HTTP/1 target, which RFC 9112 says wins over `Host`), else the one `Host` header.
fn request_host<B>(req: &Request<B>) -> Result<&str, Miss> {
    if let Some(authority) = req.uri().authority() {
        return Ok(authority.host());
    }
    let mut hosts = req.headers().get_all(HOST).iter();
    let host = hosts.next().ok_or(Miss::MissingHost)?;
    if hosts.next().is_some() {
        return Err(Miss::DuplicateHost);
    }
    host.to_str().map_err(|_| Miss::MissingHost)
}

// === impl Backend ===

impl Backend {
    fn new(target: Target, choice: Option<Arc<Choice>>) -> Arc<Self> {
        Arc::new(Self { target, choice, reasons: OnceLock::new() })
    }

    /// The body of a 503 for a full queue.
    pub(crate) fn queue_full(&self) -> Reason {
        self.reasons().queue_full.clone()
    }

    /// The body of a 504 for a request no instance could take within the timeout.
    pub(crate) fn no_capacity(&self) -> Reason {
        self.reasons().no_capacity.clone()
    }

    /// The body of a 502 for a connection that could not be made.
    pub(crate) fn unreachable(&self) -> Reason {
        self.reasons().unreachable.clone()
    }

    /// The body of a 502 for an instance that closed before its response head.
    pub(crate) fn failed(&self) -> Reason {
        self.reasons().failed.clone()
    }

    /// The body of a 504 for a response head that did not start in time.
    pub(crate) fn timed_out(&self) -> Reason {
        self.reasons().timed_out.clone()
    }

    fn reasons(&self) -> &Reasons {
        self.reasons.get_or_init(|| Box::new(Reasons::new(&self.target)))
    }

    /// The default split's backend for `target`: the one `previous` (the route's split in the
    /// table being replaced) already has for the same target, else a new one. A rebuild for
    /// another route's sake then allocates and formats nothing for this route's split.
    fn reuse(previous: Option<&Split>, target: Target) -> Arc<Self> {
        let same = |b: &&Arc<Backend>| b.choice.is_none() && b.target.same_as(&target);
        match previous.and_then(|split| split.backends().find(same)) {
            Some(kept) => kept.clone(),
            None => Self::new(target, None),
        }
    }

    /// Counts a request this backend was picked for, when a rule or tag picked it.
    pub fn picked(&self) {
        if let Some(choice) = &self.choice {
            choice.picked();
        }
    }
}

// === impl Reasons ===

impl Reasons {
    fn new(target: &Target) -> Self {
        let key = &target.revision.key;
        Self {
            queue_full: Reason::new(format_args!("too many requests are waiting for revision {key}; retry later")),
            no_capacity: Reason::new(format_args!(
                "no instance of revision {key} could take the request within its timeout of {:?}",
                target.head_timeout()
            )),
            unreachable: Reason::new(format_args!("could not connect to revision {key}")),
            failed: Reason::new(format_args!("revision {key} closed the connection before responding")),
            timed_out: Reason::new(format_args!("revision {key} did not respond within {:?}", target.head_timeout())),
        }
    }
}

// === impl Route ===

impl Route {
    /// Each revision's percent of the default split, as programmed.
    fn percents(&self) -> impl Iterator<Item = (&Arc<RevisionEndpoints>, u32)> {
        let listed: &[_] = self.extra.as_ref().map_or(&[], |e| &e.percents);
        let split = listed.is_empty().then(|| self.split.shares()).into_iter().flatten();
        listed.iter().map(|(rev, p)| (rev, *p)).chain(split.map(|(p, b)| (&b.target.revision, p)))
    }

    /// Its header and path rules, in order.
    fn rules(&self) -> &[Rule] {
        self.extra.as_ref().map_or(&[], |e| &e.rules)
    }

    /// Tag → target, when tag-header routing is on.
    fn header_tags(&self) -> Option<&HashMap<Box<str>, Arc<Backend>>> {
        self.extra.as_ref()?.header_tags.as_ref()
    }
}

#[cfg(test)]
mod tests;
