#![no_main]
//! The `eth_transaction` body of `ordo_node::fuzz_targets`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    ordo_node::fuzz_targets::run("eth_transaction", data);
});
