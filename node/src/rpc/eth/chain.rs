//! What the Ethereum JSON-RPC shows of the chain: transactions (committed, or pending in
//! this validator's pool), receipts, blocks and logs, in Ethereum's shapes, read from the
//! blocks, batches and receipts this validator stores.
//!
//! Invariants: every validator answers alike for a committed transaction (everything is
//! derived from the committed chain); the work of one request is bounded (a block's
//! receipts, or the `eth_getLogs` limits of the parent module).

use alloy_primitives::{Bloom, BloomInput};
use ordo_consensus::messages::MAX_MESSAGE_BYTES;
use ordo_consensus::Block;
use ordo_execution::{Receipt, TxStatus, MAX_RECEIPT_BYTES};
use ordo_types::{codec, Address, Amount, Hash32, Payload, SignedTransaction};
use serde_json::{json, Value};

use super::params::{
    block_param, data, hex_bytes, qty, RpcError, RpcResult, INTERNAL, LIMIT_EXCEEDED,
};
use crate::rpc::{transaction_in_block, RpcState};

/// The most blocks one `eth_getLogs` may scan: each block's receipts are read from RocksDB.
pub const MAX_LOG_BLOCKS: u64 = 1_000;
/// The most logs one `eth_getLogs` answer holds.
pub const MAX_LOGS: usize = 10_000;
/// The most receipts one `eth_getLogs` reads, matching or not.
pub const MAX_LOG_RECEIPTS: usize = 200_000;
/// The most addresses, and topics in one position, of an `eth_getLogs` filter.
pub const MAX_FILTER_ITEMS: usize = 1_000;

/// A committed transaction: where it ran, its receipt, itself and its block's hash.
struct Committed {
    location: ordo_storage::TxLocation,
    receipt: Option<Receipt>,
    tx: SignedTransaction,
    block_hash: Hash32,
}

/// A committed transaction; `None` when it is not in a block.
fn committed(state: &RpcState, hash: &Hash32) -> RpcResult<Option<Committed>> {
    let storage = &state.shared.storage;
    let internal = |e: &dyn std::fmt::Display| RpcError::new(INTERNAL, e.to_string());
    let Some((location, receipt)) = storage.transaction(hash).map_err(|e| internal(&e))? else {
        return Ok(None);
    };
    let receipt = codec::decode::<Receipt, MAX_RECEIPT_BYTES>(&receipt).ok();
    let Some(tx) = transaction_in_block(state, location.height, hash) else {
        return Ok(None);
    };
    let block_hash = storage
        .block_hash_at(location.height)
        .map_err(|e| internal(&e))?
        .unwrap_or_default();
    Ok(Some(Committed {
        location,
        receipt,
        tx,
        block_hash,
    }))
}

fn to_of(tx: &SignedTransaction) -> Value {
    match tx.payload() {
        Payload::Call { to, .. } | Payload::Transfer { to, .. } => json!(to),
        _ => Value::Null,
    }
}

fn value_of(tx: &SignedTransaction) -> Amount {
    match tx.payload() {
        Payload::Call { value, .. } | Payload::Deploy { value, .. } => *value,
        Payload::Transfer { amount, .. } => *amount,
        _ => 0,
    }
}

