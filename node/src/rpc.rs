//! The HTTP API (axum), on 127.0.0.1 unless configured otherwise.
//!
//! | method | path | |
//! |---|---|---|
//! | POST | `/v1/transactions` | one transaction: JSON (`application/json`) or canonical bytes |
//! | POST | `/v1/transactions/batch` | canonical bytes of `Vec<SignedTransaction>` |
//! | POST | `/v1/payloads/batch` | ordering-only networks: canonical bytes of `Vec<Vec<u8>>` |
//! | GET | `/v1/transactions/{hash}?wait_ms=N&transaction=true` | `pending`, `committed`, `expired`, `unknown`; long-poll; the transaction itself when asked |
//! | GET | `/v1/accounts/{address}` | balance, nonce and `next_nonce` (below) |
//! | GET | `/v1/blocks/latest`, `/v1/blocks/{height}` | a committed block |
//! | GET | `/v1/blocks/{height}/transactions?wait_ms=N` | hashes of an executed block's transactions; long-poll |
//! | GET | `/v1/status` | heights, round, state root, peers |
//! | GET | `/health` | 200 while the node is sound |
//! | GET | `/metrics` | Prometheus exposition |
//! | POST | `/` | the Ethereum JSON-RPC 2.0 ([`eth`]: `eth_sendRawTransaction`, receipts, ...) |
//!
//! The metrics listener (config `metrics.listen`) serves [`metrics_router`]: `/metrics` and
//! `/health` only, never submission or the admin endpoint.
//!
//! Errors are JSON `{"error": {"code": …, "message": …}}` with a stable code:
//! `malformed`, `too_large`, `bad_signature`, `wrong_chain`, `expired`, `nonce_too_low`,
//! `nonce_too_high`, `duplicate`, `mempool_full`, `busy`, `behind`, `not_found`, `pruned`
//! (410: history below the oldest height kept, named in the message), `syncing` (503,
//! while a state sync runs: only `/v1/status` and `/health` answer, with its progress),
//! `wrong_mode`, `internal`. A `busy` answer (503, `Retry-After: 1`) admitted nothing: the request may
//! be sent again unchanged. Submissions are refused `busy` before their body is read when
//! this validator has as much in flight as it orders in its latency budget
//! ([`crate::admission`]).
//!
//! What a client reads must be true:
//! - An account is answered from state at least as new as the height this node had
//!   committed when the request arrived (execution runs behind consensus): the handler
//!   waits up to [`FRESH_STATE_WAIT`] for execution to get there, else answers `behind`
//!   (503), so that a client never signs with a nonce this node already knows is used.
//!   `next_nonce` also counts this sender's transactions accepted here and not executed yet.
//! - A committed transaction says whether it `executed`: one that failed a precondition
//!   (a nonce already used, a fee it cannot pay, ...) was included but changed nothing and
//!   charged nothing, and says so, with the nonce it carried and the one expected.
//!
//! Invariant: no request body is read beyond the configured limit, and nothing a client
//! sends can panic a handler.

pub(crate) mod eth;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use metrics_exporter_prometheus::PrometheusHandle;
use ordo_consensus::messages::MAX_MESSAGE_BYTES;
use ordo_consensus::{Block, QuorumCert};
use ordo_execution::{
    read_only_call, BlockContext, ChainConfig, EvmOutcome, ReadOnlyRequest, Receipt, StateKey,
    StateValue, TxStatus, MAX_RECEIPT_BYTES, MAX_TX_GAS,
};
use ordo_network::{
    Batch, BatchBody, Dissemination, Mempool, NetworkHandle, MAX_BATCH_MESSAGE_BYTES,
};
use ordo_types::{codec, Address, Amount, Hash32, SignedTransaction, MAX_TRANSACTION_BYTES};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::{watch, Semaphore};

use crate::admission::{IngressGate, Reservation};
use crate::pipeline::{status_code, status_name};
use crate::roots::RootsView;
use crate::shared::{ExecutedTip, Shared};
use crate::tx_index::TxIndex;
use ordo_types::now_ms;

/// Largest JSON body of one transaction.
pub(crate) const MAX_JSON_TX_BYTES: usize = 16 << 10;

/// The longest an account query waits for execution to reach the height this node had
/// committed when the query arrived. A validator in step executes a committed block in
/// tens to hundreds of milliseconds; one still behind after 2 s is catching up or
/// overloaded, and its client does better asking another validator (the CLI's requests
/// time out after 10 s, so the answer `behind` arrives well before that).
pub const FRESH_STATE_WAIT: Duration = Duration::from_secs(2);

pub struct RpcState {
    pub shared: Arc<Shared>,
    /// Transactions accepted here and pending, and recent blocks' lists (owned by the RPC).
    pub index: Arc<TxIndex>,
    /// What the state-root tracker found.
    pub roots: watch::Receiver<RootsView>,
    pub mempool: Arc<Mempool>,
    /// Admission control's figures ([`crate::admission`]).
    pub gate: Arc<IngressGate>,
    pub network: NetworkHandle,
    /// Makes batches of opaque payloads directly (ordering-only networks).
    pub dissemination: Dissemination,
    pub ordering_only: bool,
    /// The chain's execution parameters, for read-only contract calls.
    pub chain: ChainConfig,
    pub prometheus: Option<PrometheusHandle>,
    pub max_body_bytes: usize,
    pub max_wait_ms: u64,
    /// Requests served at once; a submission's permit also covers its signature check,
    /// which outlives the request if the client goes away.
    pub concurrency: Arc<Semaphore>,
    /// Serve `/v1/admin/partition` (config `rpc.fault_injection`, loopback only).
    pub fault_injection: bool,
}

