//! What a reconcile never sees, because the object is gone: stopping a deleted revision's
//! instances, unpublishing a deleted route and releasing its revisions; and following
//! Knative's `config-features`, `config-network` and `config-deployment` ConfigMaps.

use std::collections::BTreeSet;
use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::ResourceExt;
use kube::api::{Api, ListParams};
use kube::runtime::watcher::{self, Event};
use sluice_api::{Configuration, Revision, Route};
use sluice_router::table::HttpProtocol;
use tokio_util::sync::CancellationToken;

use super::{Ctx, deadline, revision, route};

/// Namespace of Knative's configuration maps.
const SYSTEM_NAMESPACE: &str = "knative-serving";

/// Runs until `shutdown`.
pub async fn run(ctx: Arc<Ctx>, shutdown: CancellationToken) {
    tokio::select! {
        () = shutdown.cancelled() => {}
        () = async { tokio::join!(revisions(ctx.clone()), routes(ctx.clone()), features(ctx.clone()), network(ctx.clone()), autoscaler(ctx.clone()), deployment(ctx.clone())); } => {}
    }
}

async fn revisions(ctx: Arc<Ctx>) {
    let mut events = watcher::watcher(Api::<Revision>::all(ctx.client.clone()), watcher::Config::default()).boxed();
    while let Some(event) = events.next().await {
        if let Ok(Event::Delete(rev)) = event {
            ctx.autoscaling.forget(&revision::key(&rev), &rev.uid().unwrap_or_default());
            ctx.scaler.forget(&revision::key(&rev), &rev.uid().unwrap_or_default());
            ctx.publisher.forget_revision(&revision::key(&rev));
        }
    }
}

async fn routes(ctx: Arc<Ctx>) {
    let mut events = watcher::watcher(Api::<Route>::all(ctx.client.clone()), watcher::Config::default()).boxed();
    while let Some(event) = events.next().await {
        let Ok(Event::Delete(rt)) = event else { continue };
        let ns = rt.namespace().unwrap_or_default();
        ctx.publisher.remove_route(&ns, &rt.name_any(), &rt.uid().unwrap_or_default());
        // Release what the route held, so unreferenced revisions stop.
        let revs: Api<Revision> = Api::namespaced(ctx.client.clone(), &ns);
        let cfgs: Api<Configuration> = Api::namespaced(ctx.client.clone(), &ns);
        let none = BTreeSet::new();
        if let Ok(list) = revs.list(&ListParams::default()).await
            && let Err(e) = route::label(&revs, &rt.name_any(), &none, &list.items, true).await
        {
            tracing::warn!(error = %e, route = %rt.name_any(), "releasing revisions of a deleted route failed");
        }
        if let Ok(list) = cfgs.list(&ListParams::default()).await {
            let _ = route::label(&cfgs, &rt.name_any(), &none, &list.items, false).await;
        }
    }
}

/// Knative's `config-autoscaler`, read live: a map that does not validate is logged and the
/// settings before it stay, as Knative does; a deleted map means the defaults.
async fn autoscaler(ctx: Arc<Ctx>) {
    let api: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), SYSTEM_NAMESPACE);
    let cfg = watcher::Config::default().fields(&format!("metadata.name={}", sluice_autoscaler::CONFIG_MAP));
    let mut events = watcher::watcher(api, cfg).boxed();
    while let Some(event) = events.next().await {
        match event {
            Ok(Event::Apply(cm) | Event::InitApply(cm)) => {
                match sluice_autoscaler::Settings::from_config_map(&cm.data.unwrap_or_default()) {
                    Ok(settings) => {
                        tracing::info!("config-autoscaler applied");
                        ctx.autoscaling.set_settings(settings);
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "config-autoscaler does not validate; keeping the settings before it")
                    }
                }
            }
            Ok(Event::Delete(_)) => ctx.autoscaling.set_settings(sluice_autoscaler::Settings::default()),
            _ => {}
        }
    }
}

