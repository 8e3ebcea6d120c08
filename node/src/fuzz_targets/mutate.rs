//! Structure-blind mutations of valid inputs, for the tests that run without a fuzzing
//! engine: random bytes almost never get past a decoder's first tag or length, while a
//! valid encoding with a few bytes changed reaches every branch behind them.
//!
//! Edits are plain data with positions taken modulo the input's length, so any edit
//! applies to any input and proptest can generate and shrink them freely.

use ordo_types::SeededRng;

/// Values that sit on decoders' boundaries: zero, one, sign bits and the all-ones words
/// that a length or a tag read as `u32` or `u64` turns into huge or negative amounts.
const BOUNDARIES: [u64; 10] = [
    0,
    1,
    2,
    0x7f,
    0x80,
    0xff,
    0x7fff_ffff,
    0xffff_ffff,
    0x8000_0000_0000_0000,
    u64::MAX,
];

/// Fragments of the text formats (JSON, TOML, HTTP, multiaddresses) that single byte
/// changes would take long to assemble.
const TOKENS: [&[u8]; 20] = [
    b"\"",
    b"{",
    b"}",
    b"[",
    b"]",
    b"[[",
    b",",
    b"=",
    b":",
    b"\n",
    b"\r\n",
    b"-1",
    b"18446744073709551616",
    b"1e999",
    b"null",
    b"0x",
    b"ffffffffffffffff",
    b"/ip4/1.2.3.4/tcp/1",
    b"/dns/a/udp/1/quic-v1",
    b"transfer-encoding: chunked\r\n",
];

/// One change to an input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Edit {
    FlipBit {
        at: usize,
        bit: u8,
    },
    SetByte {
        at: usize,
        value: u8,
    },
    Insert {
        at: usize,
        value: u8,
        count: u8,
    },
    Delete {
        at: usize,
        len: u8,
    },
    /// Repeats a run of bytes right after itself (a list item twice, for instance).
    Duplicate {
        at: usize,
        len: u8,
    },
    Truncate {
        at: usize,
    },
    /// Overwrites a little-endian word (4 or 8 bytes) with a boundary value: bincode keeps
    /// enum tags in 4 bytes and lengths in 8.
    Word {
        at: usize,
        wide: bool,
        value: u64,
    },
    /// Adds a small amount to a little-endian word: a length off by a few.
    Nudge {
        at: usize,
        wide: bool,
        delta: i8,
    },
    Token {
        at: usize,
        token: u8,
        replace: u8,
    },
    /// Puts the tail of another valid input (by index) at `at`, from its byte `from`.
    Splice {
        at: usize,
        other: u8,
        from: usize,
    },
}

impl Edit {
    /// The edit that three raw numbers name; every triple names one.
    pub fn from_raw(kind: u8, at: usize, x: u64) -> Edit {
        let small = (x & 0xff) as u8;
        let wide = x & 0x100 != 0;
        match kind % 10 {
            0 => Edit::FlipBit { at, bit: small % 8 },
            1 => Edit::SetByte { at, value: small },
            2 => Edit::Insert {
                at,
                value: small,
                count: (x >> 8) as u8 % 8 + 1,
            },
            3 => Edit::Delete {
                at,
                len: small % 16 + 1,
            },
            4 => Edit::Duplicate {
                at,
                len: small % 64 + 1,
            },
            5 => Edit::Truncate { at },
            6 => Edit::Word {
                at,
                wide,
                value: BOUNDARIES[usize::from(small) % BOUNDARIES.len()],
            },
            7 => Edit::Nudge {
                at,
                wide,
                delta: (x >> 16) as i8 % 9,
            },
            8 => Edit::Token {
                at,
                token: small,
                replace: (x >> 8) as u8 % 4,
            },
            _ => Edit::Splice {
                at,
                other: small,
                from: (x >> 8) as usize,
            },
        }
    }
}

/// `input` with `edits` applied in order; `pool` holds the inputs splices take from.
pub fn apply(input: &[u8], edits: &[Edit], pool: &[Vec<u8>]) -> Vec<u8> {
    let mut out = input.to_vec();
    for edit in edits {
        apply_one(&mut out, *edit, pool);
    }
    out
}

