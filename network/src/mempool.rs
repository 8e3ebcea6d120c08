//! The mempool: accepted transactions waiting to be packed into batches.
//!
//! Invariants:
//! - Every transaction held has a verified signature, the chain's id, a nonce within
//!   `[account nonce, account nonce + window)` and an expiry in the future when accepted.
//! - No hash is held twice, and a hash handed to a batch is remembered (in a bounded
//!   window) so that a resubmission is a duplicate, not a second copy in another batch.
//! - Counts, bytes and per-sender counts never exceed their caps; a transaction that would
//!   exceed one is refused with [`Error::MempoolFull`].
//! - Transactions leave in arrival order; those found expired on the way out are dropped
//!   and reported.
//! - Per sender, the highest nonce accepted here is remembered after its transaction has
//!   left for a batch, until that transaction expires, for at most
//!   [`MAX_NONCE_RECORDS`] senders: [`Mempool::next_nonce`] answers a client that asks
//!   which nonce to sign next while the previous one is not executed yet.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use metrics::{counter, gauge};
use ordo_types::{Address, BoundedSet, ChainId, Hash32, SignedTransaction, MAX_TRANSACTION_BYTES};
use parking_lot::Mutex;
use rayon::prelude::*;
use tokio::sync::Notify;

use crate::error::{Error, MempoolCap};
use crate::verify::KeyCache;

/// How long the pool vouches for a nonce claimed by a transaction without an expiry (an
/// Ethereum one): ample for it to commit, short enough for a wallet to recover from one
/// that was included but not executed.
const PENDING_NONCE_MEMORY_MS: u64 = 120_000;

#[derive(Debug, Clone)]
pub struct MempoolConfig {
    pub chain_id: ChainId,
    pub max_transactions: usize,
    pub max_bytes: usize,
    pub max_per_sender: usize,
    /// How far above the account's next nonce a transaction may be.
    pub nonce_window: u64,
    /// How many batched hashes are remembered for deduplication.
    pub dedup_window: usize,
}

impl MempoolConfig {
    pub fn new(chain_id: ChainId) -> Self {
        MempoolConfig {
            chain_id,
            max_transactions: 200_000,
            max_bytes: 64 << 20,
            max_per_sender: 1024,
            nonce_window: 1024,
            dedup_window: 400_000,
        }
    }
}

/// How many senders' highest accepted nonces are remembered. A node rarely has more
/// senders with transactions in flight than this (about 4 MiB of records); beyond it a new
/// sender is not recorded and [`Mempool::next_nonce`] falls back to the executed nonce,
/// which costs a client that reads it at worst one retry, never a wrong state.
pub const MAX_NONCE_RECORDS: usize = 1 << 16;
/// How often, at most, expired nonce records are swept: a sweep walks every record.
const NONCE_SWEEP_EVERY_MS: u64 = 1_000;

/// The highest nonce a sender had accepted here, and when that transaction expires.
#[derive(Clone, Copy)]
struct NonceRecord {
    nonce: u64,
    expiry: u64,
}

struct Entry {
    tx: SignedTransaction,
    bytes: usize,
    arrival: Instant,
}

struct Inner {
    queue: VecDeque<Hash32>,
    entries: HashMap<Hash32, Entry>,
    per_sender: HashMap<Address, usize>,
    bytes: usize,
    /// Batched recently: refused as duplicates.
    batched: BoundedSet<Hash32>,
    /// Keyed by address, which is what clients ask about.
    nonces: HashMap<Address, NonceRecord>,
    nonces_swept_ms: u64,
}

/// Shared by the RPC (inserting) and the batch maker (taking).
pub struct Mempool {
    config: MempoolConfig,
    keys: KeyCache,
    inner: Mutex<Inner>,
    arrivals: Notify,
    /// When an insertion wakes [`Mempool::arrival`]'s waiter besides into an empty pool:
    /// the batch maker's cut size in transactions and in bytes, set by it.
    wake_at_txs: AtomicUsize,
    wake_at_bytes: AtomicUsize,
}