/// A client-facing error with its stable code.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        metrics::counter!("ordo_node_rpc_errors_total", "code" => code).increment(1);
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    fn malformed(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "malformed", message)
    }

    fn too_large(len: usize, max: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("{len} bytes exceed the {max}-byte limit"),
        )
    }

    fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }

    /// Execution has not reached the height the answer must reflect: ask again or ask
    /// another validator.
    fn behind(executed: u64, committed: u64) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "behind",
            format!(
                "this validator has executed height {executed} of {committed} committed and \
                 did not catch up within {} ms; retry or ask another validator",
                FRESH_STATE_WAIT.as_millis()
            ),
        )
    }

    /// The history asked for is pruned here (`storage.retain_blocks`): the oldest block
    /// kept is at `oldest`.
    pub(crate) fn pruned(height: u64, oldest: u64) -> Self {
        Self::new(
            StatusCode::GONE,
            "pruned",
            format!("pruned; oldest height is {oldest} (height {height} asked)"),
        )
    }

    /// The code and message of a mempool refusal.
    pub fn from_admission(e: &ordo_network::Error) -> Self {
        use ordo_network::Error as E;
        let (status, code) = match e {
            E::BadSignature => (StatusCode::BAD_REQUEST, "bad_signature"),
            E::WrongChain { .. } => (StatusCode::BAD_REQUEST, "wrong_chain"),
            E::Expired { .. } => (StatusCode::BAD_REQUEST, "expired"),
            E::NonceTooLow { .. } => (StatusCode::CONFLICT, "nonce_too_low"),
            E::NonceTooHigh { .. } => (StatusCode::CONFLICT, "nonce_too_high"),
            E::Duplicate(_) => (StatusCode::CONFLICT, "duplicate"),
            E::MempoolFull(_) => (StatusCode::SERVICE_UNAVAILABLE, "mempool_full"),
            E::TooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
            _ => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        };
        Self::new(status, code, e.to_string())
    }

    pub fn code(&self) -> &'static str {
        self.code
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Json(json!({ "error": { "code": self.code, "message": self.message } }));
        if self.code == "busy" {
            // The standard hint, in whole seconds; clients that back off faster may.
            return (self.status, [(header::RETRY_AFTER, "1")], body).into_response();
        }
        (self.status, body).into_response()
    }
}

type ApiResult<T> = Result<T, ApiError>;

pub fn router(state: Arc<RpcState>) -> Router {
    let mut router = Router::new();
    if state.fault_injection {
        router = router
            .route("/v1/admin/partition", get(partition).post(set_partition))
            .route("/v1/admin/link-delay", get(link_delay).post(set_link_delay));
    }
    router
        .route("/", post(eth::handle))
        .route("/v1/transactions", post(submit))
        .route("/v1/transactions/batch", post(submit_batch))
        .route("/v1/payloads/batch", post(submit_payloads))
        .route("/v1/transactions/{hash}", get(transaction))
        .route("/v1/accounts/{address}", get(account))
        .route("/v1/contract/read", post(contract_read))
        .route("/v1/blocks/latest", get(latest_block))
        .route("/v1/blocks/{height}", get(block))
        .route("/v1/blocks/{height}/transactions", get(block_transactions))
        .route("/v1/status", get(status))
        .route("/health", get(health))
        .route("/metrics", get(metrics_text))
        .fallback(|| async {
            ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint")
        })
        .with_state(state)
}

/// The metrics listener's routes: Prometheus exposition and health, nothing that changes
/// state or reveals more than the RPC port's `/metrics` does.
pub fn metrics_router(state: Arc<RpcState>) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics_text))
        .fallback(|| async {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                "the metrics port serves /metrics and /health only",
            )
        })
        .with_state(state)
}

/// What the RPC port answers while a state sync runs (the RPC proper starts after it):
/// `/health` and `/v1/status` 503 with code `syncing`, whose message (for `ordo status`)
/// and `sync` object tell the restore's progress; nothing else. Not 200: a client that
/// waits for a validator to answer must not take a syncing one for ready.
pub fn sync_status_router(chain_id: u64, progress: Arc<crate::statesync::Progress>) -> Router {
    Router::new()
        .route(
            "/health",
            get(|| async {
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    Json(json!({ "status": "syncing" })),
                )
            }),
        )
        .route(
            "/v1/status",
            get(move || {
                let progress = progress.clone();
                async move {
                    let sync = progress.to_json();
                    let message = format!(
                        "restoring the snapshot of height {} ({}): {} of {} chunks applied, \
                         {:.1} a second, for {:.1} s",
                        sync["snapshot_height"],
                        sync["step"].as_str().unwrap_or("?"),
                        sync["chunks_applied"],
                        sync["chunks"],
                        sync["chunks_per_second"].as_f64().unwrap_or(0.0),
                        sync["seconds"].as_f64().unwrap_or(0.0),
                    );
                    (
                        StatusCode::SERVICE_UNAVAILABLE,
                        [(header::RETRY_AFTER, "1")],
                        Json(json!({
                            "error": { "code": "syncing", "message": message },
                            "chain_id": chain_id,
                            "syncing": true,
                            "sync": sync,
                        })),
                    )
                }
            }),
        )
}

/// The metrics listener's routes while the validator restores a snapshot, before the rest
/// of it runs: Prometheus exposition (the `ordo_statesync_*` progress) and health.
pub fn sync_metrics_router(prometheus: Option<PrometheusHandle>) -> Router {
    Router::new()
        .route(
            "/health",
            get(|| async { Json(json!({ "status": "syncing" })) }),
        )
        .route(
            "/metrics",
            get(move || {
                let prometheus = prometheus.clone();
                async move {
                    match prometheus {
                        Some(h) => (
                            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
                            h.render(),
                        )
                            .into_response(),
                        None => ApiError::new(
                            StatusCode::NOT_FOUND,
                            "not_found",
                            "metrics are disabled",
                        )
                        .into_response(),
                    }
                }
            }),
        )
}

/// Serves `router` on `addr` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}

pub async fn bind(addr: SocketAddr) -> crate::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| crate::NodeError::Listen {
            addr: addr.to_string(),
            source,
        })
}

/// Reads a body of at most `max` bytes.
async fn read_body(headers: &HeaderMap, body: Body, max: usize) -> ApiResult<axum::body::Bytes> {
    if let Some(len) = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
    {
        if len > max {
            return Err(ApiError::too_large(len, max));
        }
    }
    axum::body::to_bytes(body, max)
        .await
        .map_err(|_| ApiError::too_large(max + 1, max))
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
}

