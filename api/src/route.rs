//! `Route`: names a set of revisions and how traffic splits between them.

// `#[kube(...)]` takes repeated keys (shortname, category, printcolumn) by design.
#![allow(clippy::duplicated_attributes)]

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::conditions::Condition;
use crate::podspec::Extra;

/// The desired traffic assignment of a Route.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "serving.knative.dev",
    version = "v1",
    kind = "Route",
    namespaced,
    status = "RouteStatus",
    shortname = "rt",
    category = "all",
    category = "knative",
    category = "serving",
    printcolumn(name = "URL", type_ = "string", json_path = ".status.url"),
    printcolumn(name = "Ready", type_ = "string", json_path = ".status.conditions[?(@.type=='Ready')].status"),
    printcolumn(name = "Reason", type_ = "string", json_path = ".status.conditions[?(@.type=='Ready')].reason")
)]
#[serde(rename_all = "camelCase")]
pub struct RouteSpec {
    /// How traffic is split; percents sum to 100.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub traffic: Vec<TrafficTarget>,
    /// Sluice's header and path rules, tried in order before `traffic`: the first whose match
    /// holds picks the request's target by its own split.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<TrafficRule>,
    /// Fields not modelled here.
    #[serde(flatten)]
    pub extra: Extra,
}

/// One entry of `spec.rules` / `status.rules`: requests whose headers and path match go by the
/// rule's own split.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TrafficRule {
    /// The rule's name (a DNS-1035 label, unique within the route), shown in status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// What a request must carry for the rule to apply: every header match and the path match.
    #[serde(default, rename = "match")]
    pub matches: RuleMatch,
    /// The rule's split, shaped as `spec.traffic`; a target may name a tag of `spec.traffic`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub traffic: Vec<TrafficTarget>,
}

/// The conditions of a rule; all must hold.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RuleMatch {
    /// Header conditions, each on one header (its name matched case-insensitively).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<HeaderMatch>,
    /// The condition on the request's path (without the query).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<PathMatch>,
}

/// A condition on one header: exactly one of `exact`, `prefix`, `regex`, `present`. A header
/// sent several times matches when any one of its values does.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HeaderMatch {
    /// The header's name, an HTTP token (case-insensitive).
    #[serde(default)]
    pub name: String,
    /// The value, byte for byte.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exact: Option<String>,
    /// The value's beginning, byte for byte.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// A regular expression (Rust `regex` syntax) the whole value must match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regex: Option<String>,
    /// True: the header is present, with any value; false: it is absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub present: Option<bool>,
}

/// A condition on the request's path as sent, without the query: exactly one of `exact` and
/// `prefix`, each starting with `/`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PathMatch {
    /// The whole path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exact: Option<String>,
    /// The path's beginning (a string prefix: `/api` also matches `/apis`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
}

/// One entry of `spec.traffic` / `status.traffic`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TrafficTarget {
    /// Names a sub-route reachable at `{tag}-{route}.{namespace}.{domain}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// A fixed revision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision_name: Option<String>,
    /// A configuration whose latest ready revision is used (spec only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub configuration_name: Option<String>,
    /// Float to the latest ready revision; defaults to `revisionName` being empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latest_revision: Option<bool>,
    /// Share of traffic, 0..=100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percent: Option<i64>,
    /// The tag's URL (status only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Fields not modelled here.
    #[serde(flatten)]
    pub extra: Extra,
}

/// The observed state of a Route.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RouteStatus {
    /// The generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Ready, AllTrafficAssigned, IngressReady, CertificateProvisioned.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The route's external URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The route's cluster-local address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<Addressable>,
    /// Traffic as currently programmed, targets resolved to revisions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub traffic: Vec<TrafficTarget>,
    /// `spec.rules` as currently programmed, in order, each target resolved to a revision.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<TrafficRule>,
    /// Fields not modelled here.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A resolvable address.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Addressable {
    /// The address URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Fields not modelled here.
    #[serde(flatten)]
    pub extra: Extra,
}

// === impl TrafficTarget ===

impl TrafficTarget {
    /// `percent`, with nil read as 0.
    pub fn percent_or_zero(&self) -> i64 {
        self.percent.unwrap_or(0)
    }

    /// `latestRevision`, with nil read as Knative defaults it (`revisionName` empty).
    pub fn is_latest(&self) -> bool {
        self.latest_revision.unwrap_or_else(|| self.revision_name.as_deref().unwrap_or("").is_empty())
    }
}
