//! Bodies for the binary wire formats: what peers and RPC clients send in canonical bytes.

use ordo_consensus::Message;
use ordo_network::{
    read_frames_from, write_frames_to_vec, Batch, BatchMessage, Request, Response,
    MAX_BATCH_MESSAGE_BYTES, MAX_REQUEST_BYTES, MAX_RESPONSE_BYTES,
};
use ordo_types::codec::{self, Encode};
use ordo_types::SignedTransaction;

use crate::config::RpcSection;
use crate::rpc::decode_batch;
use crate::wire::{NodeMessage, NodeRequest, NodeResponse};

/// The canonical codec has one encoding per value, so a decoded value must re-encode to
/// the very bytes it came from; anything else means two encodings share a value (and a
/// digest or signature could be reused across them).
fn assert_canonical<T: Encode>(what: &str, value: &T, input: &[u8]) {
    assert!(
        codec::encode(value) == input,
        "{what}: a decoded value re-encodes to different bytes"
    );
}

/// One transaction in canonical bytes (`POST /v1/transactions`, octet-stream).
pub fn transaction(data: &[u8]) -> bool {
    let Ok(tx) = SignedTransaction::decode(data) else {
        return false;
    };
    assert_canonical("transaction", &tx, data);
    let _ = (tx.hash(), tx.sender_address());
    true
}

/// The RPC's binary batch of transactions (`POST /v1/transactions/batch`).
pub fn rpc_transactions(data: &[u8]) -> bool {
    let Ok(txs) = decode_batch::<SignedTransaction>(data, RpcSection::default().max_body_bytes)
    else {
        return false;
    };
    assert_canonical("transaction batch", &txs, data);
    for tx in &txs {
        let _ = tx.hash();
    }
    true
}

/// The RPC's binary batch of opaque payloads (`POST /v1/payloads/batch`).
pub fn rpc_payloads(data: &[u8]) -> bool {
    let Ok(payloads) = decode_batch::<Vec<u8>>(data, RpcSection::default().max_body_bytes) else {
        return false;
    };
    assert_canonical("payload batch", &payloads, data);
    true
}

/// A consensus message as the consensus crate decodes it, then logged.
pub fn consensus_message(data: &[u8]) -> bool {
    let Ok(message) = Message::decode(data) else {
        return false;
    };
    consensus_checks(&message, data);
    true
}

fn consensus_checks(message: &Message, input: &[u8]) {
    assert_canonical("consensus message", message, input);
    let _ = (message.round(), message.kind(), message.to_string());
    if let Message::BlockResponse { blocks } | Message::CatchUpResponse { blocks, .. } = message {
        for block in blocks {
            let _ = block.id();
        }
    }
}

/// A frame of the batch protocol.
pub fn batch_message(data: &[u8]) -> bool {
    let Ok(message) = codec::decode::<BatchMessage, MAX_BATCH_MESSAGE_BYTES>(data) else {
        return false;
    };
    assert_canonical("batch message", &message, data);
    match &message {
        BatchMessage::Batch(batch) => batch_checks(batch),
        BatchMessage::Ack(ack) => {
            let _ = ack.info.to_string();
        }
    }
    true
}

fn batch_checks(batch: &Batch) {
    let (bytes, info) = batch.encode_with_info();
    assert_eq!(
        info.bytes as usize,
        bytes.len(),
        "a batch's summary must state its encoded length"
    );
    let _ = info.to_string();
}

/// A sync request; opaque ones are the node's own requests inside.
pub fn sync_request(data: &[u8]) -> bool {
    let Ok(request) = codec::decode::<Request, MAX_REQUEST_BYTES>(data) else {
        return false;
    };
    assert_canonical("sync request", &request, data);
    if let Request::Opaque(inner) = &request {
        node_request(inner);
    }
    true
}

/// A sync response; opaque ones are the node's own responses inside.
pub fn sync_response(data: &[u8]) -> bool {
    let Ok(response) = codec::decode::<Response, MAX_RESPONSE_BYTES>(data) else {
        return false;
    };
    assert_canonical("sync response", &response, data);
    match &response {
        Response::Batch(Some(batch)) => batch_checks(batch),
        Response::Opaque(inner) => {
            node_response(inner);
        }
        Response::Batch(None) | Response::Busy => {}
    }
    true
}

/// A byte stream cut into length-prefixed frames. The first byte picks the reader's limit
/// (in units of 16 bytes) so that refusals of oversized frames are reached too.
pub fn frames(data: &[u8]) -> bool {
    let Some((&limit, stream)) = data.split_first() else {
        return false;
    };
    let max = usize::from(limit) * 16;
    let (frames, clean_end) = read_frames_from(stream, max);
    assert!(
        frames.iter().all(|f| f.len() <= max),
        "a frame over the reader's limit was accepted"
    );
    let written = write_frames_to_vec(&frames);
    assert!(
        stream.starts_with(&written),
        "frames read back do not write out as the bytes they came from"
    );
    if clean_end {
        assert_eq!(
            written.len(),
            stream.len(),
            "a clean end must come after the last frame's bytes"
        );
    }
    clean_end
}

/// A frame of the consensus stream: the node's envelope around consensus messages.
pub fn node_message(data: &[u8]) -> bool {
    let Ok(message) = NodeMessage::decode(data) else {
        return false;
    };
    assert_canonical("node message", &message, data);
    if let NodeMessage::Consensus(inner) = &message {
        // Only the envelope's 4-byte variant tag comes before the consensus message.
        consensus_checks(inner, data.get(4..).unwrap_or_default());
    }
    true
}

/// The node's request on the sync protocol's opaque channel.
pub fn node_request(data: &[u8]) -> bool {
    let Ok(request) = NodeRequest::decode(data) else {
        return false;
    };
    assert_canonical("node request", &request, data);
    true
}

/// The node's response: a batch's bytes, decoded again as the fetching node does.
pub fn node_response(data: &[u8]) -> bool {
    let Ok(response) = NodeResponse::decode(data) else {
        return false;
    };
    assert_canonical("node response", &response, data);
    if let NodeResponse::Blocks(blocks) = &response {
        // Handed to the replica, which hashes and prints them.
        for block in blocks {
            let _ = (block.id(), block.to_string());
        }
        return true;
    }
    let NodeResponse::Batch(Some(bytes)) = &response else {
        return true;
    };
    if let Ok(batch) = codec::decode::<Batch, MAX_BATCH_MESSAGE_BYTES>(bytes) {
        assert_canonical("fetched batch", &batch, bytes);
        batch_checks(&batch);
    }
    true
}
