//! Patches: any JSON document pair (target, patch), split at the first NUL byte, through every
//! patch format. Must apply or refuse within the patch bounds, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_apiserver::patch::{PatchKind, apply};

fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(2, |b| *b == 0);
    let (Some(target), Some(patch)) = (parts.next(), parts.next()) else { return };
    let (Ok(target), Ok(patch)) =
        (serde_json::from_slice::<serde_json::Value>(target), serde_json::from_slice::<serde_json::Value>(patch))
    else {
        return;
    };
    for kind in [PatchKind::Merge, PatchKind::Json, PatchKind::Strategic, PatchKind::Apply] {
        let _ = apply(kind, &target, &patch);
    }
});
