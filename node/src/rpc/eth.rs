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

use std::sync::Arc;

use alloy_primitives::{Bloom, BloomInput};
use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::Json;
use ordo_consensus::messages::MAX_MESSAGE_BYTES;
use ordo_consensus::Block;
use ordo_execution::{
    BlockContext, EvmInvalid, ReadOnlyCall, ReadOnlyRequest, Receipt, StateKey, StateValue,
    TxStatus, MAX_RECEIPT_BYTES, MAX_TX_GAS,
};
use ordo_types::{
    codec, now_ms, Address, Amount, EthTransaction, Hash32, Payload, SignedTransaction,
};
use serde_json::{json, Value};

use super::{
    account_nonce, admit, check_ingress, fresh_state, read_account, read_body, remember_pending,
    transaction_in_block, ApiError, RpcState,
};

/// The most blocks one `eth_getLogs` may scan: each block's receipts are read from RocksDB.
pub const MAX_LOG_BLOCKS: u64 = 1_000;
/// The most logs one `eth_getLogs` answer holds.
pub const MAX_LOGS: usize = 10_000;
/// The most blocks one `eth_feeHistory` reports.
pub const MAX_FEE_HISTORY_BLOCKS: u64 = 1_024;
/// The most reward percentiles one `eth_feeHistory` asks for (geth's limit).
pub const MAX_FEE_HISTORY_PERCENTILES: usize = 100;
/// The most receipts one `eth_getLogs` reads, matching or not.
pub const MAX_LOG_RECEIPTS: usize = 200_000;
/// The most addresses, and topics in one position, of an `eth_getLogs` filter.
pub const MAX_FILTER_ITEMS: usize = 1_000;

/// The largest request body: a batch of raw transactions of the largest size, in hex.
pub const MAX_BODY_BYTES: usize = 4 << 20;
/// The most requests one batch may hold.
pub const MAX_BATCH: usize = 100;

/// The gas every transaction costs before it runs (a call without data); a limit below it
/// cannot execute.
const INTRINSIC_GAS: u64 = 21_000;

const PARSE_ERROR: i64 = -32700;
const INVALID_REQUEST: i64 = -32600;
const METHOD_NOT_FOUND: i64 = -32601;
const INVALID_PARAMS: i64 = -32602;
const INTERNAL: i64 = -32603;
const SERVER_ERROR: i64 = -32000;
const LIMIT_EXCEEDED: i64 = -32005;
const EXECUTION_REVERTED: i64 = 3;

/// A JSON-RPC error object.
#[derive(Debug)]
pub(crate) struct RpcError {
    code: i64,
    message: String,
    data: Option<Value>,
}

impl RpcError {
    fn new(code: i64, message: impl Into<String>) -> Self {
        RpcError {
            code,
            message: message.into(),
            data: None,
        }
    }

    fn params(message: impl Into<String>) -> Self {
        Self::new(INVALID_PARAMS, message)
    }

    fn server(message: impl Into<String>) -> Self {
        Self::new(SERVER_ERROR, message)
    }

    fn to_json(&self) -> Value {
        let mut e = json!({ "code": self.code, "message": self.message });
        if let Some(data) = &self.data {
            e["data"] = data.clone();
        }
        e
    }
}

impl From<ApiError> for RpcError {
    fn from(e: ApiError) -> Self {
        let code = match e.code() {
            "busy" | "mempool_full" => LIMIT_EXCEEDED,
            "malformed" => INVALID_PARAMS,
            "internal" => INTERNAL,
            _ => SERVER_ERROR,
        };
        RpcError::new(code, e.message)
    }
}

type RpcResult<T = Value> = Result<T, RpcError>;

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

/// A quantity: "0x" and lower-case hex digits without leading zeros.
fn qty(n: impl Into<u128>) -> Value {
    json!(format!("{:#x}", n.into()))
}

/// Unformatted data: "0x" and two hex digits a byte.
fn data(bytes: &[u8]) -> Value {
    json!(format!("0x{}", super::hex_encode(bytes)))
}

/// "0x"-prefixed hex, as the JSON-RPC requires it.
fn hex_bytes(text: &str) -> Option<Vec<u8>> {
    text.strip_prefix("0x").and_then(super::hex_decode)
}

fn parse_qty(text: &str) -> Option<u128> {
    let digits = text.strip_prefix("0x")?;
    if digits.is_empty() || digits.len() > 32 {
        return None;
    }
    u128::from_str_radix(digits, 16).ok()
}

fn str_param<'a>(params: &'a [Value], i: usize, what: &str) -> RpcResult<&'a str> {
    params.get(i).and_then(Value::as_str).ok_or_else(|| {
        RpcError::params(format!("parameter {i} ({what}) is missing or not a string"))
    })
}

fn address_param(params: &[Value], i: usize) -> RpcResult<Address> {
    let text = str_param(params, i, "an address")?;
    text.parse()
        .map_err(|_| RpcError::params(format!("{text:?} is not a 20-byte hex address")))
}