/// What [`Mempool::take`] hands out.
#[derive(Debug, Default)]
pub struct Taken {
    pub transactions: Vec<SignedTransaction>,
    /// Hashes of transactions dropped because they expired while waiting.
    pub expired: Vec<Hash32>,
}

fn publish_size(inner: &Inner) {
    gauge!("ordo_network_mempool_transactions").set(inner.entries.len() as f64);
    gauge!("ordo_network_mempool_bytes").set(inner.bytes as f64);
}

fn reject(reason: &'static str) {
    counter!("ordo_network_mempool_rejected_total", "reason" => reason).increment(1);
}

impl Mempool {
    pub fn new(config: MempoolConfig) -> Self {
        Mempool {
            keys: KeyCache::default(),
            inner: Mutex::new(Inner {
                queue: VecDeque::new(),
                entries: HashMap::new(),
                per_sender: HashMap::new(),
                bytes: 0,
                batched: BoundedSet::new(config.dedup_window),
                nonces: HashMap::new(),
                nonces_swept_ms: 0,
            }),
            config,
            arrivals: Notify::new(),
            wake_at_txs: AtomicUsize::new(usize::MAX),
            wake_at_bytes: AtomicUsize::new(usize::MAX),
        }
    }

    pub fn config(&self) -> &MempoolConfig {
        &self.config
    }

    /// Verifies the signature, then admits the transaction. `account_nonce` is the sender's
    /// next nonce in the latest state; `now_ms` is Unix time in milliseconds.
    pub fn insert(
        &self,
        tx: SignedTransaction,
        account_nonce: u64,
        now_ms: u64,
    ) -> Result<Hash32, Error> {
        if tx.verify().is_err() {
            reject("bad_signature");
            return Err(Error::BadSignature);
        }
        self.insert_verified(tx, account_nonce, now_ms)
    }

    /// Verifies all signatures in one batch (much cheaper per signature than one by one)
    /// and admits each transaction; `account_nonce` gives each sender's next nonce.
    pub fn insert_many(
        &self,
        txs: Vec<SignedTransaction>,
        account_nonce: impl Fn(&Address) -> u64,
        now_ms: u64,
    ) -> Vec<Result<Hash32, Error>> {
        // The cheap checks first: a flood of transactions the pool would refuse anyway
        // (full, duplicates, nonces out of the window) must not cost a signature check
        // each, which is what bounds how fast the node answers. Each transaction is hashed
        // and encoded once; the signature check and the admission reuse both.
        // Except for Ethereum transactions: their sender, which the nonce check needs, is
        // known only by recovering it (their signature check, about 33 µs). That runs on
        // all the pool's threads at once, for the right chain only, before the screening;
        // so a flood of Ethereum duplicates still costs a recovery each (README, gaps).
        if txs
            .iter()
            .any(|t| matches!(t, SignedTransaction::Ethereum(_)))
        {
            txs.par_iter().for_each(|t| {
                if let SignedTransaction::Ethereum(e) = t {
                    if e.chain_id() == self.config.chain_id {
                        let _ = e.sender();
                    }
                }
            });
        }
        let mut results: Vec<Option<Result<Hash32, Error>>> = Vec::with_capacity(txs.len());
        let mut screened = Vec::with_capacity(txs.len());
        for (i, tx) in txs.into_iter().enumerate() {
            // An Ethereum transaction's sender is known only by recovering it, which is its
            // signature check: a transaction for another chain is refused before that.
            if tx.chain_id() != self.config.chain_id {
                reject("wrong_chain");
                results.push(Some(Err(Error::WrongChain {
                    expected: self.config.chain_id,
                    got: tx.chain_id(),
                })));
                continue;
            }
            let nonce = account_nonce(&tx.sender_address());
            match self.screen(&tx, nonce, now_ms) {
                Ok((hash, bytes)) => {
                    results.push(None);
                    screened.push((i, tx, hash, bytes));
                }
                Err(e) => results.push(Some(Err(e))),
            }
        }
        let survivors: Vec<&SignedTransaction> = screened.iter().map(|(_, tx, _, _)| tx).collect();
        let hashes: Vec<Hash32> = screened.iter().map(|&(_, _, hash, _)| hash).collect();
        let bad: HashSet<usize> = match self.keys.verify_hashed(&survivors, &hashes) {
            Ok(()) => HashSet::new(),
            Err(ordo_types::Error::BadSignatures { bad, .. }) => bad.into_iter().collect(),
            Err(_) => (0..survivors.len()).collect(),
        };
        drop(survivors);
        let mut admitted = 0;
        let wake = {
            let mut inner = self.inner.lock();
            let was_empty = inner.entries.is_empty();
            for (k, (i, tx, hash, bytes)) in screened.into_iter().enumerate() {
                results[i] = Some(if bad.contains(&k) {
                    reject("bad_signature");
                    Err(Error::BadSignature)
                } else {
                    let admitted_one = self.admit(&mut inner, tx, hash, bytes, now_ms);
                    admitted += usize::from(admitted_one.is_ok());
                    admitted_one
                });
            }
            publish_size(&inner);
            admitted > 0 && (was_empty || self.fills_a_batch(&inner))
        };
        if wake {
            self.arrivals.notify_one();
        }
        results
            .into_iter()
            .map(|r| r.expect("every transaction has a result"))
            .collect()
    }

