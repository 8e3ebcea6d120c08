//! The on-disk layout: column families, and how keys and values are laid out in them.
//!
//! Heights in keys are big-endian so that RocksDB's byte order is height order and a
//! range of heights is a range of keys. Every fixed-size value is checked for its size on
//! reading; a wrong size is corruption, never a panic.

use ordo_types::{Hash32, StateAccumulator, StateFamily};

use crate::error::{Result, StorageError};

/// State: key bytes to value bytes, as the executor wrote them; the keys of the native
/// family ([`StateFamily::Native`]). Contract code and contract storage have families of
/// their own ([`CF_CODE`], [`CF_SLOTS`]): code is large, written once and read by every
/// call; slots are most of a contract chain's keys. Apart, each gets the memtable and
/// cache behaviour its access pattern wants, and a state iteration can pick what it needs.
pub const CF_STATE: &str = "state";
/// Contract code, by code key.
pub const CF_CODE: &str = "code";
/// Contract storage slots, by slot key.
pub const CF_SLOTS: &str = "contract_storage";
/// Blocks by hash, bytes as consensus encoded them.
pub const CF_BLOCKS: &str = "blocks";
/// Quorum certificates by the hash of the block they certify.
pub const CF_QCS: &str = "qcs";
/// Committed height to block hash.
pub const CF_HEIGHTS: &str = "height_index";
/// Committed block hash to its height: the height index read backwards, for lookups of
/// a block by hash (the JSON-RPC's `eth_getBlockByHash`).
pub const CF_BLOCK_HEIGHTS: &str = "block_heights";
/// Batches by digest.
pub const CF_BATCHES: &str = "batches";
/// The transaction index and the receipts in one: transaction hash to its
/// [`TxLocation`] (13 bytes) followed by its receipt, as execution encoded it. One entry
/// per transaction instead of two makes a block's write batch a quarter smaller.
pub const CF_TXS: &str = "transactions";
/// Consensus safety data, one value.
pub const CF_SAFETY: &str = "safety";
/// Heights, state root, accumulator and per-height roots.
pub const CF_META: &str = "meta";
/// (height stored at, kind, hash) of every block, certificate and batch, and (height,
/// [`AgeKind::Txs`]) with the transaction hashes each committed height ordered: what
/// pruning removes, oldest first.
pub const CF_AGE: &str = "age_index";

pub const ALL_CFS: [&str; 12] = [
    CF_STATE,
    CF_CODE,
    CF_SLOTS,
    CF_BLOCKS,
    CF_QCS,
    CF_HEIGHTS,
    CF_BLOCK_HEIGHTS,
    CF_BATCHES,
    CF_TXS,
    CF_SAFETY,
    CF_META,
    CF_AGE,
];

/// The column family of a state family.
pub fn state_cf(family: StateFamily) -> &'static str {
    match family {
        StateFamily::Native => CF_STATE,
        StateFamily::Code => CF_CODE,
        StateFamily::Slots => CF_SLOTS,
    }
}

/// The column family holding state key `key`.
pub fn state_cf_of(key: &[u8]) -> &'static str {
    state_cf(StateFamily::of(key))
}

/// The version of what a store holds and where, stored under [`META_LAYOUT`] when a store
/// is created. A store written by another layout is refused at open: read with this one,
/// it would miss state or fail to decode it, and execute differently. Version 1 kept code
/// and slots in [`CF_STATE`]; version 2 stored accounts without execution's contract flag
/// (storage keeps values opaque, but a store's values must be what this build decodes);
/// version 3 stored 64-bit balances (and blocks with 64-bit amounts), version 4 batches
/// of transactions of one kind; version 5 batches whose transactions are Ordo's or
/// Ethereum's; version 6 added [`CF_BLOCK_HEIGHTS`], which a store of version 5 lacks
/// entries in; version 7 stores blocks (and safety data) whose blocks carry state roots.
pub const LAYOUT_VERSION: u32 = 7;

pub const SAFETY_KEY: &[u8] = b"safety";
pub const META_COMMITTED: &[u8] = b"committed_height";
pub const META_EXECUTED: &[u8] = b"executed_height";
pub const META_STATE_ROOT: &[u8] = b"state_root";
pub const META_ACCUMULATOR: &[u8] = b"accumulator";
pub const META_PRUNED_BELOW: &[u8] = b"pruned_below";
pub const META_LAYOUT: &[u8] = b"layout_version";
/// Present while the store is to be emptied for a state sync (see
/// [`crate::Storage::mark_for_resync`]).
pub const META_RESYNC: &[u8] = b"resync";
/// The identity of the chain the store holds (see [`crate::Storage::genesis_identity`]).
pub const META_GENESIS: &[u8] = b"genesis_identity";
const META_ROOT_PREFIX: &[u8] = b"root/";
/// The manifest of the restore under way, written before any of its state (see
/// `snapshot::restore`); absent when none is.
pub const META_RESTORE_MANIFEST: &[u8] = b"restore/manifest";
/// Followed by a chunk index (big-endian `u32`): that chunk of the restore under way is
/// applied. Written in the same batch as the chunk's entries.
pub const META_RESTORE_CHUNK_PREFIX: &[u8] = b"restore/chunk/";
/// `ordered/<transaction hash>` to the latest height (8 bytes, big-endian) that ordered
/// it without its execution being indexed: a copy the duplicate rule skipped, or what
/// state sync recorded below a snapshot (see [`crate::Storage::ordered_at`]; aborting
/// that snapshot's restore deletes them).
pub const META_ORDERED_PREFIX: &[u8] = b"ordered/";

