//! A minimal blocking HTTP/1.1 client: one request per connection (`Connection: close`),
//! enough for tests, the CLI and load tools to talk to the RPC without a client stack.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// An RPC address as users write it: `http://HOST:PORT` or `HOST:PORT`, with or without a
/// trailing `/`. The error says what is wrong with it.
pub fn parse_rpc_url(url: &str) -> Result<SocketAddr, String> {
    use std::net::ToSocketAddrs;
    let trimmed = url.trim();
    if trimmed.starts_with("https://") {
        return Err("the node's RPC speaks plain HTTP, not HTTPS".into());
    }
    let rest = trimmed.strip_prefix("http://").unwrap_or(trimmed);
    if rest.contains("://") {
        return Err("only http:// is supported".into());
    }
    let host_port = rest.strip_suffix('/').unwrap_or(rest);
    if host_port.is_empty() {
        return Err("no host".into());
    }
    if host_port.contains('/') {
        return Err("give the node's address without a path".into());
    }
    if let Ok(addr) = host_port.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let has_port = host_port
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok());
    if !has_port {
        return Err("no port".into());
    }
    host_port
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve the host ({e})"))?
        .next()
        .ok_or_else(|| "the host resolves to no address".into())
}

/// A response: status code and body.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: u16,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }
}

/// The longest a connection attempt may take: on 127.0.0.1 a live node accepts at once,
/// so waiting longer only delays the "no node here" answer.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// Why a request got no answer: no connection at all, or a failure after connecting.
/// Callers tell "no node at this address" from "a node that did not answer".
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("cannot connect: {0}")]
    Connect(#[source] std::io::Error),
    #[error("{0}")]
    Exchange(#[source] std::io::Error),
}

impl HttpError {
    pub fn into_io(self) -> std::io::Error {
        match self {
            HttpError::Connect(e) | HttpError::Exchange(e) => e,
        }
    }
}

/// Sends one request and reads the whole answer; `timeout` bounds write and read, and
/// connecting (at most [`CONNECT_TIMEOUT`]).
pub fn send(
    addr: SocketAddr,
    method: &str,
    path: &str,
    content_type: Option<&str>,
    body: &[u8],
    timeout: Duration,
) -> Result<HttpResponse, HttpError> {
    let headers: Vec<(&str, &str)> = content_type
        .map(|ct| ("Content-Type", ct))
        .into_iter()
        .collect();
    send_with_headers(addr, method, path, &headers, body, timeout)
}

/// [`send`] with any headers (`Accept`, for instance).
pub fn send_with_headers(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    timeout: Duration,
) -> Result<HttpResponse, HttpError> {
    let stream = TcpStream::connect_timeout(&addr, timeout.min(CONNECT_TIMEOUT))
        .map_err(HttpError::Connect)?;
    exchange(stream, addr, method, path, headers, body, timeout).map_err(HttpError::Exchange)
}

fn exchange(
    mut stream: TcpStream,
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    timeout: Duration,
) -> std::io::Result<HttpResponse> {
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    stream.set_nodelay(true)?;
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    // The server may answer (e.g. `too_large`) and close before reading everything.
    let _ = stream.write_all(body);
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    parse(&raw)
}

/// [`send`] with both failures as one `io::Error`.
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    content_type: Option<&str>,
    body: &[u8],
    timeout: Duration,
) -> std::io::Result<HttpResponse> {
    send(addr, method, path, content_type, body, timeout).map_err(HttpError::into_io)
}

pub fn get(addr: SocketAddr, path: &str, timeout: Duration) -> std::io::Result<HttpResponse> {
    request(addr, "GET", path, None, &[], timeout)
}

pub fn post_json(
    addr: SocketAddr,
    path: &str,
    body: &serde_json::Value,
    timeout: Duration,
) -> std::io::Result<HttpResponse> {
    request(
        addr,
        "POST",
        path,
        Some("application/json"),
        body.to_string().as_bytes(),
        timeout,
    )
}

pub fn post_bytes(
    addr: SocketAddr,
    path: &str,
    body: &[u8],
    timeout: Duration,
) -> std::io::Result<HttpResponse> {
    request(
        addr,
        "POST",
        path,
        Some("application/octet-stream"),
        body,
        timeout,
    )
}

fn bad(what: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string())
}

/// Parses a whole HTTP/1.1 response as read from a closed connection.
pub fn parse(raw: &[u8]) -> std::io::Result<HttpResponse> {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| bad("no end of headers"))?;
    let head = std::str::from_utf8(&raw[..split]).map_err(|_| bad("headers not UTF-8"))?;
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("no status line"))?;
    let chunked = lines.any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    let rest = &raw[split + 4..];
    let body = if chunked {
        dechunk(rest)?
    } else {
        rest.to_vec()
    };
    Ok(HttpResponse { status, body })
}

fn dechunk(mut data: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = data
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or_else(|| bad("truncated chunk"))?;
        let size_text = std::str::from_utf8(&data[..line_end]).map_err(|_| bad("chunk size"))?;
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| bad("chunk size"))?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        // The size is the peer's word: a huge one must not overflow the bound.
        let end = size
            .checked_add(2)
            .filter(|&end| end <= data.len())
            .ok_or_else(|| bad("truncated chunk"))?;
        out.extend_from_slice(&data[..size]);
        data = &data[end..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_plain_and_chunked_bodies() {
        let r = parse(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nhi").unwrap();
        assert_eq!((r.status, r.body.as_slice()), (200, &b"hi"[..]));
        let r = parse(b"HTTP/1.1 404 Not Found\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n1\r\nd\r\n0\r\n\r\n")
            .unwrap();
        assert_eq!((r.status, r.body.as_slice()), (404, &b"abcd"[..]));
        assert!(parse(b"garbage").is_err());
    }

    #[test]
    fn a_huge_chunk_size_is_an_error() {
        // A fuzzing regression: the bound `size + 2` must not overflow (a panic in debug
        // builds, an out-of-range slice in release).
        let raw = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nffffffffffffffff\r\nab";
        assert!(parse(raw).is_err());
    }
}
