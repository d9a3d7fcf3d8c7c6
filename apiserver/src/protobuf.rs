//! The protobuf request bodies kubectl sends for built-in kinds (`kubectl create namespace`,
//! `kubectl create configmap` use client-go's typed clients, which write
//! `application/vnd.kubernetes.protobuf`). Decoded into the same JSON the other bodies become,
//! for the core kinds served here: Namespace, ConfigMap and Secret. Responses stay JSON, which those
//! clients accept.
//!
//! The envelope is `k8s\0` followed by a `runtime.Unknown` message: `typeMeta` (1: apiVersion,
//! kind), `raw` (2: the object's own message). Only the fields a client sets when creating or
//! replacing these kinds are read; server-owned metadata (uid, timestamps, managedFields) is
//! skipped, as the server sets it.

use serde_json::{Map, Value, json};

use super::status::ApiError;

/// The four bytes that start every Kubernetes protobuf body.
const MAGIC: &[u8] = b"k8s\0";

/// One field of a protobuf message.
#[derive(Debug, PartialEq)]
enum Field<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    /// Fixed 32- or 64-bit values: no field read here has them.
    Fixed,
}

/// Decodes a protobuf object body into JSON.
pub fn decode(bytes: &[u8]) -> Result<Value, ApiError> {
    let body = bytes
        .strip_prefix(MAGIC)
        .ok_or_else(|| bad("the body does not start with the Kubernetes protobuf magic number"))?;
    let (mut api_version, mut kind, mut raw) = (String::new(), String::new(), &[][..]);
    for field in fields(body) {
        match field? {
            (1, Field::Bytes(type_meta)) => {
                for f in fields(type_meta) {
                    match f? {
                        (1, Field::Bytes(b)) => api_version = text(b, "apiVersion")?,
                        (2, Field::Bytes(b)) => kind = text(b, "kind")?,
                        _ => {}
                    }
                }
            }
            (2, Field::Bytes(b)) => raw = b,
            (3, Field::Bytes(encoding)) if !encoding.is_empty() => {
                return Err(bad("compressed protobuf bodies (contentEncoding) are not supported"));
            }
            _ => {}
        }
    }
    let mut obj = match (api_version.as_str(), kind.as_str()) {
        ("v1", "Namespace") => namespace(raw)?,
        ("v1", "ConfigMap") => config_map(raw)?,
        ("v1", "Secret") => secret(raw)?,
        _ => {
            return Err(ApiError::new(
                415,
                "UnsupportedMediaType",
                format!(
                    "protobuf bodies are accepted for v1 Namespace, ConfigMap and Secret only, not {api_version} {kind}; send JSON or YAML"
                ),
            ));
        }
    };
    if let Some(map) = obj.as_object_mut() {
        map.insert("apiVersion".into(), api_version.into());
        map.insert("kind".into(), kind.into());
    }
    Ok(obj)
}

fn bad(reason: &str) -> ApiError {
    ApiError::bad_request(format!("the protobuf request body is malformed: {reason}"))
}

fn text(bytes: &[u8], field: &str) -> Result<String, ApiError> {
    String::from_utf8(bytes.to_vec()).map_err(|_| bad(&format!("{field} is not UTF-8")))
}

/// `core.v1.Namespace`: metadata (1), spec (2: finalizers 1).
fn namespace(raw: &[u8]) -> Result<Value, ApiError> {
    let mut obj = Map::new();
    for field in fields(raw) {
        match field? {
            (1, Field::Bytes(b)) => {
                obj.insert("metadata".into(), object_meta(b)?);
            }
            (2, Field::Bytes(b)) => {
                let mut finalizers = Vec::new();
                for f in fields(b) {
                    if let (1, Field::Bytes(s)) = f? {
                        finalizers.push(Value::String(text(s, "spec.finalizers")?));
                    }
                }
                obj.insert("spec".into(), json!({"finalizers": finalizers}));
            }
            _ => {}
        }
    }
    Ok(Value::Object(obj))
}

/// `core.v1.ConfigMap`: metadata (1), data (2), binaryData (3), immutable (4).
fn config_map(raw: &[u8]) -> Result<Value, ApiError> {
    let mut obj = Map::new();
    let (mut data, mut binary) = (Map::new(), Map::new());
    for field in fields(raw) {
        match field? {
            (1, Field::Bytes(b)) => {
                obj.insert("metadata".into(), object_meta(b)?);
            }
            (2, Field::Bytes(b)) => {
                let (k, v) = entry(b, "data")?;
                data.insert(k, Value::String(text(v, "data")?));
            }
            (3, Field::Bytes(b)) => {
                let (k, v) = entry(b, "binaryData")?;
                binary.insert(k, Value::String(base64(v)));
            }
            (4, Field::Varint(v)) => {
                obj.insert("immutable".into(), Value::Bool(v != 0));
            }
            _ => {}
        }
    }
    if !data.is_empty() {
        obj.insert("data".into(), Value::Object(data));
    }
    if !binary.is_empty() {
        obj.insert("binaryData".into(), Value::Object(binary));
    }
    Ok(Value::Object(obj))
}

