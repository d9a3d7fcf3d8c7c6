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

fn decode_yaml(bytes: &[u8]) -> Result<Value, ApiError> {
    let text =
        std::str::from_utf8(bytes).map_err(|e| ApiError::bad_request(format!("the request body is not UTF-8: {e}")))?;
    serde_saphyr::from_str::<Value>(text)
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
}
