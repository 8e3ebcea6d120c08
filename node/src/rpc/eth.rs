//! The Ethereum JSON-RPC 2.0 endpoint: `POST /` on the validator's RPC address, so that
//! wallets and tools (ethers.js, viem, web3.py, Foundry's `cast`) work unchanged.
//!
//! Requests: one object or a batch (an array of at most [`MAX_BATCH`]), in a body of at most
//! [`MAX_BODY_BYTES`]. Every answer is HTTP 200 with JSON-RPC results or errors, as clients
//! expect; a malformed body gets a JSON-RPC parse error.
//!
//! Block tags under BFT finality: a committed block is final at once, so `latest`, `safe`,
//! `finalized` and `pending` all mean the latest executed block (the state this validator
//! can read), except that `eth_getTransactionCount` at `pending` also counts the sender's
//! transactions this validator holds. `earliest` is block 0. Only the latest state is kept:
//! state queries at an older block number are refused with an error that says so.
//!
//! Errors: the codes and messages clients match on. -32700 parse error, -32600 invalid
//! request, -32601 method not found, -32602 invalid params, -32603 internal, -32000 for
//! refused transactions (`nonce too low`, `already known`, `transaction underpriced`, ...),
//! -32005 when the validator is busy (admission control), 3 `execution reverted` with the
//! revert data.
//!
//! This file dispatches methods and owns the state reads, calls and submissions; what the
//! chain shows (transactions, receipts, blocks, logs) is [`chain`]'s, and the JSON-RPC's
//! values and parameter decoders are [`params`]'.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::Json;
use ordo_execution::{
    BlockContext, EvmInvalid, ReadOnlyCall, ReadOnlyRequest, StateKey, StateValue, TxStatus,
    MAX_TX_GAS,
};
use ordo_types::{now_ms, Address, Amount, EthTransaction, Payload, SignedTransaction};
use serde_json::{json, Value};

mod chain;
mod params;

use super::{
    account_nonce, admit, check_ingress, fresh_state, read_account, read_body, remember_pending,
    RpcState,
};
use chain::{block_json, height_of_block, logs_json, receipt_json, transaction_json, LogFilter};
use params::{
    address_param, block_param, data, hash_param, hex_bytes, parse_qty, qty, str_param, word_param,
    RpcError, RpcResult, EXECUTION_REVERTED, INTERNAL, INVALID_REQUEST, LIMIT_EXCEEDED,
    METHOD_NOT_FOUND, PARSE_ERROR,
};

/// The most blocks one `eth_feeHistory` reports.
pub const MAX_FEE_HISTORY_BLOCKS: u64 = 1_024;
/// The most reward percentiles one `eth_feeHistory` asks for (geth's limit).
pub const MAX_FEE_HISTORY_PERCENTILES: usize = 100;

/// The largest request body: a batch of raw transactions of the largest size, in hex.
pub const MAX_BODY_BYTES: usize = 4 << 20;
/// The most requests one batch may hold.
pub const MAX_BATCH: usize = 100;

/// The gas every transaction costs before it runs (a call without data); a limit below it
/// cannot execute.
const INTRINSIC_GAS: u64 = 21_000;

/// One parsed request: its id (echoed back), its method and its parameters.
#[derive(Debug)]
pub(crate) struct Request {
    id: Value,
    method: String,
    params: Vec<Value>,
}

/// A request as parsed, or the id and the error of one that is not.
pub(crate) type Parsed = Result<Request, (Value, RpcError)>;

