//! Label and field selectors: any text is parsed or refused, and a parsed selector can be
//! evaluated, never a panic.
#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use sluice_apiserver::selector::{FieldSelector, LabelSelector};

fuzz_target!(|text: &str| {
    if let Ok(selector) = LabelSelector::parse(text) {
        let labels: BTreeMap<String, String> = [("app".to_string(), "web".to_string())].into();
        let _ = selector.matches(&labels);
    }
    if let Ok(selector) = FieldSelector::parse(text) {
        let _ = selector.matches(&serde_json::json!({"metadata": {"name": "a", "namespace": "b"}}));
    }
});