pub(super) fn receipt_json(state: &RpcState, hash: &Hash32) -> RpcResult {
    let Some(Committed {
        location,
        receipt,
        tx,
        block_hash,
    }) = committed(state, hash)?
    else {
        return Ok(Value::Null);
    };
    let receipt = receipt.ok_or_else(|| RpcError::new(INTERNAL, "the receipt does not decode"))?;
    let outcome = receipt.evm.as_deref();
    // What the block's earlier transactions used and logged: cumulative gas and block-wide
    // log indices, as Ethereum's receipts carry them.
    let before = BlockTotals::before(state, location.height, Some(hash))?;
    let mut bloom = Bloom::ZERO;
    let logs: Vec<Value> = outcome
        .map(|o| o.logs.as_slice())
        .unwrap_or_default()
        .iter()
        .enumerate()
        .map(|(i, log)| {
            bloom.accrue(BloomInput::Raw(&log.address.0));
            for topic in &log.topics {
                bloom.accrue(BloomInput::Raw(topic));
            }
            json!({
                "address": log.address,
                "topics": log.topics.iter().map(|t| data(t)).collect::<Vec<_>>(),
                "data": data(&log.data),
                "blockNumber": qty(location.height),
                "blockHash": data(&block_hash.0),
                "transactionHash": data(&hash.0),
                "transactionIndex": qty(location.position),
                "logIndex": qty(before.logs + i as u64),
                "removed": false,
            })
        })
        .collect();
    let success = receipt.status == TxStatus::Success;
    Ok(json!({
        "transactionHash": data(&hash.0),
        "transactionIndex": qty(location.position),
        "blockHash": data(&block_hash.0),
        "blockNumber": qty(location.height),
        "from": tx.sender_address(),
        "to": to_of(&tx),
        "cumulativeGasUsed": qty(before.gas + receipt.gas_used),
        "gasUsed": qty(receipt.gas_used),
        "effectiveGasPrice": qty(state.chain.gas_price),
        "contractAddress": outcome.and_then(|o| o.created),
        "logs": logs,
        "logsBloom": data(bloom.as_slice()),
        "status": qty(u64::from(success)),
        "type": qty(u64::from(tx_type(&tx))),
    }))
}

/// Sums over a block's receipts in execution order.
#[derive(Default)]
struct BlockTotals {
    gas: u64,
    logs: u64,
    bloom: Bloom,
}

impl BlockTotals {
    /// Over the receipts of block `height` before transaction `until`, or all of them.
    fn before(state: &RpcState, height: u64, until: Option<&Hash32>) -> RpcResult<Self> {
        let storage = &state.shared.storage;
        let hashes = crate::rpc::block_transaction_hashes(state, height).map_err(RpcError::from)?;
        let mut totals = BlockTotals::default();
        for hash in hashes.iter().take_while(|h| Some(*h) != until) {
            let Some((_, bytes)) = storage
                .transaction(hash)
                .map_err(|e| RpcError::new(INTERNAL, e.to_string()))?
            else {
                continue;
            };
            let Ok(receipt) = codec::decode::<Receipt, MAX_RECEIPT_BYTES>(&bytes) else {
                continue;
            };
            totals.gas = totals.gas.saturating_add(receipt.gas_used);
            for log in receipt.evm.iter().flat_map(|o| o.logs.iter()) {
                totals.logs += 1;
                totals.bloom.accrue(BloomInput::Raw(&log.address.0));
                for topic in &log.topics {
                    totals.bloom.accrue(BloomInput::Raw(topic));
                }
            }
        }
        Ok(totals)
    }
}

fn tx_type(tx: &SignedTransaction) -> u8 {
    match tx {
        SignedTransaction::Ethereum(e) => e.tx_type(),
        // Ordo's own transactions have no Ethereum type; shown as legacy.
        SignedTransaction::Ordo(_) => 0,
    }
}

pub(super) fn transaction_json(state: &RpcState, hash: &Hash32) -> RpcResult {
    let Some(Committed {
        location,
        tx,
        block_hash,
        ..
    }) = committed(state, hash)?
    else {
        // Pending: held by this validator's pool, not yet in a block.
        return Ok(state
            .mempool
            .get(hash)
            .map_or(Value::Null, |tx| transaction_object(state, &tx, hash, None)));
    };
    Ok(transaction_object(
        state,
        &tx,
        hash,
        Some((location.height, location.position, block_hash)),
    ))
}

