//! Bodies for what Ethereum clients send: raw transactions and JSON-RPC bodies.

use ordo_types::{EthTransaction, SignedTransaction, MAX_TRANSACTION_BYTES};

use crate::rpc::eth::{decode_params, parse_body, MAX_BODY_BYTES};

/// One Ethereum transaction's EIP-2718 bytes (`eth_sendRawTransaction`): decoded, its
/// sender recovered (or refused), and as one of Ordo's transactions it survives the
/// canonical encoding peers exchange.
pub fn eth_transaction(data: &[u8]) -> bool {
    if data.len() > MAX_TRANSACTION_BYTES {
        return false;
    }
    let Ok(tx) = EthTransaction::from_raw(data.to_vec()) else {
        return false;
    };
    assert!(
        tx.hash().0 == alloy_primitives::keccak256(data).0,
        "an Ethereum transaction's hash is not keccak-256 of its bytes"
    );
    let _ = tx.sender();
    let signed = SignedTransaction::from(tx);
    let again = SignedTransaction::decode(&signed.encode());
    assert!(
        again.as_ref().ok() == Some(&signed),
        "an Ethereum transaction does not survive the canonical encoding: {again:?}"
    );
    true
}

/// A JSON-RPC body (`POST /`): one request or a batch, and the parameter decoders of the
/// methods, none of which may panic.
pub fn eth_json_rpc(data: &[u8]) -> bool {
    if data.len() > MAX_BODY_BYTES {
        return false;
    }
    let Ok((_, requests)) = parse_body(data) else {
        return false;
    };
    for request in requests.iter().flatten() {
        decode_params(request);
    }
    true
}
