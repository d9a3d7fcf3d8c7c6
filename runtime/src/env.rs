//! A container's environment from ConfigMaps and Secrets, resolved when each instance starts as
//! the kubelet does at container start: `envFrom` sources first, in order (later ones win), then
//! `env` entries, which override them. A missing ConfigMap, Secret or key that is not
//! `optional` means the instance cannot start (Kubernetes' `CreateContainerConfigError`); keys
//! that are not valid variable names are skipped and reported.
//!
//! Values are carried, never printed: errors and notes name objects and keys only.

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsString;
use std::fmt;
use std::os::unix::ffi::OsStringExt;

use k8s_openapi::api::core::v1::{EnvFromSource, EnvVar};
use sluice_api::podspec::Container;

/// What a reference names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SourceKind {
    /// A core `v1` ConfigMap (its `data`).
    ConfigMap,
    /// A core `v1` Secret (its `data`, decoded).
    Secret,
}

/// The keys and values of one ConfigMap's `data` or one Secret's decoded `data`.
pub type SourceData = BTreeMap<String, Vec<u8>>;

/// Looks up ConfigMaps and Secrets for instances' environment. The binary implements it over
/// the store (or a Kubernetes client), so the runtime never links either.
pub trait EnvSources: Send + Sync + fmt::Debug {
    /// The data of the `kind` named `name` in `namespace`; None when there is none. An error is
    /// a message for people (never holding a value).
    fn lookup(&self, kind: SourceKind, namespace: &str, name: &str) -> Result<Option<SourceData>, String>;
}

/// Why a container's environment cannot be made (the kubelet's `CreateContainerConfigError`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A referenced object does not exist and the reference is not optional.
    #[error("{kind} {name:?} not found")]
    NotFound {
        /// `configmap` or `secret`, as the kubelet says it.
        kind: &'static str,
        /// The object's name.
        name: String,
    },
    /// A referenced key is not in the object and the reference is not optional.
    #[error("couldn't find key {key} in {kind} {namespace}/{name}")]
    MissingKey {
        /// `ConfigMap` or `Secret`.
        kind: &'static str,
        /// The object's namespace.
        namespace: String,
        /// The object's name.
        name: String,
        /// The key.
        key: String,
    },
    /// The lookup itself failed.
    #[error("looking up {kind} {name:?}: {message}")]
    Lookup {
        /// `configmap` or `secret`.
        kind: &'static str,
        /// The object's name.
        name: String,
        /// What went wrong.
        message: String,
    },
    /// A `valueFrom` source the local runtime has no value for.
    #[error("env[{index}] ({var}): valueFrom.{field} is not supported on Sluice's local runtime")]
    Unsupported {
        /// The entry's index in `env`.
        index: usize,
        /// The variable.
        var: String,
        /// `fieldRef`, `resourceFieldRef`, ...
        field: String,
    },
    /// `envFrom` is not a list of sources.
    #[error("envFrom: {0}")]
    Malformed(String),
}

/// A variable's value: written in the spec (so `$(VAR)` in it is expanded), or taken from a
/// ConfigMap or Secret (used exactly).
#[derive(Clone, PartialEq, Eq)]
pub enum EnvValue {
    /// `env[].value`.
    Literal(String),
    /// From a ConfigMap or Secret.
    Exact(OsString),
}

/// A container's variables in the order they apply (later entries win), and notes on what was
/// skipped.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Resolved {
    /// Name and value, in order.
    pub vars: Vec<(String, EnvValue)>,
    /// Why some keys were not used, e.g. invalid variable names from an `envFrom` source.
    pub notes: Vec<String>,
}

/// The sources of a runtime given none: every lookup fails, saying so.
#[derive(Debug)]
pub struct Unavailable;

// === impl Resolved ===

impl Resolved {
    /// The variables with each value from a ConfigMap or Secret replaced by `$(NAME)`, for what
    /// is shown (argv in logs and errors): expanding with these prints the reference, never the
    /// value.
    pub fn masked(&self) -> Vec<(String, EnvValue)> {
        self.vars
            .iter()
            .map(|(name, value)| match value {
                EnvValue::Literal(_) => (name.clone(), value.clone()),
                EnvValue::Exact(_) => (name.clone(), EnvValue::Exact(format!("$({name})").into())),
            })
            .collect()
    }
}

// === impl SourceKind ===

impl SourceKind {
    /// `configmap` / `secret`, as the kubelet names them in a "not found".
    fn lower(self) -> &'static str {
        match self {
            SourceKind::ConfigMap => "configmap",
            SourceKind::Secret => "secret",
        }
    }

    /// `ConfigMap` / `Secret`.
    fn kind(self) -> &'static str {
        match self {
            SourceKind::ConfigMap => "ConfigMap",
            SourceKind::Secret => "Secret",
        }
    }
}

// === impl Unavailable ===

impl EnvSources for Unavailable {
    fn lookup(&self, _: SourceKind, _: &str, _: &str) -> Result<Option<SourceData>, String> {
        Err("this runtime was given no source of ConfigMaps and Secrets".into())
    }
}

// === impl EnvValue ===

impl fmt::Debug for EnvValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EnvValue::Literal(v) => f.debug_tuple("Literal").field(v).finish(),
            // May be a secret: never printed.
            EnvValue::Exact(v) => write!(f, "Exact(<{} bytes>)", v.len()),
        }
    }
}

