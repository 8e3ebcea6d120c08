//! The validator set of one epoch, and how its members sign.
//!
//! Invariant: validators are distinct and ordered; a validator's index in the list is how
//! certificates name it. Every validator has voting power 1, so with n = 3f + 1 members a
//! quorum is 2f + 1 and any two quorums share an honest member.

use ordo_types::{Hash32, KeyPair, PublicKey, Signature};

use crate::error::ConsensusError;
use crate::messages::{Epoch, ValidatorIndex};

/// The validators of one epoch, in a fixed order agreed at genesis.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Committee {
    epoch: Epoch,
    validators: Vec<PublicKey>,
}

impl Committee {
    /// Builds a committee; rejects an empty list, duplicates and more than `u16::MAX` members.
    pub fn new(epoch: Epoch, validators: Vec<PublicKey>) -> Result<Self, ConsensusError> {
        if validators.is_empty() || validators.len() > usize::from(u16::MAX) {
            return Err(ConsensusError::BadCommittee(format!(
                "{} validators",
                validators.len()
            )));
        }
        let mut sorted = validators.clone();
        sorted.sort();
        sorted.dedup();
        if sorted.len() != validators.len() {
            return Err(ConsensusError::BadCommittee(
                "duplicate validator key".into(),
            ));
        }
        Ok(Self { epoch, validators })
    }

    pub fn epoch(&self) -> Epoch {
        self.epoch
    }

    pub fn size(&self) -> usize {
        self.validators.len()
    }

    /// The most faulty validators tolerated: f = (n - 1) / 3.
    pub fn max_faulty(&self) -> usize {
        (self.size() - 1) / 3
    }

    /// Signatures needed for a certificate: n - f (2f + 1 when n = 3f + 1).
    pub fn quorum(&self) -> usize {
        self.size() - self.max_faulty()
    }

    pub fn validators(&self) -> &[PublicKey] {
        &self.validators
    }

    pub fn key(&self, index: ValidatorIndex) -> Option<&PublicKey> {
        self.validators.get(usize::from(index))
    }

    pub fn index_of(&self, key: &PublicKey) -> Option<ValidatorIndex> {
        self.validators
            .iter()
            .position(|k| k == key)
            .map(|i| i as ValidatorIndex)
    }
}

/// Signs consensus digests with a validator's key. The core never sees the secret.
pub trait Signer {
    fn public_key(&self) -> PublicKey;
    fn sign(&self, message: &[u8]) -> Signature;
}

impl Signer for KeyPair {
    fn public_key(&self) -> PublicKey {
        self.public()
    }

    fn sign(&self, message: &[u8]) -> Signature {
        KeyPair::sign(self, message)
    }
}

/// Checks `(message, key, signature)` triples together; on failure returns the indices of
/// the bad ones. [`ed25519_verify`] is the production choice.
pub type VerifyFn = fn(&[(&[u8], &PublicKey, &Signature)]) -> Result<(), Vec<usize>>;

/// Batch verification with `ordo_types::verify_batch` (ed25519).
pub fn ed25519_verify(items: &[(&[u8], &PublicKey, &Signature)]) -> Result<(), Vec<usize>> {
    match ordo_types::verify_batch(items) {
        Ok(()) => Ok(()),
        Err(ordo_types::Error::BadSignatures { bad, .. }) => Err(bad),
        Err(_) => Err((0..items.len()).collect()),
    }
}

/// A keyed-hash stand-in for ed25519, for the simulator only: about a hundred times cheaper
/// and unforgeable by honest code, which is all the simulator's twins need.
#[derive(Clone, Debug)]
pub struct SimSigner(pub PublicKey);

impl SimSigner {
    fn tag(key: &PublicKey, message: &[u8]) -> Signature {
        let h = Hash32::digest_parts(b"ordo/sim-signature\0", &[&key.0, message]);
        let mut sig = [0u8; 64];
        sig[..32].copy_from_slice(&h.0);
        sig[32..].copy_from_slice(&key.0);
        Signature(sig)
    }
}

impl Signer for SimSigner {
    fn public_key(&self) -> PublicKey {
        self.0
    }

    fn sign(&self, message: &[u8]) -> Signature {
        Self::tag(&self.0, message)
    }
}

/// Verification matching [`SimSigner`].
pub fn sim_verify(items: &[(&[u8], &PublicKey, &Signature)]) -> Result<(), Vec<usize>> {
    let bad: Vec<usize> = items
        .iter()
        .enumerate()
        .filter(|(_, (m, k, s))| SimSigner::tag(k, m) != **s)
        .map(|(i, _)| i)
        .collect();
    if bad.is_empty() {
        Ok(())
    } else {
        Err(bad)
    }
}
