//! The Event for a scaling decision: `Scaled from 1 to 3: Panic; concurrency stable 2.5,
//! panic 7.9, target 1 per instance`, and `ScaledToZero` when the revision goes to zero.

use k8s_openapi::api::core::v1::ObjectReference;
use sluice_api::RevisionKey;

use super::View;
use crate::events::{EventType, Note, component};

/// The note for a revision scaled from `from` to `view.desired` instances.
pub fn scaled(key: &RevisionKey, uid: &str, from: u32, view: &View) -> Note {
    let regarding = ObjectReference {
        api_version: Some("serving.knative.dev/v1".into()),
        kind: Some("Revision".into()),
        name: Some(key.name.clone()),
        namespace: Some(key.namespace.clone()),
        uid: Some(uid.to_string()),
        ..Default::default()
    };
    let reason = if view.desired == 0 { "ScaledToZero" } else { "Scaled" };
    let message = format!(
        "Scaled from {from} to {}: {}; {} stable {:.2}, panic {:.2}, target {} per instance",
        view.desired, view.reason, view.metric, view.stable, view.panic, view.target
    );
    Note::about(regarding, EventType::Normal, component::AUTOSCALER, "Scale", reason, message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::autoscale::ViewActivity;

    #[test]
    fn a_scaling_decision_says_from_what_to_what_and_why() {
        let view = View {
            desired: 3,
            activity: ViewActivity::Active,
            panicking: true,
            metric: "concurrency",
            stable: 2.5,
            panic: 7.94,
            target: 1.0,
            reason: "Panic".into(),
            initial_scale: 1,
        };
        let key = RevisionKey::new("default", "hello-00001");
        let note = scaled(&key, "u1", 1, &view);
        assert_eq!(note.reason, "Scaled");
        assert_eq!(
            note.message,
            "Scaled from 1 to 3: Panic; concurrency stable 2.50, panic 7.94, target 1 per instance"
        );
        assert_eq!(note.regarding.kind.as_deref(), Some("Revision"));
        let zero = scaled(&key, "u1", 1, &View { desired: 0, reason: "ScaledToZero".into(), ..view });
        assert_eq!(zero.reason, "ScaledToZero");
    }
}
