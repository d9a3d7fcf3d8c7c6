//! Header and path rules (Sluice's `spec.rules`): compiled once when the table is built
//! (header names parsed, regexes compiled anchored to the whole value, each rule's split laid
//! out) and matched per request by byte comparisons, without allocating.
//!
//! A rule's match is kept across rebuilds while its conditions are unchanged, so a rebuild for
//! another route's sake compiles no regex again; its split sequence ([`Roller`]) is kept too,
//! keyed by the rule's name (or, unnamed, its position), so its shares stay exact.

use std::sync::Arc;

use http::header::{GetAll, ValueIter};
use http::{HeaderMap, HeaderName, HeaderValue};
use regex::bytes::Regex;

use super::choice::{ChoiceKind, ChoiceScope};
use super::split::{Roller, Split};
use super::{Backend, HeaderMatch, PathMatch, RuleConfig, TableError, ValueMatch};

/// A compiled rule: its conditions and its own split.
#[derive(Debug)]
pub(crate) struct Rule {
    /// The rule's name, if it has one.
    pub(crate) name: Option<Box<str>>,
    matcher: Arc<Matcher>,
    pub(crate) split: Split,
    /// The rule's own position in its split sequence.
    pub(crate) roller: Arc<Roller>,
}

/// A rule's conditions, compiled, with the plain data they came from (to reuse them when a
/// rebuild brings the same conditions).
#[derive(Debug)]
struct Matcher {
    headers: Box<[HeaderCondition]>,
    path: Option<PathMatch>,
    source: Vec<HeaderMatch>,
}

#[derive(Debug)]
struct HeaderCondition {
    name: HeaderName,
    value: ValueCondition,
}

#[derive(Debug)]
enum ValueCondition {
    Exact(Box<[u8]>),
    Prefix(Box<[u8]>),
    /// Anchored: `^(?:pattern)$`.
    Regex(Regex),
    Present(bool),
}

/// Distinct header names whose lookups one request keeps; a route's rules testing more names
/// than this look the rest up each time.
const SEEN: usize = 8;

/// A request's headers as the rules of its route read them: each header name is looked up
/// once, however many rules test it (rules often test one header: `x-tenant` is `a`, `b`, …).
pub(crate) struct Seen<'r, 't> {
    headers: &'r HeaderMap,
    found: [Option<(&'t HeaderName, GetAll<'r, HeaderValue>)>; SEEN],
}

/// How a rule is named in errors: `rules[2]`, or `rules[2] (iphone-alpha)`.
fn label(index: usize, name: Option<&str>) -> String {
    match name {
        Some(name) => format!("rules[{index}] ({name})"),
        None => format!("rules[{index}]"),
    }
}

/// Compiles `route`'s rules in order. `previous` are the rules the route had in the table
/// being replaced: a rule with the same key (name, else position) keeps its split sequence,
/// and its compiled conditions when they are unchanged.
///
/// A rule's percents must sum to 100: an empty split, or one whose targets are all at 0 %,
/// is refused rather than skipped, since validation guarantees 100 and a rule that matched
/// but could send nowhere would have no sensible answer.
pub(crate) fn compile(
    route: &str,
    configs: Vec<RuleConfig>,
    previous: &[Rule],
    scope: &mut ChoiceScope<'_>,
) -> Result<Vec<Rule>, TableError> {
    let mut rules: Vec<Rule> = Vec::with_capacity(configs.len());
    for (index, config) in configs.into_iter().enumerate() {
        let rule = || label(index, config.name.as_deref());
        if let Some(name) = &config.name
            && rules.iter().any(|r| r.name.as_deref() == Some(name))
        {
            return Err(TableError::DuplicateRule { route: route.to_string(), rule: rule() });
        }
        let sum: u64 = config.traffic.iter().map(|(p, _)| u64::from(*p)).sum();
        if sum != 100 {
            return Err(TableError::RulePercentSum { route: route.to_string(), rule: rule(), sum });
        }
        let before = match &config.name {
            Some(name) => previous.iter().find(|r| r.name.as_deref() == Some(name)),
            None => previous.get(index).filter(|r| r.name.is_none()),
        };
        let matcher = match before {
            Some(r) if r.matcher.source == config.headers && r.matcher.path == config.path => r.matcher.clone(),
            _ => Arc::new(Matcher::compile(config.headers, config.path).map_err(|fault| fault.at(route, rule()))?),
        };
        let roller = before.map_or_else(|| Arc::new(Roller::random()), |r| r.roller.clone());
        // The `rule` label: the rule's name, else its position.
        let metric_name = config.name.clone().unwrap_or_else(|| format!("rules[{index}]"));
        let split = Split::new(config.traffic.into_iter().map(|(p, t)| {
            let choice = scope.choice(ChoiceKind::Rule, &metric_name, &t.revision.key.name);
            (p, Backend::new(t, Some(choice)))
        }));
        rules.push(Rule { name: config.name.map(String::into_boxed_str), matcher, split, roller });
    }
    Ok(rules)
}

