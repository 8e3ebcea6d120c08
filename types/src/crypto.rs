//! ed25519 keys and signatures, and the account address derived from a public key.
//!
//! Verification of many signatures goes through [`verify_batch`], which costs roughly a
//! third of checking them one by one. When a batch fails, every member is checked alone so
//! that the caller learns exactly which signatures are bad.
//!
//! Validity must not depend on how signatures happen to be grouped, or two validators
//! could disagree about one transaction. So a single signature is checked with the same
//! (cofactored) equation as a batch, by verifying a batch of one, and keys of small order
//! are always rejected. The strict single check of ed25519-dalek is cofactorless and would
//! reject crafted signatures that a batch accepts.

use std::fmt;
use std::str::FromStr;

use bincode::{Decode, Encode};
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};

use crate::hash::{parse_hex, serde_as_hex, HexParseError};
use crate::{Error, Hash32, Result};

const ADDRESS_DOMAIN: &[u8] = b"ordo/address\0";

/// An ed25519 public key in its 32-byte compressed form.
///
/// Kept as bytes so that decoding, hashing and ordering stay cheap; the curve point is
/// only decompressed (and checked) when a signature is verified.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Encode, Decode)]
pub struct PublicKey(pub [u8; 32]);

/// An ed25519 signature.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Encode, Decode)]
pub struct Signature(pub [u8; 64]);

/// An account, in the one account space that native transactions and the EVM share: 20
/// bytes, so that it is also the account's EVM address (`msg.sender`, `CALLER`, and the
/// address contracts pay). An ed25519 key's account is the last 20 bytes of BLAKE3 of the
/// key under the address domain, as an Ethereum account is the last 20 bytes of the
/// Keccak of its key; a contract's is the EVM's `CREATE` address.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Encode, Decode)]
pub struct Address(pub [u8; ADDRESS_BYTES]);

/// The length of an [`Address`].
pub const ADDRESS_BYTES: usize = 20;

/// A signing key with its public half.
#[derive(Clone)]
pub struct KeyPair {
    signing: SigningKey,
}

impl KeyPair {
    /// A fresh key from the operating system's random source.
    pub fn generate() -> Self {
        KeyPair {
            signing: SigningKey::generate(&mut rand::rngs::OsRng),
        }
    }

    /// The key whose 32-byte secret seed is `seed`. Deterministic, for genesis and tests.
    pub fn from_seed(seed: [u8; 32]) -> Self {
        KeyPair {
            signing: SigningKey::from_bytes(&seed),
        }
    }

    /// The secret seed; whoever holds it can sign as this key.
    pub fn seed(&self) -> [u8; 32] {
        self.signing.to_bytes()
    }

    pub fn public(&self) -> PublicKey {
        PublicKey(self.signing.verifying_key().to_bytes())
    }

    pub fn address(&self) -> Address {
        self.public().address()
    }

    pub fn sign(&self, message: &[u8]) -> Signature {
        Signature(self.signing.sign(message).to_bytes())
    }
}

impl fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the secret half.
        write!(f, "KeyPair({})", self.public())
    }
}

impl PublicKey {
    pub fn address(&self) -> Address {
        Address::from_digest(&Hash32::digest(ADDRESS_DOMAIN, &self.0))
    }

    /// The curve point, if the bytes are a valid key that is not of small order.
    fn to_dalek(self) -> Result<VerifyingKey> {
        match VerifyingKey::from_bytes(&self.0) {
            Ok(key) if !key.is_weak() => Ok(key),
            _ => Err(Error::InvalidPublicKey),
        }
    }

    /// Checks one signature. Prefer [`verify_batch`] for more than a handful.
    pub fn verify(&self, message: &[u8], signature: &Signature) -> Result<()> {
        let key = self.to_dalek()?;
        let sig = ed25519_dalek::Signature::from_bytes(&signature.0);
        ed25519_dalek::verify_batch(&[message], &[sig], &[key]).map_err(|_| Error::BadSignature)
    }
}