pub fn ordered_key(hash: &Hash32) -> Vec<u8> {
    [META_ORDERED_PREFIX, hash.as_bytes()].concat()
}

pub fn height_key(height: u64) -> [u8; 8] {
    height.to_be_bytes()
}

/// The meta key of the state root after executing `height`.
pub fn root_key(height: u64) -> [u8; 13] {
    let mut key = [0u8; 13];
    key[..5].copy_from_slice(META_ROOT_PREFIX);
    key[5..].copy_from_slice(&height.to_be_bytes());
    key
}

/// The meta key recording that chunk `index` of the restore under way is applied.
pub fn restore_chunk_key(index: u32) -> Vec<u8> {
    let mut key = META_RESTORE_CHUNK_PREFIX.to_vec();
    key.extend_from_slice(&index.to_be_bytes());
    key
}

/// The chunk index of a key made by [`restore_chunk_key`].
pub fn decode_restore_chunk_key(key: &[u8]) -> Result<u32> {
    let index = key
        .strip_prefix(META_RESTORE_CHUNK_PREFIX)
        .and_then(|rest| <[u8; 4]>::try_from(rest).ok())
        .ok_or_else(|| StorageError::malformed("restore chunk key", format!("{key:?}")))?;
    Ok(u32::from_be_bytes(index))
}

pub fn decode_height(what: &str, bytes: &[u8]) -> Result<u64> {
    let array: [u8; 8] = bytes
        .try_into()
        .map_err(|_| StorageError::malformed(what, format!("{} bytes, expected 8", bytes.len())))?;
    Ok(u64::from_be_bytes(array))
}

pub fn decode_hash(what: &str, bytes: &[u8]) -> Result<Hash32> {
    let array: [u8; 32] = bytes.try_into().map_err(|_| {
        StorageError::malformed(what, format!("{} bytes, expected 32", bytes.len()))
    })?;
    Ok(Hash32(array))
}

pub fn decode_accumulator(bytes: &[u8]) -> Result<StateAccumulator> {
    StateAccumulator::from_bytes(bytes).map_err(|e| StorageError::malformed("accumulator", e))
}

/// Where a transaction ended up: the block's height, its position in the block, and the
/// execution's status code (whose meaning belongs to execution).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TxLocation {
    pub height: u64,
    pub position: u32,
    pub status: u8,
}

impl TxLocation {
    pub(crate) const ENCODED_LEN: usize = 13;

    pub(crate) fn encode(&self) -> [u8; Self::ENCODED_LEN] {
        let mut out = [0u8; Self::ENCODED_LEN];
        out[..8].copy_from_slice(&self.height.to_be_bytes());
        out[8..12].copy_from_slice(&self.position.to_be_bytes());
        out[12] = self.status;
        out
    }

    /// Splits a transaction entry into its location and its receipt.
    pub(crate) fn split(bytes: &[u8]) -> Result<(Self, &[u8])> {
        if bytes.len() < Self::ENCODED_LEN {
            return Err(StorageError::malformed(
                "transaction entry",
                format!(
                    "{} bytes, expected at least {}",
                    bytes.len(),
                    Self::ENCODED_LEN
                ),
            ));
        }
        let (location, receipt) = bytes.split_at(Self::ENCODED_LEN);
        let mut height = [0u8; 8];
        height.copy_from_slice(&location[..8]);
        let mut position = [0u8; 4];
        position.copy_from_slice(&location[8..12]);
        let location = TxLocation {
            height: u64::from_be_bytes(height),
            position: u32::from_be_bytes(position),
            status: location[12],
        };
        Ok((location, receipt))
    }
}

/// What an entry of the age index points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum AgeKind {
    Block = 1,
    Batch = 2,
    /// The hashes a committed height ordered, as the entry's value ([`ordered_list`]):
    /// what pruning that height removes from [`CF_TXS`] (the executed ones) and the
    /// `ordered/` records (the others). The entry's own hash only makes its key unique.
    Txs = 3,
}

/// The bytes before the hashes of an [`AgeKind::Txs`] list: how many of them were
/// executed (big-endian `u32`).
pub const ORDERED_LIST_HEADER: usize = 4;

