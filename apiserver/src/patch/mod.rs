//! Patch formats: JSON merge patch (RFC 7386), JSON patch (RFC 6902), and strategic merge
//! patch as kubectl sends it for ConfigMaps (maps only: a merge patch with directives dropped).
//!
//! Every format is bounded in the work it can cause, as Kubernetes bounds it after
//! CVE-2019-1002100: a JSON patch has at most [`MAX_OPERATIONS`] operations and its copies may
//! add at most [`MAX_COPY_BYTES`], and no patch may produce an object over [`MAX_OBJECT_BYTES`].
//! Errors name the operation and path, never a value: a value can be as large as the document.

use serde_json::{Map, Value};

mod json_patch;

/// Kubernetes' limit on the operations in one JSON patch (`maxJSONPatchOperations`).
pub const MAX_OPERATIONS: usize = 10_000;
/// How many bytes the `copy` operations of one JSON patch may add, in all: Kubernetes'
/// `JSONPatchMaxCopyBytes`, which defaults to the request body limit.
pub const MAX_COPY_BYTES: usize = 3 * 1024 * 1024;
/// The largest object (as JSON) a patch may produce: no larger than a create could send.
pub const MAX_OBJECT_BYTES: usize = 3 * 1024 * 1024;

/// The patch formats the API server accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PatchKind {
    /// `application/merge-patch+json`.
    Merge,
    /// `application/json-patch+json`.
    Json,
    /// `application/strategic-merge-patch+json`.
    Strategic,
    /// `application/apply-patch+yaml` (server-side apply, approximated as a merge).
    Apply,
}

/// Why a patch could not be applied.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum PatchError {
    /// The patch is malformed or does not apply to the object (422).
    #[error("{0}")]
    Invalid(String),
    /// A JSON patch with more operations than [`MAX_OPERATIONS`] (413).
    #[error("The allowed maximum operations in a JSON patch is {MAX_OPERATIONS}, got {0}")]
    TooManyOperations(usize),
    /// The patched object would be larger than [`MAX_OBJECT_BYTES`] (413).
    #[error("the patched object is larger than the limit of {MAX_OBJECT_BYTES} bytes")]
    TooLarge,
}

// === impl PatchError ===

impl PatchError {
    /// The HTTP status code Kubernetes answers this failure with.
    pub fn code(&self) -> u16 {
        match self {
            Self::Invalid(_) => 422,
            Self::TooManyOperations(_) | Self::TooLarge => 413,
        }
    }
}

/// Applies `patch` of `kind` to `target`.
pub fn apply(kind: PatchKind, target: &Value, patch: &Value) -> Result<Value, PatchError> {
    let out = match kind {
        PatchKind::Merge | PatchKind::Apply => {
            if !patch.is_object() {
                return Err(PatchError::Invalid("a merge patch must be a JSON object".into()));
            }
            let mut out = target.clone();
            merge(&mut out, patch);
            out
        }
        PatchKind::Strategic => {
            if !patch.is_object() {
                return Err(PatchError::Invalid("a strategic merge patch must be a JSON object".into()));
            }
            let mut out = target.clone();
            merge(&mut out, &strip_directives(patch));
            out
        }
        PatchKind::Json => json_patch::apply(target, patch)?,
    };
    if encoded_len(&out, MAX_OBJECT_BYTES).is_none() {
        return Err(PatchError::TooLarge);
    }
    Ok(out)
}

/// RFC 7386: objects merge recursively, `null` removes, anything else replaces.
pub fn merge(target: &mut Value, patch: &Value) {
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let t = target.as_object_mut().expect("made an object above");
    for (k, v) in p {
        if v.is_null() {
            t.remove(k);
        } else {
            merge(t.entry(k.clone()).or_insert(Value::Null), v);
        }
    }
}

/// Drops strategic-merge directives (`$patch`, `$retainKeys`, `$setElementOrder/...`,
/// `$deleteFromPrimitiveList/...`), which only matter for lists with merge keys.
fn strip_directives(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter().filter(|(k, _)| !k.starts_with('$')).map(|(k, v)| (k.clone(), strip_directives(v))).collect(),
        ),
        other => other.clone(),
    }
}

/// The length of `v` encoded as compact JSON, or None once it passes `limit` (the encoding
/// stops there, so measuring costs at most `limit` bytes of work).
fn encoded_len(v: &Value, limit: usize) -> Option<usize> {
    let mut meter = Meter { left: limit };
    serde_json::to_writer(&mut meter, v).ok()?;
    Some(limit - meter.left)
}

/// A writer that counts bytes and fails past its budget.
struct Meter {
    left: usize,
}

// === impl Meter ===

impl std::io::Write for Meter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.left = self.left.checked_sub(buf.len()).ok_or(std::io::ErrorKind::FileTooLarge)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests;
