//! Routes programmed ahead of the store. A traffic edit of a Service is programmed into the
//! router by the Service reconcile as it writes the Route's new spec, from the same resolution
//! the Route reconcile makes ([`program_ahead`]); the Route controller reconciles the
//! stored Route afterwards and programs the same split again (which leaves the router as it is).
//! The edit then reaches the router without waiting for the Route's write (a commit with
//! fsync), its watch event and the Route controller's queue.
//!
//! Until the Route controller has reconciled the generation programmed ahead, a reconcile of
//! an older one (started before the write) must not put its older traffic back: [`Ahead`]
//! keeps, per Route uid, the generation programmed ahead, and refuses to program an older one.

use std::collections::HashMap;

use kube::ResourceExt;
use kube::runtime::reflector::ObjectRef;
use parking_lot::Mutex;
use sluice_api::Route;

use super::traffic::Lookup;
use super::{Cache, assign, configurations_read, revisions_read, serving};
use crate::{Ctx, Error, publish, shell};

/// At most this many routes programmed ahead and not yet reconciled at that generation. An
/// entry normally lives for the few milliseconds between the Service's write and the Route
/// reconcile; one whose Route was deleted meanwhile would stay, so past this many all are
/// dropped (they only hold back reconciles of generations older than theirs).
const MAX_ENTRIES: usize = 4096;

/// The generation programmed ahead of the store, per Route uid.
#[derive(Default)]
pub struct Ahead {
    programmed: Mutex<HashMap<String, i64>>,
}

/// Programs the router with `want`, the Route a Service (uid `owner_uid`) wants, when the
/// cached Route it owns has another spec: the Service reconcile is about to write it. It is
/// resolved as the Route reconcile resolves it, as it will be stored ([`as_written`]).
/// Returns that Route when the router was programmed; not when there is no such Route yet, a
/// target cannot take traffic or the caches lag (a target missing): the Route reconcile then
/// decides once the Route is stored, and reports why. Nothing is written: the Route reconcile
/// writes the status and the revisions' labels.
pub async fn program_ahead(want: &Route, owner_uid: &str, ctx: &Ctx, cache: &Cache) -> Result<Option<Route>, Error> {
    let ns = want.namespace().unwrap_or_default();
    let Some(have) = cache.routes.get(&ObjectRef::new(&want.name_any()).within(&ns)) else { return Ok(None) };
    if have.spec == want.spec || !shell::controlled_by(&*have, owner_uid) {
        return Ok(None);
    }
    let route = as_written(&have, want);
    let configurations = configurations_read(&cache.configurations, &ns, &route).await?;
    let revisions = revisions_read(&cache.revisions, &ns, &route).await?;
    let serving = serving(ctx, &ns);
    let lookup = Lookup { configurations: &configurations, revisions: &revisions, serving: &serving };
    let (Ok(assigned), _, _) = assign(&route, ctx, &lookup, jiff::Timestamp::now().as_millisecond()) else {
        return Ok(None);
    };
    let spec = publish::route_config(&route, &assigned.traffic, &assigned.rules, &revisions, &ctx.domain);
    let uid = route.uid().unwrap_or_default();
    let generation = route.metadata.generation.unwrap_or(0);
    let programmed = cache.ahead.program(&uid, generation, true, || ctx.publisher.set_route(&uid, spec));
    tracing::debug!(namespace = %ns, name = %route.name_any(), generation, programmed, "route programmed ahead of its write");
    Ok(programmed.then_some(route))
}

/// Undoes [`program_ahead`] for `route`, whose Service's write of it failed: forgets it (the
/// stored generation is the one the Route reconcile must be free to program) and programs the
/// router back to what the stored Route's status says it serves, so the router never keeps a
/// split the store does not hold.
pub async fn forget_ahead(route: &Route, ctx: &Ctx, cache: &Cache) -> Result<(), Error> {
    let uid = route.uid().unwrap_or_default();
    cache.ahead.forget(&uid);
    let ns = route.namespace().unwrap_or_default();
    let Some(stored) = cache.routes.get(&ObjectRef::new(&route.name_any()).within(&ns)) else { return Ok(()) };
    let Some(status) = stored.status.as_ref() else { return Ok(()) };
    let revisions = revisions_read(&cache.revisions, &ns, &stored).await?;
    let spec = publish::route_config(&stored, &status.traffic, &status.rules, &revisions, &ctx.domain);
    let generation = stored.metadata.generation.unwrap_or(0);
    cache.ahead.program(&uid, generation, false, || ctx.publisher.set_route(&uid, spec));
    tracing::debug!(namespace = %ns, name = %route.name_any(), generation, "route programmed back to the stored one: its write failed");
    Ok(())
}

// === impl Ahead ===

