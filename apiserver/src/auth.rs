//! Who may call the API: the holder of one bearer token, generated into the state directory on
//! the first start and kept across restarts. Every request needs it except the few endpoints
//! Kubernetes' `system:public-info-viewer` role opens to anyone (`/version` and the health
//! checks), which reveal nothing and change nothing.

use std::fmt;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use http::{HeaderMap, Method, header};
use rand::TryRngCore;
use subtle::ConstantTimeEq;

use crate::status::ApiError;

/// Random bytes in a generated token (hex-encoded, so 64 characters).
const TOKEN_BYTES: usize = 32;
/// Read-write for the owner only: the token lets its holder run commands as this user.
const PRIVATE: u32 = 0o600;
/// The paths `system:public-info-viewer` lets anyone `GET`.
const PUBLIC_PATHS: &[&str] = &["/version", "/version/", "/healthz", "/livez", "/readyz"];

/// The API server's bearer token. Its `Debug` output hides the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

/// A token file that exists but holds no usable token.
#[derive(Debug, thiserror::Error)]
#[error(
    "{path} holds no valid token (one line of printable ASCII, no quotes or backslashes); delete it to have `sluice serve` generate a new one"
)]
pub struct MalformedTokenFile {
    /// The file.
    pub path: String,
}

// === impl Token ===

impl Token {
    /// A new token: 32 bytes from the operating system's random source, hex-encoded.
    pub fn generate() -> std::io::Result<Self> {
        let mut bytes = [0u8; TOKEN_BYTES];
        rand::rngs::OsRng.try_fill_bytes(&mut bytes).map_err(std::io::Error::other)?;
        Ok(Self(bytes.iter().map(|b| format!("{b:02x}")).collect()))
    }

    /// A token given as text (a flag, an environment variable, a file's content); surrounding
    /// whitespace is ignored. None when empty or not printable ASCII (what a header carries),
    /// or holding a quote or backslash (which the kubeconfig's quoted string would need escaped).
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        let printable = !text.is_empty() && text.bytes().all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\');
        printable.then(|| Self(text.to_string()))
    }

    /// The token in `path`; `Ok(None)` when there is no such file.
    pub fn read(path: &Path) -> std::io::Result<Option<Self>> {
        match std::fs::read_to_string(path) {
            Ok(text) => Self::parse(&text)
                .map(Some)
                .ok_or_else(|| std::io::Error::other(MalformedTokenFile { path: path.display().to_string() })),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The token in `path`, generated and written there (mode 0600, fsynced, atomically) when
    /// the file does not exist yet. An existing file readable by others is narrowed to 0600.
    pub fn load_or_create(path: &Path) -> std::io::Result<Self> {
        if let Some(token) = Self::read(path)? {
            keep_private(path, "the API token file")?;
            return Ok(token);
        }
        let token = Self::generate()?;
        write_private(path, token.0.as_bytes())?;
        Ok(token)
    }

    /// The token's text, for a header or a kubeconfig.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// True when `presented` is this token, compared in constant time so the answer's timing
    /// does not tell a guesser how many leading characters were right.
    pub fn matches(&self, presented: &str) -> bool {
        bool::from(self.0.as_bytes().ct_eq(presented.as_bytes()))
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

/// Writes `bytes` to `path` with mode 0600 from the first byte on (temporary file, fsync, rename).
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_atomic(path, bytes, PRIVATE)
}

/// Narrows a private file that others may read to mode 0600, with a warning naming it.
pub(crate) fn keep_private(path: &Path, what: &str) -> std::io::Result<()> {
    let mode = std::fs::metadata(path)?.permissions().mode() & 0o777;
    if mode != PRIVATE {
        tracing::warn!(path = %path.display(), mode = format!("{mode:o}"), "{what} was readable by others; setting mode 0600");
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(PRIVATE))?;
    }
    Ok(())
}

/// Writes `bytes` to `path` with `mode` from the first byte on (temporary file, fsync, rename),
/// so a reader never sees half a file and a crash leaves the old one or the new one.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    {
        let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(mode).open(&tmp)?;
        // The umask can only narrow the mode; this makes it exactly `mode` whatever it is.
        f.set_permissions(std::fs::Permissions::from_mode(mode))?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)
}

