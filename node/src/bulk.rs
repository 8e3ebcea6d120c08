//! Bulk CPU work of async tasks: signature checks run on the global rayon pool, whose
//! threads `ordo run` starts below consensus's priority (`ordo_types::lower_thread_priority`),
//! not on tokio's blocking threads, which run at normal priority beside the consensus
//! driver and the network.

use tokio::sync::oneshot;

/// Runs `work` on the verification pool and waits for its result; `None` if it panicked.
pub async fn verify<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    let (tx, rx) = oneshot::channel();
    rayon::spawn(move || {
        let _ = tx.send(work());
    });
    rx.await.ok()
}
