//! The bulk-work pool: one thread per core, below consensus's priority
//! ([`crate::lower_thread_priority`]), running the CPU-heavy jobs of async tasks
//! (signature checks of submitted and received batches) and sleeping when there are none.
//!
//! Why not rayon's global pool, which did this before: a rayon worker that runs out of
//! work yields the core a few dozen times before it sleeps, each yield a system call and
//! a context switch. With a job per batch (hundreds a second per validator) the workers
//! spent more time yielding than checking: 8.7% of all the CPU four validators used at
//! 50,000 payloads/s on 2 cores went to their `sched_yield` (perf), and every yield
//! competed with consensus for a core. These threads wait on a condition variable.
//!
//! Invariants: jobs start in the order submitted, each on one thread; a job that panics
//! is caught, its thread goes on, and the job's own result channel (dropped unsent) tells
//! its waiter; the pool starts with the first job and lives as long as the process. The
//! queue itself is not bounded: every caller bounds its jobs in flight (the RPC's request
//! permits, the dissemination layer's verification permits, the fetches in progress).

use std::collections::VecDeque;
use std::panic::AssertUnwindSafe;
use std::sync::{Condvar, Mutex, OnceLock};

type Job = Box<dyn FnOnce() + Send + 'static>;

struct Pool {
    queue: Mutex<VecDeque<Job>>,
    ready: Condvar,
}

static POOL: OnceLock<&'static Pool> = OnceLock::new();

fn pool() -> &'static Pool {
    POOL.get_or_init(|| {
        let threads = threads();
        let pool: &'static Pool = Box::leak(Box::new(Pool {
            queue: Mutex::new(VecDeque::new()),
            ready: Condvar::new(),
        }));
        for i in 0..threads {
            std::thread::Builder::new()
                .name(format!("ordo-bulk-{i}"))
                .spawn(move || worker(pool))
                .unwrap_or_else(|e| panic!("cannot start bulk-work thread {i}: {e}"));
        }
        pool
    })
}

fn worker(pool: &'static Pool) {
    crate::lower_thread_priority();
    loop {
        let job = {
            let mut queue = pool.queue.lock().unwrap_or_else(|e| e.into_inner());
            loop {
                if let Some(job) = queue.pop_front() {
                    break job;
                }
                queue = pool.ready.wait(queue).unwrap_or_else(|e| e.into_inner());
            }
        };
        // A panic ends the job, not the thread; its waiter sees its channel dropped.
        let _ = std::panic::catch_unwind(AssertUnwindSafe(job));
    }
}

/// Runs `job` on the pool, as soon as a thread is free.
pub fn spawn(job: impl FnOnce() + Send + 'static) {
    let pool = pool();
    pool.queue
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push_back(Box::new(job));
    pool.ready.notify_one();
}

/// The pool's threads: one per core (read without starting the pool).
pub fn threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;

    use super::*;

    #[test]
    fn jobs_run_and_panicking_jobs_leave_the_pool_working() {
        // As many panics as threads: were a panic to end its thread, none would be left.
        for _ in 0..threads() {
            spawn(|| panic!("a job's bug"));
        }
        let (tx, rx) = mpsc::channel();
        for i in 0..100u32 {
            let tx = tx.clone();
            spawn(move || tx.send(i).unwrap());
        }
        let mut got: Vec<u32> = (0..100)
            .map(|_| {
                rx.recv_timeout(std::time::Duration::from_secs(30))
                    .expect("every job runs")
            })
            .collect();
        got.sort_unstable();
        assert_eq!(got, (0..100).collect::<Vec<_>>());
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn jobs_run_below_consensus_priority() {
        let (tx, rx) = mpsc::channel();
        spawn(move || {
            // SAFETY: gettid and getpriority only read their integer arguments.
            let nice = unsafe {
                let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
                libc::getpriority(libc::PRIO_PROCESS, tid)
            };
            tx.send(nice).unwrap();
        });
        let nice = rx
            .recv_timeout(std::time::Duration::from_secs(30))
            .expect("the job runs");
        assert!(nice >= crate::BULK_NICE);
    }
}