/// A body as the endpoint reads it: one request or a batch of at most [`MAX_BATCH`] (the
/// flag says which), each either parsed or refused with the error its answer carries.
/// Pure, for the fuzz target.
pub(crate) fn parse_body(bytes: &[u8]) -> Result<(bool, Vec<Parsed>), RpcError> {
    let body: Value =
        serde_json::from_slice(bytes).map_err(|e| RpcError::new(PARSE_ERROR, e.to_string()))?;
    match body {
        Value::Array(items) if items.is_empty() => {
            Err(RpcError::new(INVALID_REQUEST, "an empty batch"))
        }
        Value::Array(items) if items.len() > MAX_BATCH => Err(RpcError::new(
            INVALID_REQUEST,
            format!("a batch of {} requests; at most {MAX_BATCH}", items.len()),
        )),
        Value::Array(items) => Ok((true, items.into_iter().map(parse_request).collect())),
        single => Ok((false, vec![parse_request(single)])),
    }
}

fn parse_request(request: Value) -> Parsed {
    let id = request.get("id").cloned().unwrap_or(Value::Null);
    let Some(method) = request.get("method").and_then(Value::as_str) else {
        return Err((
            id,
            RpcError::new(INVALID_REQUEST, "a request names a \"method\""),
        ));
    };
    let params = match request.get("params") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(p)) => p.clone(),
        Some(_) => return Err((id, RpcError::params("\"params\" must be an array"))),
    };
    Ok(Request {
        id,
        method: method.to_string(),
        params,
    })
}

/// `POST /`: one request or a batch.
pub(super) async fn handle(
    State(state): State<Arc<RpcState>>,
    headers: HeaderMap,
    body: Body,
) -> Json<Value> {
    let bytes = match read_body(&headers, body, MAX_BODY_BYTES).await {
        Ok(bytes) => bytes,
        Err(e) => {
            return Json(failure(
                Value::Null,
                RpcError::new(INVALID_REQUEST, e.message),
            ))
        }
    };
    let (batch, requests) = match parse_body(&bytes) {
        Ok(parsed) => parsed,
        Err(e) => return Json(failure(Value::Null, e)),
    };
    let mut answers = Vec::with_capacity(requests.len());
    for request in requests {
        answers.push(match request {
            Ok(request) => one(&state, request).await,
            Err((id, e)) => failure(id, e),
        });
    }
    if batch {
        Json(Value::Array(answers))
    } else {
        Json(answers.pop().expect("one answer"))
    }
}

fn failure(id: Value, e: RpcError) -> Value {
    json!({ "jsonrpc": "2.0", "id": id, "error": e.to_json() })
}

async fn one(state: &Arc<RpcState>, request: Request) -> Value {
    let Request { id, method, params } = request;
    metrics::counter!("ordo_node_eth_rpc_requests_total", "method" => method_label(&method))
        .increment(1);
    match call(state, &method, &params).await {
        Ok(result) => json!({ "jsonrpc": "2.0", "id": id, "result": result }),
        Err(e) => failure(id, e),
    }
}

#[cfg(any(test, feature = "fuzz"))]
/// What the fuzz target checks of one parsed request: the parameter decoders a method
/// would apply, none of which may panic. Pure (no state).
pub(crate) fn decode_params(request: &Request) {
    let p = &request.params;
    let _ = (address_param(p, 0), hash_param(p, 0), word_param(p, 1));
    let _ = call_request(p);
    let _ = p.first().and_then(Value::as_str).map(|t| {
        let _ = (hex_bytes(t), parse_qty(t));
        hex_bytes(t).map(EthTransaction::from_raw)
    });
    let _ = LogFilter::parse_pure(p, 0);
}

/// A bounded set of metric labels: known methods by name, anything else as `other`.
fn method_label(method: &str) -> &'static str {
    METHODS
        .iter()
        .find(|m| **m == method)
        .copied()
        .unwrap_or("other")
}

const METHODS: &[&str] = &[
    "web3_clientVersion",
    "net_version",
    "eth_chainId",
    "eth_blockNumber",
    "eth_gasPrice",
    "eth_maxPriorityFeePerGas",
    "eth_getBalance",
    "eth_getTransactionCount",
    "eth_getCode",
    "eth_getStorageAt",
    "eth_call",
    "eth_estimateGas",
    "eth_sendRawTransaction",
    "eth_getTransactionByHash",
    "eth_getTransactionReceipt",
    "eth_getBlockByNumber",
    "eth_getBlockByHash",
    "eth_getLogs",
    "eth_feeHistory",
];

