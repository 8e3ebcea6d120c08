//! Which node the client talks to, and the JSON requests it makes there.
//!
//! `--rpc URL` names a node; without it the client reads validator 0's RPC address from the
//! local testnet's folder. Every answer is either the node's JSON or a [`ClientError`] that
//! tells "nothing listens there" from "the node refused" from "the node said nonsense".
//! An account read that the node answers `behind` (its execution has not caught up with
//! what it committed) is asked again a few times before the client gives up.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ordo_cli::http::{self, HttpError, HttpResponse};
use ordo_node::NodeConfig;
use ordo_types::{Address, SignedTransaction};
use serde_json::Value;

use super::errors::ClientError;

/// How long an ordinary request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How many times an account read is asked while the node answers `behind`. The node
/// itself waits up to 2 s for its execution before it says so, so three tries give a node
/// that is catching up about 7 s, after which another validator is the better bet.
const BEHIND_ATTEMPTS: u32 = 3;
/// The pause before asking again after `behind`, times the attempt number.
const BEHIND_BACKOFF: Duration = Duration::from_millis(200);

/// Where the client finds its node and, by default, its key.
pub struct Target {
    pub rpc: Option<String>,
    pub testnet_dir: PathBuf,
}

impl Target {
    pub fn new(rpc: Option<String>, testnet_dir: Option<PathBuf>) -> Self {
        Target {
            rpc,
            testnet_dir: testnet_dir.unwrap_or_else(ordo_cli::localnet::default_dir),
        }
    }

    /// The node named by `--rpc`, else validator 0 of the local testnet.
    pub fn connect(&self) -> Result<Rpc, ClientError> {
        let addr = match &self.rpc {
            Some(url) => parse_rpc_url(url)?,
            None => testnet_rpc(&self.testnet_dir)?,
        };
        Ok(Rpc {
            addr,
            url: format!("http://{addr}"),
        })
    }

    /// The local testnet's funded dev key.
    pub fn dev_key(&self) -> Result<PathBuf, ClientError> {
        let path = self.testnet_dir.join("dev.key");
        if path.exists() {
            Ok(path)
        } else {
            Err(ClientError::Input(format!(
                "no key given and no dev key at {}: pass --key FILE (make one with `ordo keys new --out FILE`) or start a testnet with `ordo testnet up`",
                path.display()
            )))
        }
    }
}

