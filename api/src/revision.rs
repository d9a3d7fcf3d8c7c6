//! `Revision`: an immutable snapshot of a Configuration's template, and the template type itself.

// `#[kube(...)]` takes repeated keys (shortname, category, printcolumn) by design.
#![allow(clippy::duplicated_attributes)]

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::conditions::Condition;
use crate::podspec::{Container, Extra};

/// The desired state of a Revision: an inline PodSpec plus Knative's serving knobs.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "serving.knative.dev",
    version = "v1",
    kind = "Revision",
    namespaced,
    status = "RevisionStatus",
    shortname = "rev",
    category = "all",
    category = "knative",
    category = "serving",
    printcolumn(
        name = "Config Name",
        type_ = "string",
        json_path = ".metadata.labels['serving\\.knative\\.dev/configuration']"
    ),
    printcolumn(
        name = "Generation",
        type_ = "string",
        json_path = ".metadata.labels['serving\\.knative\\.dev/configurationGeneration']"
    ),
    printcolumn(name = "Ready", type_ = "string", json_path = ".status.conditions[?(@.type=='Ready')].status"),
    printcolumn(name = "Reason", type_ = "string", json_path = ".status.conditions[?(@.type=='Ready')].reason"),
    printcolumn(name = "Actual Replicas", type_ = "integer", json_path = ".status.actualReplicas"),
    printcolumn(name = "Desired Replicas", type_ = "integer", json_path = ".status.desiredReplicas")
)]
#[serde(rename_all = "camelCase")]
pub struct RevisionSpec {
    /// The containers of each instance; exactly one serves traffic.
    #[serde(default)]
    pub containers: Vec<Container>,
    /// Maximum in-flight requests per instance; 0 means unbounded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_concurrency: Option<i64>,
    /// Maximum duration of a request, in seconds (default 300, at most 600).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<i64>,
    /// Maximum wait for the first response byte, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_start_timeout_seconds: Option<i64>,
    /// Maximum gap between response bytes, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_timeout_seconds: Option<i64>,
    /// Kubernetes service links in the environment (defaulted to false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_service_links: Option<bool>,
    /// Service account the instances run as.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_name: Option<String>,
    /// PodSpec fields not modelled here (volumes, nodeSelector, ...).
    #[serde(flatten)]
    pub extra: Extra,
}

/// A Configuration's `spec.template`: the metadata and spec every new Revision is stamped from.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RevisionTemplateSpec {
    /// Revision name (BYO), labels and annotations for the revisions.
    #[serde(default)]
    #[schemars(schema_with = "crate::schema::template_metadata")]
    pub metadata: ObjectMeta,
    /// The revision spec.
    #[serde(default)]
    pub spec: RevisionSpec,
}

/// The observed state of a Revision.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RevisionStatus {
    /// The generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Ready, ResourcesAvailable, ContainerHealthy, Active.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// Annotations set by the controller.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Where the revision's logs can be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_url: Option<String>,
    /// Image digests per container.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub container_statuses: Vec<ContainerStatus>,
    /// Running, ready instances.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actual_replicas: Option<i32>,
    /// Instances the autoscaler wants.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub desired_replicas: Option<i32>,
    /// Fields not modelled here.
    #[serde(flatten)]
    pub extra: Extra,
}

/// Per-container status of a Revision.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ContainerStatus {
    /// Container name.
    #[serde(default)]
    pub name: String,
    /// Resolved image digest, or the command run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_digest: Option<String>,
}

// === impl RevisionSpec ===

impl RevisionSpec {
    /// The container that serves traffic: the one with a port, else the first.
    pub fn serving_container(&self) -> Option<&Container> {
        self.containers.iter().find(|c| !c.ports.is_empty()).or_else(|| self.containers.first())
    }
}
