//! `sluice traffic set`'s edit of `spec.traffic`, as `kn service update --traffic/--tag/--untag`
//! does it: first `--untag` (a target left with no tag and no traffic goes), then `--tag`
//! (an untagged target of the revision gets the tag, else a new 0 % target carries it), then
//! `--traffic` (each named target gets its percent, every other target 0 %, and untagged
//! targets at 0 % go). `@latest` names the target that follows the latest ready revision
//! (`latestRevision: true`). Pure: the caller reads and writes the Service.

use serde_json::{Map, Value, json};

/// Knative's name for the latest ready revision on the command line.
pub const LATEST: &str = "@latest";

/// The flags, as given.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Edit {
    /// `--traffic`-style `REF=PCT` pairs (positional): REF a tag, a revision or `@latest`.
    pub traffic: Vec<(String, i64)>,
    /// `--tag REV=TAG` pairs.
    pub tags: Vec<(String, String)>,
    /// `--untag TAG`.
    pub untag: Vec<String>,
}

/// A flag's value that cannot be used, with the flag named.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}: {why}", if value.is_empty() { flag.to_string() } else { format!("{flag} {value}") })]
pub struct EditError {
    /// `REV=PCT`, `--tag` or `--untag`.
    pub flag: &'static str,
    /// The value given.
    pub value: String,
    /// What is wrong with it.
    pub why: String,
}

/// How targets are named on the command line.
const TRAFFIC: &str = "REV=PCT";
const TAG: &str = "--tag";
const UNTAG: &str = "--untag";

// === impl Edit ===

impl Edit {
    /// Reads `REV=PCT` pairs, `--tag REV=TAG` and `--untag TAG` values.
    pub fn parse(traffic: &[String], tags: &[String], untag: &[String]) -> Result<Self, EditError> {
        let mut edit = Self { untag: untag.to_vec(), ..Self::default() };
        for given in traffic {
            let (name, pct) = split(TRAFFIC, given)?;
            let pct = pct
                .strip_suffix('%')
                .unwrap_or(pct)
                .parse::<i64>()
                .ok()
                .filter(|p| (0..=100).contains(p))
                .ok_or_else(|| error(TRAFFIC, given, "the percent must be a whole number from 0 to 100"))?;
            if edit.traffic.iter().any(|(n, _)| n == name) {
                return Err(error(TRAFFIC, given, &format!("{name} is given more than once")));
            }
            edit.traffic.push((name.to_string(), pct));
        }
        for given in tags {
            let (rev, tag) = split(TAG, given)?;
            if edit.tags.iter().any(|(_, t)| t == tag) {
                return Err(error(TAG, given, &format!("tag {tag:?} is given more than once")));
            }
            edit.tags.push((rev.to_string(), tag.to_string()));
        }
        if edit.traffic.is_empty() && edit.tags.is_empty() && edit.untag.is_empty() {
            return Err(error(TRAFFIC, "", "nothing to change: give REV=PCT pairs, --tag or --untag"));
        }
        Ok(edit)
    }

    /// The revisions the flags name (not tags, not `@latest`), each with the flag naming it,
    /// for the caller to check they exist. A `REV=PCT` name that is a tag in `targets`, or is
    /// tagged by this edit, is a tag.
    pub fn revisions<'a>(&'a self, targets: &'a [Value]) -> Vec<(&'static str, &'a str)> {
        let tagged = |name: &str| {
            targets.iter().any(|t| t["tag"].as_str() == Some(name)) && !self.untag.iter().any(|u| u == name)
                || self.tags.iter().any(|(_, t)| t == name)
        };
        let traffic = self.traffic.iter().map(|(n, _)| n.as_str()).filter(|n| *n != LATEST && !tagged(n));
        let tags = self.tags.iter().map(|(r, _)| r.as_str()).filter(|r| *r != LATEST);
        traffic.map(|n| (TRAFFIC, n)).chain(tags.map(|r| (TAG, r))).collect()
    }

    /// `targets` (a spec's traffic list) with the edit applied.
    pub fn apply(&self, targets: &[Value]) -> Result<Vec<Value>, EditError> {
        let mut out: Vec<Map<String, Value>> = targets.iter().filter_map(|t| t.as_object().cloned()).collect();
        for tag in &self.untag {
            let i = out
                .iter()
                .position(|t| t.get("tag").and_then(Value::as_str) == Some(tag))
                .ok_or_else(|| error(UNTAG, tag, "no target has this tag"))?;
            out[i].remove("tag");
            if percent(&out[i]) == 0 {
                out.remove(i);
            }
        }
        for (rev, tag) in &self.tags {
            if out.iter().any(|t| t.get("tag").and_then(Value::as_str) == Some(tag)) {
                return Err(error(TAG, &format!("{rev}={tag}"), "the tag is already used; --untag it first"));
            }
            match out.iter_mut().find(|t| names(t, rev) && t.get("tag").is_none()) {
                Some(t) => {
                    t.insert("tag".into(), json!(tag));
                }
                None => out.push(target(rev, Some(tag), 0)),
            }
        }
        if !self.traffic.is_empty() {
            let mut set = vec![false; out.len()];
            for (name, pct) in &self.traffic {
                let found = out
                    .iter()
                    .position(|t| t.get("tag").and_then(Value::as_str) == Some(name))
                    .or_else(|| out.iter().position(|t| names(t, name) && t.get("tag").is_none()))
                    .or_else(|| out.iter().position(|t| names(t, name)));
                match found {
                    Some(i) if set[i] => {
                        return Err(error(TRAFFIC, &format!("{name}={pct}"), "names a target already given"));
                    }
                    Some(i) => {
                        out[i].insert("percent".into(), json!(pct));
                        set[i] = true;
                    }
                    None => {
                        out.push(target(name, None, *pct));
                        set.push(true);
                    }
                }
            }
            for (t, given) in out.iter_mut().zip(&set) {
                if !given {
                    t.insert("percent".into(), json!(0));
                }
            }
            out.retain(|t| t.get("tag").is_some() || percent(t) > 0);
        }
        Ok(out.into_iter().map(Value::Object).collect())
    }
}

/// Whether target `t` is the one `rev` names: `@latest` the floating one, else a revision.
fn names(t: &Map<String, Value>, rev: &str) -> bool {
    if rev == LATEST {
        t.get("latestRevision").and_then(Value::as_bool) == Some(true)
    } else {
        t.get("revisionName").and_then(Value::as_str) == Some(rev)
    }
}

fn target(rev: &str, tag: Option<&str>, pct: i64) -> Map<String, Value> {
    let mut t = Map::new();
    if let Some(tag) = tag {
        t.insert("tag".into(), json!(tag));
    }
    if rev == LATEST {
        t.insert("latestRevision".into(), json!(true));
    } else {
        t.insert("revisionName".into(), json!(rev));
    }
    t.insert("percent".into(), json!(pct));
    t
}

fn percent(t: &Map<String, Value>) -> i64 {
    t.get("percent").and_then(Value::as_i64).unwrap_or(0)
}

fn split<'a>(flag: &'static str, given: &'a str) -> Result<(&'a str, &'a str), EditError> {
    match given.split_once('=') {
        Some((a, b)) if !a.is_empty() && !b.is_empty() => Ok((a, b)),
        _ => Err(error(flag, given, if flag == TAG { "expected REV=TAG" } else { "expected REV=PCT" })),
    }
}

fn error(flag: &'static str, value: &str, why: &str) -> EditError {
    EditError { flag, value: value.to_string(), why: why.to_string() }
}

#[cfg(test)]
mod tests;