async fn call(state: &Arc<RpcState>, method: &str, params: &[Value]) -> RpcResult {
    let chain = &state.chain;
    match method {
        "web3_clientVersion" => Ok(json!(format!("ordo/{}", env!("CARGO_PKG_VERSION")))),
        "net_version" => Ok(json!(chain.chain_id.to_string())),
        "eth_chainId" => Ok(qty(chain.chain_id)),
        "eth_blockNumber" => Ok(qty(state.shared.executed_tip().height)),
        // The chain's one price: no auction, so no tip is needed or charged.
        "eth_gasPrice" => Ok(qty(chain.gas_price)),
        "eth_maxPriorityFeePerGas" => Ok(qty(0u64)),
        "eth_getBalance" => {
            let address = address_param(params, 0)?;
            latest_state(state, params.get(1)).await?;
            let balance = read_account(&state.shared, &address)?.map_or(0, |(b, _)| b);
            Ok(qty(balance))
        }
        "eth_getTransactionCount" => {
            let address = address_param(params, 0)?;
            let pending = params.get(1).and_then(Value::as_str) == Some("pending");
            latest_state(state, params.get(1)).await?;
            let nonce = account_nonce(&state.shared, &address);
            let nonce = if pending {
                state
                    .mempool
                    .next_nonce(&address, nonce, now_ms())
                    .map_or(nonce, |n| n.max(nonce))
            } else {
                nonce
            };
            Ok(qty(nonce))
        }
        "eth_getCode" => {
            let address = address_param(params, 0)?;
            latest_state(state, params.get(1)).await?;
            match read_state(state, StateKey::Code(address))? {
                Some(StateValue::Code(code)) => Ok(data(code.bytes())),
                _ => Ok(data(&[])),
            }
        }
        "eth_getStorageAt" => {
            let address = address_param(params, 0)?;
            let slot = word_param(params, 1)?;
            latest_state(state, params.get(2)).await?;
            match read_state(state, StateKey::Slot(address, slot))? {
                Some(StateValue::Slot(word)) => Ok(data(&word)),
                _ => Ok(data(&[0; 32])),
            }
        }
        "eth_call" => {
            let request = call_request(params)?;
            latest_state(state, params.get(1)).await?;
            check_funds(state, &request)?;
            let outcome = run_read(state, request).await?;
            match outcome.status {
                TxStatus::Success => Ok(data(&outcome.output)),
                status => Err(call_failure(status, &outcome)),
            }
        }
        "eth_estimateGas" => {
            let request = call_request(params)?;
            latest_state(state, params.get(1)).await?;
            check_funds(state, &request)?;
            estimate_gas(state, request).await.map(qty)
        }
        "eth_sendRawTransaction" => send_raw(state, params).await,
        "eth_getTransactionReceipt" => {
            let hash = hash_param(params, 0)?;
            let shared = state.clone();
            blocking(state, move || receipt_json(&shared, &hash)).await
        }
        "eth_getTransactionByHash" => {
            let hash = hash_param(params, 0)?;
            let shared = state.clone();
            blocking(state, move || transaction_json(&shared, &hash)).await
        }
        "eth_getBlockByNumber" => {
            let height = block_param(state, params.first())?;
            let full = params.get(1).and_then(Value::as_bool).unwrap_or(false);
            let shared = state.clone();
            blocking(state, move || block_json(&shared, height, full)).await
        }
        "eth_getBlockByHash" => {
            let hash = hash_param(params, 0)?;
            let full = params.get(1).and_then(Value::as_bool).unwrap_or(false);
            let shared = state.clone();
            blocking(state, move || match height_of_block(&shared, &hash)? {
                Some(height) => block_json(&shared, height, full),
                None => Ok(Value::Null),
            })
            .await
        }
        "eth_getLogs" => {
            let filter = LogFilter::parse(state, params)?;
            let shared = state.clone();
            blocking(state, move || logs_json(&shared, &filter)).await
        }
        "eth_feeHistory" => fee_history(state, params),
        _ if METHODS.contains(&method) => Err(RpcError::new(INTERNAL, "unreachable")),
        other => Err(RpcError::new(
            METHOD_NOT_FOUND,
            format!("the method {other} does not exist/is not available"),
        )),
    }
}

