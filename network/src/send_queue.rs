//! A peer's send queue, bounded in messages and in bytes.
//!
//! A count alone does not bound memory when messages range from a 100-byte vote to a
//! multi-megabyte batch: a slow peer's queue of 64 batches could hold 256 MiB. Each
//! queue therefore also counts the bytes it holds and refuses a message that would take
//! it over its byte limit, except into an empty queue, so that no message is refused
//! forever for its size alone (frames are bounded by their protocol anyway).
//!
//! Invariant: `bytes` is the sum of the lengths of the messages in the channel, raised
//! before a message enters and lowered when it leaves.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::mpsc;

pub(crate) type Message = Arc<Vec<u8>>;

/// Why a message was not queued.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Refused {
    Full,
    Closed,
}

pub(crate) struct QueueSender {
    tx: mpsc::Sender<Message>,
    bytes: Arc<AtomicUsize>,
    max_bytes: usize,
}

pub(crate) struct QueueReceiver {
    rx: mpsc::Receiver<Message>,
    bytes: Arc<AtomicUsize>,
}

/// A queue of at most `messages` messages and `max_bytes` bytes.
pub(crate) fn bounded(messages: usize, max_bytes: usize) -> (QueueSender, QueueReceiver) {
    let (tx, rx) = mpsc::channel(messages.max(1));
    let bytes = Arc::new(AtomicUsize::new(0));
    (
        QueueSender {
            tx,
            bytes: bytes.clone(),
            max_bytes,
        },
        QueueReceiver { rx, bytes },
    )
}

impl QueueSender {
    /// Queues `message` at once or refuses it; never waits.
    pub(crate) fn try_send(&self, message: Message) -> Result<(), Refused> {
        let len = message.len();
        let before = self.bytes.fetch_add(len, Ordering::AcqRel);
        if before > 0 && before + len > self.max_bytes {
            self.bytes.fetch_sub(len, Ordering::AcqRel);
            return Err(Refused::Full);
        }
        self.tx.try_send(message).map_err(|e| {
            self.bytes.fetch_sub(len, Ordering::AcqRel);
            match e {
                mpsc::error::TrySendError::Full(_) => Refused::Full,
                mpsc::error::TrySendError::Closed(_) => Refused::Closed,
            }
        })
    }
}

impl QueueReceiver {
    pub(crate) async fn recv(&mut self) -> Option<Message> {
        let message = self.rx.recv().await?;
        self.bytes.fetch_sub(message.len(), Ordering::AcqRel);
        Some(message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn bounded_by_count_and_by_bytes() {
        let (tx, mut rx) = bounded(3, 100);
        let m = |n: usize| Arc::new(vec![0u8; n]);
        assert_eq!(tx.try_send(m(500)), Ok(()), "an empty queue takes anything");
        assert_eq!(tx.try_send(m(1)), Err(Refused::Full), "over the byte limit");
        assert_eq!(rx.recv().await.map(|v| v.len()), Some(500));
        assert_eq!(tx.try_send(m(60)), Ok(()));
        assert_eq!(tx.try_send(m(40)), Ok(()));
        assert_eq!(tx.try_send(m(1)), Err(Refused::Full));
        rx.recv().await;
        assert_eq!(tx.try_send(m(1)), Ok(()));
        assert_eq!(tx.try_send(m(1)), Ok(()));
        assert_eq!(
            tx.try_send(m(1)),
            Err(Refused::Full),
            "over the count limit"
        );
        drop(rx);
        assert_eq!(tx.try_send(m(1)), Err(Refused::Closed));
    }
}
