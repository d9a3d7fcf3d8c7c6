//! `spec.rules` of a Route or Service (Sluice's extension): each rule's match (header names,
//! exactly one condition per header, regexes that compile within a size limit, a path starting
//! with `/`), its traffic (shaped as `spec.traffic`, or naming a tag of it), unique names, and
//! caps on how much a route may ask the router to check per request.

use std::collections::BTreeMap;

use super::go_list;
use super::route::{Owner, target};
use crate::field_error::{FieldError, quote_cut};
use crate::naming::dns1035_label;
use crate::route::{HeaderMatch, PathMatch, RuleMatch, TrafficRule, TrafficTarget};

/// The most rules a route may have.
pub const MAX_RULES: usize = 64;
/// The most header conditions one rule may have.
pub const MAX_HEADERS: usize = 16;
/// The most header regexes one route may hold across its rules: each compiles to up to
/// [`REGEX_SIZE_LIMIT`] and may keep a lazy DFA cache per thread, so their number is capped.
pub const MAX_REGEXES: usize = 16;
/// The longest header name, value, prefix, regex or path, in bytes.
pub const MAX_VALUE_BYTES: usize = 1024;
/// The most memory a header regex may compile to (`regex::RegexBuilder::size_limit`): a 1 KiB
/// pattern such as `a{1000}{1000}` cannot make admission or the router's table build blow up.
pub const REGEX_SIZE_LIMIT: usize = 64 * 1024;
/// The most memory each header regex's lazy DFA cache may take per thread using it.
pub const REGEX_DFA_LIMIT: usize = 256 * 1024;

/// A header regex compiled as admission checks it and as the router's table compiles it (one
/// function for both, so a regex admitted cannot fail the router): over bytes, so a value that
/// is not UTF-8 is matched rather than refused; anchored, `^(?:re)$`, so it must match the whole
/// value (Envoy's and Istio's semantics); within [`REGEX_SIZE_LIMIT`]. The pattern is parsed
/// alone first: wrapped unparsed, `a)|(b` would become a valid regex matching prefixes, and an
/// error then points into the text as written.
pub fn compile_regex(re: &str) -> Result<regex::bytes::Regex, String> {
    // As `regex::bytes` parses: a pattern may match bytes that are not UTF-8, e.g. `(?-u:.)`.
    regex_syntax::ParserBuilder::new().utf8(false).build().parse(re).map_err(|e| e.to_string())?;
    regex::bytes::RegexBuilder::new(&format!("^(?:{re})$"))
        .size_limit(REGEX_SIZE_LIMIT)
        .dfa_size_limit(REGEX_DFA_LIMIT)
        .build()
        .map_err(|e| e.to_string())
}

/// Validates a spec's rules against its `traffic` (whose tags rule targets may name); paths
/// relative to `rules`.
pub(super) fn rules(rules: &[TrafficRule], traffic: &[TrafficTarget], owner: Owner) -> FieldError {
    let mut errs = FieldError::default();
    if rules.len() > MAX_RULES {
        errs.push(FieldError::new(format!("at most {MAX_RULES} rules are allowed, got {}", rules.len()), &[""]));
        return errs;
    }
    let regexes = rules.iter().flat_map(|r| r.matches.headers.iter()).filter(|h| h.regex.is_some()).count();
    if regexes > MAX_REGEXES {
        errs.push(FieldError::new(
            format!("at most {MAX_REGEXES} header regexes are allowed in one route's rules, got {regexes}"),
            &[""],
        ));
        return errs;
    }
    let tags: Vec<&str> = traffic.iter().filter_map(|t| t.tag.as_deref()).filter(|t| !t.is_empty()).collect();
    let mut first_use: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, rule) in rules.iter().enumerate() {
        errs.push(one_rule(rule, &tags, owner).via_index(i));
        let Some(name) = rule.name.as_deref().filter(|n| !n.is_empty()) else { continue };
        match first_use.get(name) {
            Some(first) => errs.push(FieldError::new(
                format!("Multiple definitions for {}", quote_cut(name)),
                &[&format!("[{i}].name"), &format!("[{first}].name")],
            )),
            None => {
                first_use.insert(name, i);
            }
        }
    }
    errs
}

