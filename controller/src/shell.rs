//! The thin I/O shell the reconcilers share: create-or-update an owned child, patch a status
//! only when it changed, and tell an owned child from someone else's.

use std::fmt::Debug;

use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::{Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use super::Error;
use super::events::{Note, Recorder};

/// A child as the parent sees it.
#[derive(Debug)]
pub enum Child<'a, K> {
    /// Not there (yet).
    Missing,
    /// There, but controlled by another owner.
    NotOwned(String),
    /// Ours.
    Found(&'a K),
}

/// What ensuring a child wrote.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Written {
    /// It was missing and is now created.
    Created,
    /// It differed and is now updated.
    Updated,
}

/// The outcome of ensuring a child.
#[derive(Debug)]
pub enum Ensured<K> {
    /// Not there.
    Missing,
    /// Someone else's.
    NotOwned(String),
    /// Ours, as stored now.
    Found(K),
}

// === impl Ensured ===

impl<K> Ensured<K> {
    /// Borrows as a [`Child`].
    pub fn as_child(&self) -> Child<'_, K> {
        match self {
            Ensured::Missing => Child::Missing,
            Ensured::NotOwned(n) => Child::NotOwned(n.clone()),
            Ensured::Found(k) => Child::Found(k),
        }
    }
}

impl<K> From<Option<Result<K, String>>> for Ensured<K> {
    fn from(v: Option<Result<K, String>>) -> Self {
        match v {
            None => Ensured::Missing,
            Some(Err(name)) => Ensured::NotOwned(name),
            Some(Ok(k)) => Ensured::Found(k),
        }
    }
}

/// True when `obj` is controlled by the owner with `uid`.
pub fn controlled_by<K: Resource>(obj: &K, uid: &str) -> bool {
    obj.meta().owner_references.iter().flatten().any(|r| r.controller == Some(true) && r.uid == uid)
}

/// The child named `name`: None when missing, `Err(name)` when another owner controls it.
pub async fn get_child<K>(api: &Api<K>, name: &str, owner_uid: &str) -> Result<Option<Result<K, String>>, Error>
where
    K: Resource + Clone + DeserializeOwned + Debug,
{
    Ok(api.get_opt(name).await?.map(|k| if controlled_by(&k, owner_uid) { Ok(k) } else { Err(name.to_string()) }))
}

/// Annotations another controller keeps on a parent's child: the route labeler's
/// `serving.knative.dev/routes` on a Configuration. The parent's desired metadata carries the
/// stored value, as Knative's does, or the two controllers would rewrite the child in turn.
const FOREIGN_ANNOTATIONS: &[&str] = &[sluice_api::labels::ROUTES];

/// `want` with the stored child's [`FOREIGN_ANNOTATIONS`] carried over.
pub fn keep_foreign_annotations<K: Resource>(have: &K, mut want: K) -> K {
    for key in FOREIGN_ANNOTATIONS {
        if let Some(value) = have.meta().annotations.as_ref().and_then(|a| a.get(*key)) {
            want.meta_mut().annotations.get_or_insert_default().insert((*key).to_string(), value.clone());
        }
    }
    want
}

/// Creates `want` when missing, or updates the owned child when `same(have, want)` is false
/// or its labels/annotations differ (other controllers' annotations kept). Leaves a child
/// owned by someone else alone. Says what it wrote, if anything.
pub async fn ensure_child<K>(
    api: &Api<K>,
    want: K,
    owner_uid: &str,
    same: impl Fn(&K, &K) -> bool,
) -> Result<(Ensured<K>, Option<Written>), Error>
where
    K: Resource + Clone + Serialize + DeserializeOwned + Debug,
{
    let name = want.name_any();
    match get_child(api, &name, owner_uid).await? {
        None => match api.create(&PostParams::default(), &want).await {
            Ok(created) => Ok((Ensured::Found(created), Some(Written::Created))),
            // Lost a race with our own earlier reconcile: read it back next time.
            Err(kube::Error::Api(e)) if e.code == 409 => Ok((Ensured::Missing, None)),
            Err(e) => Err(e.into()),
        },
        Some(Err(name)) => Ok((Ensured::NotOwned(name), None)),
        Some(Ok(have)) => {
            let want = keep_foreign_annotations(&have, want);
            if same(&have, &want) && have.labels() == want.labels() && have.annotations() == want.annotations() {
                return Ok((Ensured::Found(have), None));
            }
            let mut next = have.clone();
            copy_desired(&mut next, want)?;
            let stored = api.replace(&name, &PostParams::default(), &next).await?;
            Ok((Ensured::Found(stored), Some(Written::Updated)))
        }
    }
}

/// Replaces `have`'s spec, labels and annotations with `want`'s, keeping the rest.
fn copy_desired<K: Resource + Serialize + DeserializeOwned>(have: &mut K, want: K) -> Result<(), Error> {
    let mut h = serde_json::to_value(&*have)?;
    let w = serde_json::to_value(&want)?;
    h["spec"] = w["spec"].clone();
    h["metadata"]["labels"] = w["metadata"]["labels"].clone();
    h["metadata"]["annotations"] = w["metadata"]["annotations"].clone();
    *have = serde_json::from_value(h)?;
    Ok(())
}

/// Publishes the Events `notes` finds in a status change, judged against the stored object:
/// the cache a reconcile reads may not have this reconciler's last status write yet, and would
/// report one change twice. (A change is rare, so is the extra read.)
pub async fn publish_notes<K>(api: &Api<K>, obj: &K, events: &Recorder, notes: impl Fn(&K) -> Vec<Note>)
where
    K: Resource + Clone + DeserializeOwned + Debug,
{
    if notes(obj).is_empty() {
        return;
    }
    let found = match api.get_opt(&obj.name_any()).await {
        Ok(Some(stored)) => notes(&stored),
        // Gone, or the read failed: judge by what the reconcile saw.
        _ => notes(obj),
    };
    for note in found {
        events.publish(note);
    }
}

/// Writes `next` as `obj`'s status when it differs from `current`.
pub async fn patch_status<K, S>(client: &kube::Client, obj: &K, current: Option<&S>, next: &S) -> Result<(), Error>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope> + Clone + DeserializeOwned + Debug,
    S: Serialize + PartialEq,
{
    if current == Some(next) {
        return Ok(());
    }
    let api: Api<K> = Api::namespaced(client.clone(), &obj.namespace().unwrap_or_default());
    // Replace the status whole (a merge patch could not remove fields).
    let patch = json!([{"op": "add", "path": "/status", "value": next}]);
    api.patch_status(&obj.name_any(), &PatchParams::default(), &Patch::<()>::Json(serde_json::from_value(patch)?))
        .await?;
    Ok(())
}