/// An [`AgeKind::Txs`] list: the count of executed hashes, those hashes (each has an
/// index entry this height wrote), then the hashes ordered without executing (each has
/// an `ordered/` record this height wrote), 32 bytes each. Pruning reads each record
/// where it was written, and nowhere else.
pub fn ordered_list<'a>(
    executed: impl ExactSizeIterator<Item = &'a Hash32>,
    others: impl Iterator<Item = &'a Hash32>,
) -> Vec<u8> {
    let count = u32::try_from(executed.len()).unwrap_or(u32::MAX);
    let mut list = count.to_be_bytes().to_vec();
    for hash in executed.take(count as usize).chain(others) {
        list.extend_from_slice(hash.as_bytes());
    }
    list
}

/// Hashes of an [`ordered_list`], as slices of it.
pub type HashSlices<'a> = Vec<&'a [u8]>;

/// Splits an [`ordered_list`] into its executed hashes and the others.
pub fn split_ordered_list(list: &[u8]) -> Result<(HashSlices<'_>, HashSlices<'_>)> {
    let malformed = || {
        StorageError::malformed(
            "age index transaction list",
            format!("{} bytes", list.len()),
        )
    };
    if list.len() < ORDERED_LIST_HEADER || (list.len() - ORDERED_LIST_HEADER) % 32 != 0 {
        return Err(malformed());
    }
    let (header, hashes) = list.split_at(ORDERED_LIST_HEADER);
    let executed = u32::from_be_bytes(header.try_into().map_err(|_| malformed())?) as usize;
    let hashes: Vec<&[u8]> = hashes.chunks_exact(32).collect();
    if executed > hashes.len() {
        return Err(malformed());
    }
    let mut executed_hashes = hashes;
    let others = executed_hashes.split_off(executed);
    Ok((executed_hashes, others))
}

pub const AGE_KEY_LEN: usize = 8 + 1 + 32;

pub fn age_key(height: u64, kind: AgeKind, hash: &Hash32) -> [u8; AGE_KEY_LEN] {
    let mut key = [0u8; AGE_KEY_LEN];
    key[..8].copy_from_slice(&height.to_be_bytes());
    key[8] = kind as u8;
    key[9..].copy_from_slice(hash.as_bytes());
    key
}

pub fn decode_age_key(bytes: &[u8]) -> Result<(u64, AgeKind, Hash32)> {
    if bytes.len() != AGE_KEY_LEN {
        return Err(StorageError::malformed(
            "age index key",
            format!("{} bytes", bytes.len()),
        ));
    }
    let height = decode_height("age index height", &bytes[..8])?;
    let kind = match bytes[8] {
        1 => AgeKind::Block,
        2 => AgeKind::Batch,
        3 => AgeKind::Txs,
        other => return Err(StorageError::malformed("age index kind", other)),
    };
    let hash = decode_hash("age index hash", &bytes[9..])?;
    Ok((height, kind, hash))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordered_lists_round_trip_and_reject_bad_sizes() {
        let a = Hash32::digest(b"a\0", b"");
        let b = Hash32::digest(b"b\0", b"");
        let list = ordered_list([a].iter(), [b].iter());
        let (executed, others) = split_ordered_list(&list).unwrap();
        assert_eq!(executed, vec![a.as_bytes().as_slice()]);
        assert_eq!(others, vec![b.as_bytes().as_slice()]);
        assert!(split_ordered_list(&list[..list.len() - 1]).is_err());
        assert!(
            split_ordered_list(&[0, 0, 0, 2]).is_err(),
            "more executed than hashes"
        );
        assert!(split_ordered_list(&[]).is_err());
    }

    #[test]
    fn tx_entries_round_trip_and_reject_bad_sizes() {
        let loc = TxLocation {
            height: 7,
            position: 9,
            status: 2,
        };
        let mut entry = loc.encode().to_vec();
        assert_eq!(TxLocation::split(&entry).unwrap(), (loc, &b""[..]));
        entry.extend_from_slice(b"receipt");
        assert_eq!(TxLocation::split(&entry).unwrap(), (loc, &b"receipt"[..]));
        assert!(matches!(
            TxLocation::split(&[0; 12]),
            Err(StorageError::Corruption(_))
        ));
    }

    #[test]
    fn height_keys_sort_by_height() {
        assert!(height_key(255) < height_key(256));
        assert!(root_key(255) < root_key(256));
        let h = Hash32([9; 32]);
        assert!(age_key(1, AgeKind::Batch, &h) < age_key(2, AgeKind::Block, &h));
        assert_eq!(
            decode_age_key(&age_key(3, AgeKind::Batch, &h)).unwrap(),
            (3, AgeKind::Batch, h)
        );
        assert!(decode_age_key(&[0; 5]).is_err());
    }
}
