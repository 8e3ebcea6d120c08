//! JSON-RPC 2.0 values as Ethereum's API writes them: error objects with the codes clients
//! match on, quantities and unformatted data in "0x" hex, and the decoders of the
//! parameters methods take (addresses, hashes, storage slots, block tags). Pure, apart from
//! reading the executed height for a block tag.

use ordo_types::{Address, Hash32};
use serde_json::{json, Value};

use crate::rpc::{ApiError, RpcState};

pub(super) const PARSE_ERROR: i64 = -32700;

pub(super) const INVALID_REQUEST: i64 = -32600;

pub(super) const METHOD_NOT_FOUND: i64 = -32601;

pub(super) const INVALID_PARAMS: i64 = -32602;

pub(super) const INTERNAL: i64 = -32603;

pub(super) const SERVER_ERROR: i64 = -32000;

pub(super) const LIMIT_EXCEEDED: i64 = -32005;
/// "Pruned history unavailable" (EIP-4444, as execution clients answer it).
pub(super) const PRUNED_HISTORY: i64 = 4444;

pub(super) const EXECUTION_REVERTED: i64 = 3;

/// A JSON-RPC error object.
#[derive(Debug)]
pub(crate) struct RpcError {
    pub(super) code: i64,
    pub(super) message: String,
    pub(super) data: Option<Value>,
}

impl RpcError {
    pub(super) fn new(code: i64, message: impl Into<String>) -> Self {
        RpcError {
            code,
            message: message.into(),
            data: None,
        }
    }

    pub(super) fn params(message: impl Into<String>) -> Self {
        Self::new(INVALID_PARAMS, message)
    }

    pub(super) fn server(message: impl Into<String>) -> Self {
        Self::new(SERVER_ERROR, message)
    }

    pub(super) fn to_json(&self) -> Value {
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
            // EIP-4444's code for history a node no longer serves.
            "pruned" => PRUNED_HISTORY,
            _ => SERVER_ERROR,
        };
        RpcError::new(code, e.message)
    }
}

pub(super) type RpcResult<T = Value> = Result<T, RpcError>;

/// A quantity: "0x" and lower-case hex digits without leading zeros.
pub(super) fn qty(n: impl Into<u128>) -> Value {
    json!(format!("{:#x}", n.into()))
}

/// Unformatted data: "0x" and two hex digits a byte.
pub(super) fn data(bytes: &[u8]) -> Value {
    json!(format!("0x{}", crate::rpc::hex_encode(bytes)))
}

/// "0x"-prefixed hex, as the JSON-RPC requires it.
pub(super) fn hex_bytes(text: &str) -> Option<Vec<u8>> {
    text.strip_prefix("0x").and_then(crate::rpc::hex_decode)
}

pub(super) fn parse_qty(text: &str) -> Option<u128> {
    let digits = text.strip_prefix("0x")?;
    if digits.is_empty() || digits.len() > 32 {
        return None;
    }
    u128::from_str_radix(digits, 16).ok()
}

pub(super) fn str_param<'a>(params: &'a [Value], i: usize, what: &str) -> RpcResult<&'a str> {
    params.get(i).and_then(Value::as_str).ok_or_else(|| {
        RpcError::params(format!("parameter {i} ({what}) is missing or not a string"))
    })
}

pub(super) fn address_param(params: &[Value], i: usize) -> RpcResult<Address> {
    let text = str_param(params, i, "an address")?;
    text.parse()
        .map_err(|_| RpcError::params(format!("{text:?} is not a 20-byte hex address")))
}

pub(super) fn hash_param(params: &[Value], i: usize) -> RpcResult<Hash32> {
    let text = str_param(params, i, "a hash")?;
    text.parse()
        .map_err(|_| RpcError::params(format!("{text:?} is not a 32-byte hex hash")))
}

/// A storage slot: a quantity of up to 32 bytes, left-padded.
pub(super) fn word_param(params: &[Value], i: usize) -> RpcResult<[u8; 32]> {
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
pub(super) fn block_param(state: &RpcState, param: Option<&Value>) -> RpcResult<u64> {
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
