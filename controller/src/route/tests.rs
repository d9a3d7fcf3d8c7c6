use serde_json::json;
use sluice_api::conditions::{ConditionStatus, find};

use super::traffic::{Lookup, TargetError, resolve, wanted_revisions};
use super::*;
use crate::fixtures;

fn lookup<'a>(
    cfgs: &'a [Configuration],
    revs: &'a [Revision],
    serving: &'a (dyn Fn(&str) -> bool + Sync),
) -> Lookup<'a> {
    Lookup { configurations: cfgs, revisions: revs, serving }
}

#[test]
fn configuration_targets_resolve_to_the_latest_ready_revision() {
    let cfgs = vec![fixtures::configuration(
        "c",
        2,
        json!({"latestReadyRevisionName": "c-00002", "latestCreatedRevisionName": "c-00002"}),
    )];
    let revs = vec![fixtures::revision("c", 1, "True"), fixtures::revision("c", 2, "True")];
    let rt = fixtures::route(
        "c",
        json!([{"configurationName": "c", "latestRevision": true, "percent": 50},
                                          {"revisionName": "c-00001", "percent": 50, "tag": "old"}]),
        json!({}),
    );
    let all = |_: &str| true;
    let got = resolve(&rt, &lookup(&cfgs, &revs, &all)).expect("resolves");
    assert_eq!(got[0].revision_name.as_deref(), Some("c-00002"));
    assert_eq!(got[0].latest_revision, Some(true));
    assert_eq!(got[0].configuration_name, None);
    assert_eq!(
        (got[1].revision_name.as_deref(), got[1].tag.as_deref(), got[1].latest_revision),
        (Some("c-00001"), Some("old"), Some(false))
    );
}