/// `core.v1.Secret`: metadata (1), data (2, bytes), type (3), stringData (4), immutable (5).
fn secret(raw: &[u8]) -> Result<Value, ApiError> {
    let mut obj = Map::new();
    let (mut data, mut strings) = (Map::new(), Map::new());
    for field in fields(raw) {
        match field? {
            (1, Field::Bytes(b)) => {
                obj.insert("metadata".into(), object_meta(b)?);
            }
            (2, Field::Bytes(b)) => {
                let (k, v) = entry(b, "data")?;
                data.insert(k, Value::String(base64(v)));
            }
            (3, Field::Bytes(b)) => {
                obj.insert("type".into(), Value::String(text(b, "type")?));
            }
            (4, Field::Bytes(b)) => {
                let (k, v) = entry(b, "stringData")?;
                strings.insert(k, Value::String(text(v, "stringData")?));
            }
            (5, Field::Varint(v)) => {
                obj.insert("immutable".into(), Value::Bool(v != 0));
            }
            _ => {}
        }
    }
    if !data.is_empty() {
        obj.insert("data".into(), Value::Object(data));
    }
    if !strings.is_empty() {
        obj.insert("stringData".into(), Value::Object(strings));
    }
    Ok(Value::Object(obj))
}

/// `meta.v1.ObjectMeta`, the fields a client sets: name (1), generateName (2), namespace (3),
/// resourceVersion (6), labels (11), annotations (12), finalizers (14).
fn object_meta(raw: &[u8]) -> Result<Value, ApiError> {
    let mut meta = Map::new();
    let (mut labels, mut annotations, mut finalizers) = (Map::new(), Map::new(), Vec::new());
    for field in fields(raw) {
        match field? {
            (n @ (1 | 2 | 3 | 6), Field::Bytes(b)) => {
                let key = match n {
                    1 => "name",
                    2 => "generateName",
                    3 => "namespace",
                    _ => "resourceVersion",
                };
                meta.insert(key.into(), Value::String(text(b, &format!("metadata.{key}"))?));
            }
            (11, Field::Bytes(b)) => {
                let (k, v) = entry(b, "metadata.labels")?;
                labels.insert(k, Value::String(text(v, "metadata.labels")?));
            }
            (12, Field::Bytes(b)) => {
                let (k, v) = entry(b, "metadata.annotations")?;
                annotations.insert(k, Value::String(text(v, "metadata.annotations")?));
            }
            (14, Field::Bytes(b)) => finalizers.push(Value::String(text(b, "metadata.finalizers")?)),
            _ => {}
        }
    }
    for (key, map) in [("labels", labels), ("annotations", annotations)] {
        if !map.is_empty() {
            meta.insert(key.into(), Value::Object(map));
        }
    }
    if !finalizers.is_empty() {
        meta.insert("finalizers".into(), Value::Array(finalizers));
    }
    Ok(Value::Object(meta))
}

/// A map entry: key (1) and value (2).
fn entry<'a>(raw: &'a [u8], what: &str) -> Result<(String, &'a [u8]), ApiError> {
    let (mut key, mut value) = (String::new(), &[][..]);
    for field in fields(raw) {
        match field? {
            (1, Field::Bytes(b)) => key = text(b, what)?,
            (2, Field::Bytes(b)) => value = b,
            _ => {}
        }
    }
    Ok((key, value))
}

/// The fields of a message, in order.
fn fields(mut buf: &[u8]) -> impl Iterator<Item = Result<(u64, Field<'_>), ApiError>> {
    std::iter::from_fn(move || {
        if buf.is_empty() {
            return None;
        }
        let next = (|| {
            let tag = varint(&mut buf)?;
            let field = match tag & 7 {
                0 => Field::Varint(varint(&mut buf)?),
                1 => Field::Fixed.skip(&mut buf, 8)?,
                2 => {
                    let len = usize::try_from(varint(&mut buf)?).map_err(|_| bad("length overflows"))?;
                    let (b, rest) = buf.split_at_checked(len).ok_or_else(|| bad("a field runs past the end"))?;
                    buf = rest;
                    Field::Bytes(b)
                }
                5 => Field::Fixed.skip(&mut buf, 4)?,
                other => return Err(bad(&format!("unsupported wire type {other}"))),
            };
            Ok((tag >> 3, field))
        })();
        if next.is_err() {
            // Stop after the first error.
            buf = &[];
        }
        Some(next)
    })
}

