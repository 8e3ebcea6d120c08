//! 32-byte digests.
//!
//! Every digest is BLAKE3 over a domain tag followed by the object's canonical bytes.
//! Tags end in a NUL byte and contain no other, so no tag is a prefix of another and
//! objects of different kinds never collide by construction.

use std::fmt;
use std::str::FromStr;

use bincode::{Decode, Encode};

/// A 32-byte BLAKE3 digest. Prints as 64 lowercase hex characters.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Encode, Decode)]
pub struct Hash32(pub [u8; 32]);

impl Hash32 {
    pub const ZERO: Hash32 = Hash32([0; 32]);

    /// Hashes `data` under `domain`; `domain` must end in `\0` (see the module note).
    pub fn digest(domain: &[u8], data: &[u8]) -> Self {
        debug_assert_eq!(domain.last(), Some(&0), "domain tags end in NUL");
        let mut hasher = blake3::Hasher::new();
        hasher.update(domain);
        hasher.update(data);
        Hash32(*hasher.finalize().as_bytes())
    }

    /// Hashes several parts under `domain`; the parts are length-prefixed so that
    /// moving bytes between parts changes the digest.
    pub fn digest_parts(domain: &[u8], parts: &[&[u8]]) -> Self {
        debug_assert_eq!(domain.last(), Some(&0), "domain tags end in NUL");
        let mut hasher = blake3::Hasher::new();
        hasher.update(domain);
        for part in parts {
            hasher.update(&(part.len() as u64).to_le_bytes());
            hasher.update(part);
        }
        Hash32(*hasher.finalize().as_bytes())
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The first four bytes in hex, for logs: `B12(3fa9c201)`.
    pub fn short(&self) -> String {
        hex::encode(&self.0[..4])
    }
}

impl AsRef<[u8]> for Hash32 {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl From<[u8; 32]> for Hash32 {
    fn from(bytes: [u8; 32]) -> Self {
        Hash32(bytes)
    }
}

impl fmt::Display for Hash32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for Hash32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash32({})", hex::encode(self.0))
    }
}

/// A hex string that is not exactly the expected number of bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected {expected} bytes as {} hex characters (optionally prefixed by 0x): {reason}", expected * 2)]
pub struct HexParseError {
    pub expected: usize,
    pub reason: String,
}

/// Parses `0x`-optional hex into exactly `N` bytes.
pub(crate) fn parse_hex<const N: usize>(s: &str) -> Result<[u8; N], HexParseError> {
    let s = s.trim();
    let s = s.strip_prefix("0x").unwrap_or(s);
    let mut out = [0u8; N];
    hex::decode_to_slice(s, &mut out).map_err(|e| HexParseError {
        expected: N,
        reason: e.to_string(),
    })?;
    Ok(out)
}

impl FromStr for Hash32 {
    type Err = HexParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_hex::<32>(s).map(Hash32)
    }
}

/// Serde through hex strings, so that JSON carries readable digests and keys.
macro_rules! serde_as_hex {
    ($ty:ty) => {
        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.to_string())
            }
        }

        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}
pub(crate) use serde_as_hex;

/// Serde of byte strings as "0x"-prefixed hex, as Ethereum tools write code and call data.
pub(crate) mod hex_bytes {
    pub fn serialize<S: serde::Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("0x{}", hex::encode(bytes)))
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(d)?;
        let text = text.trim();
        hex::decode(text.strip_prefix("0x").unwrap_or(text)).map_err(serde::de::Error::custom)
    }
}

serde_as_hex!(Hash32);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip_and_prefix() {
        let h = Hash32::digest(b"test\0", b"abc");
        let s = h.to_string();
        assert_eq!(s.len(), 64);
        assert_eq!(s.parse::<Hash32>().unwrap(), h);
        assert_eq!(format!("0x{s}").parse::<Hash32>().unwrap(), h);
        assert!(s[..62].parse::<Hash32>().is_err());
        assert!("zz".repeat(32).parse::<Hash32>().is_err());
    }

    #[test]
    fn domains_and_parts_separate_digests() {
        assert_ne!(Hash32::digest(b"a\0", b"x"), Hash32::digest(b"b\0", b"x"));
        assert_ne!(
            Hash32::digest_parts(b"a\0", &[b"ab", b"c"]),
            Hash32::digest_parts(b"a\0", &[b"a", b"bc"])
        );
    }
}
