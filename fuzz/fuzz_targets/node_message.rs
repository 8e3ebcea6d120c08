#![no_main]
//! The `node_message` body of `ordo_node::fuzz_targets`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    ordo_node::fuzz_targets::run("node_message", data);
});
