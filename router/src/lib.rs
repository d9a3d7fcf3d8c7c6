//! Sluice's data plane: host → route → weighted split → revision → instance → proxy.
//!
//! The controller builds a [`table::RoutingTable`] and publishes it through an
//! `Arc<ArcSwap<RoutingTable>>`; [`server::serve`] accepts HTTP/1.1 and h2c connections and
//! hands each request to a [`Router`], which reads the table once per request and never locks.
//! Every failure becomes a one-line plain-text response ([`error::ProxyError`]).

#![warn(missing_docs)]

pub mod config;
pub mod endpoints;
pub mod error;
pub mod proxy;
pub mod server;
pub mod table;

pub use config::RouterConfig;
pub use error::ProxyError;
pub use proxy::{Router, RouterService};
