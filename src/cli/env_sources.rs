//! The runtime's ConfigMaps and Secrets, read from the embedded store when an instance starts
//! (so an object created a moment before is seen, as the kubelet sees it through the API).

use std::sync::Arc;

use serde_json::Value;
use sluice_api::Kind;
use sluice_api::validation::secret;
use sluice_apiserver::store::Store;
use sluice_runtime::{EnvSources, SourceData, SourceKind};

/// Looks objects up in the store.
pub struct StoreSources(pub Arc<Store>);

impl std::fmt::Debug for StoreSources {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StoreSources")
    }
}

impl EnvSources for StoreSources {
    fn lookup(&self, kind: SourceKind, namespace: &str, name: &str) -> Result<Option<SourceData>, String> {
        let stored_kind = match kind {
            SourceKind::ConfigMap => Kind::ConfigMap,
            SourceKind::Secret => Kind::Secret,
        };
        let Some(obj) = self.0.get(stored_kind, namespace, name).map_err(|e| e.to_string())? else {
            return Ok(None);
        };
        let data = obj.get("data").and_then(Value::as_object).into_iter().flatten();
        let mut out = SourceData::new();
        for (key, value) in data {
            let text = value.as_str().unwrap_or("");
            let bytes = match kind {
                // A ConfigMap's `data` holds text; `binaryData` is not read, as by the kubelet.
                SourceKind::ConfigMap => text.as_bytes().to_vec(),
                // Admission stored only base64; the error names the key, never the value.
                SourceKind::Secret => secret::decode(text).ok_or_else(|| format!("data[{key}] is not base64"))?,
            };
            out.insert(key.clone(), bytes);
        }
        Ok(Some(out))
    }
}