/// The sender's next nonce in the latest executed state.
pub fn account_nonce(shared: &Shared, address: &Address) -> u64 {
    read_account(shared, address)
        .ok()
        .flatten()
        .map_or(0, |(_, nonce)| nonce)
}

fn read_account(shared: &Shared, address: &Address) -> ApiResult<Option<(Amount, u64)>> {
    let key = StateKey::Account(*address);
    let bytes = shared
        .storage
        .state_get(&key.to_bytes())
        .map_err(|e| ApiError::internal(e.to_string()))?;
    match bytes {
        None => Ok(None),
        Some(bytes) => match key.decode_value(&bytes) {
            Ok(StateValue::Account(a)) => Ok(Some((a.balance, a.nonce))),
            _ => Err(ApiError::internal("stored account does not decode")),
        },
    }
}

fn check_ingress(state: &RpcState) -> ApiResult<()> {
    if state.ordering_only {
        return Err(wrong_mode(
            "this network is ordering-only: submit opaque payloads to /v1/payloads/batch",
        ));
    }
    if state.shared.overloaded() {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "busy",
            format!(
                "execution is {} blocks behind consensus; retry shortly",
                state.shared.lag()
            ),
        ));
    }
    Ok(())
}

/// Admission control ([`crate::admission`]): an offer of `items` is refused before it is
/// decoded, so that an offer over capacity costs neither a signature check nor
/// dissemination. The reservation is held until the items are in the mempool or batched.
fn admit(state: &RpcState, items: u64) -> ApiResult<Reservation<'_>> {
    let waiting = state.mempool.len() as u64 + state.dissemination.unproven_items();
    state.gate.admit(items, waiting).map_err(|r| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "busy",
            format!(
                "{} transactions admitted here wait to be ordered, this validator's limit \
                 at its measured commit rate ({}); retry shortly",
                r.in_flight, r.limit
            ),
        )
    })
}

fn remember_pending(state: &RpcState, hash: Hash32, expiry: u64) {
    state.index.accepted([(hash, expiry)]);
}

async fn submit(
    State(state): State<Arc<RpcState>>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Json<Value>> {
    let _permit = state.concurrency.try_acquire().map_err(|_| busy())?;
    let _room = admit(&state, 1)?;
    let started = Instant::now();
    let json = is_json(&headers);
    let max = if json {
        MAX_JSON_TX_BYTES
    } else {
        MAX_TRANSACTION_BYTES
    };
    let bytes = read_body(&headers, body, max).await?;
    let tx: SignedTransaction = if json {
        serde_json::from_slice(&bytes).map_err(|e| ApiError::malformed(e.to_string()))?
    } else {
        SignedTransaction::decode(&bytes).map_err(decode_error)?
    };
    check_ingress(&state)?;
    let expiry = tx.expiry();
    let nonce = account_nonce(&state.shared, &tx.sender_address());
    let hash = state
        .mempool
        .insert(tx, nonce, now_ms())
        .map_err(|e| ApiError::from_admission(&e))?;
    remember_pending(&state, hash, expiry);
    metrics::histogram!("ordo_node_rpc_seconds", "endpoint" => "submit")
        .record(started.elapsed().as_secs_f64());
    Ok(Json(json!({ "hash": hash, "status": "pending" })))
}

async fn submit_batch(
    State(state): State<Arc<RpcState>>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Json<Value>> {
    let permit = state
        .concurrency
        .clone()
        .try_acquire_owned()
        .map_err(|_| busy())?;
    let started = Instant::now();
    let bytes = read_body(&headers, body, state.max_body_bytes).await?;
    let _room = admit(&state, claimed_items(&bytes)?)?;
    let txs: Vec<SignedTransaction> = decode_batch(&bytes, state.max_body_bytes)?;
    check_ingress(&state)?;
    let shared = state.shared.clone();
    let mempool = state.mempool.clone();
    let expiries: Vec<u64> = txs.iter().map(SignedTransaction::expiry).collect();
    // Batch signature verification is bulk CPU work: below consensus, off the async workers.
    // The permit goes with the job: a client that disconnects drops this handler, not
    // the queued check, which must still count against the bound.
    let results = crate::bulk::verify(move || {
        let _permit = permit;
        mempool.insert_many(txs, |k| account_nonce(&shared, k), now_ms())
    })
    .await
    .ok_or_else(|| ApiError::internal("admission panicked".to_string()))?;
    let mut accepted = 0usize;
    let mut out = Vec::with_capacity(results.len());
    let mut pending = Vec::new();
    for (result, expiry) in results.iter().zip(&expiries) {
        match result {
            Ok(hash) => {
                accepted += 1;
                pending.push((*hash, *expiry));
                out.push(Value::Null);
            }
            Err(e) => out.push(Value::from(ApiError::from_admission(e).code())),
        }
    }
    state.index.accepted(pending);
    metrics::histogram!("ordo_node_rpc_seconds", "endpoint" => "submit_batch")
        .record(started.elapsed().as_secs_f64());
    Ok(Json(json!({ "accepted": accepted, "errors": out })))
}

/// How many items a binary batch body says it holds (its 8-byte count prefix), read before
/// it is decoded. Every item takes at least one byte after the count, so a count above
/// what is left is a lie: refused before anything reserves room for that many items.
fn claimed_items(bytes: &[u8]) -> ApiResult<u64> {
    let Some(prefix) = bytes.first_chunk::<8>() else {
        return Ok(0);
    };
    let count = u64::from_le_bytes(*prefix);
    if count > (bytes.len() - 8) as u64 {
        return Err(ApiError::malformed(format!(
            "the body claims {count} items in {} bytes",
            bytes.len()
        )));
    }
    Ok(count)
}

/// A binary request body of several items (transactions, opaque payloads).
pub(crate) fn decode_batch<T: bincode::Decode<()>>(bytes: &[u8], max: usize) -> ApiResult<Vec<T>> {
    // The limit is a const generic; requests are bounded by `max` already, so decode under
    // the largest body the node could be configured with.
    const CAP: usize = 64 << 20;
    if bytes.len() > max.min(CAP) {
        return Err(ApiError::too_large(bytes.len(), max.min(CAP)));
    }
    claimed_items(bytes)?;
    codec::decode::<Vec<T>, CAP>(bytes).map_err(decode_error)
}

/// A body that does not decode: `too_large` when it is over the limit, else `malformed`.
fn decode_error(e: ordo_types::Error) -> ApiError {
    match e {
        ordo_types::Error::TooLarge { len, max } => ApiError::too_large(len, max),
        other => ApiError::malformed(other.to_string()),
    }
}

fn wrong_mode(message: &str) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "wrong_mode", message)
}

