//! Aggregation and the rate limit, with paused time.

use super::*;

fn key(message: &str) -> Key {
    Key {
        object: "Revision/default/hello-00001/u1".into(),
        type_: EventType::Normal,
        component: super::super::component::AUTOSCALER,
        reason: "Scaled".into(),
        message: message.into(),
    }
}

#[tokio::test(start_paused = true)]
async fn the_same_note_again_counts_on_the_stored_event() {
    let mut seen = Seen::default();
    let now = Instant::now();
    assert_eq!(seen.decide(&key("Scaled from 1 to 3"), now), Write::Create);
    seen.remember(
        key("Scaled from 1 to 3"),
        Stored { namespace: "default".into(), name: "e1".into(), count: 1, at: now },
    );
    match seen.decide(&key("Scaled from 1 to 3"), now) {
        Write::Repeat(s) => assert_eq!((s.name.as_str(), s.count), ("e1", 2)),
        other => panic!("expected a repeat, got {other:?}"),
    }
    match seen.decide(&key("Scaled from 1 to 3"), now) {
        Write::Repeat(s) => assert_eq!(s.count, 3),
        other => panic!("expected a repeat, got {other:?}"),
    }
    assert_eq!(seen.decide(&key("Scaled from 3 to 1"), now), Write::Create, "another message is another event");
}

#[tokio::test(start_paused = true)]
async fn what_is_remembered_is_bounded_and_the_oldest_goes_first() {
    let mut seen = Seen::default();
    let start = Instant::now();
    for i in 0..REMEMBERED + 10 {
        let at = start + Duration::from_millis(i as u64);
        seen.remember(key(&i.to_string()), Stored { namespace: "d".into(), name: i.to_string(), count: 1, at });
    }
    assert_eq!(seen.0.len(), REMEMBERED);
    assert!(!seen.0.contains_key(&key("0")) && seen.0.contains_key(&key(&(REMEMBERED + 9).to_string())));
}

#[tokio::test(start_paused = true)]
async fn each_object_gets_a_burst_then_one_event_per_refill() {
    let mut limits = Limits::default();
    let now = Instant::now();
    for _ in 0..BURST {
        assert!(limits.take("a", now));
    }
    assert!(!limits.take("a", now), "the burst is spent");
    assert!(limits.take("b", now), "another object has its own bucket");
    tokio::time::advance(REFILL).await;
    assert!(limits.take("a", Instant::now()));
    assert!(!limits.take("a", Instant::now()));
}
