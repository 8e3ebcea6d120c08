//! The batch store: verified batches by digest, within byte and count bounds.
//!
//! Invariant: a batch is in the store only once every signature in it has been verified by
//! this validator (or it is this validator's own batch, made of transactions its mempool
//! verified). So presence in the store is the record of "verified here", and a batch seen
//! again is never verified twice. An acknowledgement promises to keep the batch, so a full
//! store refuses new batches (no acknowledgement) instead of evicting acknowledged ones;
//! the node removes batches once they are committed and persisted elsewhere. Each author
//! may use at most its share of the bytes, so one validator cannot crowd out the others.
//!
//! Waiting for a batch ([`BatchStore::wait_for`]) registers under the store's lock, so no
//! insert is missed, and an insert wakes only its own digest's waiters: a lagging
//! validator may wait on a thousand digests of one proposal while hundreds of batches a
//! second arrive, and waking every waiter at every insert cost each of them a turn on
//! this lock.

use std::collections::HashMap;
use std::sync::Arc;

use metrics::gauge;
use ordo_types::{Hash32, PublicKey};
use parking_lot::Mutex;
use tokio::sync::oneshot;

use crate::batch::{Batch, BatchInfo};
use crate::error::Error;

#[derive(Debug, Clone)]
pub struct BatchStoreConfig {
    pub max_bytes: usize,
    pub max_batches: usize,
    /// Bytes any one author's batches may take; at least a whole batch.
    pub max_bytes_per_author: usize,
}

impl Default for BatchStoreConfig {
    fn default() -> Self {
        BatchStoreConfig {
            max_bytes: 1 << 30,
            max_batches: 100_000,
            max_bytes_per_author: 512 << 20,
        }
    }
}

#[derive(Default)]
struct Inner {
    batches: HashMap<Hash32, (BatchInfo, Arc<Batch>)>,
    bytes: usize,
    per_author: HashMap<PublicKey, usize>,
    /// Who waits for which digest not stored yet.
    waiters: HashMap<Hash32, Vec<oneshot::Sender<()>>>,
}

pub struct BatchStore {
    config: BatchStoreConfig,
    inner: Mutex<Inner>,
}

impl BatchStore {
    pub fn new(config: BatchStoreConfig) -> Self {
        BatchStore {
            config,
            inner: Mutex::new(Inner::default()),
        }
    }

    /// Stores a verified batch; `Ok(false)` if it was already there.
    pub fn insert(&self, info: BatchInfo, batch: Arc<Batch>) -> Result<bool, Error> {
        self.insert_bounded(info, batch, true)
    }

    /// Stores one of this validator's own batches, whatever the bounds: they are for what
    /// peers push, while own batches are already bounded by the unproven-batch permits,
    /// and refusing one would drop the transactions it took from the mempool and leave a
    /// gap in the author's sequence numbers.
    pub fn insert_own(&self, info: BatchInfo, batch: Arc<Batch>) -> bool {
        matches!(self.insert_bounded(info, batch, false), Ok(true))
    }

    fn insert_bounded(
        &self,
        info: BatchInfo,
        batch: Arc<Batch>,
        bounded: bool,
    ) -> Result<bool, Error> {
        let bytes = info.bytes as usize;
        {
            let mut inner = self.inner.lock();
            if inner.batches.contains_key(&info.digest) {
                return Ok(false);
            }
            let author_bytes = inner.per_author.get(&info.author).copied().unwrap_or(0);
            let refusal = if !bounded {
                None
            } else if inner.batches.len() >= self.config.max_batches {
                Some(format!("{} batches", inner.batches.len()))
            } else if inner.bytes + bytes > self.config.max_bytes {
                Some(format!("{} bytes", inner.bytes))
            } else if author_bytes + bytes > self.config.max_bytes_per_author {
                Some(format!(
                    "author {} over its share",
                    info.author.address().short()
                ))
            } else {
                None
            };
            if let Some(why) = refusal {
                return Err(Error::StoreFull(why));
            }
            inner.bytes += bytes;
            *inner.per_author.entry(info.author).or_default() += bytes;
            inner.batches.insert(info.digest, (info, batch));
            gauge!("ordo_network_batch_store_bytes").set(inner.bytes as f64);
            gauge!("ordo_network_batch_store_batches").set(inner.batches.len() as f64);
            for waiter in inner.waiters.remove(&info.digest).unwrap_or_default() {
                let _ = waiter.send(());
            }
        }
        Ok(true)
    }

    pub fn get(&self, digest: &Hash32) -> Option<Arc<Batch>> {
        self.inner
            .lock()
            .batches
            .get(digest)
            .map(|(_, b)| b.clone())
    }

    pub fn info(&self, digest: &Hash32) -> Option<BatchInfo> {
        self.inner.lock().batches.get(digest).map(|(i, _)| *i)
    }

    pub fn contains(&self, digest: &Hash32) -> bool {
        self.inner.lock().batches.contains_key(digest)
    }

    /// Drops batches that are no longer needed (committed and persisted).
    pub fn remove(&self, digests: &[Hash32]) {
        let mut inner = self.inner.lock();
        for d in digests {
            if let Some((info, _)) = inner.batches.remove(d) {
                inner.bytes -= info.bytes as usize;
                if let Some(n) = inner.per_author.get_mut(&info.author) {
                    *n -= info.bytes as usize;
                }
            }
        }
        gauge!("ordo_network_batch_store_bytes").set(inner.bytes as f64);
        gauge!("ordo_network_batch_store_batches").set(inner.batches.len() as f64);
    }

