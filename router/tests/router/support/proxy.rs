//! The router under test.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use sluice_router::table::RoutingTable;
use sluice_router::{Router, RouterConfig, Workers};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The router under test, serving on 127.0.0.1:0.
pub struct Proxy {
    pub addr: SocketAddr,
    pub table: Arc<ArcSwap<RoutingTable>>,
    pub shutdown: CancellationToken,
    pub task: Option<JoinHandle<()>>,
}

impl Proxy {
    pub async fn start(table: RoutingTable) -> Proxy {
        Self::start_with(table, config(), Duration::from_secs(30)).await
    }

    pub async fn start_with(table: RoutingTable, config: RouterConfig, drain: Duration) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy addr");
        let table = Arc::new(ArcSwap::from_pointee(table));
        let shutdown = CancellationToken::new();
        let router = Router::new(table.clone(), config);
        let task = tokio::spawn(sluice_router::server::serve(listener, router, shutdown.clone(), drain));
        Proxy { addr, table, shutdown, task: Some(task) }
    }

    /// The router serving its connections on `threads` worker threads of its own.
    pub async fn start_on_workers(table: RoutingTable, threads: usize) -> (Proxy, Arc<Workers>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy addr");
        let table = Arc::new(ArcSwap::from_pointee(table));
        let shutdown = CancellationToken::new();
        let workers = Workers::start(Router::new(table.clone(), config()), threads).expect("workers start");
        let serving =
            sluice_router::server::serve_on(listener, workers.clone(), shutdown.clone(), Duration::from_secs(30));
        let task = tokio::spawn(serving);
        (Proxy { addr, table, shutdown, task: Some(task) }, workers)
    }

    pub fn swap(&self, table: RoutingTable) {
        self.table.store(Arc::new(table));
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shutdown.cancel();
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

/// Tests' config: the defaults.
pub fn config() -> RouterConfig {
    RouterConfig::default()
}
