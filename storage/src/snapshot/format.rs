//! A snapshot's format: the manifest, the chunks it lists, the deterministic cut of the
//! state into chunks, and the limits that bound decoding either.
//!
//! A chunk is the canonical encoding ([`ordo_types::codec`]) of a list of `(key, value)`
//! state entries, in snapshot order: families in [`StateFamily::ALL`] order, each family
//! in key order. The cut is a pure function of the state and the chunk budget: a chunk
//! ends as soon as its encoding reaches the budget or it holds [`MAX_CHUNK_ENTRIES`]
//! entries. So validators with the same state at a height produce byte-identical chunks
//! and manifests, and a syncing node can trust a manifest that several peers agree on.
//!
//! Everything decoded here may come from a peer: sizes are checked against the limits
//! before anything is allocated for them, and every failure is a typed error.

use bincode::{Decode, Encode};
use ordo_types::{codec, Hash32, StateAccumulator, StateFamily};

use crate::error::{Result, StorageError};

/// The version of the manifest and chunk encoding; a manifest of another version is
/// refused rather than misread.
pub const SNAPSHOT_FORMAT: u32 = 1;

/// The default chunk budget, in encoded bytes: large enough that per-chunk overhead (one
/// request, one hash, one write batch, 40 manifest bytes) is small, small enough that a
/// chunk travels in one network response and a lost one costs little to fetch again.
pub const DEFAULT_CHUNK_BYTES: usize = 1 << 20;

/// The largest encoded chunk accepted: bounds the memory one chunk takes to decode and
/// apply. Sixteen default budgets, so that one entry of up to [`MAX_ENTRY_BYTES`] (far
/// above the EVM's 24 KiB code limit) still fits behind a chunk that is almost full.
pub const MAX_CHUNK_BYTES: usize = 16 << 20;

/// The largest single entry (encoded: key, value and their two length prefixes) a
/// snapshot can carry, and the largest chunk budget: their sum stays within
/// [`MAX_CHUNK_BYTES`].
pub const MAX_ENTRY_BYTES: usize = MAX_CHUNK_BYTES / 2;

/// Entries per chunk, at most: bounds the allocations of decoding a chunk of tiny
/// entries. Typical entries (accounts, slots) are 60-100 bytes, so a default chunk ends
/// on its byte budget long before this.
pub const MAX_CHUNK_ENTRIES: u32 = 1 << 16;

/// Chunks per manifest, at most: 64 GiB of state at the default budget, and a manifest
/// of at most [`MAX_MANIFEST_BYTES`] (about 2.6 MiB), which fits one answer of the
/// network's sync protocol (8 MiB) with room to spare.
pub const MAX_CHUNKS: usize = 1 << 16;

/// Encoded size of a manifest's fixed fields: format, height, root, entries, and the
/// chunk list's length prefix.
const MANIFEST_HEADER_BYTES: usize = 4 + 8 + 32 + 8 + 8;
/// Encoded size of one [`ChunkInfo`].
const CHUNK_INFO_BYTES: usize = 32 + 4 + 4;
/// The largest encoded manifest accepted.
pub const MAX_MANIFEST_BYTES: usize = MANIFEST_HEADER_BYTES + MAX_CHUNKS * CHUNK_INFO_BYTES;

/// Encoded size of a chunk's entry count, and of one entry beyond its key and value.
const CHUNK_HEADER_BYTES: usize = 8;
const ENTRY_OVERHEAD_BYTES: usize = 16;

const CHUNK_DOMAIN: &[u8] = b"ordo/snapshot-chunk\0";
const MANIFEST_DOMAIN: &[u8] = b"ordo/snapshot-manifest\0";

/// What a snapshot of the state at one height holds, and how to check each piece.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct SnapshotManifest {
    /// [`SNAPSHOT_FORMAT`] of the snapshot's writer.
    pub format: u32,
    /// The executed height whose resulting state this is.
    pub height: u64,
    /// The state root after executing `height`: what consensus certifies.
    pub state_root: Hash32,
    /// State entries in all chunks together.
    pub entries: u64,
    /// The chunks in snapshot order; an empty state has none.
    pub chunks: Vec<ChunkInfo>,
}