/// What is wrong with one condition, before the route and rule are known.
enum Fault {
    HeaderName(String),
    Regex { header: String, error: String },
    Path(String),
}

// === impl Fault ===

impl Fault {
    fn at(self, route: &str, rule: String) -> TableError {
        let route = route.to_string();
        match self {
            Fault::HeaderName(name) => TableError::RuleHeaderName { route, rule, name },
            Fault::Regex { header, error } => TableError::RuleRegex { route, rule, header, error },
            Fault::Path(path) => TableError::RulePath { route, rule, path },
        }
    }
}

// === impl Rule ===

impl Rule {
    /// Whether every condition holds for a request whose headers `seen` reads and whose path
    /// (no query) is `path`.
    pub(crate) fn matches<'t>(&'t self, seen: &mut Seen<'_, 't>, path: &str) -> bool {
        self.matcher.matches_in(seen, path)
    }
}

// === impl Seen ===

impl<'r, 't> Seen<'r, 't> {
    /// Nothing looked up yet in `headers`.
    pub(crate) fn new(headers: &'r HeaderMap) -> Self {
        Self { headers, found: [const { None }; SEEN] }
    }

    /// The values of header `name`, looked up on its first use.
    fn values(&mut self, name: &'t HeaderName) -> ValueIter<'r, HeaderValue> {
        for slot in &mut self.found {
            match slot {
                Some((seen, values)) if *seen == name => return values.iter(),
                Some(_) => {}
                None => {
                    let values = self.headers.get_all(name);
                    let iter = values.iter();
                    *slot = Some((name, values));
                    return iter;
                }
            }
        }
        self.headers.get_all(name).iter()
    }
}

// === impl Matcher ===

impl Matcher {
    fn compile(source: Vec<HeaderMatch>, path: Option<PathMatch>) -> Result<Self, Fault> {
        if let Some(PathMatch::Exact(p) | PathMatch::Prefix(p)) = &path
            && !p.starts_with('/')
        {
            return Err(Fault::Path(p.clone()));
        }
        let headers = source.iter().map(HeaderCondition::compile).collect::<Result<_, _>>()?;
        Ok(Self { headers, path, source })
    }

    #[cfg(test)]
    fn matches(&self, headers: &HeaderMap, path: &str) -> bool {
        self.matches_in(&mut Seen::new(headers), path)
    }

    fn matches_in<'t>(&'t self, seen: &mut Seen<'_, 't>, path: &str) -> bool {
        let path_holds = match &self.path {
            None => true,
            Some(PathMatch::Exact(p)) => path == p,
            Some(PathMatch::Prefix(p)) => path.starts_with(p.as_str()),
        };
        path_holds && self.headers.iter().all(|h| h.holds(seen))
    }
}

// === impl HeaderCondition ===

impl HeaderCondition {
    fn compile(config: &HeaderMatch) -> Result<Self, Fault> {
        let name =
            HeaderName::from_bytes(config.name.as_bytes()).map_err(|_| Fault::HeaderName(config.name.clone()))?;
        let value = match &config.value {
            ValueMatch::Exact(v) => ValueCondition::Exact(v.as_bytes().into()),
            ValueMatch::Prefix(v) => ValueCondition::Prefix(v.as_bytes().into()),
            ValueMatch::Regex(pattern) => ValueCondition::Regex(
                sluice_api::validation::rules::compile_regex(pattern)
                    .map_err(|error| Fault::Regex { header: config.name.clone(), error })?,
            ),
            ValueMatch::Present(present) => ValueCondition::Present(*present),
        };
        Ok(Self { name, value })
    }

    /// Whether the header holds: a header sent several times holds when any one value does.
    fn holds<'t>(&'t self, seen: &mut Seen<'_, 't>) -> bool {
        let mut values = seen.values(&self.name);
        match &self.value {
            ValueCondition::Exact(want) => values.any(|v| v.as_bytes() == &**want),
            ValueCondition::Prefix(want) => values.any(|v| v.as_bytes().starts_with(want)),
            ValueCondition::Regex(re) => values.any(|v| re.is_match(v.as_bytes())),
            ValueCondition::Present(present) => values.next().is_some() == *present,
        }
    }
}

#[cfg(test)]
mod tests;
