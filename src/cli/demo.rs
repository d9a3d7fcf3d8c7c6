//! `sluice demo`: `serve` with Knative's helloworld-go sample applied, so a new user has a
//! service answering at once.

use std::net::SocketAddr;

use anyhow::Context;
use kube::api::{Api, PostParams};
use sluice_api::Service;

/// Knative's sample, unchanged.
const SAMPLE: &str = include_str!("../../manifests/samples/knative/helloworld-go.service.yaml");

/// Creates the sample Service unless it exists, and says how to reach it: on stderr for people
/// when `banner`, else as a log event (a JSON log keeps every stderr line an object).
pub async fn apply_sample(client: kube::Client, http: SocketAddr, banner: bool) -> anyhow::Result<()> {
    let svc: Service = serde_saphyr::from_str(SAMPLE).context("the embedded sample parses")?;
    let api: Api<Service> = Api::namespaced(client, "default");
    let name = svc.metadata.name.clone().unwrap_or_default();
    if api.get_opt(&name).await?.is_none() {
        api.create(&PostParams::default(), &svc).await.context("creating the sample service")?;
    }
    let port = http.port();
    if !banner {
        tracing::info!(service = %name, url = %format!("http://{name}.default.localhost:{port}"), "demo sample deployed");
        return Ok(());
    }
    eprintln!(
        "\nDemo: Knative's helloworld-go sample is deployed. Try:\n  curl http://{name}.default.localhost:{port}\n  curl -H 'Host: {name}.default.localhost' http://{http}\n"
    );
    Ok(())
}
