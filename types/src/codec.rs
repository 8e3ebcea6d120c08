//! The canonical binary encoding: bincode 2 with fixed-width little-endian integers.
//!
//! Fixed-width integers make the encoding a bijection (a varint could be written in more
//! than one way), so equal values always have equal bytes and equal digests. Decoding
//! untrusted bytes goes through [`decode`], which refuses input over a size limit before
//! reading it, caps what length prefixes may claim at the same limit (no huge allocation
//! from a forged length) and rejects bytes left over after the value.

use bincode::config::{Configuration, Fixint, Limit, LittleEndian};
use bincode::error::DecodeError;

use crate::{Error, Result};

pub use bincode::{Decode, Encode};

type Config<const MAX: usize> = Configuration<LittleEndian, Fixint, Limit<MAX>>;

fn config<const MAX: usize>() -> Config<MAX> {
    bincode::config::standard()
        .with_little_endian()
        .with_fixed_int_encoding()
        .with_limit::<MAX>()
}

/// The largest value [`encode`] accepts: far above any message Ordo sends, there only so
/// that encoding uses the same configuration as decoding.
const ENCODE_LIMIT: usize = 1 << 30;

/// The canonical bytes of `value`.
pub fn encode<T: Encode>(value: &T) -> Vec<u8> {
    bincode::encode_to_vec(value, config::<ENCODE_LIMIT>())
        .expect("encoding into a Vec cannot fail for Ordo's types")
}

/// Appends the canonical bytes of `value` to `out`.
pub fn encode_into<T: Encode>(value: &T, out: &mut Vec<u8>) {
    out.extend_from_slice(&encode(value));
}

/// Decodes exactly one `T` from `bytes`, which may hold at most `MAX` bytes.
pub fn decode<T: Decode<()>, const MAX: usize>(bytes: &[u8]) -> Result<T> {
    if bytes.len() > MAX {
        return Err(Error::TooLarge {
            len: bytes.len(),
            max: MAX,
        });
    }
    let (value, read) =
        bincode::decode_from_slice(bytes, config::<MAX>()).map_err(|e| match e {
            DecodeError::UnexpectedEnd { .. } => Error::Truncated { len: bytes.len() },
            DecodeError::LimitExceeded => Error::TooLarge {
                len: bytes.len(),
                max: MAX,
            },
            other => Error::Malformed(other.to_string()),
        })?;
    if read != bytes.len() {
        return Err(Error::TrailingBytes {
            extra: bytes.len() - read,
        });
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Encode, Decode)]
    struct Sample {
        a: u64,
        b: Vec<u8>,
        c: bool,
    }

    #[test]
    fn round_trip() {
        let s = Sample {
            a: 5,
            b: vec![1, 2, 3],
            c: true,
        };
        let bytes = encode(&s);
        assert_eq!(decode::<Sample, 64>(&bytes).unwrap(), s);
    }

    #[test]
    fn forged_length_is_refused_without_allocating() {
        // a = 0, then a length prefix claiming 2^60 bytes.
        let mut bytes = vec![0u8; 8];
        bytes.extend_from_slice(&(1u64 << 60).to_le_bytes());
        assert!(matches!(
            decode::<Sample, 64>(&bytes),
            Err(Error::TooLarge { .. }) | Err(Error::Truncated { .. })
        ));
    }

    #[test]
    fn booleans_other_than_zero_and_one_are_malformed() {
        let mut bytes = encode(&Sample {
            a: 1,
            b: vec![],
            c: true,
        });
        *bytes.last_mut().unwrap() = 2;
        assert!(matches!(
            decode::<Sample, 64>(&bytes),
            Err(Error::Malformed(_))
        ));
    }
}
