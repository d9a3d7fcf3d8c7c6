use http::{HeaderMap, HeaderValue};
use rand::RngCore;

use super::*;

/// The spec's example.
const VALID: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

fn headers(pairs: &[(&HeaderName, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (name, value) in pairs {
        h.append(*name, HeaderValue::from_str(value).expect("value"));
    }
    h
}

/// Plays back the given words, then counts up from 1.
struct Script(Vec<u64>, u64);

impl RngCore for Script {
    fn next_u32(&mut self) -> u32 {
        self.next_u64() as u32
    }
    fn next_u64(&mut self) -> u64 {
        if self.0.is_empty() {
            self.1 += 1;
            return self.1;
        }
        self.0.remove(0)
    }
    fn fill_bytes(&mut self, dst: &mut [u8]) {
        rand::rand_core::impls::fill_bytes_via_next(self, dst);
    }
}

#[test]
fn the_specs_example_parses_to_its_trace_id() {
    let id = parse(VALID.as_bytes()).expect("valid");
    assert_eq!(id.to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(id.get(), 0x4bf92f3577b34da6a3ce929d0e0e4736);
    let parent = parse_parent(VALID.as_bytes()).expect("valid");
    assert_eq!((parent.trace_id, parent.parent_id, parent.flags), (id, 0x00f067aa0ba902b7, 1));
    let h = headers(&[(&TRACEPARENT, VALID)]);
    assert_eq!(sent_parent(&h), Some(parent));
    // Any flags, sampled or not.
    assert!(parse(VALID.replace("-01", "-00").as_bytes()).is_some());
    assert!(parse(VALID.replace("-01", "-ff").as_bytes()).is_some());
}

#[test]
fn invalid_values_are_refused_by_the_specs_rules() {
    let cases = [
        ("", "empty"),
        (&VALID[..54], "one short"),
        (&format!("{VALID}0")[..], "version 00 one long"),
        (&format!("{VALID}-x")[..], "version 00 extended"),
        (&VALID.replacen("00", "ff", 1)[..], "version ff"),
        (&VALID.replacen("00", "0g", 1)[..], "version not hex"),
        (&VALID.replace("4bf9", "4BF9")[..], "upper-case trace id"),
        (&VALID.replace("4bf9", "4bz9")[..], "non-hex trace id"),
        (&VALID.replace("00f0", "00F0")[..], "upper-case parent id"),
        (&VALID.replace("-01", "-0x")[..], "non-hex flags"),
        (&VALID.replace("-01", "-1")[..], "short flags"),
        ("00-00000000000000000000000000000000-00f067aa0ba902b7-01", "zero trace id"),
        ("00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", "zero parent id"),
        ("00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "wrong separator"),
        ("00-4bf92f3577b34da6a3ce929d0e0e473-600f067aa0ba902b7-01", "dash misplaced"),
        ("00-+bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "sign in the trace id"),
        (&format!(" {}", &VALID[..54])[..], "leading space"),
    ];
    for (value, why) in cases {
        assert_eq!(parse(value.as_bytes()), None, "{why}: {value:?}");
    }
}

#[test]
fn a_later_version_is_read_where_version_00_has_its_fields() {
    let later = VALID.replacen("00", "cc", 1);
    assert!(parse(later.as_bytes()).is_some(), "same length");
    assert!(parse(format!("{later}-what-the-future-will-be-like").as_bytes()).is_some());
    assert_eq!(parse(format!("{later}what").as_bytes()), None, "flags not followed by a dash");
}

#[test]
fn a_valid_traceparent_and_its_tracestate_are_kept() {
    let mut h = headers(&[(&TRACEPARENT, VALID), (&TRACESTATE, "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE")]);
    let before = h.clone();
    for generate in [true, false] {
        let id = ensure(&mut h, generate).expect("valid");
        assert_eq!(id.to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(h, before, "untouched");
    }
}

#[test]
fn none_or_an_invalid_one_is_replaced_by_a_generated_one_without_tracestate() {
    let zero = VALID.replace("4bf92f3577b34da6a3ce929d0e0e4736", &"0".repeat(32));
    let cases = [
        headers(&[]),
        headers(&[(&TRACESTATE, "rojo=00f067aa0ba902b7")]),
        headers(&[(&TRACEPARENT, &zero), (&TRACESTATE, "rojo=00f067aa0ba902b7")]),
        // Two are one too many, even when both are valid.
        headers(&[(&TRACEPARENT, VALID), (&TRACEPARENT, VALID)]),
    ];
    for mut h in cases {
        let id = ensure(&mut h, true).expect("generated");
        let sent: Vec<_> = h.get_all(&TRACEPARENT).iter().collect();
        assert_eq!(sent.len(), 1, "{h:?}");
        let value = sent[0].to_str().expect("ascii");
        assert_eq!(parse(value.as_bytes()), Some(id), "{value}");
        assert!(value.starts_with("00-") && value.ends_with("-01"), "{value}");
        assert_ne!(id.to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert!(h.get(&TRACESTATE).is_none(), "{h:?}");
    }
}

#[test]
fn with_generation_off_nothing_is_added_or_replaced() {
    let zero = VALID.replace("00f067aa0ba902b7", &"0".repeat(16));
    for pairs in [vec![], vec![(&TRACEPARENT, zero.as_str()), (&TRACESTATE, "a=b")]] {
        let mut h = headers(&pairs);
        let before = h.clone();
        assert_eq!(ensure(&mut h, false), None);
        assert_eq!(h, before);
    }
}

#[test]
fn generated_ids_are_random_and_never_zero() {
    // A trace id of zero (two zero words), then a parent id of zero, are drawn again (rand
    // makes a u128 of two words, the first one low).
    let (value, id) = generate_traceparent(&mut Script(vec![0, 0, 7, 9, 0], 0));
    assert_eq!(value, "00-00000000000000090000000000000007-0000000000000001-01");
    assert_eq!(id.get(), (9 << 64) | 7);
    // Every hex digit, in place, and the value parses back to the id.
    let (value, id) =
        generate_traceparent(&mut Script(vec![0xfedc_ba98_7654_3210, 0x0123_4567_89ab_cdef, 0xa0b1_c2d3_e4f5_0617], 0));
    assert_eq!(value, "00-0123456789abcdeffedcba9876543210-a0b1c2d3e4f50617-01");
    assert_eq!(parse(value.as_bytes()), Some(id));
    let mut rng = rand::rng();
    let ids: std::collections::HashSet<_> = (0..1000).map(|_| generate_traceparent(&mut rng).1).collect();
    assert_eq!(ids.len(), 1000);
}
