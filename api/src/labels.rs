//! Label and annotation keys Knative puts on its objects.

/// Names the Service that owns an object.
pub const SERVICE: &str = "serving.knative.dev/service";
/// The owning Service's uid.
pub const SERVICE_UID: &str = "serving.knative.dev/serviceUID";
/// Names the Configuration that stamped a Revision.
pub const CONFIGURATION: &str = "serving.knative.dev/configuration";
/// The owning Configuration's uid.
pub const CONFIGURATION_UID: &str = "serving.knative.dev/configurationUID";
/// The Configuration generation a Revision was stamped from.
pub const CONFIGURATION_GENERATION: &str = "serving.knative.dev/configurationGeneration";
/// The Route that names a Configuration or Revision.
pub const ROUTE: &str = "serving.knative.dev/route";
/// Comma-separated Routes that reference a Revision (annotation).
pub const ROUTES: &str = "serving.knative.dev/routes";
/// `active`, `reserve` or `pending`: whether a Route references the Revision.
pub const ROUTING_STATE: &str = "serving.knative.dev/routingState";
/// When `routingState` last changed (annotation).
pub const ROUTING_STATE_MODIFIED: &str = "serving.knative.dev/routingStateModified";
/// Who created the object (annotation).
pub const CREATOR: &str = "serving.knative.dev/creator";
/// Who last changed the spec (annotation).
pub const LAST_MODIFIER: &str = "serving.knative.dev/lastModifier";
/// Gradual rollout duration on a Service or Route (annotation).
pub const ROLLOUT_DURATION: &str = "serving.knative.dev/rollout-duration";
/// Prefix of the autoscaling annotations.
pub const AUTOSCALING_PREFIX: &str = "autoscaling.knative.dev";
/// `cluster-local` makes a Route or tag private.
pub const VISIBILITY: &str = "networking.knative.dev/visibility";
