//! The kinds of object Sluice stores and serves, with the names the Kubernetes API gives them.

use std::fmt;

/// A kind the API server serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// `serving.knative.dev/v1` Service.
    Service,
    /// `serving.knative.dev/v1` Configuration.
    Configuration,
    /// `serving.knative.dev/v1` Route.
    Route,
    /// `serving.knative.dev/v1` Revision.
    Revision,
    /// Core `v1` ConfigMap, for Knative's `config-*` maps in `knative-serving`.
    ConfigMap,
    /// Core `v1` Secret, for revisions' `env` and `envFrom` references.
    Secret,
    /// Core `v1` Namespace (cluster-scoped), so manifests and `kubectl create namespace` work.
    Namespace,
    /// Core `v1` Event: what the controllers did and what failed (`kubectl describe` lists them).
    Event,
    /// `events.k8s.io/v1` Event: the same stored objects as [`Kind::Event`], converted both ways.
    EventsV1,
}

/// The API names of a kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KindInfo {
    /// `Service`.
    pub kind: &'static str,
    /// `ServiceList`.
    pub list_kind: &'static str,
    /// `serving.knative.dev`, or empty for the core group.
    pub group: &'static str,
    /// `v1`.
    pub version: &'static str,
    /// `services`.
    pub plural: &'static str,
    /// `service`.
    pub singular: &'static str,
    /// `ksvc`, ...
    pub short_names: &'static [&'static str],
    /// `all`, `knative`, `serving`.
    pub categories: &'static [&'static str],
    /// Whether a `/status` subresource exists (status is then ignored on the main resource).
    pub has_status: bool,
    /// Whether objects live in a namespace (false: cluster-scoped, like Namespace itself).
    pub namespaced: bool,
}

const SERVING: &str = "serving.knative.dev";
const KNATIVE_CATEGORIES: &[&str] = &["all", "knative", "serving"];

const EVENT: KindInfo = KindInfo {
    kind: "Event",
    list_kind: "EventList",
    group: "",
    version: "v1",
    plural: "events",
    singular: "event",
    short_names: &["ev"],
    categories: &[],
    has_status: false,
    namespaced: true,
};

// === impl Kind ===

impl Kind {
    /// Every kind, in discovery order.
    pub const ALL: [Kind; 9] = [
        Kind::Service,
        Kind::Configuration,
        Kind::Route,
        Kind::Revision,
        Kind::ConfigMap,
        Kind::Secret,
        Kind::Namespace,
        Kind::Event,
        Kind::EventsV1,
    ];

    /// The Knative kinds.
    pub const SERVING: [Kind; 4] = [Kind::Service, Kind::Configuration, Kind::Route, Kind::Revision];