/// True for what anyone may ask without a token.
fn is_public(method: &Method, path: &str) -> bool {
    matches!(*method, Method::GET | Method::HEAD) && PUBLIC_PATHS.contains(&path)
}

/// Admits a request carrying `Authorization: Bearer <token>` (or one to a public endpoint):
/// 401 `Unauthorized` when the header is missing or malformed, 403 `Forbidden` for another token.
pub(crate) fn check(token: &Token, method: &Method, path: &str, headers: &HeaderMap) -> Result<(), ApiError> {
    if is_public(method, path) {
        return Ok(());
    }
    let presented = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(bearer);
    match presented {
        None => Err(ApiError::unauthorized()),
        Some(presented) if token.matches(presented) => Ok(()),
        Some(_) => Err(ApiError::forbidden_token()),
    }
}

/// The token of a `Bearer <token>` header value, read as Kubernetes' bearer-token
/// authenticator does: the scheme case-insensitively, then one space, then a non-empty token.
fn bearer(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty() && !token.contains(' ')).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(value: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(v) = value {
            h.insert(header::AUTHORIZATION, v.parse().expect("header value"));
        }
        h
    }

    #[test]
    fn generated_tokens_are_64_hex_characters_and_differ() {
        let (a, b) = (Token::generate().expect("random"), Token::generate().expect("random"));
        assert_eq!(a.as_str().len(), 64);
        assert!(a.as_str().bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
        assert_eq!(format!("{a:?}"), "Token(<redacted>)");
    }

    #[test]
    fn requests_need_the_bearer_token_except_public_endpoints() {
        let token = Token::parse("s3cret").expect("token");
        let code = |method: Method, path: &str, auth: Option<&str>| {
            check(&token, &method, path, &headers(auth)).err().map(|e| e.code)
        };
        assert_eq!(code(Method::GET, "/api/v1/configmaps", Some("Bearer s3cret")), None);
        assert_eq!(code(Method::POST, "/api/v1/configmaps", Some("bearer s3cret")), None);
        assert_eq!(code(Method::GET, "/api/v1/configmaps", None), Some(401));
        assert_eq!(code(Method::GET, "/api/v1/configmaps", Some("Basic czNjcmV0")), Some(401));
        assert_eq!(code(Method::GET, "/api/v1/configmaps", Some("Bearer")), Some(401));
        assert_eq!(code(Method::GET, "/api/v1/configmaps", Some("Bearer  s3cret")), Some(401));
        assert_eq!(code(Method::GET, "/api/v1/configmaps", Some("Bearer s3cre")), Some(403));
        assert_eq!(code(Method::GET, "/api/v1/configmaps", Some("Bearer s3cret0")), Some(403));
        for public in ["/version", "/healthz", "/livez", "/readyz"] {
            assert_eq!(code(Method::GET, public, None), None, "{public}");
        }
        // Only reads of exactly those paths: discovery and the root list what is served.
        assert_eq!(code(Method::POST, "/version", None), Some(401));
        assert_eq!(code(Method::GET, "/", None), Some(401));
        assert_eq!(code(Method::GET, "/apis", None), Some(401));
        assert_eq!(code(Method::GET, "/healthz/anything", None), Some(401));
    }

    #[test]
    fn the_token_file_is_private_and_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("token");
        let first = Token::load_or_create(&path).expect("created");
        assert_eq!(std::fs::metadata(&path).expect("file").permissions().mode() & 0o777, 0o600);
        assert_eq!(Token::load_or_create(&path).expect("read back"), first);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        assert_eq!(Token::load_or_create(&path).expect("read back"), first);
        assert_eq!(std::fs::metadata(&path).expect("file").permissions().mode() & 0o777, 0o600);
        std::fs::write(&path, "\n").expect("empty it");
        assert!(Token::load_or_create(&path).is_err(), "an empty token file is an error, not a new token");
    }
}
