//! `Service`: a Configuration and a Route managed together under one name.

// `#[kube(...)]` takes repeated keys (shortname, category, printcolumn) by design.
#![allow(clippy::duplicated_attributes)]

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::conditions::Condition;
use crate::podspec::Extra;
use crate::revision::RevisionTemplateSpec;
use crate::route::{Addressable, TrafficRule, TrafficTarget};

/// The desired state of a Service: a ConfigurationSpec and a RouteSpec, inline.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "serving.knative.dev",
    version = "v1",
    kind = "Service",
    namespaced,
    status = "ServiceStatus",
    shortname = "kservice",
    shortname = "ksvc",
    category = "all",
    category = "knative",
    category = "serving",
    printcolumn(name = "URL", type_ = "string", json_path = ".status.url"),
    printcolumn(name = "LatestCreated", type_ = "string", json_path = ".status.latestCreatedRevisionName"),
    printcolumn(name = "LatestReady", type_ = "string", json_path = ".status.latestReadyRevisionName"),
    printcolumn(name = "Ready", type_ = "string", json_path = ".status.conditions[?(@.type=='Ready')].status"),
    printcolumn(name = "Reason", type_ = "string", json_path = ".status.conditions[?(@.type=='Ready')].reason")
)]
#[serde(rename_all = "camelCase")]
pub struct ServiceSpec {
    /// The revision template (the Configuration's spec).
    #[serde(default)]
    pub template: RevisionTemplateSpec,
    /// The traffic split (the Route's spec); defaults to 100% latest.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub traffic: Vec<TrafficTarget>,
    /// Header and path rules (the Route's spec), tried in order before `traffic`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<TrafficRule>,
    /// Fields not modelled here.
    #[serde(flatten)]
    pub extra: Extra,
}

/// The observed state of a Service: its Configuration's and Route's, combined.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceStatus {
    /// The generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Ready, ConfigurationsReady, RoutesReady.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// From the Configuration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latest_created_revision_name: Option<String>,
    /// From the Configuration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latest_ready_revision_name: Option<String>,
    /// From the Route.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// From the Route.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<Addressable>,
    /// From the Route.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub traffic: Vec<TrafficTarget>,
    /// From the Route.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<TrafficRule>,
    /// Fields not modelled here.
    #[serde(flatten)]
    pub extra: Extra,
}
