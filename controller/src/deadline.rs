//! The progress deadline: how long a revision may take to become ready the first time before
//! it fails with `ProgressDeadlineExceeded`, as Knative's Deployments do. A revision's
//! `serving.knative.dev/progress-deadline` annotation (a Go duration, validated at admission)
//! wins; else `config-deployment`'s `progress-deadline`; else `sluice serve --progress-deadline`.

use std::collections::BTreeMap;
use std::time::Duration;

use parking_lot::Mutex;
use sluice_api::validation::duration::{self, SECOND};
use sluice_autoscaler::go::{fmt_duration, parse_duration};

/// The annotation on a revision (template).
pub const ANNOTATION: &str = "serving.knative.dev/progress-deadline";
/// Knative's ConfigMap of deployment settings, in `knative-serving`.
pub const CONFIG_MAP: &str = "config-deployment";
/// Its key.
const KEY: &str = "progress-deadline";
/// Knative's default.
pub const DEFAULT: Duration = Duration::from_secs(600);

/// The deadline a revision without the annotation gets: the serve setting, overridden by
/// `config-deployment` while that map sets one.
#[derive(Debug)]
pub struct ProgressDeadline {
    serve: Duration,
    config_map: Mutex<Option<Duration>>,
}

/// Why `config-deployment`'s `progress-deadline` cannot be used (Knative's words).
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(String);

// === impl ProgressDeadline ===

impl ProgressDeadline {
    /// `serve`'s setting, with no ConfigMap read yet.
    pub fn new(serve: Duration) -> Self {
        Self { serve, config_map: Mutex::new(None) }
    }

    /// What `config-deployment` sets (None: the map or its key is absent).
    pub fn set_config_map(&self, deadline: Option<Duration>) {
        *self.config_map.lock() = deadline;
    }

    /// The deadline of a revision with `annotations`: the annotation's when it parses, else
    /// the default in force.
    pub fn of(&self, annotations: &BTreeMap<String, String>) -> Duration {
        annotations.get(ANNOTATION).and_then(|v| parse(v)).unwrap_or_else(|| self.default())
    }

    /// The deadline of a revision that does not set one.
    pub fn default(&self) -> Duration {
        self.config_map.lock().unwrap_or(self.serve)
    }
}

/// A non-negative Go duration (`600s`, `10m`, `1m30s`) as a `Duration`; None otherwise.
pub fn parse(text: &str) -> Option<Duration> {
    let ns = duration::parse(text.trim())?;
    u64::try_from(ns).ok().map(Duration::from_nanos)
}

/// A whole positive number of seconds as a Go duration (for `--progress-deadline`), with
/// Knative's messages for what `config-deployment` refuses.
pub fn parse_setting(text: &str) -> Result<Duration, ConfigError> {
    let ns = parse_duration(text.trim()).map_err(|e| ConfigError(format!("failed to parse {KEY:?}: {e}")))?;
    if ns <= 0 {
        return Err(ConfigError(format!("{KEY} cannot be a non-positive duration, was {}", fmt_duration(ns))));
    }
    if ns % SECOND != 0 {
        return Err(ConfigError(format!("{KEY} must be rounded to a whole second, was: {}", fmt_duration(ns))));
    }
    u64::try_from(ns).map(Duration::from_nanos).map_err(|_| ConfigError(format!("{KEY}: {text} is out of range")))
}

/// `config-deployment`'s `progress-deadline`: None when the key is absent, as Knative then
/// keeps its default.
pub fn from_config_map(data: &BTreeMap<String, String>) -> Result<Option<Duration>, ConfigError> {
    data.get(KEY).map(|v| parse_setting(v)).transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn the_annotation_is_a_go_duration() {
        let d = ProgressDeadline::new(DEFAULT);
        assert_eq!(d.of(&map(&[])), DEFAULT);
        assert_eq!(d.of(&map(&[(ANNOTATION, "600s")])), Duration::from_secs(600));
        assert_eq!(d.of(&map(&[(ANNOTATION, "10m")])), Duration::from_secs(600));
        assert_eq!(d.of(&map(&[(ANNOTATION, "1m30s")])), Duration::from_secs(90));
        assert_eq!(d.of(&map(&[(ANNOTATION, "2s")])), Duration::from_secs(2));
        assert_eq!(d.of(&map(&[(ANNOTATION, "soon")])), DEFAULT, "admission refuses it; the default otherwise");
    }

    #[test]
    fn config_deployment_overrides_the_serve_setting_while_it_sets_one() {
        let d = ProgressDeadline::new(Duration::from_secs(120));
        assert_eq!(d.default(), Duration::from_secs(120));
        d.set_config_map(from_config_map(&map(&[("progress-deadline", "5m")])).expect("valid"));
        assert_eq!(d.of(&map(&[])), Duration::from_secs(300));
        assert_eq!(d.of(&map(&[(ANNOTATION, "3s")])), Duration::from_secs(3), "the annotation wins");
        d.set_config_map(from_config_map(&map(&[("other", "x")])).expect("valid"));
        assert_eq!(d.default(), Duration::from_secs(120));
    }

    #[test]
    fn a_bad_setting_gets_knatives_message() {
        let err = |v: &str| from_config_map(&map(&[("progress-deadline", v)])).expect_err(v).to_string();
        assert_eq!(err("0s"), "progress-deadline cannot be a non-positive duration, was 0s");
        assert_eq!(err("-1m"), "progress-deadline cannot be a non-positive duration, was -1m0s");
        assert_eq!(err("1500ms"), "progress-deadline must be rounded to a whole second, was: 1.5s");
        assert_eq!(err("ten"), "failed to parse \"progress-deadline\": time: invalid duration \"ten\"");
        assert_eq!(parse_setting("1m30s"), Ok(Duration::from_secs(90)));
    }
}