fn busy() -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "busy",
        "too many requests in flight",
    )
}

#[derive(Deserialize)]
struct WaitQuery {
    wait_ms: Option<u64>,
    /// `/v1/transactions/{hash}?transaction=true`: a committed transaction's answer also
    /// holds the transaction itself (read from its block's batches, so only on request).
    transaction: Option<bool>,
}

/// A transaction's status as this node knows it.
fn tx_status(state: &RpcState, hash: &Hash32) -> ApiResult<Value> {
    let storage = &state.shared.storage;
    if let Some(loc) = storage
        .tx_location(hash)
        .map_err(|e| ApiError::internal(e.to_string()))?
    {
        let receipt = storage
            .receipt(hash)
            .ok()
            .flatten()
            .and_then(|b| codec::decode::<Receipt, MAX_RECEIPT_BYTES>(&b).ok());
        // Included is not executed: a transaction that failed a precondition changed
        // nothing and paid nothing, and a client must be able to tell.
        let executed = match &receipt {
            Some(r) => r.status.charged(),
            None => !UNCHARGED_STATUS_CODES.contains(&loc.status),
        };
        let mut answer = json!({
            "hash": hash,
            "status": "committed",
            "height": loc.height,
            "position": loc.position,
            "execution_status": status_name(loc.status),
            "success": loc.status == 0,
            "executed": executed,
            "fee": receipt.as_ref().map(|r| r.fee.to_string()),
            "gas_used": receipt.as_ref().map(|r| r.gas_used),
        });
        if let Some(Receipt {
            status: TxStatus::BadNonce { expected },
            ..
        }) = receipt
        {
            answer["expected_nonce"] = expected.into();
        }
        if let Some(r) = &receipt {
            match r.status {
                TxStatus::EvmInvalid(reason) => answer["reason"] = format!("{reason:?}").into(),
                TxStatus::Halted(reason) => answer["reason"] = format!("{reason:?}").into(),
                _ => {}
            }
        }
        if let Some(outcome) = receipt.as_ref().and_then(|r| r.evm.as_deref()) {
            answer["evm"] = evm_outcome_json(outcome);
        }
        return Ok(answer);
    }
    let expiry = state.index.pending_expiry(hash);
    let status = match expiry {
        // A transaction expires by block time: once a block past its expiry is executed
        // and it is not in the index, no later block can include it.
        Some(expiry) if expiry < state.shared.executed_tip().timestamp_ms => "expired",
        Some(_) => "pending",
        None => "unknown",
    };
    let mut answer = json!({ "hash": hash, "status": status });
    if status == "unknown" {
        // It may have been committed below the history kept here.
        let oldest = state.shared.storage.pruned_below().unwrap_or(0);
        if oldest > 0 {
            answer["pruned_below"] = oldest.into();
            answer["note"] =
                format!("unknown here; history below height {oldest} is pruned").into();
        }
    }
    Ok(answer)
}

async fn transaction(
    State(state): State<Arc<RpcState>>,
    Path(hash): Path<String>,
    Query(query): Query<WaitQuery>,
) -> ApiResult<Json<Value>> {
    let hash: Hash32 = hash
        .parse()
        .map_err(|e: ordo_types::HexParseError| ApiError::malformed(e.to_string()))?;
    let wait = Duration::from_millis(query.wait_ms.unwrap_or(0).min(state.max_wait_ms));
    let deadline = tokio::time::Instant::now() + wait;
    let mut executed = state.shared.executed.subscribe();
    let whole = query.transaction.unwrap_or(false);
    loop {
        let status = tx_status(&state, &hash)?;
        let done = matches!(
            status["status"].as_str(),
            Some("committed") | Some("expired")
        );
        if done || tokio::time::Instant::now() >= deadline {
            return Ok(Json(with_transaction(&state, hash, status, whole).await));
        }
        // Woken by each executed block; the status can only change then.
        if tokio::time::timeout_at(deadline, executed.changed())
            .await
            .is_err()
        {
            let status = tx_status(&state, &hash)?;
            return Ok(Json(with_transaction(&state, hash, status, whole).await));
        }
    }
}

/// The status codes (see `pipeline::status_code`) of transactions that were included but
/// not executed, for a receipt that cannot be read; [`TxStatus::charged`] is the rule.
const UNCHARGED_STATUS_CODES: [u8; 6] = [1, 2, 3, 4, 5, 11];

/// A contract transaction's output, logs and created contract, with bytes in "0x" hex as
/// Ethereum tools print them.
fn evm_outcome_json(outcome: &EvmOutcome) -> Value {
    let hex0x = |bytes: &[u8]| {
        let digits: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        format!("0x{digits}")
    };
    json!({
        "output": hex0x(&outcome.output),
        "created": outcome.created,
        "logs": outcome.logs.iter().map(|log| json!({
            "address": log.address,
            "topics": log.topics.iter().map(|t| hex0x(t)).collect::<Vec<_>>(),
            "data": hex0x(&log.data),
        })).collect::<Vec<_>>(),
    })
}

