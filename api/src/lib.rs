//! Knative `serving.knative.dev/v1` resource model: Service, Configuration, Route and Revision
//! with Knative's fields, defaults, validation messages, naming and conditions; and the plain
//! data other crates share (`RevisionKey`, the [`scale::Scaler`] port,
//! [`tombstones::Tombstones`]). No I/O.

pub mod admission;
pub mod conditions;
pub mod crd;
pub mod defaults;
pub mod event;
pub mod field_error;
pub mod honoured;
pub mod kinds;
pub mod labels;
pub mod naming;
mod operation;
pub mod podspec;
mod revision_key;
pub mod scale;
mod schema;
pub mod strict;
pub mod tombstones;
pub mod validation;

mod configuration;
mod revision;
mod route;
mod service;

pub use configuration::{Configuration, ConfigurationSpec, ConfigurationStatus};
pub use field_error::FieldError;
pub use kinds::Kind;
pub use revision::{ContainerStatus, Revision, RevisionSpec, RevisionStatus, RevisionTemplateSpec};
pub use revision_key::RevisionKey;
pub use route::{
    Addressable, HeaderMatch, PathMatch, Route, RouteSpec, RouteStatus, RuleMatch, TrafficRule, TrafficTarget,
};
pub use service::{Service, ServiceSpec, ServiceStatus};

/// The port a container serves on when it declares none.
pub const DEFAULT_USER_PORT: u16 = 8080;
/// `timeoutSeconds` when unset or 0.
pub const DEFAULT_TIMEOUT_SECONDS: i64 = 300;
/// The largest allowed `timeoutSeconds`.
pub const MAX_TIMEOUT_SECONDS: i64 = 600;
/// The largest allowed `containerConcurrency`.
pub const MAX_CONTAINER_CONCURRENCY: i64 = 1000;
/// The default name of a revision's single container.
pub const DEFAULT_CONTAINER_NAME: &str = "user-container";
