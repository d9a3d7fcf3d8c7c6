//! The Kubernetes protobuf envelope decoder (`kubectl create` bodies): any bytes decode to an
//! object or a precise error, never a panic or an unbounded allocation. The input is tried as
//! it is and behind the envelope's magic number, so the fuzzer reaches the field decoding
//! without having to guess the prefix.
#![no_main]

use libfuzzer_sys::fuzz_target;

/// The envelope's magic number, as `kubectl` sends it.
const MAGIC: &[u8] = b"k8s\0";

fuzz_target!(|data: &[u8]| {
    let _ = sluice_apiserver::protobuf::decode(data);
    let mut enveloped = MAGIC.to_vec();
    enveloped.extend_from_slice(data);
    let _ = sluice_apiserver::protobuf::decode(&enveloped);
});