/// Adds what only the committed transaction itself tells: to a `bad_nonce` answer the
/// nonce it carried and whether that was already used (`nonce_already_used`: the
/// difference between "send it again with a fresh nonce" and "send the missing nonces
/// first"); and, when `whole` asks, the transaction. It is read back from its block's
/// batches, once; this is rare and bounded by the RPC's concurrency, and the answer goes out
/// without those fields when it cannot be done (busy, or the block pruned).
async fn with_transaction(
    state: &Arc<RpcState>,
    hash: Hash32,
    mut status: Value,
    whole: bool,
) -> Value {
    let expected = status["expected_nonce"].as_u64();
    let Some(height) = status["height"]
        .as_u64()
        .filter(|_| whole || expected.is_some())
    else {
        return status;
    };
    let Ok(_permit) = state.concurrency.try_acquire() else {
        return status;
    };
    let found = tokio::task::spawn_blocking({
        let state = state.clone();
        move || transaction_in_block(&state, height, &hash)
    })
    .await;
    if let Ok(Some(tx)) = found {
        if let Some(expected) = expected {
            status["nonce"] = tx.nonce().into();
            status["nonce_already_used"] = (tx.nonce() < expected).into();
        }
        if whole {
            // `?transaction=true`: the committed transaction itself.
            status["transaction"] = transaction_json(&tx);
        }
    }
    status
}

/// A transaction whole, either kind: sender, chain, nonce, expiry, payload (amounts as
/// decimal strings, bytes in hex), and what its kind adds.
pub(crate) fn transaction_json(tx: &SignedTransaction) -> Value {
    let mut v = json!({
        "sender": tx.sender_address(),
        "chain_id": tx.chain_id(),
        "nonce": tx.nonce(),
        "expiry": (tx.expiry() != u64::MAX).then_some(tx.expiry()),
        "payload": tx.payload(),
    });
    match tx {
        SignedTransaction::Ordo(t) => {
            v["kind"] = "ordo".into();
            v["public_key"] = json!(t.tx.sender);
        }
        SignedTransaction::Ethereum(e) => {
            v["kind"] = "ethereum".into();
            v["type"] = e.tx_type().into();
            v["fee_cap"] = e.fee_cap().to_string().into();
            v["raw"] = format!("0x{}", hex_encode(e.raw())).into();
        }
    }
    v
}

/// Transaction `hash` as block `height`'s batches carry it, if they are still stored.
fn transaction_in_block(state: &RpcState, height: u64, hash: &Hash32) -> Option<SignedTransaction> {
    let storage = &state.shared.storage;
    let (_, bytes) = storage.block_at(height).ok()??;
    let block = codec::decode::<Block, MAX_MESSAGE_BYTES>(&bytes).ok()?;
    for digest in &block.payload {
        let Some(bytes) = storage.batch(digest).ok().flatten() else {
            continue;
        };
        let Ok(batch) = codec::decode::<Batch, MAX_BATCH_MESSAGE_BYTES>(&bytes) else {
            continue;
        };
        if let BatchBody::Transactions(txs) = batch.body {
            if let Some(tx) = txs.into_iter().find(|tx| tx.hash() == *hash) {
                return Some(tx);
            }
        }
    }
    None
}

/// Waits until execution reaches the height this node has committed now, for at most
/// [`FRESH_STATE_WAIT`]; `behind` if it does not.
async fn fresh_state(shared: &Shared) -> ApiResult<()> {
    executed_at_least(
        &shared.executed,
        shared.committed_height(),
        FRESH_STATE_WAIT,
    )
    .await
}

/// Waits until the executed tip reaches `height`, for at most `within`; `behind` if not.
async fn executed_at_least(
    executed: &tokio::sync::watch::Sender<ExecutedTip>,
    height: u64,
    within: Duration,
) -> ApiResult<()> {
    if executed.borrow().height >= height {
        return Ok(());
    }
    let mut tips = executed.subscribe();
    // The watch guard must not live across an await: only whether the wait succeeded.
    let caught_up = tokio::time::timeout(within, async {
        tips.wait_for(|tip| tip.height >= height).await.is_ok()
    })
    .await
    .unwrap_or(false);
    if caught_up {
        Ok(())
    } else {
        Err(ApiError::behind(executed.borrow().height, height))
    }
}

async fn account(
    State(state): State<Arc<RpcState>>,
    Path(address): Path<String>,
) -> ApiResult<Json<Value>> {
    let address: Address = address
        .parse()
        .map_err(|e: ordo_types::HexParseError| ApiError::malformed(e.to_string()))?;
    fresh_state(&state.shared).await?;
    let height = state.shared.executed_tip().height;
    let (balance, nonce) = read_account(&state.shared, &address)?.unwrap_or((0, 0));
    // `nonce` is the executed state's; `next_nonce` is what to sign next, counting what
    // this node accepted from the sender and has not executed yet.
    let next_nonce = state
        .mempool
        .next_nonce(&address, nonce, now_ms())
        .map_or(nonce, |n| n.max(nonce));
    Ok(Json(json!({
        "address": address,
        // A decimal string: 128 bits do not survive JSON numbers in most clients.
        "balance": balance.to_string(),
        "nonce": nonce,
        "next_nonce": next_nonce,
        "height": height,
    })))
}

/// The identifier of an opaque payload (ordering-only networks), as block transaction
/// lists report it.
pub fn payload_hash(payload: &[u8]) -> Hash32 {
    Hash32::digest(b"ordo/payload\0", payload)
}

/// Ordering-only networks: opaque payloads go into batches without a mempool (there is
/// nothing to check), in chunks that fit a batch, sharing batches with other submissions
/// (`Dissemination::submit_opaque`). Answered once every chunk is in a batch.
async fn submit_payloads(
    State(state): State<Arc<RpcState>>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Json<Value>> {
    if !state.ordering_only {
        return Err(wrong_mode(
            "opaque payloads are accepted only by ordering-only networks (testnet up --ordering-only)",
        ));
    }
    let _permit = state.concurrency.try_acquire().map_err(|_| busy())?;
    let started = Instant::now();
    let bytes = read_body(&headers, body, state.max_body_bytes).await?;
    let room = admit(&state, claimed_items(&bytes)?)?;
    let payloads: Vec<Vec<u8>> = decode_batch(&bytes, state.max_body_bytes)?;
    if state.shared.overloaded() {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "busy",
            format!(
                "{} committed blocks wait to be stored; retry shortly",
                state.shared.lag()
            ),
        ));
    }
    if let Some(big) = payloads.iter().find(|p| p.len() > MAX_TRANSACTION_BYTES) {
        return Err(ApiError::too_large(big.len(), MAX_TRANSACTION_BYTES));
    }
    let accepted = payloads.len();
    let making = |e| match e {
        ordo_network::Error::TooLarge { len, max } => ApiError::too_large(len, max),
        e => ApiError::internal(format!("making a batch: {e}")),
    };
    let receipt = state
        .dissemination
        .submit_opaque(payloads)
        .await
        .map_err(making)?;
    // Queued, the payloads count as unproven: this request's room is no longer needed.
    drop(room);
    receipt.batched().await.map_err(making)?;
    metrics::histogram!("ordo_node_rpc_seconds", "endpoint" => "submit_payloads")
        .record(started.elapsed().as_secs_f64());
    Ok(Json(json!({ "accepted": accepted })))
}