    /// Admits a transaction whose signature the caller has already verified.
    pub fn insert_verified(
        &self,
        tx: SignedTransaction,
        account_nonce: u64,
        now_ms: u64,
    ) -> Result<Hash32, Error> {
        let (hash, bytes) = self.screen(&tx, account_nonce, now_ms)?;
        let wake = {
            let mut inner = self.inner.lock();
            let was_empty = inner.entries.is_empty();
            self.admit(&mut inner, tx, hash, bytes, now_ms)?;
            publish_size(&inner);
            was_empty || self.fills_a_batch(&inner)
        };
        if wake {
            self.arrivals.notify_one();
        }
        Ok(hash)
    }

    /// Adds a screened, verified transaction, unless the pool changed since it was
    /// screened (without the lock held throughout) so that it now refuses it.
    fn admit(
        &self,
        inner: &mut Inner,
        tx: SignedTransaction,
        hash: Hash32,
        bytes: usize,
        now_ms: u64,
    ) -> Result<Hash32, Error> {
        let sender = tx.sender_address();
        if let Some(e) = self.refusal(inner, &hash, &sender, bytes) {
            return Err(e);
        }
        *inner.per_sender.entry(sender).or_default() += 1;
        // An Ethereum transaction never expires; the nonce it claims is remembered for a
        // while only, so that one included but not executed (a nonce already used by
        // then, say) does not leave `next_nonce` ahead of the account for good.
        let remember_until = tx
            .expiry()
            .min(now_ms.saturating_add(PENDING_NONCE_MEMORY_MS));
        Self::record_nonce(inner, sender, tx.nonce(), remember_until);
        inner.bytes += bytes;
        inner.queue.push_back(hash);
        inner.entries.insert(
            hash,
            Entry {
                tx,
                bytes,
                arrival: Instant::now(),
            },
        );
        Ok(hash)
    }

    fn record_nonce(inner: &mut Inner, address: Address, nonce: u64, expiry: u64) {
        let full = inner.nonces.len() >= MAX_NONCE_RECORDS;
        match inner.nonces.get_mut(&address) {
            Some(r) if nonce >= r.nonce => *r = NonceRecord { nonce, expiry },
            Some(_) => {}
            None if full => {}
            None => {
                inner.nonces.insert(address, NonceRecord { nonce, expiry });
            }
        }
    }

