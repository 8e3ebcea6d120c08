//! The few RPC calls the orchestrator and the benchmark make, over one short-lived HTTP/1.1
//! connection each (`ordo_cli::http`), with binary bodies where the node offers them.

use std::net::SocketAddr;
use std::time::Duration;

use ordo_cli::http::{self, HttpResponse};
use ordo_types::{codec, Address, Amount, Hash32};
use serde_json::Value;

use crate::error::{Result, TestnetError};

/// Parses `http://host:port` or `host:port` (with an optional trailing `/`), as `ordo`'s
/// `--rpc` does.
pub fn parse_rpc(text: &str) -> Result<SocketAddr> {
    http::parse_rpc_url(text).map_err(|why| {
        TestnetError::Usage(format!(
            "{text:?} is not an RPC address ({why}): give http://HOST:PORT"
        ))
    })
}

/// The URL form of an RPC address, as printed and as `--rpc` accepts it.
pub fn rpc_url(addr: SocketAddr) -> String {
    format!("http://{addr}")
}

/// The stable error code of a JSON error answer, if it is one.
pub fn error_code(response: &HttpResponse) -> Option<String> {
    Some(response.json()?["error"]["code"].as_str()?.to_string())
}

fn expect_ok(addr: SocketAddr, what: &str, response: HttpResponse) -> Result<HttpResponse> {
    if response.status == 200 {
        return Ok(response);
    }
    let code = error_code(&response).unwrap_or_else(|| format!("HTTP {}", response.status));
    Err(TestnetError::rpc(addr, format!("{what}: {code}")))
}

fn get_json(addr: SocketAddr, path: &str, timeout: Duration) -> Result<Value> {
    let response = http::get(addr, path, timeout)
        .map_err(|e| TestnetError::rpc(addr, format!("GET {path}: {e}")))?;
    let response = expect_ok(addr, &format!("GET {path}"), response)?;
    response
        .json()
        .ok_or_else(|| TestnetError::rpc(addr, format!("GET {path}: the answer is not JSON")))
}

/// `GET /v1/status`.
pub fn status(addr: SocketAddr, timeout: Duration) -> Result<Value> {
    get_json(addr, "/v1/status", timeout)
}

/// `GET /v1/accounts/{address}`: (balance, next nonce). A validator whose execution is
/// behind its committed chain answers `behind` after a short wait of its own; it is asked
/// again until `timeout` has passed.
pub fn account(addr: SocketAddr, address: &Address, timeout: Duration) -> Result<(Amount, u64)> {
    let path = format!("/v1/accounts/{address}");
    let deadline = std::time::Instant::now() + timeout;
    let v = loop {
        let response = http::get(addr, &path, timeout)
            .map_err(|e| TestnetError::rpc(addr, format!("GET {path}: {e}")))?;
        let behind = response.status == 503 && error_code(&response).as_deref() == Some("behind");
        if !behind || std::time::Instant::now() >= deadline {
            let response = expect_ok(addr, &format!("GET {path}"), response)?;
            break response.json().ok_or_else(|| {
                TestnetError::rpc(addr, format!("GET {path}: the answer is not JSON"))
            })?;
        }
    };
    // The balance is a decimal string (amounts are 128 bits wide).
    let balance = v["balance"].as_str().and_then(|b| b.parse::<Amount>().ok());
    match (balance, v["nonce"].as_u64()) {
        (Some(balance), Some(nonce)) => Ok((balance, nonce)),
        _ => Err(TestnetError::rpc(
            addr,
            "an account answer without balance or nonce",
        )),
    }
}

/// `GET /v1/blocks/{height}` (JSON); `None` when the validator does not hold that height
/// (not committed there yet, or pruned).
pub fn block(addr: SocketAddr, height: u64, timeout: Duration) -> Result<Option<Value>> {
    let path = format!("/v1/blocks/{height}");
    let response = http::get(addr, &path, timeout)
        .map_err(|e| TestnetError::rpc(addr, format!("GET {path}: {e}")))?;
    // Not committed there yet (404), or below the oldest height it keeps (410: pruned, or
    // below the snapshot it was restored from).
    if response.status == 404 || response.status == 410 {
        return Ok(None);
    }
    let response = expect_ok(addr, &format!("GET {path}"), response)?;
    Ok(response.json())
}