impl Ahead {
    /// Runs `program` (the router's update for the Route `uid` at `generation`) unless a newer
    /// generation was programmed ahead; says whether it ran. `ahead` is true when the Service
    /// programs a generation the store does not hold yet; a reconcile of the stored Route at
    /// that generation or a newer one clears the record. `program` runs under the lock, so a
    /// reconcile that checked before the Service programmed cannot publish after it.
    pub fn program(&self, uid: &str, generation: i64, ahead: bool, program: impl FnOnce()) -> bool {
        let mut programmed = self.programmed.lock();
        match programmed.get(uid) {
            Some(newer) if *newer > generation => return false,
            Some(_) if !ahead => {
                programmed.remove(uid);
            }
            _ => {}
        }
        if ahead {
            if programmed.len() >= MAX_ENTRIES && !programmed.contains_key(uid) {
                programmed.clear();
            }
            programmed.insert(uid.to_string(), generation);
        }
        program();
        true
    }

    /// Forgets what was programmed ahead for `uid` (its write failed: the stored generation
    /// is the one to program).
    pub fn forget(&self, uid: &str) {
        self.programmed.lock().remove(uid);
    }

    /// Routes programmed ahead and not yet reconciled at that generation.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.programmed.lock().len()
    }
}

/// The Route as it is stored once `want` is written over `have`: `want`'s spec, labels and
/// annotations (other controllers' annotations kept), `have`'s identity and status, and the next
/// generation (a spec change moves it by one).
pub fn as_written(have: &Route, want: &Route) -> Route {
    let want = shell::keep_foreign_annotations(have, want.clone());
    let mut next = have.clone();
    next.spec = want.spec;
    next.metadata.labels = want.metadata.labels;
    next.metadata.annotations = want.metadata.annotations;
    next.metadata.generation = have.metadata.generation.map(|g| g + 1);
    next
}

#[cfg(test)]
mod tests {
    use sluice_api::{RouteStatus, TrafficTarget, labels};

    use super::*;

    #[test]
    fn a_route_as_written_has_the_wanted_spec_and_the_stored_identity_status_and_next_generation() {
        let route = |percent: i64, note: &str| {
            let mut r = Route::new("hello", Default::default());
            r.spec.traffic = vec![TrafficTarget {
                revision_name: Some("hello-00001".into()),
                percent: Some(percent),
                ..Default::default()
            }];
            r.metadata.annotations = Some([("note".to_string(), note.to_string())].into());
            r
        };
        let mut have = route(100, "old");
        have.metadata.uid = Some("uid-1".into());
        have.metadata.generation = Some(4);
        have.metadata.annotations.get_or_insert_default().insert(labels::ROUTES.into(), "hello".into());
        have.status = Some(RouteStatus { observed_generation: Some(4), ..Default::default() });
        let want = route(50, "new");
        let next = as_written(&have, &want);
        assert_eq!(next.spec, want.spec);
        assert_eq!((next.metadata.uid.as_deref(), next.metadata.generation), (Some("uid-1"), Some(5)));
        assert_eq!(next.status, have.status, "the status is the Route reconcile's to write");
        let annotations = next.metadata.annotations.expect("annotations");
        assert_eq!(annotations.get("note").map(String::as_str), Some("new"));
        assert_eq!(annotations.get(labels::ROUTES).map(String::as_str), Some("hello"), "another controller's kept");
    }

    #[test]
    fn an_older_generation_cannot_program_over_one_programmed_ahead() {
        let ahead = Ahead::default();
        let mut published = Vec::new();
        assert!(ahead.program("a", 3, true, || published.push(3)));
        // A reconcile of generation 2 that started before the Service's write.
        assert!(!ahead.program("a", 2, false, || published.push(2)));
        // Another route is not held back.
        assert!(ahead.program("b", 1, false, || published.push(1)));
        assert_eq!(ahead.len(), 1);
        // The stored Route at generation 3 is reconciled: the record goes.
        assert!(ahead.program("a", 3, false, || published.push(3)));
        assert_eq!(ahead.len(), 0);
        assert_eq!(published, [3, 1, 3]);
    }

    #[test]
    fn a_forgotten_record_holds_nothing_back_and_the_records_are_bounded() {
        let ahead = Ahead::default();
        ahead.program("a", 5, true, || {});
        ahead.forget("a");
        assert!(ahead.program("a", 4, false, || {}), "the write failed: generation 4 is what is stored");
        for i in 0..MAX_ENTRIES + 10 {
            ahead.program(&format!("r{i}"), 1, true, || {});
        }
        assert!(ahead.len() <= MAX_ENTRIES);
        // Programming the same route ahead again (a retried write) keeps one record.
        ahead.program("x", 2, true, || {});
        ahead.program("x", 2, true, || {});
        assert!(!ahead.program("x", 1, false, || {}));
    }
}