/// Runs storage reads off the async workers, under the RPC's concurrency bound (refused
/// `busy` beyond it), like every other handler that reads blocks.
async fn blocking(state: &RpcState, f: impl FnOnce() -> RpcResult + Send + 'static) -> RpcResult {
    let _permit = state
        .concurrency
        .try_acquire()
        .map_err(|_| RpcError::new(LIMIT_EXCEEDED, "busy: too many requests in flight"))?;
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| RpcError::new(INTERNAL, e.to_string()))?
}

/// Waits for the latest committed state (as the REST API does), and refuses a state query
/// at an older block: only the latest state is kept.
async fn latest_state(state: &RpcState, param: Option<&Value>) -> RpcResult<()> {
    if state.ordering_only {
        return Err(RpcError::server(
            "this network is ordering-only: it keeps no accounts or contracts",
        ));
    }
    fresh_state(&state.shared).await?;
    let latest = state.shared.executed_tip().height;
    let height = block_param(state, param)?;
    if height != latest {
        return Err(RpcError::server(format!(
            "state at block {height} is not available: this validator keeps only the latest \
             state (block {latest}); ask for \"latest\""
        )));
    }
    Ok(())
}

fn read_state(state: &RpcState, key: StateKey) -> RpcResult<Option<StateValue>> {
    let bytes = state
        .shared
        .storage
        .state_get(&key.to_bytes())
        .map_err(|e| RpcError::new(INTERNAL, e.to_string()))?;
    bytes
        .map(|b| key.decode_value(&b))
        .transpose()
        .map_err(|e| RpcError::new(INTERNAL, e.to_string()))
}

/// The call object of `eth_call` and `eth_estimateGas`.
fn call_request(params: &[Value]) -> RpcResult<ReadOnlyRequest> {
    let object = params
        .first()
        .and_then(Value::as_object)
        .ok_or_else(|| RpcError::params("parameter 0 is a call object"))?;
    let field = |name: &str| object.get(name).and_then(Value::as_str);
    let address = |name: &str| -> RpcResult<Option<Address>> {
        field(name)
            .map(|t| {
                t.parse()
                    .map_err(|_| RpcError::params(format!("\"{name}\": {t:?} is not an address")))
            })
            .transpose()
    };
    let quantity = |name: &str| -> RpcResult<Option<u128>> {
        field(name)
            .map(|t| {
                parse_qty(t)
                    .ok_or_else(|| RpcError::params(format!("\"{name}\": {t:?} is not a quantity")))
            })
            .transpose()
    };
    // Clients send the call data as "input" or "data" (older ones).
    let input = match field("input").or_else(|| field("data")) {
        None => Vec::new(),
        Some(t) => {
            hex_bytes(t).ok_or_else(|| RpcError::params(format!("call data {t:?} is not hex")))?
        }
    };
    let gas = quantity("gas")?
        .map(|g| u64::try_from(g).unwrap_or(u64::MAX))
        .unwrap_or(MAX_TX_GAS);
    Ok(ReadOnlyRequest {
        from: address("from")?.unwrap_or_default(),
        to: address("to")?,
        value: quantity("value")?.unwrap_or(0),
        input,
        gas_limit: gas.min(MAX_TX_GAS),
    })
}

/// A call that sends more than its sender holds fails the way clients recognise (the EVM
/// itself halts without saying why).
fn check_funds(state: &RpcState, request: &ReadOnlyRequest) -> RpcResult<()> {
    if request.value == 0 {
        return Ok(());
    }
    let balance = read_account(&state.shared, &request.from)?.map_or(0, |(b, _)| b);
    if balance < request.value {
        return Err(RpcError::server(format!(
            "insufficient funds for gas * price + value: balance {balance}, value {}",
            request.value
        )));
    }
    Ok(())
}

