//! Sluice's control plane: the embedded store and its Kubernetes-compatible API server, the
//! reconcilers, and the runtimes that run revision instances.

pub mod apiserver;
pub mod reconcile;
pub mod runtime;
pub mod store;
mod tombstones;
