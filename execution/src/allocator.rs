//! How Ordo's binaries configure mimalloc, their global allocator.
//!
//! Each block allocates and frees tens of megabytes (version lists, per-key maps, write
//! sets), much of it freed on another thread than the one that allocated it. By default
//! mimalloc gives freed pages back to the system with `MADV_DONTNEED` (a *decommit*), so
//! the next block's first touch of each page faults and the kernel zeroes it again: with
//! transparent huge pages, 2 MiB at a time. perf showed that zeroing at 5% of the
//! contract engine's time (`exec-bench erc20` at 1,000 accounts, 2 threads) and under 2%
//! of the in-order loop's. Purging with `MADV_FREE` instead (*reset*) leaves the pages
//! mapped until the system needs the memory: resident memory stays near its peak while
//! nothing else wants it, and the kernel still takes pages back under pressure.

use std::ffi::c_long;

/// mimalloc's `mi_option_purge_decommits` (its option enum's sixth entry in both the v2
/// and v3 headers that libmimalloc-sys builds; the Rust bindings do not name it).
const MI_OPTION_PURGE_DECOMMITS: libmimalloc_sys::mi_option_t = 5;

/// The environment variables through which an operator sets the same option (its name,
/// and its name before mimalloc 2.1; mimalloc ignores their case): when one is set, their
/// choice stands.
const PURGE_DECOMMITS_ENV: [&str; 2] = ["MIMALLOC_PURGE_DECOMMITS", "MIMALLOC_RESET_DECOMMITS"];

/// Purge freed pages with `MADV_FREE` rather than decommitting them (see the module
/// note). Call first thing in `main`, before any thread starts (mimalloc's option setter
/// is not thread-safe), in a binary whose global allocator is mimalloc.
pub fn keep_freed_pages_mapped() {
    let set_by_operator = std::env::vars_os().any(|(name, _)| {
        PURGE_DECOMMITS_ENV
            .iter()
            .any(|option| name.eq_ignore_ascii_case(option))
    });
    if set_by_operator {
        return;
    }
    // SAFETY: stores one option value; the caller runs before any other thread exists.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DECOMMITS, 0 as c_long) };
}
