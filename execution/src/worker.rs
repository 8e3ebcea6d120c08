//! What every Block-STM worker thread shares, whichever engine it runs: a guard that stops
//! the other workers if this one panics, and the back-off of a worker with nothing to do.

use std::sync::atomic::{AtomicBool, Ordering};

/// Marks an engine aborted if the worker holding it unwinds (rayon re-raises the panic),
/// so that the other workers stop instead of waiting forever for its transactions.
pub(crate) struct AbortOnUnwind<'e>(pub &'e AtomicBool);

impl Drop for AbortOnUnwind<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.store(true, Ordering::SeqCst);
        }
    }
}

/// How an idle worker waits for another to publish: it spins briefly, then gives the core
/// away, which matters when the machine has fewer free cores than workers.
#[derive(Default)]
pub(crate) struct Idle {
    spins: u32,
}

impl Idle {
    /// The worker found work.
    pub(crate) fn reset(&mut self) {
        self.spins = 0;
    }

    /// The worker found none: wait a little longer each time.
    pub(crate) fn wait(&mut self) {
        self.spins += 1;
        if self.spins < 64 {
            std::hint::spin_loop();
        } else if self.spins < 256 {
            std::thread::yield_now();
        } else {
            std::thread::sleep(std::time::Duration::from_micros(20));
        }
    }
}
