//! A minimal blocking HTTP/1.1 client, enough for tests, the CLI and load tools to talk to
//! the RPC without a client stack: one request per connection (`Connection: close`), or
//! several in turn on one kept-alive [`Connection`] (a load generator's sender, which
//! would otherwise cost the node an accepted connection per request).

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
    let close = [("Connection", "close")];
    let head = request_head(addr, method, path, close.iter().chain(headers), body.len());
    stream.write_all(head.as_bytes())?;
    // The server may answer (e.g. `too_large`) and close before reading everything.
    let _ = stream.write_all(body);
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    parse(&raw)
}

/// A request's head: request line, `Host`, `headers` and the body's length.
fn request_head<'a>(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: impl Iterator<Item = &'a (&'a str, &'a str)>,
    body_len: usize,
) -> String {
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(&format!("Content-Length: {body_len}\r\n\r\n"));
    head
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

/// Longest response head read on a kept-alive connection: the node's are a few hundred
/// bytes.
const MAX_HEAD_BYTES: usize = 64 << 10;

/// A kept-alive connection to one address, opened on first use and again whenever the
/// server closed it. Requests go one at a time, each answered before the next is sent.
pub struct Connection {
    addr: SocketAddr,
    stream: Option<TcpStream>,
}

impl Connection {
    pub fn new(addr: SocketAddr) -> Self {
        Connection { addr, stream: None }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Sends one request and reads its answer. A kept-alive connection that the server
    /// has closed meanwhile (idle too long, say) is usually seen closed before the
    /// request goes, and a new one is opened; a close that crosses the request on the
    /// wire is a failure. Once sent, a request is never sent again here: a failure after
    /// that point (the server killed while it handled the request, say) leaves the caller
    /// not knowing whether it was taken, as with a connection per request.
    pub fn request(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
        timeout: Duration,
    ) -> Result<HttpResponse, HttpError> {
        if self.stream.as_ref().is_some_and(|s| !still_open(s)) {
            self.stream = None;
        }
        let mut stream = match self.stream.take() {
            Some(s) => s,
            None => {
                let s = TcpStream::connect_timeout(&self.addr, timeout.min(CONNECT_TIMEOUT))
                    .map_err(HttpError::Connect)?;
                s.set_nodelay(true).map_err(HttpError::Exchange)?;
                s
            }
        };
        stream
            .set_read_timeout(Some(timeout))
            .and_then(|()| stream.set_write_timeout(Some(timeout)))
            .map_err(HttpError::Exchange)?;
        let head = request_head(self.addr, method, path, headers.iter(), body.len());
        let mut message = head.into_bytes();
        message.extend_from_slice(body);
        // The server may answer (`too_large`, say) and close before reading everything:
        // its answer counts, and a failed write is the error only if none came.
        let written = stream.write_all(&message);
        match read_response(&mut stream, method == "HEAD") {
            Ok((response, keep)) => {
                if keep && written.is_ok() {
                    self.stream = Some(stream);
                }
                Ok(response)
            }
            Err((e, got)) => Err(HttpError::Exchange(
                written.err().filter(|_| !got).unwrap_or(e),
            )),
        }
    }
}

/// Whether a kept-alive connection is still open: a server that closed it has sent its
/// end (or a reset), which a look without waiting finds; an open idle one has nothing to
/// read.
fn still_open(stream: &TcpStream) -> bool {
    if stream.set_nonblocking(true).is_err() {
        return false;
    }
    let mut byte = [0u8; 1];
    let idle =
        matches!(stream.peek(&mut byte), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock);
    stream.set_nonblocking(false).is_ok() && idle
}

/// Reads one response from a kept-alive connection: by its length, its chunks, or to the
/// connection's end. Also whether the connection can carry another request. On failure,
/// whether any byte had arrived.
fn read_response(
    stream: &mut TcpStream,
    head_request: bool,
) -> Result<(HttpResponse, bool), (std::io::Error, bool)> {
    let mut raw = Vec::with_capacity(1024);
    let mut chunk = [0u8; 16 << 10];
    let split = loop {
        if let Some(at) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break at;
        }
        if raw.len() > MAX_HEAD_BYTES {
            return Err((bad("response head too long"), true));
        }
        let n = stream.read(&mut chunk).map_err(|e| (e, !raw.is_empty()))?;
        if n == 0 {
            let e = std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the connection closed before the answer",
            );
            return Err((e, !raw.is_empty()));
        }
        raw.extend_from_slice(&chunk[..n]);
    };
    let head = std::str::from_utf8(&raw[..split])
        .map_err(|_| (bad("headers not UTF-8"), true))?
        .to_ascii_lowercase();
    let status: u16 = head
        .split("\r\n")
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| (bad("no status line"), true))?;
    let header = |name: &str| {
        head.split("\r\n")
            .skip(1)
            .find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_string()))
    };
    let close = header("connection:").is_some_and(|v| v.contains("close"));
    let chunked = header("transfer-encoding:").is_some_and(|v| v.contains("chunked"));
    let length = header("content-length:")
        .map(|v| v.parse::<usize>())
        .transpose()
        .map_err(|_| (bad("content-length is not a number"), true))?;
    let body_start = split + 4;
    // How the body ends (RFC 9112, 6.3): there is none, or its chunks end it (whatever a
    // length says), or its length, or the connection's end.
    let framing = if head_request || status < 200 || status == 204 || status == 304 {
        Framing::Empty
    } else if chunked {
        Framing::Chunked
    } else if let Some(n) = length {
        let end = body_start
            .checked_add(n)
            .ok_or_else(|| (bad("content-length too large"), true))?;
        Framing::Length(end)
    } else {
        Framing::ToEnd
    };
    let complete = |raw: &[u8]| match framing {
        Framing::Empty => true,
        Framing::Chunked => dechunk(&raw[body_start..]).is_ok(),
        Framing::Length(end) => raw.len() >= end,
        Framing::ToEnd => false,
    };
    let mut ended = false;
    while !complete(&raw) {
        let n = stream.read(&mut chunk).map_err(|e| (e, true))?;
        if n == 0 {
            ended = true;
            break;
        }
        raw.extend_from_slice(&chunk[..n]);
    }
    if ended && framing != Framing::ToEnd {
        let e = std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "truncated answer");
        return Err((e, true));
    }
    let body = match framing {
        Framing::Empty => Vec::new(),
        Framing::Chunked => dechunk(&raw[body_start..]).map_err(|e| (e, true))?,
        Framing::Length(end) => raw[body_start..end].to_vec(),
        Framing::ToEnd => raw[body_start..].to_vec(),
    };
    // Only a length-framed or empty final answer leaves the connection at the start of the
    // next (a chunked one may be followed by trailers this reader does not read).
    let keep = !close && status >= 200 && matches!(framing, Framing::Empty | Framing::Length(_));
    Ok((HttpResponse { status, body }, keep))
}

