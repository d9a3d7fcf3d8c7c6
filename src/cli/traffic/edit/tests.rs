use serde_json::{Value, json};

use super::*;

fn edit(traffic: &[&str], tags: &[&str], untag: &[&str]) -> Result<Edit, EditError> {
    let owned = |v: &[&str]| v.iter().map(|s| (*s).to_string()).collect::<Vec<_>>();
    Edit::parse(&owned(traffic), &owned(tags), &owned(untag))
}

fn two() -> Vec<Value> {
    vec![
        json!({"revisionName": "hello-00001", "percent": 100, "tag": "current"}),
        json!({"latestRevision": true, "percent": 0, "tag": "latest"}),
    ]
}

#[test]
fn percents_go_to_named_targets_and_every_other_untagged_one_leaves() {
    let start = vec![
        json!({"revisionName": "hello-00001", "percent": 50}),
        json!({"revisionName": "hello-00002", "percent": 50}),
    ];
    let out = edit(&["hello-00003=100"], &[], &[]).expect("parse").apply(&start).expect("apply");
    assert_eq!(out, vec![json!({"revisionName": "hello-00003", "percent": 100})]);
}

#[test]
fn a_tag_name_and_latest_pick_their_targets() {
    let out = edit(&["current=90", "@latest=10"], &[], &[]).expect("parse").apply(&two()).expect("apply");
    assert_eq!(
        out,
        vec![
            json!({"revisionName": "hello-00001", "percent": 90, "tag": "current"}),
            json!({"latestRevision": true, "percent": 10, "tag": "latest"}),
        ]
    );
}

#[test]
fn tag_goes_on_the_untagged_target_or_a_new_zero_percent_one() {
    let start = vec![json!({"revisionName": "hello-00001", "percent": 100})];
    let out = edit(&[], &["hello-00001=blue", "hello-00002=green", "@latest=edge"], &[])
        .expect("parse")
        .apply(&start)
        .expect("apply");
    assert_eq!(
        out,
        vec![
            json!({"revisionName": "hello-00001", "percent": 100, "tag": "blue"}),
            json!({"tag": "green", "revisionName": "hello-00002", "percent": 0}),
            json!({"tag": "edge", "latestRevision": true, "percent": 0}),
        ]
    );
}

#[test]
fn untag_drops_a_target_left_without_tag_or_traffic() {
    let out = edit(&[], &[], &["latest"]).expect("parse").apply(&two()).expect("apply");
    assert_eq!(out, vec![json!({"revisionName": "hello-00001", "percent": 100, "tag": "current"})]);
    let out = edit(&[], &[], &["current"]).expect("parse").apply(&two()).expect("apply");
    assert_eq!(out[0], json!({"revisionName": "hello-00001", "percent": 100}));
}

#[test]
fn untag_comes_before_tag_so_a_tag_can_move() {
    let out = edit(&[], &["@latest=current"], &["current"]).expect("parse").apply(&two()).expect("apply");
    assert_eq!(out[0], json!({"revisionName": "hello-00001", "percent": 100}));
    assert!(out.contains(&json!({"tag": "current", "latestRevision": true, "percent": 0})), "{out:?}");
}

#[test]
fn bad_values_name_their_flag() {
    let cases: [(Result<Edit, EditError>, &str); 7] = [
        (edit(&["hello-00001"], &[], &[]), "REV=PCT hello-00001: expected REV=PCT"),
        (
            edit(&["hello-00001=ten"], &[], &[]),
            "REV=PCT hello-00001=ten: the percent must be a whole number from 0 to 100",
        ),
        (edit(&["hello-00001=101"], &[], &[]), "REV=PCT hello-00001=101: the percent must be"),
        (edit(&["a=50", "a=50"], &[], &[]), "REV=PCT a=50: a is given more than once"),
        (edit(&[], &["hello-00001"], &[]), "--tag hello-00001: expected REV=TAG"),
        (edit(&[], &["a=x", "b=x"], &[]), "--tag b=x: tag \"x\" is given more than once"),
        (edit(&[], &[], &[]), "REV=PCT: nothing to change"),
    ];
    for (got, want) in cases {
        let err = got.expect_err(want).to_string();
        assert!(err.contains(want), "want {want:?}, got {err:?}");
    }
    let err = edit(&[], &[], &["nope"]).expect("parse").apply(&two()).expect_err("unknown tag").to_string();
    assert_eq!(err, "--untag nope: no target has this tag");
    let err = edit(&[], &["hello-00002=current"], &[]).expect("parse").apply(&two()).expect_err("taken").to_string();
    assert_eq!(err, "--tag hello-00002=current: the tag is already used; --untag it first");
}

#[test]
fn revisions_named_exclude_tags_and_latest() {
    let e = edit(&["current=50", "hello-00002=50", "@latest=0"], &["hello-00003=x"], &[]).expect("parse");
    assert_eq!(e.revisions(&two()), vec![("REV=PCT", "hello-00002"), ("--tag", "hello-00003")]);
}