    /// The nonce `address` should sign next as far as this pool knows: one above the
    /// highest nonce it accepted from that sender whose transaction has not expired, if that
    /// is at least `account_nonce` (the sender's next nonce in the executed state);
    /// `None` when the pool knows nothing newer than the executed state.
    pub fn next_nonce(&self, address: &Address, account_nonce: u64, now_ms: u64) -> Option<u64> {
        let mut inner = self.inner.lock();
        let record = *inner.nonces.get(address)?;
        if record.expiry <= now_ms || record.nonce < account_nonce {
            // Executed or expired: the executed state answers from now on.
            inner.nonces.remove(address);
            return None;
        }
        Some(record.nonce.saturating_add(1))
    }

    /// Every check but the signature's, without changing anything: the transaction's hash
    /// and encoded size if the pool would take it now.
    fn screen(
        &self,
        tx: &SignedTransaction,
        account_nonce: u64,
        now_ms: u64,
    ) -> Result<(Hash32, usize), Error> {
        let c = &self.config;
        if tx.chain_id() != c.chain_id {
            reject("wrong_chain");
            return Err(Error::WrongChain {
                expected: c.chain_id,
                got: tx.chain_id(),
            });
        }
        if tx.expiry() <= now_ms {
            reject("expired");
            return Err(Error::Expired {
                expiry: tx.expiry(),
                now: now_ms,
            });
        }
        if tx.nonce() < account_nonce {
            reject("nonce_too_low");
            return Err(Error::NonceTooLow {
                nonce: tx.nonce(),
                next: account_nonce,
            });
        }
        if tx.nonce() - account_nonce >= c.nonce_window {
            reject("nonce_too_high");
            return Err(Error::NonceTooHigh {
                nonce: tx.nonce(),
                next: account_nonce,
                window: c.nonce_window,
            });
        }
        let bytes = tx.encode().len();
        if bytes > MAX_TRANSACTION_BYTES {
            reject("too_large");
            return Err(Error::TooLarge {
                len: bytes,
                max: MAX_TRANSACTION_BYTES,
            });
        }
        let hash = tx.hash();
        match self.refusal(&self.inner.lock(), &hash, &tx.sender_address(), bytes) {
            Some(e) => Err(e),
            None => Ok((hash, bytes)),
        }
    }

    /// Why the pool as it is refuses this transaction, if it does: already held, or full.
    fn refusal(
        &self,
        inner: &Inner,
        hash: &Hash32,
        sender: &Address,
        bytes: usize,
    ) -> Option<Error> {
        let c = &self.config;
        if inner.entries.contains_key(hash) || inner.batched.contains(hash) {
            reject("duplicate");
            return Some(Error::Duplicate(*hash));
        }
        let full = if inner.entries.len() >= c.max_transactions {
            Some(MempoolCap::Transactions)
        } else if inner.bytes + bytes > c.max_bytes {
            Some(MempoolCap::Bytes)
        } else if inner.per_sender.get(sender).copied().unwrap_or(0) >= c.max_per_sender {
            Some(MempoolCap::PerSender)
        } else {
            None
        };
        full.map(|cap| {
            reject("mempool_full");
            Error::MempoolFull(cap)
        })
    }

