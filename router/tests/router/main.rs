//! The router over real sockets: an in-test hyper backend on 127.0.0.1:0, the router serving
//! a hand-built table, and hyper clients speaking HTTP/1.1 or h2c, or either over TLS.

mod support;

mod early;
mod errors;
mod forwarding;
mod h2c;
mod idle;
mod lane;
mod lifecycle;
mod routing;
mod rules;
mod streaming;
mod timeouts;
mod tls;
