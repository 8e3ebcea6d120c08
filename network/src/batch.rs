//! Batches, acknowledgements and proofs of availability.
//!
//! A batch's digest is BLAKE3 over its canonical bytes under the batch domain, author and
//! sequence number included, so two authors never share a digest. An acknowledgement is a
//! validator's consensus-key signature over (chain id, [`BatchInfo`]): it promises that the
//! signer verified every signature in the batch and stores it. f + 1 acknowledgements from
//! distinct validators form a [`ProofOfAvailability`]: at least one honest validator holds
//! the batch, so anyone can fetch it.

use std::collections::HashSet;
use std::fmt;

use bincode::{Decode, Encode};
use ordo_types::{
    codec, verify_batch, ChainId, Hash32, KeyPair, PublicKey, Signature, SignedTransaction,
};

use crate::committee::Committee;
use crate::error::Error;

const BATCH_DOMAIN: &[u8] = b"ordo/batch\0";
const ACK_DOMAIN: &[u8] = b"ordo/batch-ack\0";

/// What a batch carries.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub enum BatchBody {
    /// Signed transactions; every signature is verified by every receiver.
    Transactions(Vec<SignedTransaction>),
    /// Opaque payloads, acknowledged only by validators configured to accept them
    /// (benchmarks of the dissemination layer alone).
    Opaque(Vec<Vec<u8>>),
}

/// A list of transactions made by one validator, identified by its digest.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct Batch {
    pub author: PublicKey,
    /// The author's sequence number, so equal contents from one author still differ.
    pub seq: u64,
    pub body: BatchBody,
}

/// A batch's summary: what an acknowledgement signs and what a block refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Encode, Decode)]
pub struct BatchInfo {
    pub author: PublicKey,
    pub seq: u64,
    pub digest: Hash32,
    pub num_txs: u32,
    /// Length of the batch's canonical encoding.
    pub bytes: u32,
    /// The sum of its transactions' EVM gas limits (saturating): what it takes of a
    /// block's gas limit, so that a proposer can respect the limit knowing digests alone.
    pub gas: u64,
}

/// One validator's signed acknowledgement of a batch.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct BatchAck {
    pub info: BatchInfo,
    pub signer: PublicKey,
    pub signature: Signature,
}

/// f + 1 acknowledgements of one batch from distinct validators.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct ProofOfAvailability {
    pub info: BatchInfo,
    pub signatures: Vec<(PublicKey, Signature)>,
}

/// A message of the batch protocol.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub enum BatchMessage {
    Batch(Batch),
    Ack(BatchAck),
}

impl BatchBody {
    pub fn len(&self) -> usize {
        match self {
            BatchBody::Transactions(t) => t.len(),
            BatchBody::Opaque(p) => p.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The sum of the transactions' EVM gas limits, saturating; 0 for opaque payloads.
    pub fn gas(&self) -> u64 {
        match self {
            BatchBody::Transactions(t) => t
                .iter()
                .fold(0u64, |sum, tx| sum.saturating_add(tx.payload().gas_limit())),
            BatchBody::Opaque(_) => 0,
        }
    }
}

impl Batch {
    /// The batch's canonical bytes and its summary.
    pub fn encode_with_info(&self) -> (Vec<u8>, BatchInfo) {
        let bytes = codec::encode(self);
        let info = BatchInfo {
            author: self.author,
            seq: self.seq,
            digest: Hash32::digest(BATCH_DOMAIN, &bytes),
            num_txs: self.body.len() as u32,
            bytes: bytes.len() as u32,
            gas: self.body.gas(),
        };
        (bytes, info)
    }

    pub fn info(&self) -> BatchInfo {
        self.encode_with_info().1
    }

    pub fn digest(&self) -> Hash32 {
        self.info().digest
    }
}

impl fmt::Display for BatchInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Batch({}, {}#{}, {} txs)",
            self.digest.short(),
            self.author.address().short(),
            self.seq,
            self.num_txs
        )
    }
}

/// The bytes an acknowledgement signs.
fn ack_message(chain_id: ChainId, info: &BatchInfo) -> Hash32 {
    Hash32::digest_parts(ACK_DOMAIN, &[&chain_id.to_le_bytes(), &codec::encode(info)])
}

