//! Backends, the proxy under test, clients and table builders.

#![allow(dead_code)]

mod backend;
mod bodies;
mod client;
mod proxy;
mod tables;
mod tls;

pub use backend::*;
pub use bodies::*;
pub use client::*;
pub use proxy::*;
pub use tables::*;
pub use tls::*;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
pub type TestBody = http_body_util::combinators::UnsyncBoxBody<bytes::Bytes, BoxError>;