impl Field<'_> {
    fn skip(self, buf: &mut &[u8], n: usize) -> Result<Self, ApiError> {
        let (_, rest) = buf.split_at_checked(n).ok_or_else(|| bad("a field runs past the end"))?;
        *buf = rest;
        Ok(self)
    }
}

fn varint(buf: &mut &[u8]) -> Result<u64, ApiError> {
    let mut value = 0u64;
    for (i, byte) in buf.iter().enumerate().take(10) {
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            *buf = &buf[i + 1..];
            return Ok(value);
        }
    }
    Err(bad("a varint is truncated or too long"))
}

/// Standard padded base64, as JSON carries `binaryData`.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], chunk.get(1).copied().unwrap_or(0), chunk.get(2).copied().unwrap_or(0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes_field(n: u64, b: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        put_varint(&mut out, (n << 3) | 2);
        put_varint(&mut out, b.len() as u64);
        out.extend_from_slice(b);
        out
    }

    fn put_varint(out: &mut Vec<u8>, mut v: u64) {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }

    fn envelope(api_version: &str, kind: &str, raw: &[u8]) -> Vec<u8> {
        let type_meta = [bytes_field(1, api_version.as_bytes()), bytes_field(2, kind.as_bytes())].concat();
        [MAGIC.to_vec(), bytes_field(1, &type_meta), bytes_field(2, raw)].concat()
    }

    fn map_entry(n: u64, k: &str, v: &[u8]) -> Vec<u8> {
        bytes_field(n, &[bytes_field(1, k.as_bytes()), bytes_field(2, v)].concat())
    }

    #[test]
    fn a_namespace_as_kubectl_create_sends_it() {
        let meta = [bytes_field(1, b"team-a"), map_entry(11, "team", b"a")].concat();
        let raw = [bytes_field(1, &meta), bytes_field(2, &[]), bytes_field(3, &[])].concat();
        let obj = decode(&envelope("v1", "Namespace", &raw)).expect("decodes");
        assert_eq!(
            obj,
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a", "labels": {"team": "a"}},
                   "spec": {"finalizers": []}})
        );
    }

    #[test]
    fn a_config_map_with_data_binary_data_and_immutable() {
        let meta = [bytes_field(1, b"config-features"), bytes_field(3, b"knative-serving")].concat();
        let mut raw = [bytes_field(1, &meta), map_entry(2, "tag-header-based-routing", b"Enabled")].concat();
        raw.extend(map_entry(3, "blob", &[0xff, 0x00, b'a', b'b']));
        raw.extend([4 << 3, 1]);
        let obj = decode(&envelope("v1", "ConfigMap", &raw)).expect("decodes");
        assert_eq!(obj["metadata"]["namespace"], "knative-serving");
        assert_eq!(obj["data"]["tag-header-based-routing"], "Enabled");
        assert_eq!(obj["binaryData"]["blob"], "/wBhYg==");
        assert_eq!(obj["immutable"], true);
    }

    #[test]
    fn a_secret_as_kubectl_create_secret_sends_it() {
        let meta = [bytes_field(1, b"db"), bytes_field(3, b"default")].concat();
        let mut raw = [bytes_field(1, &meta), map_entry(2, "password", &[0xff, b'p', b'w'])].concat();
        raw.extend(bytes_field(3, b"Opaque"));
        raw.extend(map_entry(4, "user", b"admin"));
        raw.extend([5 << 3, 1]);
        let obj = decode(&envelope("v1", "Secret", &raw)).expect("decodes");
        assert_eq!(obj["metadata"]["name"], "db");
        assert_eq!(obj["data"]["password"], "/3B3");
        assert_eq!(obj["stringData"]["user"], "admin");
        assert_eq!(obj["type"], "Opaque");
        assert_eq!(obj["immutable"], true);
    }

    #[test]
    fn other_kinds_and_broken_bodies_are_refused_with_a_reason() {
        assert_eq!(decode(&envelope("apps/v1", "Deployment", &[])).expect_err("kind").code, 415);
        assert_eq!(decode(b"{}").expect_err("no magic").code, 400);
        let truncated = [MAGIC.to_vec(), vec![(2 << 3) | 2, 50, 1, 2]].concat();
        let err = decode(&truncated).expect_err("truncated");
        assert!(err.message.contains("runs past the end"), "{}", err.message);
    }

    #[test]
    fn base64_pads_like_go() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"a"), "YQ==");
        assert_eq!(base64(b"ab"), "YWI=");
        assert_eq!(base64(b"abc"), "YWJj");
    }
}