/// The hashes of the transactions block `height` executed, in order (opaque payloads'
/// [`payload_hash`]es on ordering-only networks). Reads the block's batches from disk,
/// where the pipeline stores them before executing.
fn block_transaction_hashes(state: &RpcState, height: u64) -> ApiResult<Arc<Vec<Hash32>>> {
    // Ordering-only blocks execute nothing: their payloads are listed from the batches.
    if !state.ordering_only {
        if let Some(hashes) = state.index.recent_block(height) {
            return Ok(hashes);
        }
    }
    let storage = &state.shared.storage;
    let internal = |e: &dyn std::fmt::Display| ApiError::internal(e.to_string());
    check_not_pruned(storage, height)?;
    let Some((_, bytes)) = storage.block_at(height).map_err(|e| internal(&e))? else {
        return Err(not_found_height(height));
    };
    let block = codec::decode::<Block, MAX_MESSAGE_BYTES>(&bytes).map_err(|e| internal(&e))?;
    let mut hashes = Vec::new();
    let mut listed = std::collections::HashSet::new();
    for digest in &block.payload {
        let Some(bytes) = storage.batch(digest).map_err(|e| internal(&e))? else {
            return Err(ApiError::internal(format!(
                "batch {digest} of block {height} is not stored"
            )));
        };
        let batch =
            codec::decode::<Batch, MAX_BATCH_MESSAGE_BYTES>(&bytes).map_err(|e| internal(&e))?;
        match &batch.body {
            BatchBody::Transactions(txs) => {
                for tx in txs {
                    let hash = tx.hash();
                    // A transaction in two batches ran once, where it first appeared.
                    let here = storage
                        .tx_location(&hash)
                        .map_err(|e| internal(&e))?
                        .is_some_and(|loc| loc.height == height);
                    if here && listed.insert(hash) {
                        hashes.push(hash);
                    }
                }
            }
            BatchBody::Opaque(payloads) => hashes.extend(payloads.iter().map(|p| payload_hash(p))),
        }
    }
    Ok(Arc::new(hashes))
}

fn not_found_height(height: u64) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("no executed block at height {height}"),
    )
}

/// `Err(pruned)` when height `height` is below the oldest kept (height 0, the genesis,
/// stays named but its block may be gone).
pub(crate) fn check_not_pruned(storage: &ordo_storage::Storage, height: u64) -> ApiResult<()> {
    let oldest = storage
        .pruned_below()
        .map_err(|e| ApiError::internal(e.to_string()))?;
    if height < oldest {
        return Err(ApiError::pruned(height, oldest));
    }
    Ok(())
}

async fn block_transactions(
    State(state): State<Arc<RpcState>>,
    Path(height): Path<String>,
    Query(query): Query<WaitQuery>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let height: u64 = height
        .parse()
        .map_err(|_| ApiError::malformed(format!("{height:?} is not a height")))?;
    let wait = Duration::from_millis(query.wait_ms.unwrap_or(0).min(state.max_wait_ms));
    let mut executed = state.shared.executed.subscribe();
    // The watch guard must not live across an await: only whether the wait succeeded.
    let _ = tokio::time::timeout(wait, async {
        executed.wait_for(|tip| tip.height >= height).await.is_ok()
    })
    .await;
    if state.shared.executed_tip().height < height {
        return Err(not_found_height(height));
    }
    let hashes = tokio::task::spawn_blocking({
        let state = state.clone();
        move || block_transaction_hashes(&state, height)
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))??;
    let binary = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/octet-stream"));
    Ok(if binary {
        (
            [(header::CONTENT_TYPE, "application/octet-stream")],
            codec::encode(&*hashes),
        )
            .into_response()
    } else {
        Json(json!({ "height": height, "transactions": &*hashes })).into_response()
    })
}

fn block_json(state: &RpcState, height: u64) -> ApiResult<Value> {
    let storage = &state.shared.storage;
    check_not_pruned(storage, height)?;
    let Some((hash, bytes)) = storage
        .block_at(height)
        .map_err(|e| ApiError::internal(e.to_string()))?
    else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no committed block at height {height}"),
        ));
    };
    let block = codec::decode::<Block, MAX_MESSAGE_BYTES>(&bytes)
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let qc = storage
        .qc(&hash)
        .ok()
        .flatten()
        .and_then(|b| codec::decode::<QuorumCert, MAX_MESSAGE_BYTES>(&b).ok());
    let state_root = storage.state_root_at(height).ok().flatten();
    Ok(json!({
        "height": height,
        "hash": hash,
        "round": block.round,
        "epoch": block.epoch,
        "author": block.author,
        "timestamp_ms": block.timestamp_ms,
        "parent": block.parent(),
        "batches": block.payload,
        "certified_round": qc.map(|q| q.round),
        "executed": state_root.is_some(),
        "state_root": state_root,
    }))
}

async fn latest_block(State(state): State<Arc<RpcState>>) -> ApiResult<Json<Value>> {
    let height = state.shared.committed_height();
    Ok(Json(block_json(&state, height)?))
}

