//! Query strings: percent-decoded `key=value` pairs, and the options Kubernetes validates in
//! them before any work (`dryRun`, `resourceVersion`, `limit`).

use std::collections::HashMap;

use super::status::ApiError;

/// The one `dryRun` value Kubernetes accepts.
const DRY_RUN_ALL: &str = "All";

/// The decoded query parameters of a request; a repeated key keeps every value.
#[derive(Clone, Debug, Default)]
pub struct Query(HashMap<String, Vec<String>>);

// === impl Query ===

impl Query {
    /// Parses a raw query string (without the `?`).
    pub fn parse(raw: Option<&str>) -> Self {
        let mut map = HashMap::new();
        for pair in raw.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            map.entry(decode(k)).or_insert_with(Vec::new).push(decode(v));
        }
        Self(map)
    }

    /// The value of `key` (the last, when it is repeated).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.last()).map(String::as_str)
    }

    /// Every value of `key`, in order.
    pub fn all(&self, key: &str) -> &[String] {
        self.0.get(key).map_or(&[], Vec::as_slice)
    }

    /// True when `key` is `true` or `1`.
    pub fn flag(&self, key: &str) -> bool {
        matches!(self.get(key), Some("true" | "1"))
    }

    /// `resourceVersion`, when given: an unsigned integer, else 400 (Kubernetes parses it as one).
    pub fn resource_version(&self) -> Result<Option<u64>, ApiError> {
        match self.get("resourceVersion").filter(|v| !v.is_empty()) {
            None => Ok(None),
            Some(v) => {
                v.parse::<u64>().map(Some).map_err(|_| ApiError::bad_request(format!("invalid resource version {v:?}")))
            }
        }
    }

    /// `limit`, when it limits: a non-negative integer, else 400; `0` (or none) is no limit.
    pub fn limit(&self) -> Result<Option<usize>, ApiError> {
        match self.get("limit").filter(|l| !l.is_empty()) {
            None => Ok(None),
            Some(l) => match l.parse::<u64>() {
                Ok(0) => Ok(None),
                Ok(n) => Ok(Some(usize::try_from(n).unwrap_or(usize::MAX))),
                Err(_) => Err(ApiError::bad_request(format!("invalid limit {l:?}: must be a non-negative integer"))),
            },
        }
    }

    /// Whether the write is a dry run: `dryRun=All` (possibly repeated). Any other value is
    /// refused as Kubernetes refuses it, naming `options`, the request's options kind
    /// (`CreateOptions`, `UpdateOptions`, `PatchOptions`).
    pub fn dry_run(&self, options: &str) -> Result<bool, ApiError> {
        dry_run(self.all("dryRun"), options)
    }
}

/// Kubernetes' `ValidateDryRun`: every value must be `All`; true when there is one.
pub fn dry_run(values: &[String], options: &str) -> Result<bool, ApiError> {
    if values.iter().all(|v| v == DRY_RUN_ALL) {
        return Ok(!values.is_empty());
    }
    Err(ApiError::unsupported_option(options, "dryRun", values, &[DRY_RUN_ALL]))
}

/// Percent-decodes `s`, reading `+` as a space.
pub fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                match std::str::from_utf8(&bytes[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_selectors_as_kubectl_sends_them() {
        let q = Query::parse(Some("labelSelector=app%3Dweb%2Ctier+in+%28a%29&watch=1&x"));
        assert_eq!(q.get("labelSelector"), Some("app=web,tier in (a)"));
        assert!(q.flag("watch"));
        assert_eq!(q.get("x"), Some(""));
        assert_eq!(decode("100%"), "100%");
        assert_eq!(decode("%zz"), "%zz");
    }

    #[test]
    fn list_options_are_integers_or_refused_with_400() {
        let q = |raw: &str| Query::parse(Some(raw));
        assert_eq!(q("resourceVersion=12").resource_version().expect("rv"), Some(12));
        assert_eq!(q("resourceVersion=").resource_version().expect("empty rv"), None);
        for raw in ["resourceVersion=abc", "resourceVersion=-1", "resourceVersion=1.5"] {
            let err = q(raw).resource_version().expect_err(raw);
            assert_eq!((err.code, err.reason), (400, "BadRequest"), "{raw}");
        }
        assert_eq!(
            q("resourceVersion=abc").resource_version().expect_err("abc").message,
            r#"invalid resource version "abc""#
        );
        assert_eq!(q("limit=5").limit().expect("limit"), Some(5));
        assert_eq!(q("limit=0").limit().expect("zero is no limit"), None);
        assert_eq!(q("x=1").limit().expect("none"), None);
        for raw in ["limit=-1", "limit=abc", "limit=1e3"] {
            let err = q(raw).limit().expect_err(raw);
            assert_eq!((err.code, err.reason), (400, "BadRequest"), "{raw}");
        }
        assert_eq!(
            q("limit=-1").limit().expect_err("-1").message,
            r#"invalid limit "-1": must be a non-negative integer"#
        );
    }

    #[test]
    fn only_dry_run_all_is_a_dry_run_and_other_values_are_refused() {
        let dry = |raw: &str| Query::parse(Some(raw)).dry_run("CreateOptions");
        assert!(!dry("x=1").expect("no dryRun"));
        assert!(dry("dryRun=All").expect("All"));
        assert!(dry("dryRun=All&dryRun=All").expect("All twice"));
        for raw in ["dryRun=Bogus", "dryRun=All&dryRun=Bogus", "dryRun=", "dryRun=all"] {
            let err = dry(raw).expect_err(raw);
            assert_eq!((err.code, err.reason), (422, "Invalid"), "{raw}");
        }
        let err = dry("dryRun=All&dryRun=Bogus").expect_err("Bogus");
        assert_eq!(
            err.message,
            r#"CreateOptions.meta.k8s.io "" is invalid: dryRun: Unsupported value: []string{"All", "Bogus"}: supported values: "All""#
        );
    }
}