async fn run_read(state: &RpcState, request: ReadOnlyRequest) -> RpcResult<ReadOnlyCall> {
    // A read runs the EVM for up to the gas cap: bounded like submissions, refused when busy.
    let _permit = state
        .concurrency
        .try_acquire()
        .map_err(|_| RpcError::new(LIMIT_EXCEEDED, "busy: too many requests in flight"))?;
    let tip = state.shared.executed_tip();
    let block = BlockContext {
        height: tip.height + 1,
        timestamp_ms: tip.timestamp_ms,
    };
    let shared = state.shared.clone();
    let config = state.chain.clone();
    tokio::task::spawn_blocking(move || super::read_only(&shared, &config, &block, request))
        .await
        .map_err(|e| RpcError::new(INTERNAL, e.to_string()))?
        .map_err(|e| RpcError::new(INTERNAL, e.to_string()))
}

/// Why a read or an estimate failed, as clients expect it: a revert is code 3 with the
/// revert data, so that libraries decode `Error(string)` and custom errors.
fn call_failure(status: TxStatus, outcome: &ReadOnlyCall) -> RpcError {
    match status {
        TxStatus::Reverted => RpcError {
            code: EXECUTION_REVERTED,
            message: revert_message(&outcome.output),
            data: Some(data(&outcome.output)),
        },
        TxStatus::Halted(reason) => RpcError::server(format!("execution halted: {reason:?}")),
        TxStatus::EvmInvalid(EvmInvalid::InsufficientFunds) => {
            RpcError::server("insufficient funds for gas * price + value")
        }
        TxStatus::EvmInvalid(EvmInvalid::IntrinsicGas) => RpcError::server("intrinsic gas too low"),
        other => RpcError::server(format!("call refused: {other:?}")),
    }
}

/// "execution reverted", with the reason of a Solidity `Error(string)` when there is one.
fn revert_message(output: &[u8]) -> String {
    const ERROR_STRING: [u8; 4] = [0x08, 0xc3, 0x79, 0xa0];
    let reason = (output.len() >= 68 && output[..4] == ERROR_STRING)
        .then(|| {
            let len = usize::try_from(u64::from_be_bytes(output[60..68].try_into().ok()?)).ok()?;
            let text = output.get(68..68usize.checked_add(len)?)?;
            String::from_utf8(text.to_vec()).ok()
        })
        .flatten();
    match reason {
        Some(reason) => format!("execution reverted: {reason}"),
        None => "execution reverted".into(),
    }
}

/// The least gas limit with which the call succeeds, by bisection between what one run at
/// the cap used and the cap: gas used is less than the limit needed when a call forwards
/// gas (the 63/64 rule) or is refunded.
async fn estimate_gas(state: &RpcState, request: ReadOnlyRequest) -> RpcResult<u64> {
    let cap = request.gas_limit;
    let first = run_read(state, request.clone()).await?;
    if first.status != TxStatus::Success {
        return Err(call_failure(first.status, &first));
    }
    let succeeds = |limit: u64| {
        let mut r = request.clone();
        r.gas_limit = limit;
        async move {
            run_read(state, r)
                .await
                .map(|o| o.status == TxStatus::Success)
        }
    };
    let mut low = first.gas_used.saturating_sub(1);
    if succeeds(first.gas_used).await? {
        return Ok(first.gas_used);
    }
    let mut high = cap;
    low = low.max(first.gas_used);
    // Each step halves the range: at most about 25 runs for a 30-million cap.
    while high - low > 1 {
        let mid = low + (high - low) / 2;
        if succeeds(mid).await? {
            high = mid;
        } else {
            low = mid;
        }
    }
    Ok(high)
}