fn hash_param(params: &[Value], i: usize) -> RpcResult<Hash32> {
    let text = str_param(params, i, "a hash")?;
    text.parse()
        .map_err(|_| RpcError::params(format!("{text:?} is not a 32-byte hex hash")))
}

/// A storage slot: a quantity of up to 32 bytes, left-padded.
fn word_param(params: &[Value], i: usize) -> RpcResult<[u8; 32]> {
    let text = str_param(params, i, "a storage slot")?;
    let digits = text
        .strip_prefix("0x")
        .filter(|d| !d.is_empty() && d.len() <= 64)
        .ok_or_else(|| RpcError::params(format!("{text:?} is not a storage slot")))?;
    let padded = format!("{digits:0>64}");
    let bytes = hex_bytes(&format!("0x{padded}"))
        .ok_or_else(|| RpcError::params(format!("{text:?} is not a storage slot")))?;
    Ok(bytes.try_into().expect("32 bytes"))
}

/// The height a block parameter names (see the module note on tags).
fn block_param(state: &RpcState, param: Option<&Value>) -> RpcResult<u64> {
    let latest = state.shared.executed_tip().height;
    let Some(param) = param else {
        return Ok(latest);
    };
    let text = param
        .as_str()
        .ok_or_else(|| RpcError::params("a block is a tag or a hex number"))?;
    match text {
        "latest" | "safe" | "finalized" | "pending" => Ok(latest),
        "earliest" => Ok(0),
        number => {
            let height = parse_qty(number)
                .and_then(|n| u64::try_from(n).ok())
                .ok_or_else(|| {
                    RpcError::params(format!("{number:?} is not a block tag or number"))
                })?;
            Ok(height)
        }
    }
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
    match tx.payload() {
        Payload::Call { gas_limit, .. } | Payload::Deploy { gas_limit, .. }
            if *gas_limit < INTRINSIC_GAS =>
        {
            return Err(RpcError::server(format!(
                "intrinsic gas too low: gas {gas_limit}, minimum needed {INTRINSIC_GAS}"
            )));
        }
        Payload::Call { gas_limit, .. } | Payload::Deploy { gas_limit, .. }
            if *gas_limit > MAX_TX_GAS =>
        {
            return Err(RpcError::server(format!(
                "exceeds block gas limit: gas {gas_limit}, at most {MAX_TX_GAS} a transaction"
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

fn receipt_json(state: &RpcState, hash: &Hash32) -> RpcResult {
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
        let hashes = super::block_transaction_hashes(state, height).map_err(RpcError::from)?;
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

fn transaction_json(state: &RpcState, hash: &Hash32) -> RpcResult {
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
struct LogFilter {
    from: u64,
    to: u64,
    /// Empty: any address.
    addresses: Vec<Address>,
    /// Per position: the topics allowed there (empty: any).
    topics: Vec<Vec<[u8; 32]>>,
}

impl LogFilter {
    fn parse(state: &RpcState, params: &[Value]) -> RpcResult<Self> {
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
    fn parse_pure(params: &[Value], latest: u64) -> RpcResult<Self> {
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

/// The height of the committed block `hash`, looked up among the recent blocks this
/// validator keeps (no index of block hashes exists yet; see the README).
fn height_of_block(state: &RpcState, hash: &Hash32) -> RpcResult<Option<u64>> {
    let storage = &state.shared.storage;
    let latest = state.shared.executed_tip().height;
    for height in (latest.saturating_sub(MAX_LOG_BLOCKS)..=latest).rev() {
        let at = storage
            .block_hash_at(height)
            .map_err(|e| RpcError::new(INTERNAL, e.to_string()))?;
        if at.as_ref() == Some(hash) {
            return Ok(Some(height));
        }
    }
    Ok(None)
}

fn logs_json(state: &RpcState, filter: &LogFilter) -> RpcResult {
    let storage = &state.shared.storage;
    let internal = |e: &dyn std::fmt::Display| RpcError::new(INTERNAL, e.to_string());
    let mut out = Vec::new();
    let mut scanned = 0usize;
    for height in filter.from..=filter.to {
        let hashes = super::block_transaction_hashes(state, height).map_err(RpcError::from)?;
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

/// `eth_feeHistory(count, newest, percentiles)`: the chain's one price as every block's
/// base fee, no tips, and no gas-used ratio (blocks do not report gas yet).
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

fn block_json(state: &RpcState, height: u64, full: bool) -> RpcResult {
    let storage = &state.shared.storage;
    let internal = |e: &dyn std::fmt::Display| RpcError::new(INTERNAL, e.to_string());
    if height > state.shared.executed_tip().height {
        return Ok(Value::Null);
    }
    let Some((hash, bytes)) = storage.block_at(height).map_err(|e| internal(&e))? else {
        return Ok(Value::Null);
    };
    let block = codec::decode::<Block, MAX_MESSAGE_BYTES>(&bytes).map_err(|e| internal(&e))?;
    let parent = match height {
        0 => Hash32::default(),
        h => storage
            .block_hash_at(h - 1)
            .map_err(|e| internal(&e))?
            .unwrap_or_default(),
    };
    let hashes = super::block_transaction_hashes(state, height).map_err(RpcError::from)?;
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