fn transaction_object(
    state: &RpcState,
    tx: &SignedTransaction,
    hash: &Hash32,
    place: Option<(u64, u32, Hash32)>,
) -> Value {
    let (input, gas) = match tx.payload() {
        Payload::Call {
            input, gas_limit, ..
        } => (input.as_slice(), *gas_limit),
        Payload::Deploy {
            init_code,
            gas_limit,
            ..
        } => (init_code.as_slice(), *gas_limit),
        _ => (&[][..], 0),
    };
    let mut object = json!({
        "hash": data(&hash.0),
        "nonce": qty(tx.nonce()),
        "from": tx.sender_address(),
        "to": to_of(tx),
        "value": qty(value_of(tx)),
        "gas": qty(gas),
        "gasPrice": qty(state.chain.gas_price),
        "input": data(input),
        "type": qty(u64::from(tx_type(tx))),
        "chainId": qty(tx.chain_id()),
        "blockHash": Value::Null,
        "blockNumber": Value::Null,
        "transactionIndex": Value::Null,
    });
    if let Some((height, position, block_hash)) = place {
        object["blockHash"] = data(&block_hash.0);
        object["blockNumber"] = qty(height);
        object["transactionIndex"] = qty(position);
    }
    match tx {
        SignedTransaction::Ethereum(e) => {
            let (r, s, odd) = e.signature();
            object["r"] = data(&r);
            object["s"] = data(&s);
            object["yParity"] = qty(u64::from(odd));
            // Legacy transactions carry EIP-155's v; typed ones the parity alone.
            object["v"] = match e.tx_type() {
                0 => qty(u128::from(tx.chain_id()) * 2 + 35 + u128::from(odd)),
                _ => qty(u64::from(odd)),
            };
            object["raw"] = data(e.raw());
            match e.tx_type() {
                // What it was signed with; an EIP-1559 transaction's is the price paid.
                0 | 1 => object["gasPrice"] = qty(e.fee_cap()),
                _ => {
                    object["maxFeePerGas"] = qty(e.fee_cap());
                    object["maxPriorityFeePerGas"] = qty(e.priority_fee());
                }
            }
        }
        // An ed25519 signature has no (r, s, v): zeros, so that clients that parse every
        // transaction of a block as Ethereum's still can; `from` is its sender.
        SignedTransaction::Ordo(_) => {
            object["r"] = qty(0u64);
            object["s"] = qty(0u64);
            object["v"] = qty(0u64);
            object["yParity"] = qty(0u64);
        }
    }
    object
}

/// An `eth_getLogs` filter: a block range (or one block by hash), addresses and topics.
#[derive(Debug)]
pub(super) struct LogFilter {
    from: u64,
    to: u64,
    /// Empty: any address.
    addresses: Vec<Address>,
    /// Per position: the topics allowed there (empty: any).
    topics: Vec<Vec<[u8; 32]>>,
}

impl LogFilter {
    pub(super) fn parse(state: &RpcState, params: &[Value]) -> RpcResult<Self> {
        let latest = state.shared.executed_tip().height;
        let object = params
            .first()
            .and_then(Value::as_object)
            .ok_or_else(|| RpcError::params("parameter 0 is a filter object"))?;
        let (from, to) = if let Some(hash) = object.get("blockHash") {
            let hash: Hash32 = hash
                .as_str()
                .and_then(|h| h.parse().ok())
                .ok_or_else(|| RpcError::params("\"blockHash\" is not a 32-byte hash"))?;
            let height = height_of_block(state, &hash)?
                .ok_or_else(|| RpcError::server(format!("unknown block {hash}")))?;
            (height, height)
        } else {
            let from = block_param(state, object.get("fromBlock"))?;
            let to = block_param(state, object.get("toBlock"))?;
            (from, to.min(latest))
        };
        if to >= from && to - from >= MAX_LOG_BLOCKS {
            return Err(RpcError::new(
                LIMIT_EXCEEDED,
                format!(
                    "query exceeds max block range {MAX_LOG_BLOCKS}: blocks {from} to {to}; \
                     ask for a narrower range"
                ),
            ));
        }
        let mut filter = Self::parse_pure(params, latest)?;
        filter.from = from;
        filter.to = to;
        Ok(filter)
    }