    pub fn len(&self) -> usize {
        self.inner.lock().batches.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Waits until `digest` is stored or `within` passes; true if stored.
    pub async fn wait_for(&self, digest: &Hash32, within: std::time::Duration) -> bool {
        let stored = {
            let mut inner = self.inner.lock();
            if inner.batches.contains_key(digest) {
                return true;
            }
            let (tx, rx) = oneshot::channel();
            inner.waiters.entry(*digest).or_default().push(tx);
            rx
        };
        let mut waiting = Waiting {
            store: self,
            digest: *digest,
            stored,
        };
        let woken = matches!(
            tokio::time::timeout(within, &mut waiting.stored).await,
            Ok(Ok(()))
        );
        drop(waiting);
        woken || self.contains(digest)
    }

    #[cfg(test)]
    fn waiting(&self) -> usize {
        self.inner.lock().waiters.values().map(Vec::len).sum()
    }
}

/// A wait in progress: however it ends (stored, timed out, or dropped), the waits given
/// up on its digest leave the store.
struct Waiting<'s> {
    store: &'s BatchStore,
    digest: Hash32,
    stored: oneshot::Receiver<()>,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.stored.close();
        let mut inner = self.store.inner.lock();
        if let Some(waiters) = inner.waiters.get_mut(&self.digest) {
            waiters.retain(|w| !w.is_closed());
            if waiters.is_empty() {
                inner.waiters.remove(&self.digest);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::BatchBody;
    use ordo_types::KeyPair;

    fn batch(author: u8, seq: u64, payload: usize) -> (BatchInfo, Arc<Batch>) {
        let b = Batch {
            author: KeyPair::from_seed([author; 32]).public(),
            seq,
            body: BatchBody::Opaque(vec![vec![0; payload]]),
        };
        (b.info(), Arc::new(b))
    }

    #[test]
    fn bounds_refuse_instead_of_evicting() {
        let (i1, b1) = batch(1, 0, 100);
        let size = i1.bytes as usize;
        let store = BatchStore::new(BatchStoreConfig {
            max_bytes: size * 3,
            max_batches: 10,
            max_bytes_per_author: size * 2,
        });
        assert!(store.insert(i1, b1.clone()).unwrap());
        assert!(!store.insert(i1, b1).unwrap());
        let (i2, b2) = batch(1, 1, 100);
        store.insert(i2, b2).unwrap();
        let (i3, b3) = batch(1, 2, 100);
        assert!(matches!(
            store.insert(i3, b3.clone()),
            Err(Error::StoreFull(_))
        ));
        let (i4, b4) = batch(2, 0, 100);
        store.insert(i4, b4).unwrap();
        let (i5, b5) = batch(3, 0, 100);
        assert!(matches!(
            store.insert(i5, b5.clone()),
            Err(Error::StoreFull(_))
        ));
        assert!(store.contains(&i1.digest));
        store.remove(&[i1.digest]);
        store.insert(i3, b3).unwrap();
        assert_eq!(store.len(), 3);
        // The validator's own batches are never refused: the permits bound them.
        assert!(store.insert_own(i5, b5));
        assert_eq!(store.len(), 4);
    }

    #[tokio::test]
    async fn a_wait_ends_when_its_own_digest_is_stored_and_leaves_nothing_behind() {
        use std::time::Duration;
        let store = Arc::new(BatchStore::new(BatchStoreConfig::default()));
        let (wanted, wanted_batch) = batch(1, 1, 10);
        let (other, other_batch) = batch(1, 2, 10);
        let waiters: Vec<_> = (0..2)
            .map(|_| {
                let store = store.clone();
                tokio::spawn(async move {
                    store
                        .wait_for(&wanted.digest, Duration::from_secs(10))
                        .await
                })
            })
            .collect();
        while store.waiting() < 2 {
            tokio::task::yield_now().await;
        }
        store.insert(other, other_batch).unwrap();
        tokio::task::yield_now().await;
        assert_eq!(store.waiting(), 2, "another digest woke nobody");
        store.insert(wanted, wanted_batch).unwrap();
        for w in waiters {
            assert!(w.await.unwrap());
        }
        assert_eq!(store.waiting(), 0);
        // Stored already: no wait at all.
        assert!(store.wait_for(&wanted.digest, Duration::ZERO).await);
    }

    #[tokio::test]
    async fn a_wait_given_up_leaves_nothing_behind() {
        use std::time::Duration;
        let store = BatchStore::new(BatchStoreConfig::default());
        let (info, _) = batch(1, 1, 10);
        assert!(!store.wait_for(&info.digest, Duration::from_millis(1)).await);
        assert_eq!(store.waiting(), 0, "timed out");
        let abandoned = store.wait_for(&info.digest, Duration::from_secs(10));
        tokio::select! {
            biased;
            _ = abandoned => unreachable!("nothing is stored"),
            _ = tokio::task::yield_now() => {}
        }
        assert_eq!(store.waiting(), 0, "dropped while waiting");
    }
}
