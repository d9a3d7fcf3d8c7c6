//! Validation errors with Knative's shape: a message, the field paths it concerns, optional
//! details, composed as the error travels up through `via_field` / `via_index`.
//!
//! Rendering follows `knative.dev/pkg/apis.FieldError`: errors with the same message and details
//! merge their paths, paths are sorted, errors are sorted by message, and each renders as
//! `"<message>: <path>, <path>"` (plus `"\n<details>"` when there are details).

use std::collections::BTreeMap;
use std::fmt;

/// One or more validation failures, each naming the fields it concerns.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldError {
    errors: Vec<FieldIssue>,
}

/// A single validation failure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldIssue {
    /// What is wrong, e.g. `Traffic targets sum to 90, want 100`.
    pub message: String,
    /// Dotted field paths, e.g. `spec.traffic[0].percent`.
    pub paths: Vec<String>,
    /// Extra explanation, shown on the next line.
    pub details: String,
}

/// The longest text quoted whole in an error message: a label value or patch path comes from
/// the request and can be as large as it is.
pub const MAX_QUOTED: usize = 256;

/// `s` quoted for an error message, cut to [`MAX_QUOTED`] bytes (at a character boundary) with
/// its full length noted, so a message never echoes a request back at length.
pub fn quote_cut(s: &str) -> String {
    if s.len() <= MAX_QUOTED {
        return format!("{s:?}");
    }
    let mut end = MAX_QUOTED;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{:?}... ({} bytes)", &s[..end], s.len())
}

// === impl FieldError ===

impl FieldError {
    /// An error with a message and the paths it concerns.
    pub fn new(message: impl Into<String>, paths: &[&str]) -> Self {
        Self::with_details(message, paths, "")
    }

    /// An error with a message, paths and details.
    pub fn with_details(message: impl Into<String>, paths: &[&str], details: impl Into<String>) -> Self {
        Self {
            errors: vec![FieldIssue {
                message: message.into(),
                paths: paths.iter().map(|p| p.to_string()).collect(),
                details: details.into(),
            }],
        }
    }

    /// `missing field(s)`.
    pub fn missing(paths: &[&str]) -> Self {
        Self::new("missing field(s)", paths)
    }

    /// `must not set the field(s)`.
    pub fn disallowed(paths: &[&str]) -> Self {
        Self::new("must not set the field(s)", paths)
    }

    /// `invalid value: <value>`.
    pub fn invalid_value(value: impl fmt::Display, path: &str) -> Self {
        Self::new(format!("invalid value: {value}"), &[path])
    }

    /// `invalid value: <value>` with details.
    pub fn invalid_value_details(value: impl fmt::Display, path: &str, details: impl Into<String>) -> Self {
        Self::with_details(format!("invalid value: {value}"), &[path], details)
    }

    /// Knative's `ErrInvalidArrayValue`: an invalid value at `field[index]`.
    pub fn invalid_array_value(value: impl fmt::Display, field: &str, index: usize) -> Self {
        Self::invalid_value(value, "").via_field_index(field, index)
    }

    /// `expected exactly one, got neither`.
    pub fn missing_one_of(paths: &[&str]) -> Self {
        Self::new("expected exactly one, got neither", paths)
    }

    /// `expected exactly one, got both`.
    pub fn multiple_one_of(paths: &[&str]) -> Self {
        Self::new("expected exactly one, got both", paths)
    }

    /// `invalid key name "<key>"` with details.
    pub fn invalid_key_name(key: &str, path: &str, details: impl Into<String>) -> Self {
        Self::with_details(format!("invalid key name {key:?}"), &[path], details)
    }

    /// `expected <lower> <= <value> <= <upper>`.
    pub fn out_of_bounds(
        value: impl fmt::Display,
        lower: impl fmt::Display,
        upper: impl fmt::Display,
        path: &str,
    ) -> Self {
        Self::new(format!("expected {lower} <= {value} <= {upper}"), &[path])
    }

