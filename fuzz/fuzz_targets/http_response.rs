#![no_main]
//! The `http_response` body of `ordo_cli::fuzz_targets`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    ordo_cli::fuzz_targets::run("http_response", data);
});