/// Verifies `(message, key, signature)` triples together.
///
/// On success every signature is valid. On failure the error is
/// [`Error::BadSignatures`] listing every bad index, found by checking each member alone;
/// a key that is not a valid curve point counts as a bad signature at its index.
pub fn verify_batch(items: &[(&[u8], &PublicKey, &Signature)]) -> Result<()> {
    if items.is_empty() {
        return Ok(());
    }
    let mut messages = Vec::with_capacity(items.len());
    let mut signatures = Vec::with_capacity(items.len());
    let mut keys = Vec::with_capacity(items.len());
    let mut keys_valid = true;
    for (message, key, signature) in items {
        match key.to_dalek() {
            Ok(k) => keys.push(k),
            Err(_) => {
                keys_valid = false;
                break;
            }
        }
        messages.push(*message);
        signatures.push(ed25519_dalek::Signature::from_bytes(&signature.0));
    }
    if keys_valid && ed25519_dalek::verify_batch(&messages, &signatures, &keys).is_ok() {
        return Ok(());
    }
    let bad: Vec<usize> = items
        .iter()
        .enumerate()
        .filter(|(_, (message, key, signature))| key.verify(message, signature).is_err())
        .map(|(i, _)| i)
        .collect();
    if bad.is_empty() {
        Ok(())
    } else {
        Err(Error::BadSignatures {
            bad,
            total: items.len(),
        })
    }
}

macro_rules! hex_display {
    ($ty:ident, $len:expr) => {
        hex_display!($ty, $len, "");
    };
    ($ty:ident, $len:expr, $prefix:literal) => {
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str($prefix)?;
                f.write_str(&hex::encode(self.0))
            }
        }

        impl fmt::Debug for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($ty), "({})"), hex::encode(self.0))
            }
        }

        impl FromStr for $ty {
            type Err = HexParseError;

            fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
                parse_hex::<$len>(s).map($ty)
            }
        }

        serde_as_hex!($ty);
    };
}

hex_display!(PublicKey, 32);
hex_display!(Signature, 64);
// Addresses print as Ethereum tools write them; parsing takes them with or without "0x".
hex_display!(Address, ADDRESS_BYTES, "0x");

impl Address {
    /// The address a digest names: its last 20 bytes.
    pub fn from_digest(digest: &Hash32) -> Address {
        let mut address = [0; ADDRESS_BYTES];
        address.copy_from_slice(&digest.as_bytes()[32 - ADDRESS_BYTES..]);
        Address(address)
    }

    /// The first four bytes in hex, for logs.
    pub fn short(&self) -> String {
        hex::encode(&self.0[..4])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_and_verify() {
        let key = KeyPair::from_seed([7; 32]);
        let sig = key.sign(b"hello");
        key.public().verify(b"hello", &sig).unwrap();
        assert!(matches!(
            key.public().verify(b"hellO", &sig),
            Err(Error::BadSignature)
        ));
    }

    #[test]
    fn address_is_stable_and_key_specific() {
        let a = KeyPair::from_seed([1; 32]);
        let b = KeyPair::from_seed([2; 32]);
        assert_eq!(a.address(), KeyPair::from_seed([1; 32]).address());
        assert_ne!(a.address(), b.address());
        let text = a.address().to_string();
        assert_eq!(text.len(), 2 + 2 * ADDRESS_BYTES);
        assert!(text.starts_with("0x"));
        assert_eq!(text.parse::<Address>().unwrap(), a.address());
        assert_eq!(text[2..].parse::<Address>().unwrap(), a.address());
    }

    #[test]
    fn invalid_point_is_named_in_batch() {
        let key = KeyPair::from_seed([3; 32]);
        let sig = key.sign(b"m");
        // y = 2 is not on the curve, so decompression fails.
        let mut bogus = [0u8; 32];
        bogus[0] = 2;
        let bogus = PublicKey(bogus);
        let good = key.public();
        let items: Vec<(&[u8], &PublicKey, &Signature)> =
            vec![(b"m", &good, &sig), (b"m", &bogus, &sig)];
        match verify_batch(&items) {
            Err(Error::BadSignatures { bad, total }) => {
                assert_eq!(bad, vec![1]);
                assert_eq!(total, 2);
            }
            other => panic!("expected a bad signature at index 1, got {other:?}"),
        }
    }

    #[test]
    fn debug_hides_the_secret() {
        let key = KeyPair::from_seed([9; 32]);
        let printed = format!("{key:?}");
        assert!(!printed.contains(&hex::encode(key.seed())));
    }
}