    /// Takes transactions in arrival order, up to `max_bytes` of encoded size, `max_txs`,
    /// and `max_gas` of EVM gas limits (what the block gas limit counts, so that a batch
    /// fits in a block). The first is taken whatever its gas: one above the bound would
    /// otherwise block the queue, and execution refuses it.
    pub fn take(&self, max_bytes: usize, max_txs: usize, max_gas: u64, now_ms: u64) -> Taken {
        let mut taken = Taken::default();
        let mut size = 0;
        let mut gas = 0u64;
        let now = Instant::now();
        let wait = metrics::histogram!("ordo_network_mempool_wait_seconds");
        let mut inner = self.inner.lock();
        let inner = &mut *inner;
        while let Some(hash) = inner.queue.front().copied() {
            let Some(entry) = inner.entries.get(&hash) else {
                inner.queue.pop_front();
                continue;
            };
            let expired = entry.tx.expiry() <= now_ms;
            let entry_gas = entry.tx.payload().gas_limit();
            let over_gas =
                !taken.transactions.is_empty() && gas.saturating_add(entry_gas) > max_gas;
            if !expired
                && (taken.transactions.len() >= max_txs
                    || size + entry.bytes > max_bytes
                    || over_gas)
            {
                break;
            }
            inner.queue.pop_front();
            let Some(entry) = inner.entries.remove(&hash) else {
                continue;
            };
            inner.bytes -= entry.bytes;
            let sender = entry.tx.sender_address();
            if let Some(n) = inner.per_sender.get_mut(&sender) {
                *n -= 1;
                if *n == 0 {
                    inner.per_sender.remove(&sender);
                }
            }
            if expired {
                taken.expired.push(hash);
                continue;
            }
            size += entry.bytes;
            gas = gas.saturating_add(entry_gas);
            // The mempool's share of a transaction's latency (README, latency by stage).
            wait.record(now.saturating_duration_since(entry.arrival).as_secs_f64());
            taken.transactions.push(entry.tx);
            inner.batched.insert(hash);
        }
        if !taken.expired.is_empty() {
            counter!("ordo_network_mempool_expired_total").increment(taken.expired.len() as u64);
        }
        if now_ms >= inner.nonces_swept_ms + NONCE_SWEEP_EVERY_MS {
            inner.nonces_swept_ms = now_ms;
            inner.nonces.retain(|_, r| r.expiry > now_ms);
        }
        publish_size(inner);
        taken
    }

    /// (transactions held, their encoded bytes, arrival time of the oldest).
    pub fn status(&self) -> (usize, usize, Option<Instant>) {
        let inner = self.inner.lock();
        let oldest = inner
            .queue
            .front()
            .and_then(|h| inner.entries.get(h))
            .map(|e| e.arrival);
        (inner.entries.len(), inner.bytes, oldest)
    }