    /// Addresses and topics (the range is left at `latest`): what needs no state.
    pub(super) fn parse_pure(params: &[Value], latest: u64) -> RpcResult<Self> {
        let object = params
            .first()
            .and_then(Value::as_object)
            .ok_or_else(|| RpcError::params("parameter 0 is a filter object"))?;
        let address_of = |v: &Value| -> RpcResult<Address> {
            v.as_str()
                .and_then(|a| a.parse().ok())
                .ok_or_else(|| RpcError::params(format!("{v} is not an address")))
        };
        let too_many = |what: &str, n: usize| {
            RpcError::params(format!(
                "{n} {what} in the filter; at most {MAX_FILTER_ITEMS}"
            ))
        };
        let addresses = match object.get("address") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(list)) if list.len() > MAX_FILTER_ITEMS => {
                return Err(too_many("addresses", list.len()))
            }
            Some(Value::Array(list)) => list.iter().map(address_of).collect::<RpcResult<_>>()?,
            Some(one) => vec![address_of(one)?],
        };
        let topic_of = |v: &Value| -> RpcResult<[u8; 32]> {
            v.as_str()
                .and_then(hex_bytes)
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| RpcError::params(format!("{v} is not a 32-byte topic")))
        };
        let topics = match object.get("topics") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(positions)) => positions
                .iter()
                .map(|p| match p {
                    Value::Null => Ok(Vec::new()),
                    Value::Array(any) if any.len() > MAX_FILTER_ITEMS => {
                        Err(too_many("topics in one position", any.len()))
                    }
                    Value::Array(any) => any.iter().map(topic_of).collect(),
                    one => Ok(vec![topic_of(one)?]),
                })
                .collect::<RpcResult<_>>()?,
            Some(_) => return Err(RpcError::params("\"topics\" is an array")),
        };
        if topics.len() > 4 {
            return Err(RpcError::params("at most 4 topic positions"));
        }
        Ok(LogFilter {
            from: latest,
            to: latest,
            addresses,
            topics,
        })
    }

    fn matches(&self, log: &ordo_execution::Log) -> bool {
        (self.addresses.is_empty() || self.addresses.contains(&log.address))
            && self.topics.iter().enumerate().all(|(i, allowed)| {
                allowed.is_empty() || log.topics.get(i).is_some_and(|t| allowed.contains(t))
            })
    }
}

/// The height of block `hash`, if it is committed and executed here.
pub(super) fn height_of_block(state: &RpcState, hash: &Hash32) -> RpcResult<Option<u64>> {
    let height = state
        .shared
        .storage
        .committed_height_of(hash)
        .map_err(|e| RpcError::new(INTERNAL, e.to_string()))?;
    Ok(height.filter(|h| *h <= state.shared.executed_tip().height))
}

pub(super) fn logs_json(state: &RpcState, filter: &LogFilter) -> RpcResult {
    let storage = &state.shared.storage;
    let internal = |e: &dyn std::fmt::Display| RpcError::new(INTERNAL, e.to_string());
    let mut out = Vec::new();
    let mut scanned = 0usize;
    for height in filter.from..=filter.to {
        let hashes = crate::rpc::block_transaction_hashes(state, height).map_err(RpcError::from)?;
        let block_hash = storage
            .block_hash_at(height)
            .map_err(|e| internal(&e))?
            .unwrap_or_default();
        // Positions count every log of the block, in transaction order.
        let mut log_index = 0u64;
        for hash in hashes.iter() {
            scanned += 1;
            if scanned > MAX_LOG_RECEIPTS {
                return Err(RpcError::new(
                    LIMIT_EXCEEDED,
                    format!(
                        "query reads more than {MAX_LOG_RECEIPTS} receipts; ask for a narrower range"
                    ),
                ));
            }
            let Some((location, receipt)) = storage.transaction(hash).map_err(|e| internal(&e))?
            else {
                continue;
            };
            let Ok(receipt) = codec::decode::<Receipt, MAX_RECEIPT_BYTES>(&receipt) else {
                continue;
            };
            for log in receipt.evm.iter().flat_map(|o| o.logs.iter()) {
                if filter.matches(log) {
                    if out.len() == MAX_LOGS {
                        return Err(RpcError::new(
                            LIMIT_EXCEEDED,
                            format!("query returned more than {MAX_LOGS} results; ask for a narrower range"),
                        ));
                    }
                    out.push(json!({
                        "address": log.address,
                        "topics": log.topics.iter().map(|t| data(t)).collect::<Vec<_>>(),
                        "data": data(&log.data),
                        "blockNumber": qty(height),
                        "blockHash": data(&block_hash.0),
                        "transactionHash": data(&hash.0),
                        "transactionIndex": qty(location.position),
                        "logIndex": qty(log_index),
                        "removed": false,
                    }));
                }
                log_index += 1;
            }
        }
    }
    Ok(Value::Array(out))
}