async fn send_raw(state: &Arc<RpcState>, params: &[Value]) -> RpcResult {
    let text = str_param(params, 0, "the signed transaction")?;
    let raw = hex_bytes(text).ok_or_else(|| RpcError::params("the transaction is not 0x-hex"))?;
    if raw.len() > ordo_types::MAX_TRANSACTION_BYTES {
        return Err(RpcError::server(format!(
            "oversized data: {} bytes, at most {}",
            raw.len(),
            ordo_types::MAX_TRANSACTION_BYTES
        )));
    }
    let tx = EthTransaction::from_raw(raw).map_err(|e| RpcError::server(e.to_string()))?;
    if tx.chain_id() != state.chain.chain_id {
        return Err(RpcError::server(format!(
            "invalid chain id: expected {}, got {}",
            state.chain.chain_id,
            tx.chain_id()
        )));
    }
    if tx.fee_cap() < u128::from(state.chain.gas_price) {
        return Err(RpcError::server(format!(
            "transaction underpriced: max fee per gas {} is below the chain's gas price {}",
            tx.fee_cap(),
            state.chain.gas_price
        )));
    }
    let _permit = state
        .concurrency
        .try_acquire()
        .map_err(|_| RpcError::new(LIMIT_EXCEEDED, "busy: too many requests in flight"))?;
    let _room = admit(state, 1)?;
    check_ingress(state)?;
    let sender = tx
        .sender()
        .map_err(|e| RpcError::server(format!("invalid sender: {e}")))?;
    // geth's checks before pooling: what execution would refuse uncharged is refused here.
    let most_gas = MAX_TX_GAS.min(state.chain.block_gas_limit);
    match tx.payload() {
        Payload::Call { gas_limit, .. } | Payload::Deploy { gas_limit, .. }
            if *gas_limit < INTRINSIC_GAS =>
        {
            return Err(RpcError::server(format!(
                "intrinsic gas too low: gas {gas_limit}, minimum needed {INTRINSIC_GAS}"
            )));
        }
        Payload::Call { gas_limit, .. } | Payload::Deploy { gas_limit, .. }
            if *gas_limit > most_gas =>
        {
            return Err(RpcError::server(format!(
                "exceeds block gas limit: gas {gas_limit}, at most {most_gas} a transaction"
            )));
        }
        Payload::Deploy { init_code, .. } if init_code.len() > ordo_types::MAX_INIT_CODE_BYTES => {
            return Err(RpcError::server(format!(
                "max initcode size exceeded: code size {} limit {}",
                init_code.len(),
                ordo_types::MAX_INIT_CODE_BYTES
            )));
        }
        _ => {}
    }
    let (balance, nonce) = read_account(&state.shared, &sender)?.unwrap_or((0, 0));
    // What geth checks before it pools a transaction: the sender can pay its whole gas
    // limit at the chain's price, plus the value (execution checks again).
    let (value, gas_limit) = match tx.payload() {
        Payload::Call {
            value, gas_limit, ..
        }
        | Payload::Deploy {
            value, gas_limit, ..
        } => (*value, *gas_limit),
        _ => (0, 0),
    };
    let cost = Amount::from(gas_limit)
        .checked_mul(Amount::from(state.chain.gas_price))
        .and_then(|fee| fee.checked_add(value));
    if cost.is_none_or(|cost| balance < cost) {
        return Err(RpcError::server(format!(
            "insufficient funds for gas * price + value: balance {balance}, tx cost {}",
            cost.map_or_else(|| "above 2^128".to_string(), |c| c.to_string())
        )));
    }
    let tx = SignedTransaction::from(tx);
    let expiry = tx.expiry();
    let hash = state
        .mempool
        .insert(tx, nonce, now_ms())
        .map_err(|e| admission_error(&e))?;
    remember_pending(state, hash, expiry);
    Ok(data(&hash.0))
}