/// `config-deployment`'s `progress-deadline`, read live: a value that does not validate is
/// logged and the deadline before it stays, as Knative does; a deleted map or key means the
/// `sluice serve` setting.
async fn deployment(ctx: Arc<Ctx>) {
    let api: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), SYSTEM_NAMESPACE);
    let cfg = watcher::Config::default().fields(&format!("metadata.name={}", deadline::CONFIG_MAP));
    let mut events = watcher::watcher(api, cfg).boxed();
    while let Some(event) = events.next().await {
        match event {
            Ok(Event::Apply(cm) | Event::InitApply(cm)) => {
                match deadline::from_config_map(&cm.data.unwrap_or_default()) {
                    Ok(d) => {
                        tracing::info!(progress_deadline = ?d, "config-deployment applied");
                        ctx.progress_deadline.set_config_map(d);
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "config-deployment does not validate; keeping the progress deadline before it")
                    }
                }
            }
            Ok(Event::Delete(_)) => ctx.progress_deadline.set_config_map(None),
            _ => {}
        }
    }
}

async fn features(ctx: Arc<Ctx>) {
    let api: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), SYSTEM_NAMESPACE);
    let cfg = watcher::Config::default().fields("metadata.name=config-features");
    let mut events = watcher::watcher(api, cfg).boxed();
    while let Some(event) = events.next().await {
        match event {
            Ok(Event::Apply(cm) | Event::InitApply(cm)) => {
                let on = cm
                    .data
                    .as_ref()
                    .and_then(|d| d.get("tag-header-based-routing"))
                    .is_some_and(|v| v.eq_ignore_ascii_case("enabled"));
                ctx.publisher.set_tag_header_routing(on);
            }
            Ok(Event::Delete(_)) => ctx.publisher.set_tag_header_routing(false),
            _ => {}
        }
    }
}

/// `config-network`'s `http-protocol` (Knative also reads the older `httpProtocol`): what
/// plain HTTP to a service host gets when the router serves HTTPS. An unknown value is logged
/// and leaves plain HTTP enabled, as the map's absence does. And its `rollout-duration`, the
/// gradual rollout of routes without the annotation.
async fn network(ctx: Arc<Ctx>) {
    let api: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), SYSTEM_NAMESPACE);
    let cfg = watcher::Config::default().fields("metadata.name=config-network");
    let mut events = watcher::watcher(api, cfg).boxed();
    while let Some(event) = events.next().await {
        match event {
            Ok(Event::Apply(cm) | Event::InitApply(cm)) => {
                ctx.publisher.set_http_protocol(http_protocol(&cm));
                match route::rollout::parse_default(cm.data.as_ref()) {
                    Ok(d) => ctx.rollout_default.set(d),
                    Err(e) => tracing::error!(error = %e, "config-network: keeping the rollout duration before it"),
                }
            }
            Ok(Event::Delete(_)) => {
                ctx.publisher.set_http_protocol(HttpProtocol::Enabled);
                ctx.rollout_default.set(std::time::Duration::ZERO);
            }
            _ => {}
        }
    }
}

/// The `http-protocol` a `config-network` map sets.
fn http_protocol(cm: &ConfigMap) -> HttpProtocol {
    let data = cm.data.as_ref();
    let Some(value) = data.and_then(|d| d.get("http-protocol").or_else(|| d.get("httpProtocol"))) else {
        return HttpProtocol::Enabled;
    };
    value.parse().unwrap_or_else(|e| {
        tracing::warn!(error = %e, "config-network: keeping plain HTTP enabled");
        HttpProtocol::Enabled
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn network(data: &[(&str, &str)]) -> ConfigMap {
        ConfigMap {
            data: Some(data.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()),
            ..Default::default()
        }
    }

    #[test]
    fn http_protocol_is_read_in_any_case_and_defaults_to_enabled() {
        assert_eq!(http_protocol(&network(&[])), HttpProtocol::Enabled);
        assert_eq!(http_protocol(&network(&[("http-protocol", "Redirected")])), HttpProtocol::Redirected);
        assert_eq!(http_protocol(&network(&[("httpProtocol", "disabled")])), HttpProtocol::Disabled);
        assert_eq!(http_protocol(&network(&[("http-protocol", "sometimes")])), HttpProtocol::Enabled);
    }
}
