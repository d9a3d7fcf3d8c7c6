//! Knative status conditions: `type`, `status` (`True`/`False`/`Unknown`), `reason`, `message`,
//! and a transition time that moves only when the status does.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The three states a condition can be in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ConditionStatus {
    /// The condition holds.
    True,
    /// The condition does not hold.
    False,
    /// Not known yet.
    Unknown,
}

/// One status condition.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// Condition type, e.g. `Ready`.
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: ConditionStatus,
    /// `Error` (empty) or `Warning` / `Info` for conditions outside the Ready set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<String>,
    /// When the status last changed (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<String>,
    /// CamelCase reason for the status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Human-readable sentence naming the object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// The wanted state of one condition, before transition times are applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConditionUpdate {
    /// Condition type.
    pub type_: &'static str,
    /// Wanted status.
    pub status: ConditionStatus,
    /// Reason, empty when True.
    pub reason: String,
    /// Message, empty when True.
    pub message: String,
}

// === impl ConditionUpdate ===

impl ConditionUpdate {
    /// The condition holds.
    pub fn ok(type_: &'static str) -> Self {
        Self { type_, status: ConditionStatus::True, reason: String::new(), message: String::new() }
    }

    /// The condition does not hold, for `reason`.
    pub fn failed(type_: &'static str, reason: impl Into<String>, message: impl Into<String>) -> Self {
        Self { type_, status: ConditionStatus::False, reason: reason.into(), message: message.into() }
    }

    /// The condition is not known yet.
    pub fn unknown(type_: &'static str, reason: impl Into<String>, message: impl Into<String>) -> Self {
        Self { type_, status: ConditionStatus::Unknown, reason: reason.into(), message: message.into() }
    }
}

/// Writes `update` into `conditions`, keeping the old transition time when the status is
/// unchanged, and keeping the list sorted by type as Knative does.
pub fn set_condition(conditions: &mut Vec<Condition>, update: ConditionUpdate, now: &str) {
    let reason = (!update.reason.is_empty()).then_some(update.reason);
    let message = (!update.message.is_empty()).then_some(update.message);
    match conditions.iter_mut().find(|c| c.type_ == update.type_) {
        Some(c) => {
            if c.status != update.status {
                c.last_transition_time = Some(now.to_string());
            }
            c.status = update.status;
            c.reason = reason;
            c.message = message;
        }
        None => conditions.push(Condition {
            type_: update.type_.to_string(),
            status: update.status,
            severity: None,
            last_transition_time: Some(now.to_string()),
            reason,
            message,
        }),
    }
    conditions.sort_by(|a, b| a.type_.cmp(&b.type_));
}

/// The condition of `type_`, if present.
pub fn find<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

/// True when the condition of `type_` is present and True.
pub fn is_true(conditions: &[Condition], type_: &str) -> bool {
    find(conditions, type_).is_some_and(|c| c.status == ConditionStatus::True)
}

/// Combines the dependent conditions into the top-level one: False if any is False, else
/// Unknown if any is Unknown or missing, else True. The first non-True dependency supplies the
/// reason and message, as Knative's `ConditionSet` does.
pub fn summarize(conditions: &[Condition], happy: &'static str, deps: &[&str]) -> ConditionUpdate {
    let mut unknown: Option<ConditionUpdate> = None;
    for dep in deps {
        match find(conditions, dep) {
            Some(c) if c.status == ConditionStatus::False => {
                return ConditionUpdate::failed(
                    happy,
                    c.reason.clone().unwrap_or_default(),
                    c.message.clone().unwrap_or_default(),
                );
            }
            Some(c) if c.status == ConditionStatus::True => {}
            Some(c) => {
                unknown.get_or_insert_with(|| {
                    ConditionUpdate::unknown(
                        happy,
                        c.reason.clone().unwrap_or_default(),
                        c.message.clone().unwrap_or_default(),
                    )
                });
            }
            None => {
                unknown.get_or_insert_with(|| ConditionUpdate::unknown(happy, "", ""));
            }
        }
    }
    unknown.unwrap_or_else(|| ConditionUpdate::ok(happy))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transition_time_moves_only_when_status_changes() {
        let mut c = Vec::new();
        set_condition(&mut c, ConditionUpdate::unknown("Ready", "Deploying", ""), "t1");
        set_condition(&mut c, ConditionUpdate::unknown("Ready", "Still", "x"), "t2");
        assert_eq!(c[0].last_transition_time.as_deref(), Some("t1"));
        assert_eq!(c[0].reason.as_deref(), Some("Still"));
        set_condition(&mut c, ConditionUpdate::ok("Ready"), "t3");
        assert_eq!(c[0].last_transition_time.as_deref(), Some("t3"));
        assert_eq!(c[0].reason, None);
    }

    #[test]
    fn summary_prefers_false_then_unknown() {
        let mut c = Vec::new();
        set_condition(&mut c, ConditionUpdate::ok("A"), "t");
        set_condition(&mut c, ConditionUpdate::unknown("B", "Wait", "w"), "t");
        assert_eq!(summarize(&c, "Ready", &["A", "B"]).status, ConditionStatus::Unknown);
        set_condition(&mut c, ConditionUpdate::failed("A", "Bad", "b"), "t");
        let s = summarize(&c, "Ready", &["A", "B"]);
        assert_eq!((s.status, s.reason.as_str()), (ConditionStatus::False, "Bad"));
        assert_eq!(summarize(&c, "Ready", &["C"]).status, ConditionStatus::Unknown);
    }
}