/// The messages Ethereum clients match on (geth's wording).
fn admission_error(e: &ordo_network::Error) -> RpcError {
    use ordo_network::Error as E;
    match e {
        E::NonceTooLow { nonce, next } => RpcError::server(format!(
            "nonce too low: next nonce {next}, tx nonce {nonce}"
        )),
        E::NonceTooHigh {
            nonce,
            next,
            window,
        } => RpcError::server(format!(
            "nonce too high: next nonce {next}, tx nonce {nonce} (at most {window} ahead)"
        )),
        E::Duplicate(_) => RpcError::server("already known"),
        E::WrongChain { expected, got } => {
            RpcError::server(format!("invalid chain id: expected {expected}, got {got}"))
        }
        E::BadSignature => RpcError::server("invalid sender"),
        E::MempoolFull(_) => RpcError::new(LIMIT_EXCEEDED, "txpool is full"),
        other => RpcError::server(other.to_string()),
    }
}

/// `eth_feeHistory(count, newest, percentiles)`: the chain's one price as every block's
/// base fee, no tips, and gas-used ratios of 0 (there is no auction for them to drive).
fn fee_history(state: &RpcState, params: &[Value]) -> RpcResult {
    let count = match params.first() {
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(t)) => parse_qty(t).and_then(|n| u64::try_from(n).ok()),
        _ => None,
    }
    .ok_or_else(|| RpcError::params("parameter 0 is a block count"))?
    .min(MAX_FEE_HISTORY_BLOCKS);
    let newest = block_param(state, params.get(1))?.min(state.shared.executed_tip().height);
    let count = count.min(newest + 1);
    let oldest = newest + 1 - count;
    let percentiles = params.get(2).and_then(Value::as_array).map_or(0, Vec::len);
    if percentiles > MAX_FEE_HISTORY_PERCENTILES {
        return Err(RpcError::params(format!(
            "{percentiles} reward percentiles; at most {MAX_FEE_HISTORY_PERCENTILES}"
        )));
    }
    let price = qty(state.chain.gas_price);
    Ok(json!({
        "oldestBlock": qty(oldest),
        // One more than asked: the next block's base fee, as the method defines.
        "baseFeePerGas": vec![price; count as usize + 1],
        "gasUsedRatio": vec![0.0; count as usize],
        "reward": vec![vec![qty(0u64); percentiles]; count as usize],
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_and_data_are_formatted_as_clients_expect() {
        assert_eq!(qty(0u64), json!("0x0"));
        assert_eq!(qty(255u64), json!("0xff"));
        assert_eq!(qty(u128::MAX), json!(format!("0x{}", "f".repeat(32))));
        assert_eq!(data(&[]), json!("0x"));
        assert_eq!(data(&[0, 1, 0xab]), json!("0x0001ab"));
        assert_eq!(parse_qty("0x10"), Some(16));
        assert_eq!(parse_qty("10"), None);
        assert_eq!(parse_qty("0x"), None);
        assert_eq!(hex_bytes("0x0a0B"), Some(vec![10, 11]));
        assert_eq!(hex_bytes("0x0"), None);
    }

    #[test]
    fn a_solidity_revert_reason_is_read() {
        let mut output = vec![0x08, 0xc3, 0x79, 0xa0];
        output.extend_from_slice(&[0; 31]);
        output.push(32);
        output.extend_from_slice(&[0; 31]);
        output.push(4);
        output.extend_from_slice(b"nope");
        output.extend_from_slice(&[0; 28]);
        assert_eq!(revert_message(&output), "execution reverted: nope");
        assert_eq!(revert_message(&[1, 2]), "execution reverted");
    }

    #[test]
    fn storage_slots_are_left_padded() {
        let slot = word_param(&[json!("0x1")], 0).unwrap();
        assert_eq!(slot[31], 1);
        assert!(slot[..31].iter().all(|b| *b == 0));
        assert!(word_param(&[json!("0x")], 0).is_err());
        assert!(word_param(&[json!(format!("0x{}", "1".repeat(65)))], 0).is_err());
    }
}
