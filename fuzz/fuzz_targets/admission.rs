//! Manifest admission: any bytes, as JSON, through every kind's decode, defaults and
//! validation. Must answer Ok or a precise error, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_api::Kind;
use sluice_api::admission::{Operation, admit};

fuzz_target!(|data: &[u8]| {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else { return };
    for kind in Kind::ALL {
        let _ = admit(kind, Operation::Create, None, value.clone());
        let _ = admit(kind, Operation::Update, Some(&value), value.clone());
    }
});