#[test]
fn missing_and_unready_targets_block_the_assignment_with_knative_reasons() {
    let cfgs = vec![fixtures::configuration("c", 1, json!({}))];
    let revs = vec![fixtures::revision("c", 1, "Unknown"), fixtures::revision("d", 1, "False")];
    let all = |_: &str| true;
    let lk = lookup(&cfgs, &revs, &all);
    let case =
        |traffic: serde_json::Value| resolve(&fixtures::route("r", traffic, json!({})), &lk).expect_err("blocked");

    let e = case(json!([{"revisionName": "foobar", "percent": 100}]));
    let c = e.condition();
    assert_eq!(
        (c.status, c.reason.as_str(), c.message.as_str()),
        (ConditionStatus::False, "RevisionMissing", r#"Revision "foobar" referenced in traffic not found."#)
    );
    let c = case(json!([{"configurationName": "nope", "percent": 100}])).condition();
    assert_eq!(
        (c.reason.as_str(), c.message.as_str()),
        ("ConfigurationMissing", r#"Configuration "nope" referenced in traffic not found."#)
    );
    let c = case(json!([{"configurationName": "c", "percent": 100}])).condition();
    assert_eq!(
        (c.status, c.message.as_str()),
        (ConditionStatus::Unknown, r#"Configuration "c" is waiting for a Revision to become ready."#)
    );
    let c = case(json!([{"revisionName": "c-00001", "percent": 100}])).condition();
    assert_eq!((c.status, c.message.as_str()), (ConditionStatus::Unknown, r#"Revision "c-00001" is not yet ready."#));
    // A hard failure wins over a wait, wherever it is in the list.
    let e = case(json!([{"revisionName": "c-00001", "percent": 50}, {"revisionName": "d-00001", "percent": 50}]));
    assert_eq!(e, TargetError::RevisionNotReady { name: "d-00001".into(), failed: true });
}

#[test]
fn a_ready_revision_without_a_serving_instance_is_not_yet_ready() {
    let revs = vec![fixtures::revision("c", 1, "True")];
    let none = |_: &str| false;
    let rt = fixtures::route("r", json!([{"revisionName": "c-00001", "percent": 100}]), json!({}));
    assert_eq!(
        resolve(&rt, &lookup(&[], &revs, &none)),
        Err(TargetError::RevisionNotReady { name: "c-00001".into(), failed: false })
    );
    assert!(wanted_revisions(&rt, &lookup(&[], &revs, &none)).contains("c-00001"), "so it gets started");
}

#[test]
fn a_new_revision_is_wanted_before_its_configuration_status_names_it() {
    // The Configuration is at generation 2 and its revision exists, but its status still
    // names the first: the route must not let the new revision go (it would be stopped).
    let cfgs = vec![fixtures::configuration(
        "c",
        2,
        json!({"latestReadyRevisionName": "c-00001", "latestCreatedRevisionName": "c-00001"}),
    )];
    let revs = vec![fixtures::revision("c", 1, "True"), fixtures::revision("c", 2, "Unknown")];
    let all = |_: &str| true;
    let rt =
        fixtures::route("c", json!([{"configurationName": "c", "latestRevision": true, "percent": 100}]), json!({}));
    let wanted = wanted_revisions(&rt, &lookup(&cfgs, &revs, &all));
    assert_eq!(wanted, ["c-00001".to_string(), "c-00002".to_string()].into());
}

#[test]
fn a_service_route_cannot_take_another_services_revision() {
    let revs = vec![fixtures::revision("other", 1, "True")];
    let all = |_: &str| true;
    let rt = fixtures::route(
        "mine",
        json!([{"revisionName": "other-00001", "percent": 100}]),
        json!({"serving.knative.dev/service": "mine"}),
    );
    let c = resolve(&rt, &lookup(&[], &revs, &all)).expect_err("not owned").condition();
    assert_eq!(
        (c.reason.as_str(), c.message.as_str()),
        ("RevisionNotOwned", r#"Revision "other-00001" belongs to Service "other", not Service "mine"."#)
    );
}

#[test]
fn status_keeps_old_traffic_when_blocked_and_publishes_tag_urls_when_assigned() {
    let mut rt = fixtures::route("r", json!([{"revisionName": "r-00002", "percent": 100, "tag": "v2"}]), json!({}));
    let traffic = vec![TrafficTarget {
        revision_name: Some("r-00002".into()),
        tag: Some("v2".into()),
        percent: Some(100),
        latest_revision: Some(false),
        ..Default::default()
    }];
    let rules: Vec<TrafficRule> = serde_json::from_value(json!([{"name": "canary",
        "match": {"headers": [{"name": "x-canary", "present": true}]},
        "traffic": [{"tag": "v2", "revisionName": "r-00002", "percent": 100, "latestRevision": false}]}]))
    .expect("rules");
    let assigned = Assigned { traffic, rules: rules.clone() };
    let s = route_status(&rt, Ok(&assigned), "localhost", "t");
    assert_eq!(s.url.as_deref(), Some("http://r.default.localhost"));
    assert_eq!(s.traffic[0].url.as_deref(), Some("http://v2-r.default.localhost"));
    assert_eq!(s.address.as_ref().and_then(|a| a.url.as_deref()), Some("http://r.default.svc.cluster.local"));
    assert_eq!(find(&s.conditions, "Ready").map(|c| c.status), Some(ConditionStatus::True));
    assert_eq!(s.rules, rules);

    rt.status = Some(s);
    let err = TargetError::Missing { kind: "Revision", name: "r-00003".into() };
    let s = route_status(&rt, Err(&err), "localhost", "t2");
    assert_eq!(s.traffic[0].revision_name.as_deref(), Some("r-00002"), "old traffic kept");
    assert_eq!(s.rules, rules, "old rules kept");
    let ready = find(&s.conditions, "Ready").expect("Ready");
    assert_eq!((ready.status, ready.reason.as_deref()), (ConditionStatus::False, Some("RevisionMissing")));
}

#[test]
fn cluster_local_routes_get_private_urls() {
    let rt = fixtures::route("r", json!([]), json!({"networking.knative.dev/visibility": "cluster-local"}));
    let s = route_status(&rt, Ok(&Assigned::default()), "localhost", "t");
    assert_eq!(s.url.as_deref(), Some("http://r.default.svc.cluster.local"));
}

#[test]
fn moved_traffic_is_reported_with_the_new_split() {
    let route = fixtures::route("r", json!([{"revisionName": "r-00001", "percent": 100}]), json!({}));
    let split =
        |targets: serde_json::Value| -> Vec<TrafficTarget> { serde_json::from_value(targets).expect("traffic") };
    let mut next =
        RouteStatus { traffic: split(json!([{"revisionName": "r-00001", "percent": 100}])), ..Default::default() };
    let n = notes(&route, &next);
    assert_eq!(n[0].reason, "TrafficMoved");
    assert_eq!(n[0].message, "Traffic now goes 100% to r-00001");
    let mut moved = route.clone();
    moved.status = Some(next.clone());
    assert!(notes(&moved, &next).is_empty(), "the same split again: nothing new");
    next.traffic = split(
        json!([{"revisionName": "r-00001", "percent": 90}, {"revisionName": "r-00002", "percent": 10, "tag": "canary"}]),
    );
    assert_eq!(notes(&moved, &next)[0].message, "Traffic now goes 90% to r-00001, 10% to r-00002 (tag canary)");
}

#[test]
fn moved_rules_are_reported_with_each_rules_split() {
    let route = fixtures::route("r", json!([{"revisionName": "r-00001", "percent": 100}]), json!({}));
    let rules = |v: serde_json::Value| -> Vec<TrafficRule> { serde_json::from_value(v).expect("rules") };
    let first = rules(json!([
        {"name": "iphone", "match": {"headers": [{"name": "user-agent", "regex": ".*iPhone.*"}]},
         "traffic": [{"tag": "alpha", "revisionName": "r-00002", "percent": 100}]},
        {"match": {"path": {"prefix": "/api/"}},
         "traffic": [{"revisionName": "r-00001", "percent": 0}, {"revisionName": "r-00002", "percent": 100}]}
    ]));
    let traffic =
        vec![TrafficTarget { revision_name: Some("r-00001".into()), percent: Some(100), ..Default::default() }];
    let mut next = RouteStatus { traffic: traffic.clone(), rules: first.clone(), ..Default::default() };
    let mut before = route.clone();
    before.status = Some(RouteStatus { traffic, ..Default::default() });
    let n = notes(&before, &next);
    assert_eq!(n.len(), 1, "the split stayed; the rules moved: {n:?}");
    assert_eq!(n[0].reason, "RulesMoved");
    assert_eq!(n[0].message, "Rules now send iphone: 100% to r-00002; rules[1]: 100% to r-00002");
    before.status = Some(next.clone());
    let mut edited = first.clone();
    edited[0].matches.headers[0].regex = Some(".*iPad.*".into());
    next.rules = edited;
    assert_eq!(notes(&before, &next)[0].reason, "RulesMoved", "another match sends other requests");
    before.status = Some(next.clone());
    assert!(notes(&before, &next).is_empty(), "the same rules again: nothing new");
    next.rules = Vec::new();
    assert_eq!(notes(&before, &next)[0].message, "No rules now: all traffic goes by the split");
}

#[test]
fn a_long_rules_message_names_what_fits_and_counts_the_rest() {
    let route = fixtures::route("r", json!([{"revisionName": "r-00001", "percent": 100}]), json!({}));
    let many: Vec<serde_json::Value> = (0..64)
        .map(|i| {
            json!({"name": format!("a-rather-long-rule-name-{i:02}"), "match": {"path": {"prefix": "/"}},
            "traffic": [{"revisionName": "r-00001-with-a-long-revision-name", "percent": 100}]})
        })
        .collect();
    let next = RouteStatus { rules: serde_json::from_value(json!(many)).expect("rules"), ..Default::default() };
    let message = notes(&route, &next).into_iter().find(|n| n.reason == "RulesMoved").expect("moved").message;
    assert!(message.len() <= 1024, "{} bytes", message.len());
    assert!(
        message.starts_with("Rules now send a-rather-long-rule-name-00: 100% to r-00001-with-a-long-revision-name;")
    );
    assert!(message.ends_with(" more rule(s)"), "{message}");
}

#[test]
fn a_change_triggers_only_the_routes_that_can_depend_on_it() {
    let rev = |name: &str, configuration: Option<&str>, routes: Option<&str>| Target::Revision {
        name: name.into(),
        configuration: configuration.map(Into::into),
        routes: routes.map(Into::into),
    };
    let cfg = |name: &str| Target::Configuration { name: name.into() };
    let by_config = fixtures::route("a", json!([{"configurationName": "a", "percent": 100}]), json!({}));
    assert!(depends_on(&by_config, &cfg("a")));
    assert!(!depends_on(&by_config, &cfg("b")));
    assert!(depends_on(&by_config, &rev("a-00002", Some("a"), None)), "a new revision of its configuration");
    assert!(!depends_on(&by_config, &rev("b-00001", Some("b"), None)));
    assert!(!depends_on(&by_config, &rev("x", None, None)));

    let pinned = fixtures::route("p", json!([{"revisionName": "b-00001", "percent": 100}]), json!({}));
    assert!(depends_on(&pinned, &rev("b-00001", Some("b"), None)));
    assert!(!depends_on(&pinned, &rev("b-00002", Some("b"), None)));
    assert!(!depends_on(&pinned, &cfg("b")));
    // A revision that still names the route in its annotation: its labels are the route's.
    assert!(depends_on(&pinned, &rev("c-00001", Some("c"), Some("other, p"))));

    // A revision the status still routes to (a rollout, a drain) and one a rule names.
    let mut rolling = fixtures::route("r", json!([{"configurationName": "a", "percent": 100}]), json!({}));
    rolling.status = serde_json::from_value(json!({"traffic": [{"revisionName": "old-00001", "percent": 10}]})).ok();
    assert!(depends_on(&rolling, &rev("old-00001", Some("old"), None)));
    rolling.spec.rules = serde_json::from_value(json!([{"matches": {"headers": [{"name": "x", "exact": "1"}]},
                                                        "traffic": [{"configurationName": "canary", "percent": 100}]}]))
    .expect("rules");
    assert!(depends_on(&rolling, &cfg("canary")));
}

#[test]
fn a_reconcile_reads_only_the_objects_its_route_can_depend_on_and_decides_as_with_all() {
    // A namespace of three services' objects, and a revision that still lists route `a`.
    let ready = |c: &str, g: i64| {
        let latest = format!("{c}-{g:05}");
        fixtures::configuration(c, g, json!({"latestReadyRevisionName": latest, "latestCreatedRevisionName": latest}))
    };
    let mut cfgs = vec![ready("a", 2), ready("b", 1), ready("c", 1)];
    let mut listed = fixtures::revision("old", 1, "True");
    listed.metadata.annotations = Some([(labels::ROUTES.to_string(), "a".to_string())].into());
    listed.metadata.labels.get_or_insert_default().insert(labels::ROUTING_STATE.into(), "active".into());
    let mut revs = vec![
        fixtures::revision("a", 1, "True"),
        fixtures::revision("a", 2, "True"),
        fixtures::revision("b", 1, "True"),
        fixtures::revision("c", 1, "True"),
        listed,
    ];
    // Configuration `c` lists route `a` too (it followed `c` before).
    cfgs[2].metadata.annotations = Some([(labels::ROUTES.to_string(), "a".to_string())].into());
    // Revision c-00001 is route `b`'s (its labeler made it active).
    revs[3].metadata.annotations = Some([(labels::ROUTES.to_string(), "b".to_string())].into());
    revs[3].metadata.labels.get_or_insert_default().insert(labels::ROUTING_STATE.into(), "active".into());
    let mut rt = fixtures::route(
        "a",
        json!([{"configurationName": "a", "percent": 90}, {"revisionName": "b-00001", "percent": 10}]),
        json!({}),
    );
    rt.status = serde_json::from_value(json!({"traffic": [{"revisionName": "a-00001", "percent": 100}]})).ok();

    let read_cfgs: Vec<_> = cfgs.iter().filter(|c| reads_configuration(&rt, c)).cloned().collect();
    let read_revs: Vec<_> = revs.iter().filter(|r| reads_revision(&rt, r)).cloned().collect();
    let names = |objs: &[Revision]| objs.iter().map(|o| o.name_any()).collect::<Vec<_>>();
    assert_eq!(read_cfgs.iter().map(|c| c.name_any()).collect::<Vec<_>>(), ["a", "c"]);
    assert_eq!(names(&read_revs), ["a-00001", "a-00002", "b-00001", "old-00001"], "not c-00001");

    // The same traffic, and the same label changes, as from the whole namespace.
    let all = |_: &str| true;
    let whole = lookup(&cfgs, &revs, &all);
    let read = lookup(&read_cfgs, &read_revs, &all);
    let assigned = resolve(&rt, &whole).expect("resolves");
    assert_eq!(resolve(&rt, &read).expect("resolves"), assigned);
    let mut referenced = wanted_revisions(&rt, &whole);
    assert_eq!(wanted_revisions(&rt, &read), referenced);
    referenced.extend(assigned.iter().filter_map(|t| t.revision_name.clone()));
    assert_eq!(labeler::changes("a", &referenced, &read_revs, true), labeler::changes("a", &referenced, &revs, true));
    let wanted = traffic::wanted_configurations(&rt);
    assert_eq!(labeler::changes("a", &wanted, &read_cfgs, false), labeler::changes("a", &wanted, &cfgs, false));
    assert!(!labeler::changes("a", &wanted, &read_cfgs, false).is_empty(), "c's annotation comes off");
}

/// A cache of `objects` and its index by `facets`, as the watch fills them (one list), and the
/// writer that takes later events.
fn indexed<K>(
    objects: &[K],
    facets: crate::index::Facets<K>,
) -> (crate::index::Indexed<K>, kube::runtime::reflector::store::Writer<K>)
where
    K: kube::Resource<DynamicType = ()> + Clone + 'static,
{
    use kube::runtime::watcher::Event;
    let (store, mut writer) = kube::runtime::reflector::store::<K>();
    let indexed = crate::index::Indexed::new(store, facets);
    let events = std::iter::once(Event::Init)
        .chain(objects.iter().cloned().map(Event::InitApply))
        .chain(std::iter::once(Event::InitDone));
    for event in events {
        writer.apply_watcher_event(&event);
        indexed.apply(&event);
    }
    (indexed, writer)
}

/// Sorted names.
fn sorted<K: kube::Resource>(objs: impl IntoIterator<Item = K>) -> Vec<String> {
    let mut names: Vec<String> = objs.into_iter().map(|o| o.meta().name.clone().unwrap_or_default()).collect();
    names.sort();
    names
}

/// What `reads_revision`/`reads_configuration`/`depends_on` pick over every cached object (the
/// reconciles' reads before the index) against what the index finds, for each route.
async fn assert_index_reads_as_filter(
    cfgs: &crate::index::Indexed<Configuration>,
    revs: &crate::index::Indexed<Revision>,
    routes: &crate::index::Indexed<Route>,
    step: &str,
) {
    let all_routes = routes.store.state();
    for rt in &all_routes {
        let ns = rt.namespace().unwrap_or_default();
        let in_ns = |o: &Option<String>| o.as_deref() == Some(ns.as_str());
        let want_revs = sorted(
            revs.store
                .state()
                .iter()
                .filter(|r| in_ns(&r.metadata.namespace) && reads_revision(rt, r))
                .map(|r| Revision::clone(r)),
        );
        let want_cfgs = sorted(
            cfgs.store
                .state()
                .iter()
                .filter(|c| in_ns(&c.metadata.namespace) && reads_configuration(rt, c))
                .map(|c| Configuration::clone(c)),
        );
        assert_eq!(
            sorted(revisions_read(revs, &ns, rt).await.expect("ready")),
            want_revs,
            "{step}: revisions of {}",
            rt.name_any()
        );
        assert_eq!(
            sorted(configurations_read(cfgs, &ns, rt).await.expect("ready")),
            want_cfgs,
            "{step}: configurations of {}",
            rt.name_any()
        );
    }
    let targets = revs
        .store
        .state()
        .iter()
        .map(|rev| {
            let target = Target::Revision {
                name: rev.name_any(),
                configuration: rev.labels().get(labels::CONFIGURATION).cloned(),
                routes: rev.annotations().get(labels::ROUTES).cloned(),
            };
            (rev.namespace().unwrap_or_default(), target)
        })
        .chain(
            cfgs.store
                .state()
                .iter()
                .map(|c| (c.namespace().unwrap_or_default(), Target::Configuration { name: c.name_any() })),
        )
        .collect::<Vec<_>>();
    for (ns, target) in &targets {
        let want = sorted(
            all_routes
                .iter()
                .filter(|r| r.namespace().as_deref() == Some(ns.as_str()) && depends_on(r, target))
                .map(|r| Route::clone(r)),
        );
        let got = sorted(dependents(routes, ns, target).iter().map(|r| Route::clone(r)));
        assert_eq!(got, want, "{step}: dependents of {target:?}");
    }
}

#[tokio::test]
async fn the_indexes_find_what_filtering_every_cached_object_found_through_updates_and_deletes() {
    use kube::runtime::watcher::Event;
    let ready = |c: &str, g: i64| {
        let latest = format!("{c}-{g:05}");
        fixtures::configuration(c, g, json!({"latestReadyRevisionName": latest, "latestCreatedRevisionName": latest}))
    };
    let listing = |mut o: Revision, routes: &str| {
        o.metadata.annotations.get_or_insert_default().insert(labels::ROUTES.into(), routes.into());
        o
    };
    let in_ns = |mut r: Route, ns: &str| {
        r.metadata.namespace = Some(ns.into());
        r
    };
    let mut cfg_c = ready("c", 1);
    cfg_c.metadata.annotations = Some([(labels::ROUTES.to_string(), "a, b".to_string())].into());
    let cfgs = vec![ready("a", 2), ready("b", 1), cfg_c];
    let mut other_ns = fixtures::revision("a", 1, "True");
    other_ns.metadata.namespace = Some("other".into());
    let revs = vec![
        fixtures::revision("a", 1, "True"),
        fixtures::revision("a", 2, "True"),
        fixtures::revision("b", 1, "True"),
        listing(fixtures::revision("c", 1, "True"), "b"),
        listing(fixtures::revision("old", 1, "True"), "a,z"),
        other_ns,
    ];
    let mut a = fixtures::route(
        "a",
        json!([{"configurationName": "a", "percent": 90}, {"revisionName": "b-00001", "percent": 10}]),
        json!({}),
    );
    a.status = serde_json::from_value(json!({"traffic": [{"revisionName": "a-00001", "percent": 100}]})).ok();
    let b = fixtures::route("b", json!([{"configurationName": "b", "percent": 100}]), json!({}));
    let mut rules = fixtures::route("r", json!([{"revisionName": "a-00002", "percent": 100}]), json!({}));
    rules.spec.rules = serde_json::from_value(json!([{"match": {"headers": [{"name": "x", "exact": "1"}]},
        "traffic": [{"configurationName": "c", "percent": 100}]}]))
    .expect("rules");
    let elsewhere =
        in_ns(fixtures::route("a", json!([{"configurationName": "a", "percent": 100}]), json!({})), "other");
    let (cfg_index, mut cfg_writer) = indexed(&cfgs, configuration_facets);
    let (rev_index, mut rev_writer) = indexed(&revs, revision_facets);
    let (route_index, mut route_writer) = indexed(&[a.clone(), b.clone(), rules, elsewhere], route_facets);
    assert_index_reads_as_filter(&cfg_index, &rev_index, &route_index, "the first list").await;

    let mut apply_rev = |e: Event<Revision>| {
        rev_writer.apply_watcher_event(&e);
        rev_index.apply(&e);
    };
    // b-00002 appears and a-00001 stops listing anything; old-00001 is deleted.
    apply_rev(Event::Apply(listing(fixtures::revision("b", 2, "True"), "a")));
    apply_rev(Event::Apply(fixtures::revision("a", 1, "True")));
    apply_rev(Event::Delete(listing(fixtures::revision("old", 1, "True"), "a,z")));
    assert_index_reads_as_filter(&cfg_index, &rev_index, &route_index, "revisions changed").await;

    // Route a moves to configuration b alone (spec and status); route b goes.
    let mut moved = fixtures::route("a", json!([{"configurationName": "b", "percent": 100}]), json!({}));
    moved.status = serde_json::from_value(json!({"traffic": [{"revisionName": "b-00001", "percent": 100}]})).ok();
    for e in [Event::Apply(moved), Event::Delete(b)] {
        route_writer.apply_watcher_event(&e);
        route_index.apply(&e);
    }
    // Configuration c stops listing routes.
    let e = Event::Apply(ready("c", 1));
    cfg_writer.apply_watcher_event(&e);
    cfg_index.apply(&e);
    assert_index_reads_as_filter(&cfg_index, &rev_index, &route_index, "routes and configurations changed").await;
}