/// One chunk as the manifest pins it. No per-chunk accumulator: its 2 KiB would make the
/// manifest fifty times larger, and the hash already pins the chunk's content; the sum is
/// checked once, over the restored state, when the restore finishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Encode, Decode)]
pub struct ChunkInfo {
    /// [`SnapshotManifest::chunk_hash`] of the chunk's encoded bytes.
    pub hash: Hash32,
    pub entries: u32,
    /// Length of the chunk's encoded bytes.
    pub bytes: u32,
}

impl SnapshotManifest {
    /// The canonical bytes, as stored and served to peers.
    pub fn encode(&self) -> Vec<u8> {
        codec::encode(self)
    }

    /// Decodes and checks a manifest from untrusted bytes (see [`Self::validate`]).
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let manifest = codec::decode::<Self, MAX_MANIFEST_BYTES>(bytes)
            .map_err(|e| StorageError::InvalidManifest(e.to_string()))?;
        manifest.validate()?;
        Ok(manifest)
    }

    /// Identifies the manifest: peers that agree on it agree on every chunk.
    pub fn digest(&self) -> Hash32 {
        Hash32::digest(MANIFEST_DOMAIN, &self.encode())
    }

    /// The hash a manifest lists for a chunk's encoded bytes.
    pub fn chunk_hash(bytes: &[u8]) -> Hash32 {
        Hash32::digest(CHUNK_DOMAIN, bytes)
    }

    /// Encoded bytes of all chunks together.
    pub fn total_bytes(&self) -> u64 {
        self.chunks.iter().map(|c| u64::from(c.bytes)).sum()
    }

    /// Checks what can be checked without the chunks: the format, the limits, and that
    /// the per-chunk counts add up. A manifest that passes can be restored from without
    /// any count or size overflowing.
    pub fn validate(&self) -> Result<()> {
        let invalid = |reason: String| Err(StorageError::InvalidManifest(reason));
        if self.format != SNAPSHOT_FORMAT {
            return invalid(format!(
                "format {}, this build reads {SNAPSHOT_FORMAT}",
                self.format
            ));
        }
        if self.chunks.len() > MAX_CHUNKS {
            return invalid(format!(
                "{} chunks, at most {MAX_CHUNKS}",
                self.chunks.len()
            ));
        }
        let mut entries: u64 = 0;
        for (index, chunk) in self.chunks.iter().enumerate() {
            if chunk.entries == 0 || chunk.entries > MAX_CHUNK_ENTRIES {
                return invalid(format!(
                    "chunk {index} claims {} entries (1 to {MAX_CHUNK_ENTRIES})",
                    chunk.entries
                ));
            }
            let least = CHUNK_HEADER_BYTES + chunk.entries as usize * ENTRY_OVERHEAD_BYTES;
            if (chunk.bytes as usize) < least || chunk.bytes as usize > MAX_CHUNK_BYTES {
                return invalid(format!(
                    "chunk {index} claims {} bytes ({least} to {MAX_CHUNK_BYTES})",
                    chunk.bytes
                ));
            }
            entries += u64::from(chunk.entries);
        }
        if entries != self.entries {
            return invalid(format!(
                "chunks hold {entries} entries, the manifest claims {}",
                self.entries
            ));
        }
        Ok(())
    }
}

/// The entries of one chunk, decoded.
pub(crate) type Entries = Vec<(Vec<u8>, Vec<u8>)>;

/// Checks chunk `index`'s bytes against the manifest and decodes its entries: the size,
/// the hash, then the encoding, the entry count and the order.
pub(crate) fn decode_chunk(
    manifest: &SnapshotManifest,
    index: u32,
    bytes: &[u8],
) -> Result<Entries> {
    let invalid = |reason: String| StorageError::InvalidChunk { index, reason };
    let Some(info) = manifest.chunks.get(index as usize) else {
        return Err(invalid(format!(
            "the manifest lists {} chunks",
            manifest.chunks.len()
        )));
    };
    if bytes.len() != info.bytes as usize {
        return Err(invalid(format!(
            "{} bytes, the manifest lists {}",
            bytes.len(),
            info.bytes
        )));
    }
    let hash = SnapshotManifest::chunk_hash(bytes);
    if hash != info.hash {
        return Err(invalid(format!(
            "hash {hash}, the manifest lists {}",
            info.hash
        )));
    }
    let entries = codec::decode::<Entries, MAX_CHUNK_BYTES>(bytes)
        .map_err(|e| invalid(format!("does not decode: {e}")))?;
    if entries.len() != info.entries as usize {
        return Err(invalid(format!(
            "{} entries, the manifest lists {}",
            entries.len(),
            info.entries
        )));
    }
    for (i, pair) in entries.windows(2).enumerate() {
        if snapshot_order(&pair[0].0) >= snapshot_order(&pair[1].0) {
            return Err(invalid(format!(
                "entry {} is not above entry {i} in snapshot order",
                i + 1
            )));
        }
    }
    Ok(entries)
}