async fn block(
    State(state): State<Arc<RpcState>>,
    Path(height): Path<String>,
) -> ApiResult<Json<Value>> {
    let height: u64 = height
        .parse()
        .map_err(|_| ApiError::malformed(format!("{height:?} is not a height")))?;
    Ok(Json(block_json(&state, height)?))
}

async fn status(State(state): State<Arc<RpcState>>) -> Json<Value> {
    let shared = &state.shared;
    let tip = shared.executed_tip();
    let committed = shared.committed_height();
    let roots = *state.roots.borrow();
    let peers = state.network.connected().len();
    metrics::gauge!("ordo_node_peers").set(peers as f64);
    let sync = shared.sync_progress();
    Json(json!({
        "chain_id": shared.chain_id,
        "height": committed,
        "round": shared.round(),
        "executed_height": tip.height,
        "state_root": tip.state_root,
        "peers": peers,
        "peer_id": state.network.peer_id().to_string(),
        "syncing": sync.phase != "synced",
        "sync": {
            "phase": sync.phase,
            "rounds_behind": sync.rounds_behind,
            "blocks_to_execute": sync.blocks_to_execute,
            "catch_up_blocks": sync.catch_up_blocks,
        },
        "mempool": state.mempool.len(),
        "voting": roots.voting,
        "state_root_agreed_height": roots.agreed_height,
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PartitionBody {
    /// Committee indices whose traffic this validator drops; empty heals.
    blocked: Vec<usize>,
}

/// `POST /v1/admin/partition {"blocked": [i, ...]}`: the test-only network filter.
async fn set_partition(
    State(state): State<Arc<RpcState>>,
    body: axum::body::Bytes,
) -> ApiResult<Json<Value>> {
    let body: PartitionBody = serde_json::from_slice(&body).map_err(|e| {
        ApiError::malformed(format!(
            "expected {{\"blocked\": [validator index, ...]}}: {e}"
        ))
    })?;
    let size = state.network.committee().size();
    if let Some(bad) = body.blocked.iter().find(|&&i| i >= size) {
        return Err(ApiError::malformed(format!(
            "validator {bad} is not in the committee of {size}"
        )));
    }
    let blocked = state.network.set_partitioned(&body.blocked);
    tracing::warn!(?blocked, "fault injection: partition set");
    Ok(Json(json!({ "blocked": blocked })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LinkDelayBody {
    /// Added to everything this validator sends; 0 removes the delay.
    one_way_ms: u64,
    #[serde(default)]
    jitter_ms: u64,
    /// Committee indices to delay; every other validator when absent.
    #[serde(default)]
    peers: Option<Vec<usize>>,
}

/// `POST /v1/admin/link-delay {"one_way_ms": 25, "jitter_ms": 2, "peers": [i, ...]}`: the
/// test-only link delay (wide-area conditions on one machine).
async fn set_link_delay(
    State(state): State<Arc<RpcState>>,
    body: axum::body::Bytes,
) -> ApiResult<Json<Value>> {
    let body: LinkDelayBody = serde_json::from_slice(&body).map_err(|e| {
        ApiError::malformed(format!(
            "expected {{\"one_way_ms\": N, \"jitter_ms\": N, \"peers\": [validator index, ...]}}: {e}"
        ))
    })?;
    let size = state.network.committee().size();
    if let Some(bad) = body.peers.iter().flatten().find(|&&i| i >= size) {
        return Err(ApiError::malformed(format!(
            "validator {bad} is not in the committee of {size}"
        )));
    }
    let max = ordo_network::MAX_LINK_DELAY.as_millis() as u64;
    if body.one_way_ms > max || body.jitter_ms > max {
        return Err(ApiError::malformed(format!(
            "a link delay is at most {max} ms, jitter too"
        )));
    }
    let delay = ordo_network::LinkDelay {
        one_way: std::time::Duration::from_millis(body.one_way_ms),
        jitter: std::time::Duration::from_millis(body.jitter_ms),
    };
    let all = state.network.set_link_delay(body.peers.as_deref(), delay);
    tracing::warn!(?delay, peers = ?body.peers, "fault injection: link delay set");
    Ok(Json(link_delays_json(&all)))
}

async fn link_delay(State(state): State<Arc<RpcState>>) -> Json<Value> {
    Json(link_delays_json(&state.network.link_delays()))
}

fn link_delays_json(all: &[ordo_network::LinkDelay]) -> Value {
    json!({ "peers": all.iter().map(|d| json!({
        "one_way_ms": d.one_way.as_millis() as u64,
        "jitter_ms": d.jitter.as_millis() as u64,
    })).collect::<Vec<_>>() })
}

async fn partition(State(state): State<Arc<RpcState>>) -> Json<Value> {
    Json(json!({ "blocked": state.network.partitioned() }))
}

/// A validator whose task failed stops (see `crate::supervisor`): one that answers is
/// healthy.
async fn health() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

async fn metrics_text(State(state): State<Arc<RpcState>>) -> Response {
    metrics::gauge!("ordo_node_mempool_transactions").set(state.mempool.len() as f64);
    metrics::gauge!("ordo_node_peers").set(state.network.connected().len() as f64);
    match &state.prometheus {
        Some(h) => (
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            h.render(),
        )
            .into_response(),
        None => ApiError::new(StatusCode::NOT_FOUND, "not_found", "metrics are disabled")
            .into_response(),
    }
}

/// The largest read-only call body: call data is bounded like a transaction's.
const MAX_READ_BODY_BYTES: usize = 2 * MAX_TRANSACTION_BYTES + 1024;
/// Gas of a read-only call when the request names none.
const DEFAULT_READ_GAS: u64 = 10_000_000;

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ReadRequest {
    to: Address,
    #[serde(default)]
    from: Option<Address>,
    /// Call data in hex, "0x" optional.
    #[serde(default)]
    input: String,
    #[serde(default)]
    gas: Option<u64>,
}

/// `POST /v1/contract/read`: a read-only call against the latest executed state (as
/// `eth_call` does): no transaction, no signature, no fee, nothing kept. The EVM runs on a
/// blocking thread, bounded by the gas cap like any contract call.
async fn contract_read(
    State(state): State<Arc<RpcState>>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Json<Value>> {
    if state.ordering_only {
        return Err(wrong_mode(
            "this network is ordering-only: it runs no contracts",
        ));
    }
    // A read runs the EVM for up to the gas cap: bounded by the RPC's concurrency like
    // submissions, so that a flood of reads is refused `busy` instead of queueing.
    let _permit = state.concurrency.try_acquire().map_err(|_| busy())?;
    let bytes = read_body(&headers, body, MAX_READ_BODY_BYTES).await?;
    let request: ReadRequest = serde_json::from_slice(&bytes).map_err(|e| {
        ApiError::malformed(format!(
            "a read is {{\"to\", \"input\", \"from\", \"gas\"}}: {e}"
        ))
    })?;
    let input_hex = request.input.trim();
    let input = hex_decode(input_hex.strip_prefix("0x").unwrap_or(input_hex))
        .ok_or_else(|| ApiError::malformed("\"input\" is not hex"))?;
    fresh_state(&state.shared).await?;
    let tip = state.shared.executed_tip();
    let block = BlockContext {
        height: tip.height + 1,
        timestamp_ms: tip.timestamp_ms,
    };
    let gas = request.gas.unwrap_or(DEFAULT_READ_GAS).min(MAX_TX_GAS);
    let shared = state.shared.clone();
    let config = state.chain.clone();
    let from = request.from.unwrap_or_default();
    let request = ReadOnlyRequest {
        from,
        to: Some(request.to),
        value: 0,
        input,
        gas_limit: gas,
    };
    let call = tokio::task::spawn_blocking(move || read_only(&shared, &config, &block, request))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let mut answer = json!({
        "status": status_name(status_code(&call.status)),
        "output": format!("0x{}", hex_encode(&call.output)),
        "gas_used": call.gas_used,
        "height": tip.height,
    });
    match call.status {
        TxStatus::EvmInvalid(reason) => answer["reason"] = format!("{reason:?}").into(),
        TxStatus::Halted(reason) => answer["reason"] = format!("{reason:?}").into(),
        _ => {}
    }
    Ok(Json(answer))
}

/// How many fresh state views a read-only call may take when blocks keep being written
/// under it; each retry costs one more run, and blocks are written a few times a second.
const READ_ATTEMPTS: usize = 8;

/// Runs a read-only call on the latest executed state, again on a fresh view when a block
/// write overtook the one it read (see `ordo_storage::StateSnapshot`). Blocking.
fn read_only(
    shared: &Shared,
    config: &ChainConfig,
    block: &BlockContext,
    request: ReadOnlyRequest,
) -> ordo_execution::Result<ordo_execution::ReadOnlyCall> {
    let mut attempt = 1;
    loop {
        let view = shared.storage.state_view();
        match read_only_call(&view, config, block, request.clone()) {
            Err(_) if view.is_stale() && attempt < READ_ATTEMPTS => attempt += 1,
            outcome => return outcome,
        }
    }
}

fn hex_encode(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn hex_decode(text: &str) -> Option<Vec<u8>> {
    if text.len() % 2 != 0 {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tip(height: u64) -> ExecutedTip {
        ExecutedTip {
            height,
            state_root: Hash32::default(),
            timestamp_ms: 0,
        }
    }

    #[tokio::test]
    async fn an_account_read_waits_for_execution_to_reach_the_committed_height() {
        let executed = tokio::sync::watch::Sender::new(tip(3));
        // Already there: no wait.
        executed_at_least(&executed, 3, Duration::ZERO)
            .await
            .unwrap();
        // Execution catches up within the bound: answered, from the newer state.
        let sender = executed.clone();
        let catch_up = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            sender.send_replace(tip(4));
            tokio::time::sleep(Duration::from_millis(50)).await;
            sender.send_replace(tip(5));
        });
        executed_at_least(&executed, 5, Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(executed.borrow().height, 5);
        catch_up.await.unwrap();
        // It does not: `behind`, a 503 that names both heights.
        let started = Instant::now();
        let err = executed_at_least(&executed, 9, Duration::from_millis(200))
            .await
            .unwrap_err();
        assert!(started.elapsed() >= Duration::from_millis(200));
        assert_eq!(
            (err.code, err.status),
            ("behind", StatusCode::SERVICE_UNAVAILABLE)
        );
        assert!(err.message.contains("height 5 of 9"), "{}", err.message);
    }

    #[test]
    fn uncharged_status_codes_are_those_execution_does_not_charge() {
        let all = [
            TxStatus::Success,
            TxStatus::WrongChain,
            TxStatus::Expired,
            TxStatus::BadNonce { expected: 1 },
            TxStatus::ComputeLimitExceeded,
            TxStatus::CannotPayFee,
            TxStatus::InsufficientBalance,
            TxStatus::UnknownPool,
            TxStatus::SlippageExceeded,
            TxStatus::UnknownCollection,
            TxStatus::Overflow,
            TxStatus::EvmInvalid(ordo_execution::EvmInvalid::IntrinsicGas),
            TxStatus::Reverted,
            TxStatus::Halted(ordo_execution::EvmHalt::OutOfGas),
        ];
        for status in all {
            assert_eq!(
                UNCHARGED_STATUS_CODES.contains(&status_code(&status)),
                !status.charged(),
                "{status:?}"
            );
        }
    }

    #[test]
    fn a_batch_count_beyond_the_body_is_refused_before_decoding() {
        let mut lie = (1u64 << 40).to_le_bytes().to_vec();
        lie.extend_from_slice(&[0; 12]);
        let err = decode_batch::<Vec<u8>>(&lie, 8 << 20).unwrap_err();
        assert_eq!(err.code, "malformed");

        let honest = codec::encode(&vec![vec![1u8, 2], vec![3]]);
        assert_eq!(
            decode_batch::<Vec<u8>>(&honest, 8 << 20).unwrap(),
            vec![vec![1u8, 2], vec![3]]
        );
        let err = decode_batch::<Vec<u8>>(&honest, honest.len() - 1).unwrap_err();
        assert_eq!(err.code, "too_large");
    }
}
