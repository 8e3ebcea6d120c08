#![no_main]
//! The `genesis_toml` body of `ordo_node::fuzz_targets`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    ordo_node::fuzz_targets::run("genesis_toml", data);
});