/// `GET /v1/blocks/{height}/transactions?wait_ms=N` in binary: the hashes of the block's
/// transactions in block order, or `None` when height `height` is not there within the wait.
pub fn block_transactions(
    addr: SocketAddr,
    height: u64,
    wait_ms: u64,
) -> Result<Option<Vec<Hash32>>> {
    match block_transactions_kept(addr, height, wait_ms)? {
        Kept::Here(hashes) => Ok(Some(hashes)),
        Kept::NotYet | Kept::Pruned => Ok(None),
    }
}

/// What a validator says of one height's transactions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kept {
    Here(Vec<Hash32>),
    /// Not committed there yet (404).
    NotYet,
    /// Below the oldest height it keeps (410).
    Pruned,
}

/// [`block_transactions`], telling a height not yet committed from one pruned.
pub fn block_transactions_kept(addr: SocketAddr, height: u64, wait_ms: u64) -> Result<Kept> {
    let path = format!("/v1/blocks/{height}/transactions?wait_ms={wait_ms}");
    let timeout = Duration::from_millis(wait_ms) + Duration::from_secs(10);
    let response = request(
        addr,
        "GET",
        &path,
        &[("Accept", "application/octet-stream")],
        &[],
        timeout,
    )
    .map_err(|e| TestnetError::rpc(addr, format!("GET {path}: {e}")))?;
    match response.status {
        404 => return Ok(Kept::NotYet),
        410 => return Ok(Kept::Pruned),
        _ => {}
    }
    let response = expect_ok(addr, &format!("GET {path}"), response)?;
    codec::decode::<Vec<Hash32>, { 256 << 20 }>(&response.body)
        .map(Kept::Here)
        .map_err(|e| TestnetError::rpc(addr, format!("GET {path}: undecodable list: {e}")))
}

/// `POST /v1/admin/partition`: validator `addr` drops all traffic to and from `blocked`
/// (committee indices) until told otherwise; an empty list heals. Needs a testnet made
/// with fault injection on.
pub fn set_partition(addr: SocketAddr, blocked: &[usize], timeout: Duration) -> Result<()> {
    let body = serde_json::json!({ "blocked": blocked }).to_string();
    let response = request(
        addr,
        "POST",
        "/v1/admin/partition",
        &[("Content-Type", "application/json")],
        body.as_bytes(),
        timeout,
    )
    .map_err(|e| TestnetError::rpc(addr, format!("POST /v1/admin/partition: {e}")))?;
    expect_ok(addr, "POST /v1/admin/partition", response).map(drop)
}

/// `POST /v1/admin/link-delay`: validator `addr` delays everything it sends to every other
/// validator by `one_way`. Needs a testnet made with fault injection on.
pub fn set_link_delay(addr: SocketAddr, one_way: Duration, timeout: Duration) -> Result<()> {
    let body = serde_json::json!({ "one_way_ms": one_way.as_millis() as u64 }).to_string();
    let path = "/v1/admin/link-delay";
    let response = request(
        addr,
        "POST",
        path,
        &[("Content-Type", "application/json")],
        body.as_bytes(),
        timeout,
    )
    .map_err(|e| TestnetError::rpc(addr, format!("POST {path}: {e}")))?;
    expect_ok(addr, &format!("POST {path}"), response).map(drop)
}

/// The Prometheus exposition text of a validator (`GET /metrics`).
pub fn metrics_text(addr: SocketAddr, timeout: Duration) -> Result<String> {
    let response = http::get(addr, "/metrics", timeout)
        .map_err(|e| TestnetError::rpc(addr, format!("GET /metrics: {e}")))?;
    let response = expect_ok(addr, "GET /metrics", response)?;
    Ok(String::from_utf8_lossy(&response.body).into_owned())
}

/// One request with extra headers; a refused connection keeps its
/// [`std::io::ErrorKind::ConnectionRefused`] (the sender retries those elsewhere).
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    timeout: Duration,
) -> std::io::Result<HttpResponse> {
    http::send_with_headers(addr, method, path, headers, body, timeout)
        .map_err(http::HttpError::into_io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rpc_addresses_parse_with_or_without_scheme() {
        let a = parse_rpc("http://127.0.0.1:7101/").unwrap();
        assert_eq!(a, "127.0.0.1:7101".parse().unwrap());
        assert_eq!(parse_rpc("127.0.0.1:7101").unwrap(), a);
        assert_eq!(rpc_url(a), "http://127.0.0.1:7101");
        assert!(parse_rpc("http://127.0.0.1").is_err());
        assert!(parse_rpc("https://127.0.0.1:1").is_err());
        assert!(parse_rpc("127.0.0.1:7101/v1").is_err());
    }
}
