//! Signature checks of transactions in batches, with decompressed sender keys cached.
//!
//! Validity is exactly that of [`SignedTransaction::verify_many`]: the same cofactored
//! batch equation of ed25519-dalek, keys of small order rejected, and on any failure the
//! verdict comes from `verify_many` itself. Only the decompression of each sender's key is
//! saved (about a quarter of a batch check), which pays because active accounts send
//! again and again. Ethereum transactions in a batch are checked by recovering their
//! senders (each copy remembers its sender, so execution does not recover it again).

use std::collections::HashMap;

use ed25519_dalek::VerifyingKey;
use ordo_types::{Hash32, OrdoTransaction, PublicKey, SignedTransaction};
use parking_lot::Mutex;

/// Keys remembered at most; the cache starts over when full (cheap, and hot keys return).
const MAX_CACHED_KEYS: usize = 200_000;

#[derive(Default)]
pub(crate) struct KeyCache {
    keys: Mutex<HashMap<PublicKey, VerifyingKey>>,
}

impl KeyCache {
    /// The sender keys of `txs`, or `None` if any is not a valid, non-weak point.
    fn keys<'a>(
        &self,
        txs: impl ExactSizeIterator<Item = &'a OrdoTransaction> + Clone,
    ) -> Option<Vec<VerifyingKey>> {
        let mut found: Vec<Option<VerifyingKey>> = {
            let cache = self.keys.lock();
            txs.clone()
                .map(|t| cache.get(&t.tx.sender).copied())
                .collect()
        };
        let mut fresh = Vec::new();
        for (slot, t) in found.iter_mut().zip(txs) {
            if slot.is_none() {
                let pk = t.tx.sender;
                let key = VerifyingKey::from_bytes(&pk.0)
                    .ok()
                    .filter(|k| !k.is_weak())?;
                *slot = Some(key);
                fresh.push((pk, key));
            }
        }
        if !fresh.is_empty() {
            let mut cache = self.keys.lock();
            if cache.len() + fresh.len() > MAX_CACHED_KEYS {
                cache.clear();
            }
            cache.extend(fresh);
        }
        found.into_iter().collect()
    }

    /// Verifies every signature of `txs`; same verdict as `SignedTransaction::verify_many`.
    pub(crate) fn verify_many(&self, txs: &[SignedTransaction]) -> ordo_types::Result<()> {
        let hashes: Vec<Hash32> = txs.iter().map(SignedTransaction::hash).collect();
        self.check(txs.iter(), &hashes)
    }

    /// [`KeyCache::verify_many`] for callers that hold the transactions' hashes already:
    /// `hashes[i]` must be `txs[i].hash()`.
    pub(crate) fn verify_hashed(
        &self,
        txs: &[&SignedTransaction],
        hashes: &[Hash32],
    ) -> ordo_types::Result<()> {
        debug_assert_eq!(txs.len(), hashes.len());
        self.check(txs.iter().copied(), hashes)
    }

    fn check<'a>(
        &self,
        txs: impl ExactSizeIterator<Item = &'a SignedTransaction> + Clone,
        hashes: &[Hash32],
    ) -> ordo_types::Result<()> {
        if txs.len() == 0 {
            return Ok(());
        }
        let (ordo, ordo_hashes): (Vec<&OrdoTransaction>, Vec<&Hash32>) = txs
            .clone()
            .zip(hashes)
            .filter_map(|(t, h)| t.as_ordo().map(|o| (o, h)))
            .unzip();
        let ethereum_ok = txs.clone().all(|t| match t {
            SignedTransaction::Ethereum(e) => e.sender().is_ok(),
            SignedTransaction::Ordo(_) => true,
        });
        if !ethereum_ok {
            // The slow path below names every bad index.
        } else if ordo.is_empty() {
            return Ok(());
        } else if let Some(keys) = self.keys(ordo.iter().copied()) {
            let messages: Vec<&[u8]> = ordo_hashes
                .iter()
                .map(|h| h.as_bytes().as_slice())
                .collect();
            let signatures: Vec<ed25519_dalek::Signature> = ordo
                .iter()
                .map(|t| ed25519_dalek::Signature::from_bytes(&t.signature.0))
                .collect();
            if ed25519_dalek::verify_batch(&messages, &signatures, &keys).is_ok() {
                return Ok(());
            }
        }
        let owned: Vec<SignedTransaction> = txs.cloned().collect();
        SignedTransaction::verify_many(&owned)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ordo_types::{Address, KeyPair, Payload, Transaction};

    fn txs(n: usize) -> Vec<SignedTransaction> {
        (0..n)
            .map(|i| {
                let key = KeyPair::from_seed([i as u8 % 3 + 1; 32]);
                Transaction {
                    chain_id: 1,
                    sender: key.public(),
                    nonce: i as u64,
                    expiry: 10,
                    payload: Payload::Transfer {
                        to: Address::default(),
                        amount: 1,
                    },
                }
                .sign(&key)
            })
            .collect()
    }

    #[test]
    fn agrees_with_verify_many() {
        let cache = KeyCache::default();
        let good = txs(20);
        assert!(cache.verify_many(&good).is_ok());
        assert!(cache.verify_many(&good).is_ok());
        let mut bad = good.clone();
        bad[7].as_ordo_mut().unwrap().signature.0[3] ^= 1;
        let err = cache.verify_many(&bad).unwrap_err();
        assert!(matches!(err, ordo_types::Error::BadSignatures { ref bad, .. } if bad == &vec![7]));
        // With the hashes given, the same verdicts.
        let hashed = |txs: &[SignedTransaction]| {
            let refs: Vec<&SignedTransaction> = txs.iter().collect();
            let hashes: Vec<Hash32> = txs.iter().map(SignedTransaction::hash).collect();
            cache.verify_hashed(&refs, &hashes)
        };
        assert!(hashed(&good).is_ok());
        let err = hashed(&bad).unwrap_err();
        assert!(matches!(err, ordo_types::Error::BadSignatures { ref bad, .. } if bad == &vec![7]));
        // A sender key that is not a curve point.
        let mut bogus = good.clone();
        bogus[2].as_ordo_mut().unwrap().tx.sender = PublicKey([2; 32]);
        assert!(cache.verify_many(&bogus).is_err());
        // A small-order key (the identity) is refused, as by verify_many.
        let mut weak = good;
        let mut identity = [0u8; 32];
        identity[0] = 1;
        weak[4].as_ordo_mut().unwrap().tx.sender = PublicKey(identity);
        assert!(cache.verify_many(&weak).is_err());
    }
}
