//! Request bodies: read with a size limit (413 past it) and decoded from JSON or YAML with the
//! parser's position in the error (400).

use bytes::Bytes;
use http_body_util::BodyExt;
use serde_json::Value;

use super::patch::PatchKind;
use super::status::ApiError;

/// The largest request body accepted, as Kubernetes' default (3 MiB).
pub const MAX_BODY_BYTES: usize = 3 * 1024 * 1024;

/// How much of an oversized body is read and thrown away before answering 413, so that a
/// client still sending gets the answer instead of a reset connection.
const DRAIN_BYTES: usize = 64 * 1024 * 1024;

/// Reads the whole body, refusing more than `limit` bytes.
pub async fn read<B>(body: B, limit: usize) -> Result<Bytes, ApiError>
where
    B: http_body::Body<Data = Bytes> + Send + Unpin,
    B::Error: std::fmt::Display,
{
    let mut body = body;
    let mut buf = bytes::BytesMut::new();
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| ApiError::bad_request(format!("reading the request body failed: {e}")))?;
        let Ok(data) = frame.into_data() else { continue };
        seen = seen.saturating_add(data.len());
        if seen > limit {
            if seen > limit + DRAIN_BYTES {
                break;
            }
            continue;
        }
        buf.extend_from_slice(&data);
    }
    if seen > limit {
        return Err(ApiError::too_large(limit));
    }
    Ok(buf.freeze())
}

/// The media type of a `Content-Type` value, lowercased and without parameters.
pub fn media_type(content_type: Option<&str>) -> String {
    content_type.unwrap_or("application/json").split(';').next().unwrap_or("").trim().to_ascii_lowercase()
}

/// Decodes an object body: JSON, or YAML for `application/yaml`.
pub fn decode(bytes: &[u8], media: &str) -> Result<Value, ApiError> {
    let value = match media {
        "application/yaml" | "application/x-yaml" | "text/yaml" | "application/apply-patch+yaml" => decode_yaml(bytes)?,
        "application/json"
        | ""
        | "*/*"
        | "application/merge-patch+json"
        | "application/json-patch+json"
        | "application/strategic-merge-patch+json" => serde_json::from_slice(bytes)
            .map_err(|e| ApiError::bad_request(format!("the request body is not valid JSON: {e}")))?,
        "application/vnd.kubernetes.protobuf" => super::protobuf::decode(bytes)?,
        other => return Err(ApiError::unsupported_media(other)),
    };
    Ok(value)
}

/// Limits on what one YAML request body may make the parser do. A Kubernetes object has few
/// anchors and aliases (most have none), so these are generous for a manifest and stop an
/// alias bomb (a few hundred bytes that expand to millions of nodes) in about a millisecond.
fn yaml_options() -> serde_saphyr::Options {
    serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_documents: 1,
            max_depth: 64,
            max_aliases: 1_000,
            max_anchors: 1_000,
            max_nodes: 100_000,
            max_events: 250_000,
            max_recorded_anchor_events: 2_000,
            max_recorded_anchor_bytes: 1 << 20,
        },
    }
}

fn decode_yaml(bytes: &[u8]) -> Result<Value, ApiError> {
    let text =
        std::str::from_utf8(bytes).map_err(|e| ApiError::bad_request(format!("the request body is not UTF-8: {e}")))?;
    serde_saphyr::from_str_with_options::<Value>(text, yaml_options())
        .map_err(|e| ApiError::bad_request(format!("the request body is not valid YAML: {e}")))
}

/// The patch format named by a PATCH request's media type.
pub fn patch_kind(media: &str) -> Result<PatchKind, ApiError> {
    match media {
        "application/merge-patch+json" => Ok(PatchKind::Merge),
        "application/json-patch+json" => Ok(PatchKind::Json),
        "application/strategic-merge-patch+json" => Ok(PatchKind::Strategic),
        "application/apply-patch+yaml" => Ok(PatchKind::Apply),
        other => Err(ApiError::unsupported_media(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_bodies_name_the_position() {
        let err = decode(b"{\"a\": 1,,}", "application/json").expect_err("bad json");
        assert_eq!(err.code, 400);
        assert!(err.message.contains("line 1 column"), "{}", err.message);
        let err = decode(b"a: [1, 2\nb: 3\n", "application/yaml").expect_err("bad yaml");
        assert_eq!(err.code, 400);
        assert!(err.message.contains("line"), "{}", err.message);
        assert_eq!(decode(b"a: 1\n", "application/yaml").expect("yaml")["a"], 1);
        assert_eq!(decode(b"x", "application/vnd.kubernetes.protobuf").expect_err("protobuf").code, 400);
        assert_eq!(decode(b"x", "application/cbor").expect_err("cbor").code, 415);
    }

    #[tokio::test]
    async fn bodies_over_the_limit_are_refused_with_413() {
        let body = http_body_util::Full::new(Bytes::from(vec![b' '; 100]));
        assert_eq!(read(body, 10).await.expect_err("too big").code, 413);
        let body = http_body_util::Full::new(Bytes::from_static(b"{}"));
        assert_eq!(read(body, 10).await.expect("fits"), Bytes::from_static(b"{}"));
    }

    /// Nine levels of nine aliases each: about 400 bytes that name 9^9 leaves.
    fn alias_bomb() -> String {
        let mut doc = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x]\n");
        for i in 1..9 {
            let prev = format!("*a{}", i - 1);
            doc.push_str(&format!("a{i}: &a{i} [{}]\n", [prev.as_str(); 9].join(", ")));
        }
        doc
    }

    #[test]
    fn an_alias_bomb_is_refused_at_once() {
        let bomb = alias_bomb();
        assert!(bomb.len() < 600, "{}", bomb.len());
        let started = std::time::Instant::now();
        let err = decode_yaml(bomb.as_bytes()).expect_err("refused");
        let took = started.elapsed();
        assert_eq!(err.code, 400);
        assert!(err.message.starts_with("the request body is not valid YAML: "), "{}", err.message);
        // Refused by the budget on replayed anchors, long before the expansion gets expensive
        // (with the parser's defaults the same 400 bytes take a second of CPU).
        assert!(err.message.contains("budget breached: RecordedAnchorEvents"), "{}", err.message);
        eprintln!("alias bomb refused in {took:?}: {}", err.message);
    }

    #[test]
    fn manifests_with_a_few_anchors_still_parse() {
        let doc = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: m, labels: &l {app: x}}\ndata:\n  a: &v hello\n  b: *v\n";
        let v = decode_yaml(doc.as_bytes()).expect("parses");
        assert_eq!(v["data"]["b"], "hello");
        assert_eq!(v["metadata"]["labels"]["app"], "x");
    }
}