    pub fn len(&self) -> usize {
        self.inner.lock().entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn contains(&self, hash: &Hash32) -> bool {
        self.inner.lock().entries.contains_key(hash)
    }

    /// The transaction `hash`, while the pool holds it.
    pub fn get(&self, hash: &Hash32) -> Option<SignedTransaction> {
        self.inner.lock().entries.get(hash).map(|e| e.tx.clone())
    }

    /// Resolves after an insertion into an empty pool, or one that leaves the pool at or
    /// above the cut size of [`Mempool::wake_at`] (at once if such an insertion came while
    /// nobody waited: one is remembered). Other insertions wake nobody: the batch maker,
    /// waiting for its oldest transaction's age, has no use for them, and a wake-up per
    /// submission cost a cross-thread wake each.
    pub async fn arrival(&self) {
        self.arrivals.notified().await
    }

    /// Insertions that bring the pool to `txs` transactions or `bytes` encoded bytes wake
    /// [`Mempool::arrival`]'s waiter too.
    pub fn wake_at(&self, txs: usize, bytes: usize) {
        self.wake_at_txs.store(txs, Ordering::Relaxed);
        self.wake_at_bytes.store(bytes, Ordering::Relaxed);
    }

    fn fills_a_batch(&self, inner: &Inner) -> bool {
        inner.entries.len() >= self.wake_at_txs.load(Ordering::Relaxed)
            || inner.bytes >= self.wake_at_bytes.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ordo_types::{Address, KeyPair, Payload, Transaction};

    const NOW: u64 = 1_000_000;

    fn tx(key: &KeyPair, nonce: u64, expiry: u64) -> SignedTransaction {
        Transaction {
            chain_id: 7,
            sender: key.public(),
            nonce,
            expiry,
            payload: Payload::Transfer {
                to: Address::default(),
                amount: 1,
            },
        }
        .sign(key)
    }

    #[test]
    fn a_batch_is_screened_before_its_signatures_are_checked() {
        let pool = Mempool::new(MempoolConfig {
            max_transactions: 2,
            ..MempoolConfig::new(7)
        });
        let keys: Vec<KeyPair> = (0..4u8).map(|i| KeyPair::from_seed([i + 1; 32])).collect();
        let mut batch: Vec<SignedTransaction> = keys.iter().map(|k| tx(k, 0, NOW + 10)).collect();
        // Only the third carries a bad signature; the fourth finds the pool full.
        batch[2].as_ordo_mut().unwrap().signature.0[0] ^= 1;
        let dup = batch[0].clone();
        batch.push(dup);
        let results = pool.insert_many(batch, |_| 0, NOW);
        assert!(results[0].is_ok() && results[1].is_ok());
        assert!(matches!(results[2], Err(Error::BadSignature)));
        assert!(matches!(
            results[3],
            Err(Error::MempoolFull(MempoolCap::Transactions))
        ));
        assert!(matches!(results[4], Err(Error::Duplicate(_))));
        // A full pool answers a flood of forged transactions without checking one: they
        // are refused as full, not as badly signed.
        let forged: Vec<SignedTransaction> = keys
            .iter()
            .map(|k| {
                let mut t = tx(k, 1, NOW + 10);
                t.as_ordo_mut().unwrap().signature.0[0] ^= 1;
                t
            })
            .collect();
        assert!(pool
            .insert_many(forged, |_| 1, NOW)
            .iter()
            .all(|r| matches!(r, Err(Error::MempoolFull(_)))));
    }

    /// The batch maker is woken by the first transaction into an empty pool and by the
    /// one that fills a batch, not by those in between.
    #[test]
    fn only_an_empty_pool_or_a_full_batch_wakes_the_batch_maker() {
        use futures::FutureExt;
        let pool = Mempool::new(MempoolConfig::new(7));
        pool.wake_at(3, usize::MAX);
        let keys: Vec<KeyPair> = (0..4u8).map(|i| KeyPair::from_seed([i + 1; 32])).collect();
        assert!(
            pool.arrival().now_or_never().is_none(),
            "nothing inserted yet"
        );
        pool.insert(tx(&keys[0], 0, NOW + 10), 0, NOW).unwrap();
        assert!(
            pool.arrival().now_or_never().is_some(),
            "into an empty pool"
        );
        pool.insert(tx(&keys[1], 0, NOW + 10), 0, NOW).unwrap();
        assert!(pool.arrival().now_or_never().is_none(), "one of two");
        let results = pool.insert_many(vec![tx(&keys[2], 0, NOW + 10)], |_| 0, NOW);
        assert!(results[0].is_ok());
        assert!(
            pool.arrival().now_or_never().is_some(),
            "the third fills a batch"
        );
        let taken = pool.take(usize::MAX, 3, u64::MAX, NOW);
        assert_eq!(taken.transactions.len(), 3);
        let results = pool.insert_many(vec![tx(&keys[3], 0, NOW + 10)], |_| 0, NOW);
        assert!(results[0].is_ok());
        assert!(pool.arrival().now_or_never().is_some(), "empty again");
        // The byte size counts too, through the single-transaction path as well.
        pool.wake_at(usize::MAX, 1);
        pool.insert(tx(&keys[0], 1, NOW + 10), 1, NOW).unwrap();
        assert!(
            pool.arrival().now_or_never().is_some(),
            "over the byte size"
        );
    }

    #[test]
    fn admits_in_window_and_refuses_with_specific_errors() {
        let pool = Mempool::new(MempoolConfig {
            nonce_window: 4,
            ..MempoolConfig::new(7)
        });
        let k = KeyPair::from_seed([1; 32]);
        pool.insert(tx(&k, 5, NOW + 10), 5, NOW).unwrap();
        assert!(matches!(
            pool.insert(tx(&k, 5, NOW + 10), 5, NOW),
            Err(Error::Duplicate(_))
        ));
        assert!(matches!(
            pool.insert(tx(&k, 4, NOW + 10), 5, NOW),
            Err(Error::NonceTooLow { .. })
        ));
        assert!(matches!(
            pool.insert(tx(&k, 9, NOW + 10), 5, NOW),
            Err(Error::NonceTooHigh { .. })
        ));
        assert!(matches!(
            pool.insert(tx(&k, 6, NOW), 5, NOW),
            Err(Error::Expired { .. })
        ));
        let other_chain = tx(&k, 6, NOW + 10);
        let mut other_chain = other_chain.as_ordo().unwrap().tx.clone();
        other_chain.chain_id = 8;
        let other_chain = other_chain.sign(&k);
        assert!(matches!(
            pool.insert(other_chain, 5, NOW),
            Err(Error::WrongChain { .. })
        ));
        let mut forged = tx(&k, 7, NOW + 10);
        forged.as_ordo_mut().unwrap().tx.nonce = 8;
        assert!(matches!(
            pool.insert(forged, 5, NOW),
            Err(Error::BadSignature)
        ));
        assert_eq!(pool.len(), 1);
    }

    #[test]
    fn caps_answer_mempool_full() {
        let pool = Mempool::new(MempoolConfig {
            max_transactions: 3,
            max_per_sender: 2,
            ..MempoolConfig::new(7)
        });
        let a = KeyPair::from_seed([1; 32]);
        let b = KeyPair::from_seed([2; 32]);
        pool.insert(tx(&a, 0, NOW + 10), 0, NOW).unwrap();
        pool.insert(tx(&a, 1, NOW + 10), 0, NOW).unwrap();
        assert!(matches!(
            pool.insert(tx(&a, 2, NOW + 10), 0, NOW),
            Err(Error::MempoolFull(MempoolCap::PerSender))
        ));
        pool.insert(tx(&b, 0, NOW + 10), 0, NOW).unwrap();
        assert!(matches!(
            pool.insert(tx(&b, 1, NOW + 10), 0, NOW),
            Err(Error::MempoolFull(MempoolCap::Transactions))
        ));

        let one = tx(&a, 0, NOW + 10).encode().len();
        let pool = Mempool::new(MempoolConfig {
            max_bytes: one * 2,
            ..MempoolConfig::new(7)
        });
        pool.insert(tx(&a, 0, NOW + 10), 0, NOW).unwrap();
        pool.insert(tx(&a, 1, NOW + 10), 0, NOW).unwrap();
        assert!(matches!(
            pool.insert(tx(&b, 0, NOW + 10), 0, NOW),
            Err(Error::MempoolFull(MempoolCap::Bytes))
        ));
    }

    #[test]
    fn take_stops_before_the_gas_bound_but_always_takes_one() {
        let pool = Mempool::new(MempoolConfig::new(7));
        let k = KeyPair::from_seed([1; 32]);
        let call = |nonce, gas_limit| {
            Transaction {
                chain_id: 7,
                sender: k.public(),
                nonce,
                expiry: NOW + 100,
                payload: Payload::Call {
                    to: Address::default(),
                    input: Vec::new(),
                    value: 0,
                    gas_limit,
                },
            }
            .sign(&k)
        };
        // 300 alone is above the bound of 250, 100 + 100 fit, the third 100 does not.
        for (nonce, gas) in [(0, 300), (1, 100), (2, 100), (3, 100)] {
            pool.insert(call(nonce, gas), 0, NOW).unwrap();
        }
        let nonces =
            |taken: Taken| -> Vec<u64> { taken.transactions.iter().map(|t| t.nonce()).collect() };
        assert_eq!(nonces(pool.take(usize::MAX, 10, 250, NOW)), vec![0]);
        assert_eq!(nonces(pool.take(usize::MAX, 10, 250, NOW)), vec![1, 2]);
        assert_eq!(nonces(pool.take(usize::MAX, 10, 250, NOW)), vec![3]);
    }

    #[test]
    fn take_respects_limits_order_and_reports_expired() {
        let pool = Mempool::new(MempoolConfig::new(7));
        let k = KeyPair::from_seed([1; 32]);
        let h0 = pool.insert(tx(&k, 0, NOW + 5), 0, NOW).unwrap();
        let h1 = pool.insert(tx(&k, 1, NOW + 100), 0, NOW).unwrap();
        let h2 = pool.insert(tx(&k, 2, NOW + 100), 0, NOW).unwrap();
        let taken = pool.take(usize::MAX, 1, u64::MAX, NOW + 10);
        assert_eq!(taken.expired, vec![h0]);
        assert_eq!(
            taken
                .transactions
                .iter()
                .map(|t| t.hash())
                .collect::<Vec<_>>(),
            vec![h1]
        );
        let taken = pool.take(usize::MAX, 10, u64::MAX, NOW + 10);
        assert_eq!(taken.transactions[0].hash(), h2);
        assert!(pool.is_empty());
        // Batched hashes stay duplicates; per-sender room is given back.
        assert!(matches!(
            pool.insert(tx(&k, 1, NOW + 100), 0, NOW),
            Err(Error::Duplicate(_))
        ));
        pool.insert(tx(&k, 3, NOW + 100), 0, NOW).unwrap();
    }

    #[test]
    fn next_nonce_counts_accepted_transactions_until_executed_or_expired() {
        let pool = Mempool::new(MempoolConfig::new(7));
        let k = KeyPair::from_seed([1; 32]);
        let other = KeyPair::from_seed([2; 32]).address();
        assert_eq!(pool.next_nonce(&k.address(), 0, NOW), None);
        pool.insert(tx(&k, 0, NOW + 100), 0, NOW).unwrap();
        pool.insert(tx(&k, 1, NOW + 50), 0, NOW).unwrap();
        assert_eq!(pool.next_nonce(&k.address(), 0, NOW), Some(2));
        assert_eq!(pool.next_nonce(&other, 0, NOW), None);
        // Still known once batched: the node has not executed them yet.
        assert_eq!(
            pool.take(usize::MAX, 10, u64::MAX, NOW).transactions.len(),
            2
        );
        assert_eq!(pool.next_nonce(&k.address(), 0, NOW), Some(2));
        assert_eq!(pool.next_nonce(&k.address(), 1, NOW), Some(2));
        // The executed state passed it: forgotten.
        assert_eq!(pool.next_nonce(&k.address(), 2, NOW), None);
        assert_eq!(pool.next_nonce(&k.address(), 0, NOW), None);
        // Its highest transaction expired: forgotten, whatever is left below it.
        pool.insert(tx(&k, 2, NOW + 10), 2, NOW).unwrap();
        assert_eq!(pool.next_nonce(&k.address(), 2, NOW + 9), Some(3));
        assert_eq!(pool.next_nonce(&k.address(), 2, NOW + 10), None);
        // A lower nonce accepted later does not lower the answer.
        pool.insert(tx(&k, 5, NOW + 100), 3, NOW).unwrap();
        pool.insert(tx(&k, 4, NOW + 100), 3, NOW).unwrap();
        assert_eq!(pool.next_nonce(&k.address(), 3, NOW), Some(6));
    }

    #[test]
    fn insert_many_names_the_bad_signature() {
        let pool = Mempool::new(MempoolConfig::new(7));
        let k = KeyPair::from_seed([1; 32]);
        let mut txs: Vec<_> = (0..4).map(|n| tx(&k, n, NOW + 10)).collect();
        txs[2].as_ordo_mut().unwrap().signature.0[0] ^= 1;
        let results = pool.insert_many(txs, |_| 0, NOW);
        assert!(results[0].is_ok() && results[1].is_ok() && results[3].is_ok());
        assert!(matches!(results[2], Err(Error::BadSignature)));
        assert_eq!(pool.len(), 3);
    }
}
