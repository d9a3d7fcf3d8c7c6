//! The reconcilers' figures for `/metrics`, through the `metrics` facade:
//! `sluice_reconcile_count{kind, result}` (result `success`, `error`, or `requeue` for a
//! write conflict (409), which is retried 50 ms later by design) and
//! `sluice_reconcile_duration_seconds{kind}`.
//!
//! `sluice_workqueue_depth{kind}` is counted around kube-runtime's `Controller` ([`workqueue`]).

use std::future::Future;
use std::time::Instant;

use kube::runtime::controller::Action;
use metrics::{counter, histogram};

use crate::Error;

pub mod workqueue;

/// Runs one reconcile of a `kind` object, counting it by result and timing it.
pub async fn reconcile(kind: &'static str, run: impl Future<Output = Result<Action, Error>>) -> Result<Action, Error> {
    let started = Instant::now();
    let result = run.await;
    histogram!("sluice_reconcile_duration_seconds", "kind" => kind).record(started.elapsed().as_secs_f64());
    counter!("sluice_reconcile_count", "kind" => kind, "result" => outcome(&result)).increment(1);
    result
}

/// The `result` label of a reconcile's outcome.
fn outcome(result: &Result<Action, Error>) -> &'static str {
    match result {
        Ok(_) => "success",
        Err(Error::Kube(kube::Error::Api(e))) if e.code == 409 => "requeue",
        Err(_) => "error",
    }
}
