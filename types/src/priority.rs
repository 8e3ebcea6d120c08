//! Bulk work yields the cores to consensus.
//!
//! A validator's signature checks and block execution can use every core for as long as
//! the backlog lasts; consensus messages, the network and the RPC need little CPU but need
//! it at once, or a round times out. Threads that do bulk work therefore run at a lower
//! scheduling priority: under contention the kernel gives consensus its slice first, and
//! with nothing else to run, bulk work still gets every idle cycle.

/// The nice value of bulk-work threads. At 10, the Linux scheduler weighs such a thread at
/// about a tenth of a normal one (110 against 1024), enough that a vote is never stuck
/// behind a block's signature checks, and bulk work still runs whenever a core is idle.
pub const BULK_NICE: i32 = 10;

/// Lowers the calling thread's priority to [`BULK_NICE`] (Linux applies nice values per
/// thread), never raising it: a validator started at a lower priority still is. Elsewhere,
/// or if the kernel refuses, the thread keeps its priority: this is a scheduling hint,
/// never a condition for correctness.
pub fn lower_thread_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: gettid, getpriority and setpriority only read their integer arguments; no
    // memory is shared with the kernel.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        if libc::getpriority(libc::PRIO_PROCESS, tid) < BULK_NICE {
            libc::setpriority(libc::PRIO_PROCESS, tid, BULK_NICE);
        }
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn a_bulk_thread_runs_at_the_bulk_nice_value_and_others_do_not() {
        let nice = || {
            // SAFETY: as above.
            unsafe {
                let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
                libc::getpriority(libc::PRIO_PROCESS, tid)
            }
        };
        let before = std::thread::spawn(nice).join().unwrap();
        let bulk = std::thread::spawn(move || {
            lower_thread_priority();
            nice()
        })
        .join()
        .unwrap();
        assert_eq!(bulk, BULK_NICE.max(before));
        assert_eq!(std::thread::spawn(nice).join().unwrap(), before);
    }
}
