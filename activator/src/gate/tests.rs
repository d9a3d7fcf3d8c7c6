use std::sync::atomic::AtomicUsize;

use super::*;

fn gate(depth: usize) -> (Gate, Arc<AtomicUsize>) {
    let pokes = Arc::new(AtomicUsize::new(0));
    let counter = pokes.clone();
    (Gate::new(Settings { queue_depth: depth }, move || _ = counter.fetch_add(1, SeqCst)), pokes)
}

fn far() -> Instant {
    Instant::now() + Duration::from_secs(3600)
}

/// Lets spawned tasks run until they wait again.
async fn settle() {
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
}

#[tokio::test(start_paused = true)]
async fn a_request_at_zero_waits_pokes_and_goes_when_capacity_appears() {
    let (gate, pokes) = gate(10);
    let gate = Arc::new(gate);
    let waiter = tokio::spawn({
        let gate = gate.clone();
        async move { gate.acquire(far()).await }
    });
    settle().await;
    assert_eq!((gate.waiting(), pokes.load(SeqCst)), (1, 1), "waiting, and the autoscaler was poked at once");
    assert_eq!(gate.concurrency(), 1, "a waiting request counts as demand");
    gate.set_capacity(1);
    let permit = waiter.await.expect("task").expect("a permit once capacity appears");
    assert_eq!((gate.in_flight(), gate.waiting(), gate.admitted()), (1, 0, 1));
    drop(permit);
    assert_eq!(gate.in_flight(), 0);
}

#[tokio::test(start_paused = true)]
async fn waiters_are_served_in_arrival_order_and_arrivals_do_not_overtake() {
    let (gate, _) = gate(10);
    let gate = Arc::new(gate);
    gate.set_capacity(1);
    let first = gate.try_acquire().expect("capacity is free");
    let order = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for i in 0..4 {
        let (gate, order) = (gate.clone(), order.clone());
        tasks.push(tokio::spawn(async move {
            let permit = gate.acquire(far()).await.expect("permit");
            order.lock().push(i);
            tokio::task::yield_now().await;
            drop(permit);
        }));
        settle().await;
    }
    assert_eq!(gate.waiting(), 4);
    assert!(gate.try_acquire().is_none(), "a newcomer may not jump the queue");
    drop(first);
    for t in tasks {
        t.await.expect("task");
    }
    assert_eq!(*order.lock(), vec![0, 1, 2, 3]);
    assert_eq!((gate.in_flight(), gate.waiting()), (0, 0));
}

#[tokio::test(start_paused = true)]
async fn a_full_queue_refuses_at_once() {
    let (gate, _) = gate(2);
    let gate = Arc::new(gate);
    let waiters: Vec<_> = (0..2)
        .map(|_| {
            let gate = gate.clone();
            tokio::spawn(async move { gate.acquire(far()).await })
        })
        .collect();
    settle().await;
    assert_eq!(gate.acquire(far()).await.expect_err("full"), Refused::QueueFull { depth: 2 });
    gate.set_capacity(2);
    for w in waiters {
        w.await.expect("task").expect("the queued ones still get through");
    }
}

#[tokio::test(start_paused = true)]
async fn the_deadline_ends_the_wait_and_leaves_the_queue() {
    let (gate, _) = gate(10);
    let refused = gate.acquire(Instant::now() + Duration::from_secs(2)).await.expect_err("no capacity came");
    assert_eq!(refused, Refused::Timeout { waited: Duration::from_secs(2) });
    assert_eq!(gate.waiting(), 0);
    gate.set_capacity(1);
    assert_eq!(gate.in_flight(), 0, "nothing was granted to the departed waiter");
}

#[tokio::test(start_paused = true)]
async fn a_waiter_whose_client_went_away_leaves_the_queue_at_once() {
    let (gate, _) = gate(10);
    let gate = Arc::new(gate);
    let waiter = tokio::spawn({
        let gate = gate.clone();
        async move { gate.acquire(far()).await }
    });
    settle().await;
    assert_eq!(gate.waiting(), 1);
    waiter.abort();
    let _ = waiter.await;
    assert_eq!(gate.waiting(), 0, "gone from the queue without waiting for its deadline");
    gate.set_capacity(1);
    assert_eq!(gate.in_flight(), 0);
    assert!(gate.try_acquire().is_some());
}

#[tokio::test(start_paused = true)]
async fn capacity_that_shrinks_admits_nobody_until_in_flight_falls_below_it() {
    let (gate, _) = gate(10);
    gate.set_capacity(3);
    let held: Vec<Permit> = (0..3).filter_map(|_| gate.try_acquire()).collect();
    assert_eq!(held.len(), 3);
    gate.set_capacity(1);
    let mut held = held.into_iter();
    drop(held.next());
    assert!(gate.try_acquire().is_none(), "two in flight, capacity one");
    drop(held.next());
    assert!(gate.try_acquire().is_none(), "one in flight, capacity one");
    drop(held.next());
    assert!(gate.try_acquire().is_some());
}

#[test]
fn under_racing_threads_in_flight_never_exceeds_capacity_and_nothing_is_lost() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(4).enable_all().build().expect("runtime");
    runtime.block_on(async {
        let (gate, _) = gate(10_000);
        let gate = Arc::new(gate);
        gate.set_capacity(3);
        let peak = Arc::new(AtomicU64::new(0));
        let tasks: Vec<_> = (0..64)
            .map(|_| {
                let (gate, peak) = (gate.clone(), peak.clone());
                tokio::spawn(async move {
                    for _ in 0..200 {
                        let deadline = Instant::now() + Duration::from_secs(30);
                        let permit = gate
                            .acquire(deadline)
                            .await
                            .expect("a permit in time: a lost wake-up would leave it waiting");
                        peak.fetch_max(gate.in_flight(), SeqCst);
                        tokio::task::yield_now().await;
                        drop(permit);
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.expect("task");
        }
        assert!(peak.load(SeqCst) <= 3, "peak {}", peak.load(SeqCst));
        assert_eq!((gate.in_flight(), gate.waiting(), gate.admitted()), (0, 0, 64 * 200));
    });
}

#[tokio::test(start_paused = true)]
async fn closing_the_gate_sends_every_waiter_away_at_once() {
    let (gate, _) = gate(10);
    let gate = Arc::new(gate);
    let waiters: Vec<_> = (0..3)
        .map(|_| {
            let gate = gate.clone();
            tokio::spawn(async move { gate.acquire(far()).await })
        })
        .collect();
    settle().await;
    assert_eq!(gate.waiting(), 3);
    gate.close();
    for w in waiters {
        assert_eq!(w.await.expect("task").expect_err("closed"), Refused::Closed);
    }
    assert_eq!(gate.waiting(), 0);
    gate.set_capacity(5);
    assert!(gate.try_acquire().is_none(), "a closed gate admits nobody");
    assert_eq!(gate.acquire(far()).await.expect_err("closed"), Refused::Closed);
}
