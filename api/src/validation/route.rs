//! `spec.traffic` of a Route or Service: targets, percents that sum to 100, unique DNS-safe tags.

use std::collections::BTreeMap;

use super::go_list;
use crate::field_error::FieldError;
use crate::naming::{dns1035_label, qualified_name};
use crate::route::TrafficTarget;

/// Where a traffic list sits, which changes what a target may name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Owner {
    /// A Route's spec: each target names a revision or a configuration.
    Route,
    /// A Service's spec: the configuration is the Service's own, so only revisions are named.
    Service,
}

/// Validates a spec's traffic list; paths relative to `traffic`.
pub fn traffic(targets: &[TrafficTarget], owner: Owner) -> FieldError {
    let mut errs = FieldError::default();
    let mut first_use: BTreeMap<&str, usize> = BTreeMap::new();
    let mut sum: i64 = 0;
    for (i, tt) in targets.iter().enumerate() {
        errs.push(target(tt, owner).via_index(i));
        sum = sum.saturating_add(tt.percent.unwrap_or(0));
        let Some(tag) = tt.tag.as_deref().filter(|t| !t.is_empty()) else {
            continue;
        };
        let msgs = dns1035_label(tag);
        if !msgs.is_empty() {
            // Knative reports this at `tag[i]`, not `[i].tag`.
            errs.push(FieldError::invalid_array_value(format!("not a DNS 1035 label: {}", go_list(&msgs)), "tag", i));
        }
        match first_use.get(tag) {
            Some(first) => errs.push(FieldError::new(
                format!("Multiple definitions for {tag:?}"),
                &[&format!("[{i}].tag"), &format!("[{first}].tag")],
            )),
            None => {
                first_use.insert(tag, i);
            }
        }
    }
    if sum != 100 {
        errs.push(FieldError::new(format!("Traffic targets sum to {sum}, want 100"), &[""]));
    }
    errs
}

/// One target in a spec, paths relative to it.
pub(super) fn target(tt: &TrafficTarget, owner: Owner) -> FieldError {
    let revision = tt.revision_name.as_deref().unwrap_or("");
    let configuration = tt.configuration_name.as_deref().unwrap_or("");
    let mut errs = FieldError::default();
    // latestRevision must be the opposite of pinning a revision.
    if let Some(latest) = tt.latest_revision
        && latest != revision.is_empty()
    {
        errs.push(FieldError::new(
            format!("may not set revisionName {revision:?} when latestRevision is {latest}"),
            &["latestRevision"],
        ));
    }
    errs.push(names(revision, configuration, owner));
    if let Some(p) = tt.percent
        && !(0..=100).contains(&p)
    {
        errs.push(FieldError::out_of_bounds(p, 0, 100, "percent"));
    }
    if tt.url.as_deref().is_some_and(|u| !u.is_empty()) {
        // Disallowed in any spec, and on any untagged target; the two merge into one path.
        errs.push(FieldError::disallowed(&["url"]));
    }
    errs
}

/// A target names exactly one of a revision and a configuration.
fn names(revision: &str, configuration: &str, owner: Owner) -> FieldError {
    let in_service = owner == Owner::Service;
    if in_service && !configuration.is_empty() {
        FieldError::disallowed(&["configurationName"])
    } else if !revision.is_empty() && !configuration.is_empty() {
        FieldError::multiple_one_of(&["revisionName", "configurationName"])
    } else if !revision.is_empty() {
        key_name(revision, "revisionName")
    } else if !configuration.is_empty() {
        key_name(configuration, "configurationName")
    } else if in_service {
        // The Service's own configuration is implied.
        FieldError::default()
    } else {
        FieldError::missing_one_of(&["revisionName", "configurationName"])
    }
}

fn key_name(name: &str, field: &str) -> FieldError {
    let msgs = qualified_name(name);
    if msgs.is_empty() { FieldError::default() } else { FieldError::invalid_key_name(name, field, msgs.join(", ")) }
}