/// Validator 0's RPC address from the testnet in `dir`.
fn testnet_rpc(dir: &Path) -> Result<SocketAddr, ClientError> {
    let config_path = dir.join("v0").join("config.toml");
    let no_testnet = |reason: String| ClientError::NoTestnet {
        dir: dir.display().to_string(),
        reason,
    };
    if !config_path.exists() {
        return Err(no_testnet(format!("no {}", config_path.display())));
    }
    let config = NodeConfig::load(&config_path).map_err(|e| no_testnet(e.to_string()))?;
    let mut addr = config.rpc.listen;
    // A node listening on every interface is reached on loopback.
    if addr.ip().is_unspecified() {
        addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    Ok(addr)
}

/// Accepts `http://HOST:PORT`, `HOST:PORT`, with or without a trailing `/`.
pub fn parse_rpc_url(url: &str) -> Result<SocketAddr, ClientError> {
    ordo_cli::http::parse_rpc_url(url).map_err(|why| {
        ClientError::Input(format!(
            "--rpc {url:?}: {why}; expected e.g. http://127.0.0.1:7101 or 127.0.0.1:7101"
        ))
    })
}

/// One node's RPC.
pub struct Rpc {
    addr: SocketAddr,
    url: String,
}

impl Rpc {
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn get(&self, path: &str) -> Result<Value, ClientError> {
        self.get_within(path, REQUEST_TIMEOUT)
    }

    /// A GET that may take up to `timeout` (long-polls).
    pub fn get_within(&self, path: &str, timeout: Duration) -> Result<Value, ClientError> {
        let response = http::send(self.addr, "GET", path, None, &[], timeout);
        self.answer(response)
    }

    /// `GET /v1/accounts/{address}`, asked again while the node answers `behind`; the
    /// last answer otherwise (a `behind` refusal tells the user to ask another validator).
    pub fn account(&self, address: &Address) -> Result<Value, ClientError> {
        let path = format!("/v1/accounts/{address}");
        let mut attempt = 1;
        loop {
            match self.get(&path) {
                Err(ClientError::Refused { code, .. })
                    if code == "behind" && attempt < BEHIND_ATTEMPTS =>
                {
                    std::thread::sleep(BEHIND_BACKOFF * attempt);
                    attempt += 1;
                }
                answer => return answer,
            }
        }
    }

    /// Submits one transaction in its canonical bytes; the node's answer on acceptance.
    /// A POST of a JSON body.
    pub fn post_json(&self, path: &str, body: &Value) -> Result<Value, ClientError> {
        let bytes = serde_json::to_vec(body).unwrap_or_default();
        let response = http::send(
            self.addr,
            "POST",
            path,
            Some("application/json"),
            &bytes,
            REQUEST_TIMEOUT,
        );
        self.answer(response)
    }

    pub fn submit(&self, tx: &SignedTransaction) -> Result<Value, ClientError> {
        let response = http::send(
            self.addr,
            "POST",
            "/v1/transactions",
            Some("application/octet-stream"),
            &tx.encode(),
            REQUEST_TIMEOUT,
        );
        self.answer(response)
    }

    pub fn bad_answer(&self, what: impl Into<String>) -> ClientError {
        ClientError::BadAnswer {
            url: self.url.clone(),
            what: what.into(),
        }
    }

    fn answer(&self, response: Result<HttpResponse, HttpError>) -> Result<Value, ClientError> {
        let response = response.map_err(|e| match e {
            HttpError::Connect(e) => ClientError::NoNode {
                url: self.url.clone(),
                reason: io_reason(&e),
            },
            HttpError::Exchange(e) => ClientError::NoAnswer {
                url: self.url.clone(),
                reason: io_reason(&e),
            },
        })?;
        let Some(body) = response.json() else {
            return Err(self.bad_answer(format!(
                "HTTP {} without a JSON body (is this an Ordo node's RPC address?)",
                response.status
            )));
        };
        if response.status == 200 {
            return Ok(body);
        }
        match body["error"]["code"].as_str() {
            Some(code) => Err(ClientError::Refused {
                code: code.to_string(),
                message: body["error"]["message"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            }),
            None => Err(self.bad_answer(format!("HTTP {}: {body}", response.status))),
        }
    }
}

fn io_reason(e: &std::io::Error) -> String {
    use std::io::ErrorKind as K;
    match e.kind() {
        K::ConnectionRefused => "connection refused".into(),
        K::TimedOut | K::WouldBlock => "timed out".into(),
        K::ConnectionReset | K::ConnectionAborted => "connection closed by the node".into(),
        _ => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rpc_urls_with_and_without_scheme() {
        let want: SocketAddr = "127.0.0.1:7101".parse().unwrap();
        for url in [
            "http://127.0.0.1:7101",
            "127.0.0.1:7101",
            "http://127.0.0.1:7101/",
            " 127.0.0.1:7101 ",
        ] {
            assert_eq!(parse_rpc_url(url).unwrap(), want, "{url}");
        }
        assert_eq!(parse_rpc_url("localhost:7101").unwrap().port(), 7101);
        for (url, why) in [
            ("https://127.0.0.1:7101", "HTTPS"),
            ("127.0.0.1", "no port"),
            ("http://127.0.0.1:7101/v1", "without a path"),
            ("ws://127.0.0.1:7101", "only http"),
            ("", "no host"),
        ] {
            let e = parse_rpc_url(url).unwrap_err().to_string();
            assert!(e.contains(why), "{url}: {e}");
        }
    }

    #[test]
    fn a_missing_testnet_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let target = Target::new(None, Some(dir.path().to_path_buf()));
        let e = target.connect().err().unwrap();
        assert_eq!(e.exit_code(), 3);
        assert!(e.to_string().contains("ordo testnet up"), "{e}");
    }
}