    /// True when nothing is wrong.
    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }

    /// Adds `other`'s failures to these.
    pub fn also(mut self, other: FieldError) -> Self {
        self.errors.extend(other.errors);
        self
    }

    /// Adds `other`'s failures to these in place.
    pub fn push(&mut self, other: FieldError) {
        self.errors.extend(other.errors);
    }

    /// Prefixes every path with `prefix` (which may itself be dotted).
    pub fn via_field(mut self, prefix: &str) -> Self {
        for issue in &mut self.errors {
            for path in &mut issue.paths {
                *path = flatten(&[prefix, path]);
            }
        }
        self
    }

    /// Prefixes every path with `[index]`.
    pub fn via_index(self, index: usize) -> Self {
        self.via_field(&format!("[{index}]"))
    }

    /// Prefixes every path with `field[index]`.
    pub fn via_field_index(self, field: &str, index: usize) -> Self {
        self.via_index(index).via_field(field)
    }

    /// Prefixes every path with `[key]`.
    pub fn via_key(self, key: &str) -> Self {
        self.via_field(&format!("[{key}]"))
    }

    /// The failures merged and sorted as Knative reports them.
    pub fn issues(&self) -> Vec<FieldIssue> {
        let mut merged: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
        for issue in &self.errors {
            let paths = merged.entry((issue.message.clone(), issue.details.clone())).or_default();
            for p in &issue.paths {
                if !paths.contains(p) {
                    paths.push(p.clone());
                }
            }
        }
        merged
            .into_iter()
            .map(|((message, details), mut paths)| {
                paths.sort();
                FieldIssue { message, paths, details }
            })
            .collect()
    }

    /// Converts to `Err(self)` when anything is wrong.
    pub fn into_result(self) -> Result<(), FieldError> {
        if self.is_empty() { Ok(()) } else { Err(self) }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, issue) in self.issues().iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{issue}")?;
        }
        Ok(())
    }
}

impl std::error::Error for FieldError {}

impl fmt::Display for FieldIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.message, self.paths.join(", "))?;
        if !self.details.is_empty() {
            write!(f, "\n{}", self.details)?;
        }
        Ok(())
    }
}

/// Joins path parts as Knative's `flatten` does: empty parts vanish and `[i]` parts attach to the
/// part before them.
fn flatten(parts: &[&str]) -> String {
    let mut out: Vec<String> = Vec::new();
    for part in parts {
        for p in part.split('.') {
            if p.is_empty() {
                continue;
            }
            match out.last_mut() {
                Some(last) if p.starts_with('[') && p.ends_with(']') => last.push_str(p),
                _ => out.push(p.to_string()),
            }
        }
    }
    out.join(".")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_compose_like_knative() {
        let e = FieldError::invalid_array_value("x", "tag", 0).via_field("traffic").via_field("spec");
        assert_eq!(e.issues()[0].paths, vec!["spec.traffic.tag[0]"]);
        let e = FieldError::new("m", &["percent"]).via_index(2).via_field("traffic");
        assert_eq!(e.issues()[0].paths, vec!["traffic[2].percent"]);
        let e = FieldError::new("m", &[""]).via_field("traffic").via_field("spec");
        assert_eq!(e.issues()[0].paths, vec!["spec.traffic"]);
    }

    #[test]
    fn same_message_merges_and_sorts_paths() {
        let e =
            FieldError::new("dup", &["b"]).also(FieldError::new("dup", &["a"])).also(FieldError::new("abc", &["z"]));
        assert_eq!(e.to_string(), "abc: z\ndup: a, b");
    }

    #[test]
    fn details_render_on_next_line() {
        let e = FieldError::with_details("Immutable fields changed (-old +new)", &["spec"], "-a\n+b");
        assert_eq!(e.to_string(), "Immutable fields changed (-old +new): spec\n-a\n+b");
    }
}
