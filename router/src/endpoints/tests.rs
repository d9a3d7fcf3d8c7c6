use super::*;

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

#[test]
fn pick_prefers_the_least_loaded_ready_instance() {
    let rev = RevisionEndpoints::new(RevisionKey::new("default", "r-00001"));
    assert!(rev.pick().is_none());
    rev.add(Instance::new(1, addr(1)));
    rev.add(Instance::new(2, addr(2)));
    let a = rev.pick().expect("a");
    let b = rev.pick().expect("b");
    assert_ne!(a.instance().id, b.instance().id, "second request goes to the idle instance");
    assert_eq!(rev.inflight(), 2);
    drop(a);
    assert_eq!(rev.inflight(), 1);
}

#[test]
fn a_draining_instance_is_never_claimed() {
    let rev = RevisionEndpoints::new(RevisionKey::new("default", "r-00001"));
    let inst = Instance::new(1, addr(1));
    rev.add(inst.clone());
    let removed = rev.remove(1).expect("removed");
    assert!(removed.is_draining());
    assert!(rev.claim(&inst).is_none());
    assert_eq!(inst.inflight(), 0, "a refused claim is undone");
    assert!(rev.pick().is_none());
}

#[tokio::test]
async fn drain_waits_for_in_flight_requests() {
    let rev = RevisionEndpoints::new(RevisionKey::new("default", "r-00001"));
    let inst = Instance::new(1, addr(1));
    rev.add(inst.clone());
    let guard = rev.pick().expect("claimed");
    rev.remove(1);
    assert!(!inst.wait_idle(Duration::from_millis(20)).await, "still busy");
    let waiter = tokio::spawn({
        let inst = inst.clone();
        async move { inst.wait_idle(Duration::from_secs(5)).await }
    });
    drop(guard);
    assert!(waiter.await.expect("join"), "idle once the request finished");
}

#[tokio::test(start_paused = true)]
async fn the_first_wait_for_idle_is_woken_by_the_release() {
    // A release skips the wake-up while nothing has ever waited; the first waiter must still
    // hear the release that follows it. (Paused: a waiter nobody wakes sees its deadline pass
    // at once, and says false.)
    let rev = RevisionEndpoints::new(RevisionKey::new("default", "r-00001"));
    let inst = Instance::new(1, addr(1));
    rev.add(inst.clone());
    drop(rev.pick().expect("claimed"));
    let guard = rev.pick().expect("claimed again");
    let waiter = tokio::spawn({
        let inst = inst.clone();
        async move { inst.wait_idle(Duration::from_secs(5)).await }
    });
    // The current-thread test runtime runs the waiter up to its wait before this goes on.
    tokio::task::yield_now().await;
    let started = tokio::time::Instant::now();
    drop(guard);
    assert!(waiter.await.expect("join"), "idle once the request finished");
    assert_eq!(started.elapsed(), Duration::ZERO, "woken by the release, not by its deadline");
}

#[test]
fn pick_other_never_returns_the_excluded_instance() {
    let rev = RevisionEndpoints::new(RevisionKey::new("default", "r-00001"));
    rev.add(Instance::new(1, addr(1)));
    assert!(rev.pick_other(1, None).is_none(), "the only instance is excluded");
    rev.add(Instance::new(2, addr(2)));
    for _ in 0..4 {
        assert_eq!(rev.pick_other(1, None).expect("another instance").instance().id, 2);
    }
    assert_eq!(rev.requests(), 4);
}

#[test]
fn equally_loaded_instances_take_turns() {
    let rev = RevisionEndpoints::new(RevisionKey::new("default", "r-00001"));
    rev.add(Instance::new(1, addr(1)));
    rev.add(Instance::new(2, addr(2)));
    let first = rev.pick().expect("first").instance().id;
    let second = rev.pick().expect("second").instance().id;
    assert_ne!(first, second, "the rotating start spreads sequential requests");
}

#[test]
fn authority_matches_the_address() {
    assert_eq!(Instance::new(1, addr(8080)).authority().as_str(), "127.0.0.1:8080");
    let v6 = Instance::new(2, SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, 81)));
    assert_eq!(v6.authority().as_str(), "[::1]:81");
}

#[test]
fn capacity_follows_container_concurrency_and_ready_instances() {
    let rev = RevisionEndpoints::new(RevisionKey::new("default", "r-00001"));
    rev.set_container_concurrency(2);
    assert_eq!(rev.gate().capacity(), 0, "no instance, no capacity");
    rev.add(Instance::new(1, addr(1)));
    rev.add(Instance::new(2, addr(2)));
    assert_eq!(rev.gate().capacity(), 4);
    rev.remove(2);
    assert_eq!(rev.gate().capacity(), 2, "a draining instance gives no capacity");
    rev.set_container_concurrency(0);
    assert_eq!(rev.gate().capacity(), u64::MAX, "0: no limit once one instance is ready");
}

#[test]
fn no_instance_ever_holds_more_than_container_concurrency() {
    let rev = RevisionEndpoints::new(RevisionKey::new("default", "r-00001"));
    rev.set_container_concurrency(2);
    rev.add(Instance::new(1, addr(1)));
    rev.add(Instance::new(2, addr(2)));
    let held: Vec<InstanceGuard> = (0..4).map(|_| rev.pick().expect("within capacity")).collect();
    assert!(rev.pick().is_none(), "capacity 4 is used up");
    for id in [1, 2] {
        assert_eq!(held.iter().filter(|g| g.instance().id == id).count(), 2, "two on each instance");
    }
    assert_eq!(rev.gate().in_flight(), 4);
    drop(held);
    assert_eq!((rev.gate().in_flight(), rev.inflight()), (0, 0), "claims and permits come back together");
}

#[test]
fn an_admitted_request_finds_no_full_instance_and_keeps_its_permit() {
    let rev = RevisionEndpoints::new(RevisionKey::new("default", "r-00001"));
    rev.set_container_concurrency(1);
    rev.add(Instance::new(1, addr(1)));
    let permit = rev.gate().try_acquire().expect("capacity 1");
    // Another claim (one made before the limit was known, say) fills the only instance.
    let inst = rev.ready()[0].clone();
    let other = rev.claim(&inst).expect("unlimited claim");
    let permit = rev.pick_admitted(permit).expect_err("the instance is full");
    drop(other);
    let guard = rev.pick_admitted(permit).expect("a slot is free again");
    assert_eq!(guard.instance().id, 1);
}

#[test]
fn a_retry_on_another_instance_carries_the_permit() {
    let rev = RevisionEndpoints::new(RevisionKey::new("default", "r-00001"));
    rev.set_container_concurrency(1);
    rev.add(Instance::new(1, addr(1)));
    rev.add(Instance::new(2, addr(2)));
    let mut first = rev.pick().expect("first");
    let next = rev.pick_other(first.instance().id, first.take_permit()).expect("the other instance");
    drop(first);
    assert_eq!(rev.gate().in_flight(), 1, "one request, one permit");
    drop(next);
    assert_eq!(rev.gate().in_flight(), 0);
}