impl BatchAck {
    pub fn sign(chain_id: ChainId, info: BatchInfo, key: &KeyPair) -> Self {
        BatchAck {
            info,
            signer: key.public(),
            signature: key.sign(ack_message(chain_id, &info).as_bytes()),
        }
    }

    pub fn verify(&self, chain_id: ChainId) -> Result<(), Error> {
        self.signer
            .verify(
                ack_message(chain_id, &self.info).as_bytes(),
                &self.signature,
            )
            .map_err(|_| Error::BadSignature)
    }
}

impl ProofOfAvailability {
    /// Checks that at least f + 1 distinct validators of `committee` signed this batch.
    pub fn verify(&self, committee: &Committee) -> Result<(), Error> {
        let mut seen = HashSet::new();
        for (signer, _) in &self.signatures {
            if !committee.contains_key(signer) {
                return Err(Error::InvalidProof(format!("{signer} is not a validator")));
            }
            if !seen.insert(*signer) {
                return Err(Error::InvalidProof(format!("{signer} signed twice")));
            }
        }
        let needed = committee.availability_threshold();
        if seen.len() < needed {
            return Err(Error::InvalidProof(format!(
                "{} signatures, {needed} needed",
                seen.len()
            )));
        }
        let message = ack_message(committee.chain_id(), &self.info);
        let items: Vec<(&[u8], &PublicKey, &Signature)> = self
            .signatures
            .iter()
            .map(|(k, s)| (message.as_bytes().as_slice(), k, s))
            .collect();
        verify_batch(&items).map_err(|e| Error::InvalidProof(e.to_string()))
    }

    /// The validators that vouched for holding the batch.
    pub fn signers(&self) -> impl Iterator<Item = &PublicKey> {
        self.signatures.iter().map(|(k, _)| k)
    }
}

impl fmt::Display for ProofOfAvailability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PoA({}, {} acks)", self.info, self.signatures.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::committee::test_committee;

    fn setup() -> (Vec<KeyPair>, Committee, BatchInfo) {
        let keys: Vec<KeyPair> = (0..4).map(|i| KeyPair::from_seed([i + 1; 32])).collect();
        let committee = test_committee(9, &keys, 50);
        let batch = Batch {
            author: keys[0].public(),
            seq: 1,
            body: BatchBody::Opaque(vec![vec![1; 10]]),
        };
        (keys, committee, batch.info())
    }

    fn proof(keys: &[&KeyPair], chain: ChainId, info: BatchInfo) -> ProofOfAvailability {
        ProofOfAvailability {
            info,
            signatures: keys
                .iter()
                .map(|k| {
                    let a = BatchAck::sign(chain, info, k);
                    (a.signer, a.signature)
                })
                .collect(),
        }
    }

    #[test]
    fn proof_needs_f_plus_one_distinct_members_with_valid_signatures() {
        let (keys, committee, info) = setup();
        proof(&[&keys[0], &keys[2]], 9, info)
            .verify(&committee)
            .unwrap();
        assert!(proof(&[&keys[0]], 9, info).verify(&committee).is_err());
        assert!(proof(&[&keys[0], &keys[0]], 9, info)
            .verify(&committee)
            .is_err());
        let outsider = KeyPair::from_seed([99; 32]);
        assert!(proof(&[&keys[0], &outsider], 9, info)
            .verify(&committee)
            .is_err());
        // Signed for another chain.
        assert!(proof(&[&keys[0], &keys[1]], 10, info)
            .verify(&committee)
            .is_err());
        // Signatures over another batch.
        let mut other = info;
        other.num_txs += 1;
        let mut p = proof(&[&keys[0], &keys[1]], 9, other);
        p.info = info;
        assert!(p.verify(&committee).is_err());
    }

    #[test]
    fn digest_covers_author_sequence_and_contents() {
        let a = KeyPair::from_seed([1; 32]).public();
        let b = KeyPair::from_seed([2; 32]).public();
        let body = BatchBody::Opaque(vec![vec![1, 2]]);
        let d = |author, seq, body: &BatchBody| {
            Batch {
                author,
                seq,
                body: body.clone(),
            }
            .digest()
        };
        assert_ne!(d(a, 1, &body), d(b, 1, &body));
        assert_ne!(d(a, 1, &body), d(a, 2, &body));
        assert_ne!(
            d(a, 1, &body),
            d(a, 1, &BatchBody::Opaque(vec![vec![1, 3]]))
        );
        assert_eq!(d(a, 1, &body), d(a, 1, &body));
    }
}
