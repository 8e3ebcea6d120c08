//! Bulk CPU work of async tasks: signature checks run on the bulk-work pool
//! ([`ordo_types::bulk`]), whose threads run below consensus's priority and sleep when
//! idle, not on tokio's blocking threads, which run at normal priority beside the
//! consensus driver and the network.

use tokio::sync::oneshot;

/// Runs `work` on the verification pool and waits for its result; `None` if it panicked.
pub async fn verify<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    let (tx, rx) = oneshot::channel();
    ordo_types::bulk::spawn(move || {
        let _ = tx.send(work());
    });
    rx.await.ok()
}
