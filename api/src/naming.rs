//! Object names: Knative's child naming (`hello-00001`, hashed when too long) and the DNS label
//! and subdomain rules Kubernetes applies to names.

use md5::{Digest, Md5};

/// The longest name Kubernetes allows for a label-like name.
const LONGEST: usize = 63;
const MD5_HEX_LEN: usize = 32;
const HEAD: usize = LONGEST - MD5_HEX_LEN;

/// Knative's `kmeta.ChildName`: `parent + suffix`, hashed and truncated to fit 63 characters.
pub fn child_name(parent: &str, suffix: &str) -> String {
    if parent.len() <= LONGEST.saturating_sub(suffix.len()) {
        return format!("{parent}{suffix}");
    }
    if HEAD <= suffix.len() {
        let hash = md5_hex(&format!("{parent}{suffix}"));
        let mut out = format!("{}{hash}", truncate(parent, HEAD));
        if out.len() < LONGEST {
            out.push_str(truncate(suffix, LONGEST - out.len()));
        }
        while out.ends_with(|c: char| !c.is_ascii_alphanumeric()) {
            out.pop();
        }
        return out;
    }
    format!("{}{}{suffix}", truncate(parent, HEAD - suffix.len()), md5_hex(parent))
}

/// The name of the Revision stamped from `config` at `generation`: `config-00001`.
pub fn revision_name(config: &str, generation: i64) -> String {
    child_name(config, &format!("-{generation:05}"))
}

fn truncate(s: &str, n: usize) -> &str {
    // Names are ASCII by the time they are stored; fall back to the whole string otherwise.
    s.get(..n.min(s.len())).unwrap_or(s)
}

fn md5_hex(s: &str) -> String {
    Md5::digest(s.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

const DNS1035_ERR: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";
const DNS1123_LABEL_ERR: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const DNS1123_SUBDOMAIN_ERR: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";

/// Kubernetes' `IsDNS1035Label`: the messages for what is wrong, empty when valid.
pub fn dns1035_label(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > LONGEST {
        errs.push(format!("must be no more than {LONGEST} characters"));
    }
    let b = value.as_bytes();
    let ok = !b.is_empty()
        && b[0].is_ascii_lowercase()
        && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[b.len() - 1] != b'-';
    if !ok {
        errs.push(DNS1035_ERR.to_string());
    }
    errs
}

/// Kubernetes' `NameIsDNS1035Label`: as [`dns1035_label`], and for a `generateName` prefix
/// (`prefix = true`) the trailing characters a random suffix will complete are allowed.
pub fn name_is_dns1035_label(value: &str, prefix: bool) -> Vec<String> {
    if prefix {
        let padded = format!("{}a", value.trim_end_matches('-'));
        return dns1035_label(if value.is_empty() { value } else { &padded });
    }
    dns1035_label(value)
}

/// Kubernetes' `IsDNS1123Label`.
pub fn dns1123_label(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > LONGEST {
        errs.push(format!("must be no more than {LONGEST} characters"));
    }
    if !is_1123_label(value) {
        errs.push(DNS1123_LABEL_ERR.to_string());
    }
    errs
}

/// Kubernetes' `IsDNS1123Subdomain`: at most 253 characters of dot-separated labels.
pub fn dns1123_subdomain(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > 253 {
        errs.push("must be no more than 253 characters".to_string());
    }
    if value.is_empty() || !value.split('.').all(is_1123_label) {
        errs.push(DNS1123_SUBDOMAIN_ERR.to_string());
    }
    errs
}

fn is_1123_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
}

/// Kubernetes' `IsQualifiedName` (label keys, referenced names): `[prefix/]name`.
pub fn qualified_name(value: &str) -> Vec<String> {
    const NAME_ERR: &str = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
    let mut errs = Vec::new();
    let (prefix, name) = match value.split_once('/') {
        Some((p, n)) if !n.contains('/') => (Some(p), n),
        Some(_) => {
            return vec!["a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')".to_string()];
        }
        None => (None, value),
    };
    if let Some(p) = prefix {
        if p.is_empty() {
            errs.push("prefix part must be non-empty".to_string());
        } else {
            errs.extend(dns1123_subdomain(p).into_iter().map(|m| format!("prefix part {m}")));
        }
    }
    if name.is_empty() {
        errs.push("name part must be non-empty".to_string());
    } else {
        if name.len() > LONGEST {
            errs.push(format!("name part must be no more than {LONGEST} characters"));
        }
        let b = name.as_bytes();
        let ok = b[0].is_ascii_alphanumeric()
            && b[b.len() - 1].is_ascii_alphanumeric()
            && b.iter().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'));
        if !ok {
            errs.push(NAME_ERR.to_string());
        }
    }
    errs
}

/// Kubernetes' `IsValidLabelValue`: at most 63 characters, empty or a qualified name's name part.
pub fn label_value(value: &str) -> Vec<String> {
    const VALUE_ERR: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";
    let mut errs = Vec::new();
    if value.len() > LONGEST {
        errs.push(format!("must be no more than {LONGEST} characters"));
    }
    let b = value.as_bytes();
    let ok = b.is_empty()
        || (b[0].is_ascii_alphanumeric()
            && b[b.len() - 1].is_ascii_alphanumeric()
            && b.iter().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.')));
    if !ok {
        errs.push(VALUE_ERR.to_string());
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revision_names_are_five_digit_generations() {
        assert_eq!(revision_name("hello", 1), "hello-00001");
        assert_eq!(revision_name("hello", 123456), "hello-123456");
    }

    #[test]
    fn long_child_names_are_hashed_to_63() {
        let parent = "a".repeat(70);
        let n = child_name(&parent, "-00001");
        assert_eq!(n.len(), 63);
        assert!(n.ends_with("-00001"));
        assert_eq!(n, child_name(&parent, "-00001"), "deterministic");
    }

    #[test]
    fn dns_rules() {
        assert!(dns1035_label("my-name").is_empty());
        assert!(!dns1035_label("1abc").is_empty());
        assert!(!dns1035_label("Abc").is_empty());
        assert!(!dns1035_label("abc-").is_empty());
        assert!(!dns1035_label(&"a".repeat(64)).is_empty());
        assert!(name_is_dns1035_label("hello-", true).is_empty());
        assert!(dns1123_subdomain("a.b-c.d").is_empty());
        assert!(!dns1123_subdomain("a..b").is_empty());
        assert!(qualified_name("hello-00001").is_empty());
        assert!(qualified_name("example.com/x").is_empty());
        assert!(!qualified_name("bad name").is_empty());
        assert!(label_value("").is_empty());
        assert!(label_value("My_value.1").is_empty());
        assert!(!label_value("-x").is_empty());
        assert_eq!(label_value(&"v".repeat(64)), vec!["must be no more than 63 characters".to_string()]);
    }
}