/// How a response's body ends.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Framing {
    Empty,
    Chunked,
    Length(usize),
    ToEnd,
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

    /// A server on 127.0.0.1 that answers each request it reads with `answers`' next (a
    /// whole response, or nothing), closing the connection after those marked to close
    /// and saying so on the channel returned; it counts the connections it accepted.
    fn server(
        answers: Vec<(&'static str, bool)>,
    ) -> (
        SocketAddr,
        std::sync::mpsc::Receiver<()>,
        std::thread::JoinHandle<usize>,
    ) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let (closed_tx, closed) = std::sync::mpsc::channel();
        let handle = std::thread::spawn(move || {
            let mut answers = answers.into_iter();
            let mut accepted = 0;
            'connections: while let Some(mut next) = answers.next() {
                let (mut stream, _) = listener.accept().unwrap();
                accepted += 1;
                loop {
                    // Each test request is one small write: head and body together.
                    let mut buf = [0u8; 4096];
                    assert!(stream.read(&mut buf).unwrap() > 0, "a request");
                    stream.write_all(next.0.as_bytes()).unwrap();
                    if next.1 {
                        drop(stream);
                        closed_tx.send(()).unwrap();
                        continue 'connections;
                    }
                    match answers.next() {
                        Some(a) => next = a,
                        None => break 'connections,
                    }
                }
            }
            accepted
        });
        (addr, closed, handle)
    }

    /// Waits until the client end of a kept connection sees the server's close.
    fn until_seen_closed(conn: &Connection) {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while conn.stream.as_ref().is_some_and(still_open) {
            assert!(
                std::time::Instant::now() < deadline,
                "the close never arrived"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    fn a_kept_alive_connection_carries_requests_and_reopens_when_closed() {
        let a = "HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\na";
        let b = "HTTP/1.1 503 Service Unavailable\r\nContent-Length:  1 \r\n\r\nb";
        let c = "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n1\r\nc\r\n0\r\n\r\n";
        let d = "HTTP/1.1 204 No Content\r\n\r\n";
        let (addr, closed, server) = server(vec![
            (a, false),
            // On the same connection: read and closed without an answer, as by a server
            // killed meanwhile. Sent again, it would get the next answer.
            ("", true),
            // The server closes the connection after this answer, as after an idle spell.
            (b, true),
            // A chunked answer is the connection's last on the client's side.
            (c, true),
            (d, false),
        ]);
        let mut conn = Connection::new(addr);
        let t = Duration::from_secs(10);
        let get = |conn: &mut Connection| {
            let r = conn.request("POST", "/x", &[], b"body", t).unwrap();
            (r.status, String::from_utf8(r.body).unwrap())
        };
        assert_eq!(get(&mut conn), (200, "a".to_string()));
        // A request sent on a kept connection and not answered is an error, never sent
        // again.
        assert!(conn.request("POST", "/x", &[], b"body", t).is_err());
        closed.recv().unwrap();
        assert_eq!(get(&mut conn), (503, "b".to_string()));
        closed.recv().unwrap();
        until_seen_closed(&conn);
        // Seen closed before sending: a new connection.
        assert_eq!(get(&mut conn), (200, "c".to_string()));
        closed.recv().unwrap();
        // A 204 has no body to wait for.
        assert_eq!(get(&mut conn), (204, String::new()));
        assert_eq!(server.join().unwrap(), 4, "connections accepted");
    }

    #[test]
    fn a_huge_chunk_size_is_an_error() {
        // A fuzzing regression: the bound `size + 2` must not overflow (a panic in debug
        // builds, an out-of-range slice in release).
        let raw = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nffffffffffffffff\r\nab";
        assert!(parse(raw).is_err());
    }
}