fn apply_one(out: &mut Vec<u8>, edit: Edit, pool: &[Vec<u8>]) {
    // Where a change can go: any byte, or the end for insertions.
    let pos = |at: usize, room: usize| at % (room + 1);
    let len = out.len();
    match edit {
        Edit::FlipBit { at, bit } if len > 0 => out[at % len] ^= 1 << bit,
        Edit::SetByte { at, value } if len > 0 => out[at % len] = value,
        Edit::Insert { at, value, count } => {
            let at = pos(at, len);
            out.splice(at..at, std::iter::repeat_n(value, usize::from(count)));
        }
        Edit::Delete { at, len: n } if len > 0 => {
            let at = at % len;
            let end = (at + usize::from(n)).min(len);
            out.drain(at..end);
        }
        Edit::Duplicate { at, len: n } if len > 0 => {
            let at = at % len;
            let end = (at + usize::from(n)).min(len);
            let run = out[at..end].to_vec();
            out.splice(end..end, run);
        }
        Edit::Truncate { at } => out.truncate(pos(at, len)),
        Edit::Word { at, wide, value } => {
            let width = if wide { 8 } else { 4 };
            if len >= width {
                let at = at % (len - width + 1);
                out[at..at + width].copy_from_slice(&value.to_le_bytes()[..width]);
            }
        }
        Edit::Nudge { at, wide, delta } => {
            let width = if wide { 8 } else { 4 };
            if len >= width {
                let at = at % (len - width + 1);
                let mut word = [0u8; 8];
                word[..width].copy_from_slice(&out[at..at + width]);
                let nudged = u64::from_le_bytes(word).wrapping_add_signed(i64::from(delta));
                out[at..at + width].copy_from_slice(&nudged.to_le_bytes()[..width]);
            }
        }
        Edit::Token { at, token, replace } => {
            let token = TOKENS[usize::from(token) % TOKENS.len()];
            let at = pos(at, len);
            let end = (at + usize::from(replace)).min(len);
            out.splice(at..end, token.iter().copied());
        }
        Edit::Splice { at, other, from } if !pool.is_empty() => {
            let other = &pool[usize::from(other) % pool.len()];
            let from = from % (other.len() + 1);
            out.truncate(pos(at, len));
            out.extend_from_slice(&other[from..]);
        }
        // Edits that need bytes to change do nothing to an empty input.
        _ => {}
    }
}

/// One to four random edits, as the tests' mutation loop applies them.
pub fn random_edits(rng: &mut SeededRng) -> Vec<Edit> {
    let count = 1 + rng.below(4) as usize;
    (0..count)
        .map(|_| {
            let kind = rng.below(10) as u8;
            let at = rng.next_u64() as usize;
            Edit::from_raw(kind, at, rng.next_u64())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_edit_applies_to_every_input_length() {
        let pool = vec![vec![9u8; 10], Vec::new()];
        for len in 0..12 {
            let input: Vec<u8> = (0..len).collect();
            for kind in 0..10 {
                for x in [0, 1, 0x1ff, u64::MAX] {
                    for at in [0, 3, usize::MAX] {
                        apply(&input, &[Edit::from_raw(kind, at, x)], &pool);
                    }
                }
            }
        }
    }

    #[test]
    fn word_edits_write_little_endian_boundaries() {
        let edit = Edit::Word {
            at: 2,
            wide: false,
            value: 0xffff_ffff,
        };
        assert_eq!(
            apply(&[0; 8], &[edit], &[]),
            [0, 0, 255, 255, 255, 255, 0, 0]
        );
        let nudge = Edit::Nudge {
            at: 0,
            wide: true,
            delta: -1,
        };
        assert_eq!(apply(&[0; 8], &[nudge], &[]), [255; 8]);
    }

    #[test]
    fn random_edits_replay_from_their_seed() {
        let (mut a, mut b) = (SeededRng::new(7), SeededRng::new(7));
        assert_eq!(random_edits(&mut a), random_edits(&mut b));
    }
}