/// The variables `container` asks for in `namespace`, looking referenced objects up in
/// `sources` (each at most once).
pub fn resolve(container: &Container, namespace: &str, sources: &dyn EnvSources) -> Result<Resolved, ConfigError> {
    let mut lookups = Lookups { sources, namespace, seen: HashMap::new() };
    let mut out = Resolved::default();
    let env_from: Vec<EnvFromSource> = match container.extra.get("envFrom") {
        None | Some(serde_json::Value::Null) => Vec::new(),
        Some(v) => serde_json::from_value(v.clone()).map_err(|e| ConfigError::Malformed(e.to_string()))?,
    };
    for source in &env_from {
        from_source(source, &mut lookups, &mut out)?;
    }
    for (index, var) in container.env.iter().enumerate() {
        if let Some(value) = from_var(index, var, &mut lookups)? {
            out.vars.push((var.name.clone(), value));
        }
    }
    Ok(out)
}

/// One `envFrom` entry: every valid key of the object, with the prefix.
fn from_source(source: &EnvFromSource, lookups: &mut Lookups<'_>, out: &mut Resolved) -> Result<(), ConfigError> {
    let (kind, name, optional) = match (&source.config_map_ref, &source.secret_ref) {
        (Some(cm), _) => (SourceKind::ConfigMap, cm.name.as_str(), cm.optional == Some(true)),
        (None, Some(s)) => (SourceKind::Secret, s.name.as_str(), s.optional == Some(true)),
        // Validation refuses an entry with neither.
        (None, None) => return Ok(()),
    };
    let Some(data) = lookups.get(kind, name)? else {
        if optional {
            return Ok(());
        }
        return Err(ConfigError::NotFound { kind: kind.lower(), name: name.to_string() });
    };
    let prefix = source.prefix.as_deref().unwrap_or("");
    let mut invalid = Vec::new();
    for (key, value) in data {
        let var = format!("{prefix}{key}");
        if is_env_var_name(&var) {
            out.vars.push((var, EnvValue::Exact(OsString::from_vec(value.clone()))));
        } else {
            invalid.push(var);
        }
    }
    if !invalid.is_empty() {
        // The kubelet's InvalidEnvironmentVariableNames event.
        out.notes.push(format!(
            "Keys [{}] from the EnvFrom {} {}/{name} were skipped since they are considered invalid environment variable names.",
            invalid.join(", "),
            kind.lower(),
            lookups.namespace,
        ));
    }
    Ok(())
}

/// One `env` entry's value; None when an optional reference finds nothing.
fn from_var(index: usize, var: &EnvVar, lookups: &mut Lookups<'_>) -> Result<Option<EnvValue>, ConfigError> {
    let Some(from) = &var.value_from else {
        return Ok(Some(EnvValue::Literal(var.value.clone().unwrap_or_default())));
    };
    let (kind, name, key, optional) = match (&from.config_map_key_ref, &from.secret_key_ref) {
        (Some(r), _) => (SourceKind::ConfigMap, &r.name, &r.key, r.optional == Some(true)),
        (None, Some(r)) => (SourceKind::Secret, &r.name, &r.key, r.optional == Some(true)),
        (None, None) => {
            let field = serde_json::to_value(from)
                .ok()
                .and_then(|v| v.as_object().and_then(|m| m.keys().next().cloned()))
                .unwrap_or_else(|| "(empty)".into());
            return Err(ConfigError::Unsupported { index, var: var.name.clone(), field });
        }
    };
    let Some(data) = lookups.get(kind, name)? else {
        if optional {
            return Ok(None);
        }
        return Err(ConfigError::NotFound { kind: kind.lower(), name: name.clone() });
    };
    match data.get(key) {
        Some(value) => Ok(Some(EnvValue::Exact(OsString::from_vec(value.clone())))),
        None if optional => Ok(None),
        None => Err(ConfigError::MissingKey {
            kind: kind.kind(),
            namespace: lookups.namespace.to_string(),
            name: name.clone(),
            key: key.clone(),
        }),
    }
}

/// Kubernetes' `IsEnvVarName`: `[-._a-zA-Z][-._a-zA-Z0-9]*`.
pub fn is_env_var_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    let ok = |b: u8| b.is_ascii_alphabetic() || matches!(b, b'-' | b'.' | b'_');
    bytes.next().is_some_and(ok) && bytes.all(|b| ok(b) || b.is_ascii_digit())
}

/// Each object looked up once per resolution, so every reference sees the same version.
struct Lookups<'a> {
    sources: &'a dyn EnvSources,
    namespace: &'a str,
    seen: HashMap<(SourceKind, String), Option<SourceData>>,
}

impl Lookups<'_> {
    fn get(&mut self, kind: SourceKind, name: &str) -> Result<Option<&SourceData>, ConfigError> {
        let key = (kind, name.to_string());
        if !self.seen.contains_key(&key) {
            let found = self.sources.lookup(kind, self.namespace, name).map_err(|message| ConfigError::Lookup {
                kind: kind.lower(),
                name: name.to_string(),
                message,
            })?;
            self.seen.insert(key.clone(), found);
        }
        Ok(self.seen.get(&key).and_then(Option::as_ref))
    }
}

#[cfg(test)]
mod tests;