    /// The API names of this kind.
    pub const fn info(self) -> &'static KindInfo {
        match self {
            Kind::Service => &KindInfo {
                kind: "Service",
                list_kind: "ServiceList",
                group: SERVING,
                version: "v1",
                plural: "services",
                singular: "service",
                short_names: &["kservice", "ksvc"],
                categories: KNATIVE_CATEGORIES,
                has_status: true,
                namespaced: true,
            },
            Kind::Configuration => &KindInfo {
                kind: "Configuration",
                list_kind: "ConfigurationList",
                group: SERVING,
                version: "v1",
                plural: "configurations",
                singular: "configuration",
                short_names: &["config", "cfg"],
                categories: KNATIVE_CATEGORIES,
                has_status: true,
                namespaced: true,
            },
            Kind::Route => &KindInfo {
                kind: "Route",
                list_kind: "RouteList",
                group: SERVING,
                version: "v1",
                plural: "routes",
                singular: "route",
                short_names: &["rt"],
                categories: KNATIVE_CATEGORIES,
                has_status: true,
                namespaced: true,
            },
            Kind::Revision => &KindInfo {
                kind: "Revision",
                list_kind: "RevisionList",
                group: SERVING,
                version: "v1",
                plural: "revisions",
                singular: "revision",
                short_names: &["rev"],
                categories: KNATIVE_CATEGORIES,
                has_status: true,
                namespaced: true,
            },
            Kind::ConfigMap => &KindInfo {
                kind: "ConfigMap",
                list_kind: "ConfigMapList",
                group: "",
                version: "v1",
                plural: "configmaps",
                singular: "configmap",
                short_names: &["cm"],
                categories: &[],
                has_status: false,
                namespaced: true,
            },
            Kind::Secret => &KindInfo {
                kind: "Secret",
                list_kind: "SecretList",
                group: "",
                version: "v1",
                plural: "secrets",
                singular: "secret",
                short_names: &[],
                categories: &[],
                has_status: false,
                namespaced: true,
            },
            Kind::Namespace => &KindInfo {
                kind: "Namespace",
                list_kind: "NamespaceList",
                group: "",
                version: "v1",
                plural: "namespaces",
                singular: "namespace",
                short_names: &["ns"],
                categories: &[],
                has_status: false,
                namespaced: false,
            },
            Kind::Event => &EVENT,
            Kind::EventsV1 => &KindInfo { group: "events.k8s.io", short_names: &[], ..EVENT },
        }
    }

    /// The kind whose objects this one's are stored as: itself, but for a second view of the
    /// same objects (`events.k8s.io/v1` Events are core Events). Both share the plural, which
    /// keys the store, so a write through either is seen through both.
    pub const fn stored_as(self) -> Kind {
        match self {
            Kind::EventsV1 => Kind::Event,
            k => k,
        }
    }

    /// `serving.knative.dev/v1`, or `v1` for the core group.
    pub fn api_version(self) -> String {
        let i = self.info();
        if i.group.is_empty() { i.version.to_string() } else { format!("{}/{}", i.group, i.version) }
    }

    /// The kind served under `group` with plural `plural`.
    pub fn from_plural(group: &str, plural: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.info().group == group && k.info().plural == plural)
    }

    /// The kind named by `apiVersion` and `kind`.
    pub fn from_type(api_version: &str, kind: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.api_version() == api_version && k.info().kind == kind)
    }

    /// The kind a user names on a command line: plural, singular, short name or kind, any case,
    /// optionally qualified by group (`services.serving.knative.dev`, `ksvc`, `Revision`).
    pub fn from_user(name: &str) -> Option<Kind> {
        let lower = name.to_ascii_lowercase();
        let (base, group) = match lower.split_once('.') {
            Some((b, g)) => (b.to_string(), Some(g.to_string())),
            None => (lower, None),
        };
        Kind::ALL.into_iter().find(|k| {
            let i = k.info();
            let named = i.plural == base
                || i.singular == base
                || i.kind.eq_ignore_ascii_case(&base)
                || i.short_names.contains(&base.as_str());
            named && group.as_deref().is_none_or(|g| g == i.group)
        })
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.info().kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_names_resolve() {
        assert_eq!(Kind::from_user("ksvc"), Some(Kind::Service));
        assert_eq!(Kind::from_user("services.serving.knative.dev"), Some(Kind::Service));
        assert_eq!(Kind::from_user("Revision"), Some(Kind::Revision));
        assert_eq!(Kind::from_user("rt"), Some(Kind::Route));
        assert_eq!(Kind::from_user("cm"), Some(Kind::ConfigMap));
        assert_eq!(Kind::from_user("pods"), None);
        assert_eq!(Kind::from_type("serving.knative.dev/v1", "Route"), Some(Kind::Route));
        assert_eq!(Kind::from_plural("", "configmaps"), Some(Kind::ConfigMap));
        assert_eq!(Kind::from_user("ns"), Some(Kind::Namespace));
        assert_eq!(Kind::from_user("secrets"), Some(Kind::Secret));
        assert_eq!(Kind::from_plural("", "secrets"), Some(Kind::Secret));
        assert!(!Kind::Namespace.info().namespaced && Kind::Service.info().namespaced);
        assert_eq!(Kind::from_user("ev"), Some(Kind::Event));
        assert_eq!(Kind::from_user("events.events.k8s.io"), Some(Kind::EventsV1));
        assert_eq!(Kind::from_plural("events.k8s.io", "events"), Some(Kind::EventsV1));
        assert_eq!(Kind::EventsV1.api_version(), "events.k8s.io/v1");
        assert_eq!(Kind::EventsV1.stored_as(), Kind::Event);
    }
}