/// Where a key sorts in a snapshot: by family, then by key within the family's column
/// family. Not plain key order: a native key may have any first byte but a code or slot
/// tag, so it may sort after code keys.
fn snapshot_order(key: &[u8]) -> (StateFamily, &[u8]) {
    (StateFamily::of(key), key)
}

/// Cuts entries, fed in snapshot order, into chunks and builds the manifest; the
/// deterministic core of writing a snapshot, apart from where entries come from and
/// where chunks go.
pub(crate) struct Chunker {
    budget: usize,
    pending: Entries,
    pending_bytes: usize,
    chunks: Vec<ChunkInfo>,
    entries: u64,
    /// The accumulator of every entry fed, to check the snapshot against its root.
    accumulator: StateAccumulator,
}

impl Chunker {
    /// A chunker that ends chunks at `budget` encoded bytes, clamped to
    /// [1, [`MAX_ENTRY_BYTES`]] so that no chunk can exceed [`MAX_CHUNK_BYTES`].
    pub fn new(budget: usize) -> Self {
        Chunker {
            budget: budget.clamp(1, MAX_ENTRY_BYTES),
            pending: Vec::new(),
            pending_bytes: CHUNK_HEADER_BYTES,
            chunks: Vec::new(),
            entries: 0,
            accumulator: StateAccumulator::new(),
        }
    }

    /// Adds the next entry; returns the chunk it completed, as encoded bytes. An error
    /// for an entry too large for any chunk, or one chunk too many.
    pub fn push(&mut self, key: Vec<u8>, value: Vec<u8>) -> Result<Option<Vec<u8>>, String> {
        let size = ENTRY_OVERHEAD_BYTES + key.len() + value.len();
        if size > MAX_ENTRY_BYTES {
            return Err(format!(
                "a state entry of {size} encoded bytes exceeds the {MAX_ENTRY_BYTES}-byte limit"
            ));
        }
        self.accumulator.insert(&key, &value);
        self.pending.push((key, value));
        self.pending_bytes += size;
        if self.pending_bytes >= self.budget || self.pending.len() >= MAX_CHUNK_ENTRIES as usize {
            return self.seal().map(Some);
        }
        Ok(None)
    }

    /// Ends the last chunk; returns it if it holds any entry.
    pub fn finish_chunk(&mut self) -> Result<Option<Vec<u8>>, String> {
        if self.pending.is_empty() {
            return Ok(None);
        }
        self.seal().map(Some)
    }

    fn seal(&mut self) -> Result<Vec<u8>, String> {
        if self.chunks.len() == MAX_CHUNKS {
            return Err(format!("the state needs more than {MAX_CHUNKS} chunks"));
        }
        let bytes = codec::encode(&self.pending);
        debug_assert_eq!(bytes.len(), self.pending_bytes);
        self.chunks.push(ChunkInfo {
            hash: SnapshotManifest::chunk_hash(&bytes),
            // Both fit: at most MAX_CHUNK_ENTRIES entries in at most MAX_CHUNK_BYTES.
            entries: self.pending.len() as u32,
            bytes: bytes.len() as u32,
        });
        self.entries += self.pending.len() as u64;
        self.pending.clear();
        self.pending_bytes = CHUNK_HEADER_BYTES;
        Ok(bytes)
    }

    /// The manifest of every chunk sealed, and the accumulator of every entry fed (the
    /// caller compares its root with the state root). Call after [`Self::finish_chunk`].
    pub fn manifest(self, height: u64, state_root: Hash32) -> (SnapshotManifest, StateAccumulator) {
        debug_assert!(self.pending.is_empty(), "the last chunk is sealed first");
        let manifest = SnapshotManifest {
            format: SNAPSHOT_FORMAT,
            height,
            state_root,
            entries: self.entries,
            chunks: self.chunks,
        };
        (manifest, self.accumulator)
    }
}

