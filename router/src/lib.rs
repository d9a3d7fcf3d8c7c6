//! Sluice's data plane: host → route → tag, header/path rule or weighted split → revision →
//! instance → proxy.
//!
//! The controller describes each route as plain data ([`publish::RouteSpec`]) and hands it to
//! a [`publish::RoutePublisher`]; the embedded [`publish::Publisher`] resolves it against the
//! live [`endpoints`] into an immutable [`table::RoutingTable`] and swaps it into an
//! `Arc<ArcSwap<RoutingTable>>`. [`server::serve`] accepts HTTP/1.1 and h2c connections
//! ([`server::serve_tls`] HTTPS ones, with certificates from [`tls`]) and hands each request
//! to a [`Router`], which reads the table once per request and never locks.
//! Every failure becomes a one-line plain-text response ([`error::ProxyError`], texts in
//! [`reason`]).
//!
//! Modules depend one way: `proxy` → `table` → `endpoints`/`reason`; `error` → `body`/`reason`/
//! `trace`; nothing below `proxy` knows about it. [`trace`] keeps or makes each forwarded
//! request's W3C `traceparent`.

pub mod access_log;
pub mod activity;
pub mod body;
pub mod config;
pub mod endpoints;
pub mod error;
mod lane;
mod linger;
pub mod metrics;
mod park;
pub mod proxy;
pub mod publish;
pub mod reason;
pub mod server;
pub mod table;
pub mod tls;
pub mod trace;
pub mod workers;

pub use body::{BodyError, RouterBody};
pub use config::{HttpsListener, RouterConfig};
pub use error::ProxyError;
pub use proxy::{Router, RouterService};
pub use workers::Workers;