/// One rule, paths relative to it.
fn one_rule(rule: &TrafficRule, tags: &[&str], owner: Owner) -> FieldError {
    let mut errs = FieldError::default();
    if let Some(name) = rule.name.as_deref().filter(|n| !n.is_empty()) {
        let msgs = dns1035_label(name);
        if !msgs.is_empty() {
            errs.push(FieldError::invalid_value(format!("not a DNS 1035 label: {}", go_list(&msgs)), "name"));
        }
    }
    errs.push(rule_match(&rule.matches).via_field("match"));
    errs.push(rule_traffic(&rule.traffic, tags, owner).via_field("traffic"));
    errs
}

/// A rule's match: at least one condition, at most [`MAX_HEADERS`] on headers.
fn rule_match(m: &RuleMatch) -> FieldError {
    if m.headers.is_empty() && m.path.is_none() {
        return FieldError::new("empty match: expected headers, path or both", &[""]);
    }
    let mut errs = FieldError::default();
    if m.headers.len() > MAX_HEADERS {
        errs.push(FieldError::new(
            format!("at most {MAX_HEADERS} header matches are allowed in a rule, got {}", m.headers.len()),
            &["headers"],
        ));
    } else {
        for (j, h) in m.headers.iter().enumerate() {
            errs.push(header(h).via_field_index("headers", j));
        }
    }
    if let Some(p) = &m.path {
        errs.push(path(p).via_field("path"));
    }
    errs
}

/// One header condition: an HTTP token for a name and exactly one of its four conditions.
fn header(h: &HeaderMatch) -> FieldError {
    let mut errs = FieldError::default();
    if h.name.is_empty() {
        errs.push(FieldError::missing(&["name"]));
    } else if let Some(e) = too_long(&h.name, "name") {
        errs.push(e);
    } else if !h.name.bytes().all(is_token_byte) {
        errs.push(FieldError::invalid_value_details(
            quote_cut(&h.name),
            "name",
            "a header name is an HTTP token: letters, digits and !#$%&'*+-.^_`|~",
        ));
    }
    let set: Vec<&str> = [
        ("exact", h.exact.is_some()),
        ("prefix", h.prefix.is_some()),
        ("regex", h.regex.is_some()),
        ("present", h.present.is_some()),
    ]
    .into_iter()
    .filter_map(|(field, set)| set.then_some(field))
    .collect();
    match set.len() {
        0 => errs.push(FieldError::missing_one_of(&["exact", "prefix", "regex", "present"])),
        1 => {}
        _ => errs.push(FieldError::multiple_one_of(&set)),
    }
    for (field, value) in [("exact", &h.exact), ("prefix", &h.prefix)] {
        if let Some(v) = value {
            errs.push(too_long(v, field).unwrap_or_else(|| header_value(v, field)));
        }
    }
    if let Some(re) = &h.regex {
        errs.push(too_long(re, "regex").unwrap_or_else(|| regex(re)));
    }
    errs
}

/// A header regex, compiled as the router compiles it.
fn regex(re: &str) -> FieldError {
    match compile_regex(re) {
        Ok(_) => FieldError::default(),
        Err(e) => FieldError::invalid_value_details(quote_cut(re), "regex", e),
    }
}

/// A value a header can carry: no control characters but tab (so a condition that could never
/// hold is refused rather than kept).
fn header_value(v: &str, field: &str) -> FieldError {
    if v.bytes().any(|b| (b < 0x20 && b != b'\t') || b == 0x7f) {
        FieldError::invalid_value_details(quote_cut(v), field, "a header value has no control characters")
    } else {
        FieldError::default()
    }
}

