//! The validator set as the network sees it: who may connect, and how many acknowledgements
//! make a batch available.
//!
//! Every validator is known from genesis by its consensus key, its libp2p identity and its
//! address. Consensus keys and peer ids are both unique within a committee, so the two
//! lookups are bijective; indices follow genesis order.

use std::collections::HashMap;

use libp2p::{identity, Multiaddr, PeerId};
use ordo_types::{ChainId, PublicKey};

use crate::error::Error;

/// One validator as listed in genesis.
#[derive(Debug, Clone)]
pub struct ValidatorInfo {
    pub consensus_key: PublicKey,
    pub peer_id: PeerId,
    pub address: Multiaddr,
}

impl ValidatorInfo {
    /// A validator whose libp2p identity is the ed25519 public key `network_key`.
    pub fn new(
        consensus_key: PublicKey,
        network_key: [u8; 32],
        address: Multiaddr,
    ) -> Result<Self, Error> {
        let key = identity::ed25519::PublicKey::try_from_bytes(&network_key)
            .map_err(|e| Error::InvalidNetworkKey(e.to_string()))?;
        Ok(ValidatorInfo {
            consensus_key,
            peer_id: identity::PublicKey::from(key).to_peer_id(),
            address,
        })
    }
}

/// The libp2p identity whose secret seed is `seed` (deterministic, for genesis and tests).
pub fn network_keypair_from_seed(seed: [u8; 32]) -> identity::Keypair {
    let mut seed = seed;
    identity::Keypair::ed25519_from_bytes(&mut seed).expect("any 32 bytes are an ed25519 seed")
}

/// The 32-byte ed25519 public key of a libp2p identity created from a seed.
pub fn network_public_key(keypair: &identity::Keypair) -> Option<[u8; 32]> {
    keypair
        .public()
        .try_into_ed25519()
        .ok()
        .map(|k| k.to_bytes())
}

/// The validator set of one chain.
#[derive(Debug, Clone)]
pub struct Committee {
    chain_id: ChainId,
    validators: Vec<ValidatorInfo>,
    by_key: HashMap<PublicKey, usize>,
    by_peer: HashMap<PeerId, usize>,
}

impl Committee {
    pub fn new(chain_id: ChainId, validators: Vec<ValidatorInfo>) -> Result<Self, Error> {
        if validators.is_empty() {
            return Err(Error::InvalidCommittee("no validators".into()));
        }
        let mut by_key = HashMap::new();
        let mut by_peer = HashMap::new();
        for (i, v) in validators.iter().enumerate() {
            if by_key.insert(v.consensus_key, i).is_some() {
                return Err(Error::InvalidCommittee(format!(
                    "consensus key {} listed twice",
                    v.consensus_key
                )));
            }
            if by_peer.insert(v.peer_id, i).is_some() {
                return Err(Error::InvalidCommittee(format!(
                    "network identity {} listed twice",
                    v.peer_id
                )));
            }
        }
        Ok(Committee {
            chain_id,
            validators,
            by_key,
            by_peer,
        })
    }

    pub fn chain_id(&self) -> ChainId {
        self.chain_id
    }

    pub fn size(&self) -> usize {
        self.validators.len()
    }

    /// The most faulty validators the committee tolerates: n = 3f + 1 at best.
    pub fn max_faulty(&self) -> usize {
        (self.validators.len() - 1) / 3
    }

    /// Acknowledgements that make a proof of availability: f + 1, so at least one honest
    /// validator holds the batch.
    pub fn availability_threshold(&self) -> usize {
        self.max_faulty() + 1
    }

    pub fn validators(&self) -> &[ValidatorInfo] {
        &self.validators
    }

    pub fn get(&self, index: usize) -> Option<&ValidatorInfo> {
        self.validators.get(index)
    }

    pub fn index_of_key(&self, key: &PublicKey) -> Option<usize> {
        self.by_key.get(key).copied()
    }

    pub fn index_of_peer(&self, peer: &PeerId) -> Option<usize> {
        self.by_peer.get(peer).copied()
    }

    pub fn contains_key(&self, key: &PublicKey) -> bool {
        self.by_key.contains_key(key)
    }
}

/// A committee for tests: validator i has consensus key `keys[i]` and the network key of
/// seed `[net_seed + i; 32]`, and an address nothing listens on.
#[cfg(test)]
pub(crate) fn test_committee(
    chain_id: u64,
    keys: &[ordo_types::KeyPair],
    net_seed: u8,
) -> Committee {
    let validators = keys
        .iter()
        .enumerate()
        .map(|(i, k)| {
            let net = network_keypair_from_seed([net_seed + i as u8; 32]);
            ValidatorInfo::new(
                k.public(),
                network_public_key(&net).expect("an ed25519 network key"),
                "/ip4/127.0.0.1/tcp/1".parse().expect("an address"),
            )
            .expect("a valid validator")
        })
        .collect();
    Committee::new(chain_id, validators).expect("a valid committee")
}

#[cfg(test)]
mod tests {
    use super::*;
    use ordo_types::KeyPair;

    fn info(i: u8) -> ValidatorInfo {
        let net = network_keypair_from_seed([i; 32]);
        ValidatorInfo::new(
            KeyPair::from_seed([i; 32]).public(),
            network_public_key(&net).unwrap(),
            "/ip4/127.0.0.1/tcp/1".parse().unwrap(),
        )
        .unwrap()
    }

    #[test]
    fn thresholds_follow_n_equals_3f_plus_1() {
        let c = Committee::new(1, (0..4).map(info).collect()).unwrap();
        assert_eq!(c.max_faulty(), 1);
        assert_eq!(c.availability_threshold(), 2);
        let c = Committee::new(1, (0..7).map(info).collect()).unwrap();
        assert_eq!(c.availability_threshold(), 3);
        let c = Committee::new(1, vec![info(0)]).unwrap();
        assert_eq!(c.availability_threshold(), 1);
    }

    #[test]
    fn peer_id_matches_the_keypair_and_duplicates_are_refused() {
        let net = network_keypair_from_seed([3; 32]);
        assert_eq!(info(3).peer_id, net.public().to_peer_id());
        assert!(matches!(
            Committee::new(1, vec![info(1), info(1)]),
            Err(Error::InvalidCommittee(_))
        ));
    }
}
