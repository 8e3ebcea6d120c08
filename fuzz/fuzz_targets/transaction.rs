#![no_main]
//! The `transaction` body of `ordo_node::fuzz_targets`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    ordo_node::fuzz_targets::run("transaction", data);
});