/// The path condition: exactly one of `exact` and `prefix`, starting with `/`.
fn path(p: &PathMatch) -> FieldError {
    let mut errs = match (&p.exact, &p.prefix) {
        (None, None) => return FieldError::missing_one_of(&["exact", "prefix"]),
        (Some(_), Some(_)) => FieldError::multiple_one_of(&["exact", "prefix"]),
        _ => FieldError::default(),
    };
    for (field, value) in [("exact", &p.exact), ("prefix", &p.prefix)] {
        let Some(v) = value else { continue };
        if let Some(e) = too_long(v, field) {
            errs.push(e);
        } else if !v.starts_with('/') {
            errs.push(FieldError::invalid_value_details(quote_cut(v), field, "a path starts with '/'"));
        } else if v.bytes().any(|b| b <= b' ' || b == 0x7f || b == b'?' || b == b'#') {
            errs.push(FieldError::invalid_value_details(
                quote_cut(v),
                field,
                "a path has no spaces, control characters, '?' or '#' (the query is not matched)",
            ));
        }
    }
    errs
}

/// A rule's split: targets as in `spec.traffic` or naming one of its `tags`, summing to 100.
fn rule_traffic(targets: &[TrafficTarget], tags: &[&str], owner: Owner) -> FieldError {
    let mut errs = FieldError::default();
    let mut sum: i64 = 0;
    for (i, tt) in targets.iter().enumerate() {
        sum = sum.saturating_add(tt.percent.unwrap_or(0));
        let e = match tt.tag.as_deref().filter(|t| !t.is_empty()) {
            Some(tag) => tag_reference(tt, tag, tags),
            None => target(tt, owner),
        };
        errs.push(e.via_index(i));
    }
    if sum != 100 {
        errs.push(FieldError::new(format!("Traffic targets sum to {sum}, want 100"), &[""]));
    }
    errs
}

/// A target naming a tag of `spec.traffic`: the tag picks the revision, so nothing else may.
fn tag_reference(tt: &TrafficTarget, tag: &str, tags: &[&str]) -> FieldError {
    let mut errs = FieldError::default();
    if !tags.contains(&tag) {
        errs.push(FieldError::invalid_value_details(
            quote_cut(tag),
            "tag",
            format!("a rule's target may name a tag of spec.traffic; its tags are {}", tag_list(tags)),
        ));
    }
    let set: Vec<&str> = [
        ("revisionName", tt.revision_name.as_deref().is_some_and(|s| !s.is_empty())),
        ("configurationName", tt.configuration_name.as_deref().is_some_and(|s| !s.is_empty())),
        ("latestRevision", tt.latest_revision.is_some()),
        ("url", tt.url.as_deref().is_some_and(|s| !s.is_empty())),
    ]
    .into_iter()
    .filter_map(|(field, set)| set.then_some(field))
    .collect();
    if !set.is_empty() {
        errs.push(FieldError::with_details(
            "must not set the field(s)",
            &set,
            "a target naming a tag goes to the tag's revision",
        ));
    }
    if let Some(p) = tt.percent
        && !(0..=100).contains(&p)
    {
        errs.push(FieldError::out_of_bounds(p, 0, 100, "percent"));
    }
    errs
}

fn tag_list(tags: &[&str]) -> String {
    if tags.is_empty() { "none".into() } else { tags.iter().map(|t| format!("{t:?}")).collect::<Vec<_>>().join(", ") }
}

/// `value` longer than [`MAX_VALUE_BYTES`], as an error at `field`.
fn too_long(value: &str, field: &str) -> Option<FieldError> {
    (value.len() > MAX_VALUE_BYTES)
        .then(|| FieldError::new(format!("longer than {MAX_VALUE_BYTES} bytes ({} bytes)", value.len()), &[field]))
}

/// RFC 9110's `tchar`.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}