/// The transactions of `block`'s batches by hash, each batch read and decoded once.
fn block_transactions(
    state: &RpcState,
    block: &Block,
) -> std::collections::HashMap<Hash32, SignedTransaction> {
    let storage = &state.shared.storage;
    let mut found = std::collections::HashMap::new();
    for digest in &block.payload {
        let Some(bytes) = storage.batch(digest).ok().flatten() else {
            continue;
        };
        let Ok(batch) =
            codec::decode::<ordo_network::Batch, { ordo_network::MAX_BATCH_MESSAGE_BYTES }>(&bytes)
        else {
            continue;
        };
        if let ordo_network::BatchBody::Transactions(txs) = batch.body {
            for tx in txs {
                found.entry(tx.hash()).or_insert(tx);
            }
        }
    }
    found
}

pub(super) fn block_json(state: &RpcState, height: u64, full: bool) -> RpcResult {
    let storage = &state.shared.storage;
    let internal = |e: &dyn std::fmt::Display| RpcError::new(INTERNAL, e.to_string());
    if height > state.shared.executed_tip().height {
        return Ok(Value::Null);
    }
    crate::rpc::check_not_pruned(storage, height)?;
    let Some((hash, bytes)) = storage.block_at(height).map_err(|e| internal(&e))? else {
        return Ok(Value::Null);
    };
    let block = codec::decode::<Block, MAX_MESSAGE_BYTES>(&bytes).map_err(|e| internal(&e))?;
    // The block names its parent (through its certificate): the index entry below may be
    // pruned.
    let parent = match height {
        0 => Hash32::default(),
        _ => block.parent(),
    };
    let hashes = crate::rpc::block_transaction_hashes(state, height).map_err(RpcError::from)?;
    let transactions: Vec<Value> = if full {
        let txs = block_transactions(state, &block);
        hashes
            .iter()
            .filter_map(|h| {
                let tx = txs.get(h)?;
                let position = storage.tx_location(h).ok().flatten()?.position;
                Some(transaction_object(
                    state,
                    tx,
                    h,
                    Some((height, position, hash)),
                ))
            })
            .collect()
    } else {
        hashes.iter().map(|h| data(&h.0)).collect()
    };
    let state_root = storage
        .state_root_at(height)
        .ok()
        .flatten()
        .unwrap_or_default();
    // Every receipt of the block (past its last transaction): its gas and its logs' bloom.
    let totals = BlockTotals::before(state, height, None)?;
    let zero32 = data(&[0; 32]);
    Ok(json!({
        "number": qty(height),
        "hash": data(&hash.0),
        "parentHash": data(&parent.0),
        "timestamp": qty(block.timestamp_ms / 1_000),
        "miner": state.chain.fee_sink,
        "stateRoot": data(&state_root.0),
        "transactionsRoot": zero32,
        "receiptsRoot": zero32,
        "logsBloom": data(totals.bloom.as_slice()),
        "difficulty": qty(0u64),
        "totalDifficulty": qty(0u64),
        "nonce": data(&[0; 8]),
        "mixHash": zero32,
        "sha3Uncles": zero32,
        "uncles": [],
        "extraData": data(&[]),
        "size": qty(bytes.len() as u64),
        "gasLimit": qty(state.chain.block_gas_limit),
        "gasUsed": qty(totals.gas),
        "baseFeePerGas": qty(state.chain.gas_price),
        "transactions": transactions,
    }))
}
