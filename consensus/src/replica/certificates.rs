//! Certificate verification and the cache of certificates already verified.
//!
//! A QC is valid when 2f + 1 distinct known validators, listed in increasing order, signed
//! it and every signature verifies; a TC, when the same holds for its timeouts and its high
//! QC is valid and the highest of its signers' high-QC rounds. The only round-0 QC is
//! genesis.
//!
//! Invariant: a certificate's key enters the cache only once every signature behind it has
//! verified (or, for a QC the replica formed itself, every vote in it), so that a cached
//! certificate is never checked twice and an unverified one is never taken for cached.

use ordo_types::{BoundedSet, Hash32, PublicKey, Signature};

use crate::committee::{Committee, VerifyFn};
use crate::error::ConsensusError;
use crate::messages::{timeout_digest, QuorumCert, TimeoutCert, ValidatorIndex};

/// Certificates recently verified. A block response of `sync_batch` (128) blocks adds as
/// many; twice that keeps the live rounds' certificates cached through one.
const MAX_VERIFIED_CACHE: usize = 256;

/// Verifies certificates against a committee and remembers which ones passed.
pub(crate) struct Certificates {
    genesis_qc: QuorumCert,
    verified: BoundedSet<Hash32>,
}

impl Certificates {
    pub(crate) fn new(genesis_qc: QuorumCert) -> Self {
        Self {
            genesis_qc,
            verified: BoundedSet::new(MAX_VERIFIED_CACHE),
        }
    }

    /// Caches a certificate whose signatures are known to be valid.
    pub(super) fn remember(&mut self, key: Hash32) {
        self.verified.insert(key);
    }

    /// Checks a QC: 2f + 1 distinct known signers whose signatures verify in one batch.
    pub(crate) fn verify_qc(
        &mut self,
        committee: &Committee,
        verify: VerifyFn,
        qc: &QuorumCert,
    ) -> Result<(), ConsensusError> {
        self.verify_qcs(committee, verify, std::iter::once(qc))
    }

    /// Checks certificates together: their signatures go to one batch verification.
    /// Certificates verified before (the cache) cost nothing.
    pub(super) fn verify_qcs<'q>(
        &mut self,
        committee: &Committee,
        verify: VerifyFn,
        qcs: impl IntoIterator<Item = &'q QuorumCert>,
    ) -> Result<(), ConsensusError> {
        let epoch = committee.epoch();
        let mut fresh: Vec<(Hash32, Hash32, &QuorumCert)> = Vec::new();
        for qc in qcs {
            if qc.round == 0 {
                if *qc != self.genesis_qc {
                    return Err(ConsensusError::MalformedCertificate(
                        "round-0 QC is not genesis",
                    ));
                }
                continue;
            }
            if qc.parent_round >= qc.round {
                return Err(ConsensusError::MalformedCertificate(
                    "parent round not below QC round",
                ));
            }
            let key = qc.cache_key();
            if self.verified.contains(&key) || fresh.iter().any(|f| f.0 == key) {
                continue;
            }
            check_signers(
                committee,
                qc.signatures.iter().map(|s| s.0),
                qc.signatures.len(),
            )?;
            fresh.push((key, qc.signed_digest(epoch), qc));
        }
        if fresh.is_empty() {
            return Ok(());
        }
        let validators = committee.validators();
        let items: Vec<(&[u8], &PublicKey, &Signature)> = fresh
            .iter()
            .flat_map(|(_, digest, qc)| {
                qc.signatures.iter().map(move |(i, s)| {
                    (
                        digest.as_bytes().as_slice(),
                        &validators[usize::from(*i)],
                        s,
                    )
                })
            })
            .collect();
        verify(&items).map_err(|_| ConsensusError::BadSignature)?;
        for (key, _, _) in fresh {
            self.remember(key);
        }
        Ok(())
    }

    /// Checks a TC: 2f + 1 distinct known signers, its high QC valid and the highest of
    /// the signers' high-QC rounds, and every signature.
    pub(super) fn verify_tc(
        &mut self,
        committee: &Committee,
        verify: VerifyFn,
        tc: &TimeoutCert,
    ) -> Result<(), ConsensusError> {
        let key = Hash32::digest(b"ordo/tc-cache\0", &ordo_types::codec::encode(tc));
        if self.verified.contains(&key) {
            return Ok(());
        }
        check_signers(
            committee,
            tc.signatures.iter().map(|s| s.0),
            tc.signatures.len(),
        )?;
        if tc.high_qc.round != tc.max_high_qc_round() || tc.high_qc.round >= tc.round {
            return Err(ConsensusError::MalformedCertificate(
                "TC's high QC is not the highest of its signers'",
            ));
        }
        self.verify_qc(committee, verify, &tc.high_qc)?;
        let epoch = committee.epoch();
        let digests: Vec<Hash32> = tc
            .signatures
            .iter()
            .map(|(_, r, _)| timeout_digest(epoch, tc.round, *r))
            .collect();
        let validators = committee.validators();
        let items: Vec<(&[u8], &PublicKey, &Signature)> = tc
            .signatures
            .iter()
            .zip(&digests)
            .map(|((i, _, s), d)| (d.as_bytes().as_slice(), &validators[usize::from(*i)], s))
            .collect();
        verify(&items).map_err(|_| ConsensusError::BadSignature)?;
        self.remember(key);
        Ok(())
    }
}

/// A quorum of signers, each a member of the committee, in strictly increasing order (so
/// that nobody is counted twice).
fn check_signers(
    committee: &Committee,
    signers: impl Iterator<Item = ValidatorIndex>,
    len: usize,
) -> Result<(), ConsensusError> {
    let quorum = committee.quorum();
    if len < quorum {
        return Err(ConsensusError::NoQuorum { got: len, quorum });
    }
    let mut prev: Option<ValidatorIndex> = None;
    for s in signers {
        if usize::from(s) >= committee.size() || prev.is_some_and(|p| p >= s) {
            return Err(ConsensusError::BadSigners);
        }
        prev = Some(s);
    }
    Ok(())
}