/// Where a restore stands: the manifest it restores and the chunks already applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreProgress {
    pub manifest: SnapshotManifest,
    /// Indices of the chunks applied, ascending.
    pub applied: Vec<u32>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use ordo_types::CODE_KEY_TAG;

    fn entries(n: u32) -> Entries {
        (0..n)
            .map(|i| (format!("key{i:05}").into_bytes(), vec![i as u8; 40]))
            .collect()
    }

    fn cut(entries: &Entries, budget: usize) -> (Vec<Vec<u8>>, SnapshotManifest) {
        let mut chunker = Chunker::new(budget);
        let mut chunks = Vec::new();
        for (k, v) in entries {
            chunks.extend(chunker.push(k.clone(), v.clone()).unwrap());
        }
        chunks.extend(chunker.finish_chunk().unwrap());
        let (manifest, accumulator) = chunker.manifest(7, Hash32::ZERO);
        let mut expected = StateAccumulator::new();
        entries.iter().for_each(|(k, v)| expected.insert(k, v));
        assert_eq!(accumulator, expected);
        (chunks, manifest)
    }

    #[test]
    fn the_cut_is_deterministic_and_respects_the_budget() {
        let all = entries(100);
        let (chunks, manifest) = cut(&all, 1000);
        assert_eq!((chunks, manifest.clone()), cut(&all, 1000));
        assert!(manifest.chunks.len() > 3);
        assert_eq!(manifest.entries, 100);
        manifest.validate().unwrap();
        let (chunks, manifest) = cut(&all, 1000);
        let mut decoded = Vec::new();
        for (i, bytes) in chunks.iter().enumerate() {
            // Each chunk but the last ends at the first entry that reaches the budget.
            assert!(i + 1 == chunks.len() || bytes.len() >= 1000);
            assert!(bytes.len() < 1000 + 64);
            decoded.extend(decode_chunk(&manifest, i as u32, bytes).unwrap());
        }
        assert_eq!(decoded, all);
    }

    #[test]
    fn an_empty_state_has_no_chunks() {
        let (chunks, manifest) = cut(&Vec::new(), 1000);
        assert!(chunks.is_empty());
        manifest.validate().unwrap();
        assert_eq!(
            SnapshotManifest::decode(&manifest.encode()).unwrap(),
            manifest
        );
    }

    #[test]
    fn the_manifest_limit_holds_the_largest_manifest() {
        let info = ChunkInfo {
            hash: Hash32::ZERO,
            entries: 1,
            bytes: 100,
        };
        let manifest = SnapshotManifest {
            format: SNAPSHOT_FORMAT,
            height: 1,
            state_root: Hash32::ZERO,
            entries: MAX_CHUNKS as u64,
            chunks: vec![info; MAX_CHUNKS],
        };
        assert_eq!(manifest.encode().len(), MAX_MANIFEST_BYTES);
        assert_eq!(
            SnapshotManifest::decode(&manifest.encode()).unwrap(),
            manifest
        );
    }

    #[test]
    fn entries_out_of_snapshot_order_are_refused() {
        // A native key after a code key is out of order even though its bytes sort higher.
        let misordered: Entries = vec![
            (vec![CODE_KEY_TAG, 1], b"code".to_vec()),
            (vec![0xff, 1], b"native".to_vec()),
        ];
        let bytes = codec::encode(&misordered);
        let manifest = SnapshotManifest {
            format: SNAPSHOT_FORMAT,
            height: 1,
            state_root: Hash32::ZERO,
            entries: 2,
            chunks: vec![ChunkInfo {
                hash: SnapshotManifest::chunk_hash(&bytes),
                entries: 2,
                bytes: bytes.len() as u32,
            }],
        };
        assert!(matches!(
            decode_chunk(&manifest, 0, &bytes),
            Err(StorageError::InvalidChunk { index: 0, .. })
        ));
        let mut ordered = misordered;
        ordered.reverse();
        let (_, manifest) = cut(&ordered, 1 << 20);
        let bytes = codec::encode(&ordered);
        assert_eq!(decode_chunk(&manifest, 0, &bytes).unwrap(), ordered);
    }

    #[test]
    fn an_oversized_entry_is_refused() {
        let mut chunker = Chunker::new(1000);
        assert!(chunker
            .push(b"k".to_vec(), vec![0; MAX_ENTRY_BYTES])
            .is_err());
    }
}
