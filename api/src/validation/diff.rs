//! A short diff of two objects in the shape of Knative's `kmp.ShortDiff`: one entry per differing
//! leaf, `path:` then `-: "old"` and `+: "new"` lines, an absent side left out.

use std::fmt::Write as _;

use serde::Serialize;
use serde_json::Value;

/// The differences between `old` and `new`, paths starting at `root` (e.g. `{v1.RevisionSpec}`);
/// empty when they serialize alike.
pub fn short_diff<T: Serialize>(root: &str, old: &T, new: &T) -> String {
    let (old, new) = (to_json(old), to_json(new));
    let mut out = String::new();
    walk(root, Some(&old), Some(&new), &mut out);
    out
}

fn to_json<T: Serialize>(v: &T) -> Value {
    // Our types serialize infallibly (string keys, no custom serializers).
    serde_json::to_value(v).unwrap_or(Value::Null)
}

fn walk(path: &str, old: Option<&Value>, new: Option<&Value>, out: &mut String) {
    match (old, new) {
        (Some(Value::Object(a)), Some(Value::Object(b))) => {
            let keys = a.keys().chain(b.keys().filter(|k| !a.contains_key(*k)));
            for key in keys {
                walk(&child(path, key), a.get(key), b.get(key), out);
            }
        }
        (Some(Value::Array(a)), Some(Value::Array(b))) if a.len() == b.len() => {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                walk(&format!("{path}[{i}]"), Some(x), Some(y), out);
            }
        }
        (a, b) if a != b => {
            let _ = writeln!(out, "{path}:");
            for (sign, v) in [("-", a), ("+", b)] {
                if let Some(v) = v {
                    let text = v.as_str().map_or_else(|| v.to_string(), str::to_string);
                    let _ = writeln!(out, "\t{sign}: \"{text}\"");
                }
            }
        }
        _ => {}
    }
}

fn child(path: &str, key: &str) -> String {
    if !key.is_empty() && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        format!("{path}.{key}")
    } else {
        format!("{path}[{key:?}]")
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn changed_leaves_are_listed_with_both_sides() {
        let old = json!({"containers": [{"image": "a"}], "timeoutSeconds": 300});
        let new = json!({"containers": [{"image": "b"}], "timeoutSeconds": 300, "labels": {"x.y/z": "1"}});
        assert_eq!(
            short_diff("{v1.RevisionSpec}", &old, &new),
            "{v1.RevisionSpec}.containers[0].image:\n\t-: \"a\"\n\t+: \"b\"\n\
             {v1.RevisionSpec}.labels:\n\t+: \"{\"x.y/z\":\"1\"}\"\n"
        );
        assert_eq!(short_diff("x", &old, &old), "");
    }
}
