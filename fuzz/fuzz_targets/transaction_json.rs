#![no_main]
//! The `transaction_json` body of `ordo_node::fuzz_targets`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    ordo_node::fuzz_targets::run("transaction_json", data);
});
