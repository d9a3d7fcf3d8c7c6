//! Why a set of routes cannot become a table: each error names the route (and the host, tag
//! or rule) at fault.

/// Why a set of routes cannot become a table.
#[derive(Debug, thiserror::Error)]
pub enum TableError {
    /// Traffic percents do not sum to 100.
    #[error("route {route}: traffic percents sum to {sum}, not 100")]
    PercentSum {
        /// `namespace/name`.
        route: String,
        /// What they sum to.
        sum: u64,
    },
    /// Two routes (or one route twice) claim the same host.
    #[error("host {host:?} is claimed by both route {first} and route {second}")]
    DuplicateHost {
        /// The host, normalized.
        host: String,
        /// The route that claimed it first.
        first: String,
        /// The route that claimed it again.
        second: String,
    },
    /// A host is empty.
    #[error("route {route} has an empty host")]
    EmptyHost {
        /// `namespace/name`.
        route: String,
    },
    /// A tag appears twice in one route.
    #[error("route {route} has tag {tag:?} twice")]
    DuplicateTag {
        /// `namespace/name`.
        route: String,
        /// The tag.
        tag: String,
    },
    /// A rule's traffic percents do not sum to 100 (an empty split, or one with every target
    /// at 0 %, included: a rule that matched must have somewhere to send the request).
    #[error("route {route} {rule}: traffic percents sum to {sum}, not 100")]
    RulePercentSum {
        /// `namespace/name`.
        route: String,
        /// `rules[i]`, with the rule's name when it has one.
        rule: String,
        /// What they sum to.
        sum: u64,
    },
    /// Two rules of one route have the same name.
    #[error("route {route} {rule}: another rule has the same name")]
    DuplicateRule {
        /// `namespace/name`.
        route: String,
        /// `rules[i] (name)`: the second rule with the name.
        rule: String,
    },
    /// A rule's header name is not an HTTP header name.
    #[error("route {route} {rule}: {name:?} is not a valid HTTP header name")]
    RuleHeaderName {
        /// `namespace/name`.
        route: String,
        /// `rules[i]`, with the rule's name when it has one.
        rule: String,
        /// The name as given.
        name: String,
    },
    /// A rule's header regex does not compile (or its compiled form is too large).
    #[error("route {route} {rule}: header {header}: invalid regex: {error}")]
    RuleRegex {
        /// `namespace/name`.
        route: String,
        /// `rules[i]`, with the rule's name when it has one.
        rule: String,
        /// The header the regex is for.
        header: String,
        /// The regex crate's message.
        error: String,
    },
    /// The table's host keys and route names would pass 4 GiB, or its routes or tags 2^31.
    #[error("route {route}: the routing table is too large to add it to")]
    TooLarge {
        /// `namespace/name`.
        route: String,
    },
    /// A rule's path does not start with `/`, so no request could match it.
    #[error("route {route} {rule}: path {path:?} does not start with '/'")]
    RulePath {
        /// `namespace/name`.
        route: String,
        /// `rules[i]`, with the rule's name when it has one.
        rule: String,
        /// The path as given.
        path: String,
    },
}

// === impl TableError ===

impl TableError {
    /// Whether the error is about route `namespace/name` (for a host claimed twice: the route
    /// that claimed it second).
    pub fn is_about(&self, namespace: &str, name: &str) -> bool {
        let route = match self {
            Self::PercentSum { route, .. }
            | Self::EmptyHost { route }
            | Self::DuplicateTag { route, .. }
            | Self::RulePercentSum { route, .. }
            | Self::DuplicateRule { route, .. }
            | Self::RuleHeaderName { route, .. }
            | Self::RuleRegex { route, .. }
            | Self::RulePath { route, .. }
            | Self::TooLarge { route } => route,
            Self::DuplicateHost { second, .. } => second,
        };
        route.split_once('/') == Some((namespace, name))
    }
}
