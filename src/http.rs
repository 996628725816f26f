//! HTTP redirect listener (optional): answers GET and HEAD with a `302 Found`
//! to the chosen POP's base URL (`pops[].url`), keeping path and query.
//!
//! Owns its listening sockets (`http.listen`; IPv6 ones are v6only, so list
//! `0.0.0.0:PORT` and `[::]:PORT` for both families) and one accept loop per
//! address; reads `steer::Handle` and `PopState`, talks to nobody else.
//!
//! The decision is the DNS one: [`steer::select`] on the client address, then
//! [`choose_pop`]: the first POP of the ranking that is usable (up and not
//! drained) and has a `url`; if none is usable, the first with a `url` (all down
//! counts as all up). The client address is the TCP source, or, when the TCP
//! source lies in `http.trusted_proxies`, the address [`client_addr`] takes
//! from `X-Forwarded-For`.
//!
//! HTTP/1.0 and 1.1, one request per connection (every response says
//! `Connection: close`). Limits: [`MAX_CONNECTIONS`] at once over all
//! listeners (more are closed at accept), [`MAX_HEAD`] bytes of request head
//! (414 / 431 beyond), [`READ_TIMEOUT`] to receive the head (408 if part of it
//! came). The request parser, the `X-Forwarded-For` rule, the choice of POP and
//! the `Location` are pure functions, tested below.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

use crate::config::Config;
use crate::pops::PopState;
use crate::steer;
use crate::types::Prefix;

/// Connections served at once over all listeners; more are closed at accept.
pub const MAX_CONNECTIONS: usize = 1024;
/// Time a client has to send the whole request head.
pub const READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest request head (request line and header fields) accepted.
pub const MAX_HEAD: usize = 8192;
/// Time to write a response.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// After the response, unread input (a request body) is drained for at most
/// this long / this many bytes before closing, so the close does not turn
/// into a reset that could destroy the response in flight.
const LINGER_TIME: Duration = Duration::from_secs(2);
const LINGER_BYTES: usize = 64 * 1024;

/// Why a request head was refused; each maps to one status code.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone, Copy)]
pub enum RequestError {
    #[error("malformed request: {0}")]
    Malformed(&'static str),
    #[error("unsupported HTTP version")]
    Version,
    #[error("request line longer than the head limit")]
    UriTooLong,
    #[error("request head larger than the limit")]
    HeadTooLarge,
}

impl RequestError {
    /// The response status for this error.
    pub fn status(self) -> Status {
        match self {
            RequestError::Malformed(_) => Status::BadRequest,
            RequestError::Version => Status::VersionNotSupported,
            RequestError::UriTooLong => Status::UriTooLong,
            RequestError::HeadTooLarge => Status::HeadTooLarge,
        }
    }
}

/// The response statuses this server sends.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum Status {
    Found,
    BadRequest,
    MethodNotAllowed,
    Timeout,
    UriTooLong,
    HeadTooLarge,
    Unavailable,
    VersionNotSupported,
}

impl Status {
    pub fn code(self) -> u16 {
        match self {
            Status::Found => 302,
            Status::BadRequest => 400,
            Status::MethodNotAllowed => 405,
            Status::Timeout => 408,
            Status::UriTooLong => 414,
            Status::HeadTooLarge => 431,
            Status::Unavailable => 503,
            Status::VersionNotSupported => 505,
        }
    }
    pub fn reason(self) -> &'static str {
        match self {
            Status::Found => "Found",
            Status::BadRequest => "Bad Request",
            Status::MethodNotAllowed => "Method Not Allowed",
            Status::Timeout => "Request Timeout",
            Status::UriTooLong => "URI Too Long",
            Status::HeadTooLarge => "Request Header Fields Too Large",
            Status::Unavailable => "Service Unavailable",
            Status::VersionNotSupported => "HTTP Version Not Supported",
        }
    }
}

/// A parsed request head, borrowing from the receive buffer.
#[derive(Debug, PartialEq, Eq)]
pub struct Request<'a> {
    pub method: &'a str,
    /// The request target as sent (checked: visible ASCII, no `#`).
    pub target: &'a str,
    /// Minor version of HTTP/1.x.
    pub minor: u8,
    /// Field lines in order: name as sent, value without surrounding whitespace.
    pub headers: Vec<(&'a str, &'a [u8])>,
}

impl<'a> Request<'a> {
    /// Every value of a field (case-insensitive name), in order.
    pub fn values(&self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + '_ {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    }
}

/// Where the request head ends in `buf` (the index just past its blank line),
/// if it is complete. Lines may end in CRLF or a bare LF; empty lines before
/// the request line are skipped (RFC 9112 §2.2).
pub fn head_end(buf: &[u8]) -> Option<usize> {
    let start = buf
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .unwrap_or(buf.len());
    let mut i = start;
    while let Some(off) = buf[i..].iter().position(|&b| b == b'\n') {
        let nl = i + off;
        let rest = &buf[nl + 1..];
        if rest.first() == Some(&b'\n') {
            return Some(nl + 2);
        }
        if rest.starts_with(b"\r\n") {
            return Some(nl + 3);
        }
        i = nl + 1;
    }
    None
}

/// Parse a complete request head (as delimited by [`head_end`]).
pub fn parse_request(head: &[u8]) -> Result<Request<'_>, RequestError> {
    use RequestError::Malformed;
    let mut lines = head
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .skip_while(|l| l.is_empty());
    let line = lines.next().ok_or(Malformed("empty request"))?;
    let line = std::str::from_utf8(line).map_err(|_| Malformed("request line is not ASCII"))?;
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Malformed("request line is not METHOD TARGET VERSION"));
    };
    if method.is_empty() || !method.bytes().all(is_tchar) {
        return Err(Malformed("bad method"));
    }
    if target.is_empty() || !target.bytes().all(|b| b.is_ascii_graphic() && b != b'#') {
        return Err(Malformed("bad request target"));
    }
    let minor = match version.as_bytes() {
        [b'H', b'T', b'T', b'P', b'/', b'1', b'.', m] if m.is_ascii_digit() => m - b'0',
        [b'H', b'T', b'T', b'P', b'/', a, b'.', b] if a.is_ascii_digit() && b.is_ascii_digit() => {
            return Err(RequestError::Version)
        }
        _ => return Err(Malformed("bad HTTP version")),
    };
    let mut headers = Vec::new();
    for l in lines {
        if l.is_empty() {
            break;
        }
        if l[0] == b' ' || l[0] == b'\t' {
            return Err(Malformed("obsolete line folding"));
        }
        let colon = l
            .iter()
            .position(|&b| b == b':')
            .ok_or(Malformed("field line without ':'"))?;
        let name = &l[..colon];
        if name.is_empty() || !name.iter().copied().all(is_tchar) {
            return Err(Malformed("bad field name"));
        }
        let value = trim_ows(&l[colon + 1..]);
        if value.iter().any(|&b| b == b'\r' || b == 0) {
            return Err(Malformed("bad field value"));
        }
        // tchar is ASCII, so this cannot fail.
        let name = std::str::from_utf8(name).map_err(|_| Malformed("bad field name"))?;
        headers.push((name, value));
    }
    let req = Request {
        method,
        target,
        minor,
        headers,
    };
    // RFC 9112 §3.2: exactly one valid Host in HTTP/1.1, at most one otherwise.
    let hosts: Vec<&[u8]> = req.values("host").collect();
    if hosts.len() > 1 || (minor >= 1 && hosts.is_empty()) {
        return Err(Malformed("missing or repeated Host"));
    }
    if hosts
        .first()
        .is_some_and(|h| !h.iter().all(|b| b.is_ascii_graphic()))
    {
        return Err(Malformed("bad Host"));
    }
    Ok(req)
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn trim_ows(mut v: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = v {
        v = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = v {
        v = rest;
    }
    v
}

/// An address as steering sees it: IPv4-mapped IPv6 is its IPv4 address.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

/// `http.trusted_proxies` as prefixes (IPv4-mapped IPv6 prefixes as IPv4);
/// entries that do not parse are skipped (a validated config has none).
pub fn trusted_prefixes(list: &[String]) -> Vec<Prefix> {
    list.iter()
        .filter_map(|s| s.parse::<Prefix>().ok())
        .map(|p| match p {
            Prefix::V6 { addr, len } if len >= 96 && (addr >> 32) == 0xffff => {
                Prefix::v4(addr as u32, len - 96).unwrap_or(p)
            }
            p => p,
        })
        .collect()
}

fn trusted(addr: IpAddr, proxies: &[Prefix]) -> bool {
    let host = Prefix::host(addr);
    proxies.iter().any(|p| p.contains(&host))
}

/// The client address a request is steered by.
///
/// `peer` is the TCP source. Only when it lies in `proxies` is
/// `X-Forwarded-For` read (`xff`: the values of every such field, which
/// together form one comma-separated list). The list is walked from the right,
/// skipping addresses that are themselves trusted proxies; the first untrusted
/// one is the client, and if all are trusted, the leftmost. Empty list
/// elements are ignored. If any element is not a bare IP address (a port,
/// brackets, `unknown`, garbage), the whole field is ignored and the TCP source
/// is used: a proxy that sends what we cannot read is not trusted to have put
/// the client in any particular place.
pub fn client_addr(peer: IpAddr, xff: &[&[u8]], proxies: &[Prefix]) -> IpAddr {
    let peer = canonical(peer);
    if xff.is_empty() || !trusted(peer, proxies) {
        return peer;
    }
    let mut list = Vec::new();
    for v in xff {
        for item in v.split(|&b| b == b',') {
            let item = trim_ows(item);
            if item.is_empty() {
                continue;
            }
            match std::str::from_utf8(item)
                .ok()
                .and_then(|s| s.parse::<IpAddr>().ok())
            {
                Some(a) => list.push(canonical(a)),
                None => return peer,
            }
        }
    }
    list.iter()
        .rev()
        .find(|a| !trusted(**a, proxies))
        .or(list.first())
        .copied()
        .unwrap_or(peer)
}

/// The POP to redirect to: the first of `ranking` that is usable and has a
/// URL; if no such POP, the first with a URL (all down counts as all up);
/// `None` if no POP in the ranking has a URL.
pub fn choose_pop(
    ranking: &[steer::PopIdx],
    usable: impl Fn(usize) -> bool,
    has_url: impl Fn(usize) -> bool,
) -> Option<usize> {
    let mut with_url = ranking.iter().map(|&i| i as usize).filter(|&i| has_url(i));
    let first = with_url.clone().next();
    with_url.find(|&i| usable(i)).or(first)
}

/// `Location` for `base` (a validated `pops[].url`) and an origin-form target:
/// the target appended byte for byte, with one `/` where they meet.
pub fn location(base: &str, target: &str) -> String {
    let base = base.strip_suffix('/').unwrap_or(base);
    let mut s = String::with_capacity(base.len() + target.len());
    s.push_str(base);
    s.push_str(target);
    s
}

/// The date as an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`).
pub fn http_date(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Days since 1970-01-01 to civil date (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    const WD: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MON: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{}, {:02} {} {} {:02}:{:02}:{:02} GMT",
        WD[days.rem_euclid(7) as usize],
        day,
        MON[(month - 1) as usize],
        year,
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// What to answer, before serialisation.
#[derive(Debug, PartialEq, Eq)]
pub struct Response {
    pub status: Status,
    /// Extra header fields.
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
    /// HEAD: send the header block only (Content-Length still that of `body`).
    pub head_only: bool,
}

impl Response {
    /// An error response with a one-line text body.
    pub fn error(status: Status) -> Response {
        let mut headers = Vec::new();
        if status == Status::MethodNotAllowed {
            headers.push(("Allow", "GET, HEAD".to_string()));
        }
        Response {
            status,
            headers,
            body: format!("{} {}\n", status.code(), status.reason()),
            head_only: false,
        }
    }

    /// The bytes on the wire.
    pub fn to_bytes(&self, date: &str) -> Vec<u8> {
        let mut s = format!(
            "HTTP/1.1 {} {}\r\nDate: {date}\r\n",
            self.status.code(),
            self.status.reason()
        );
        for (n, v) in &self.headers {
            s.push_str(n);
            s.push_str(": ");
            s.push_str(v);
            s.push_str("\r\n");
        }
        s.push_str("Cache-Control: no-store\r\nContent-Type: text/plain; charset=utf-8\r\n");
        s.push_str(&format!(
            "Content-Length: {}\r\nConnection: close\r\n\r\n",
            self.body.len()
        ));
        if !self.head_only {
            s.push_str(&self.body);
        }
        s.into_bytes()
    }
}

/// Everything a connection needs, shared by every listener.
struct Ctx {
    steering: steer::Handle,
    pops: Arc<PopState>,
    /// `pops[].url` by POP index (`None`: no URL, or one unusable in a header).
    urls: Vec<Option<String>>,
    /// POP names by index.
    names: Vec<String>,
    proxies: Vec<Prefix>,
}

/// The answer to a parsed request from `peer` (the TCP source). A HEAD
/// request gets no body, whatever the status.
fn respond(ctx: &Ctx, req: &Request<'_>, peer: IpAddr) -> Response {
    let mut r = redirect(ctx, req, peer);
    r.head_only = req.method == "HEAD";
    r
}

fn redirect(ctx: &Ctx, req: &Request<'_>, peer: IpAddr) -> Response {
    if req.method != "GET" && req.method != "HEAD" {
        return Response::error(Status::MethodNotAllowed);
    }
    if !req.target.starts_with('/') {
        return Response::error(Status::BadRequest);
    }
    let xff: Vec<&[u8]> = req.values("x-forwarded-for").collect();
    let client = client_addr(peer, &xff, &ctx.proxies);
    let (pop, generation) = {
        let snap = ctx.steering.load();
        let d = steer::select(client, &snap);
        let pop = choose_pop(
            d.ranking,
            |i| ctx.pops.usable(i),
            |i| ctx.urls.get(i).is_some_and(Option::is_some),
        );
        (pop, d.generation)
    };
    let Some((pop, Some(base))) = pop.map(|i| (i, &ctx.urls[i])) else {
        debug!(%peer, %client, "HTTP: no POP with a url");
        return Response::error(Status::Unavailable);
    };
    let loc = location(base, req.target);
    let name = &ctx.names[pop];
    debug!(%peer, %client, pop = %name, generation, method = req.method, "HTTP 302");
    let mut headers = Vec::with_capacity(3);
    if header_safe(name) {
        headers.push(("X-Sparrow-Pop", name.clone()));
    }
    headers.push(("X-Sparrow-Generation", generation.to_string()));
    let body = format!("302 Found: {loc}\n");
    headers.push(("Location", loc));
    Response {
        status: Status::Found,
        headers,
        body,
        head_only: false,
    }
}

/// Whether a string can go into a header field value as is.
fn header_safe(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_graphic())
}

/// Bind `cfg.http.listen` and spawn the listener tasks into `tasks`.
pub async fn start(
    cfg: Arc<Config>,
    steering: steer::Handle,
    pops: Arc<PopState>,
    tasks: &mut JoinSet<()>,
) -> std::io::Result<()> {
    if cfg.http.listen.is_empty() {
        return Ok(());
    }
    let urls = cfg
        .pops
        .iter()
        .map(|p| {
            p.url.clone().filter(|u| {
                let ok = header_safe(u);
                if !ok {
                    warn!(pop = %p.name, url = %u, "HTTP: url is not printable ASCII; not redirecting to this POP");
                }
                ok
            })
        })
        .collect();
    let ctx = Arc::new(Ctx {
        steering,
        pops,
        urls,
        names: cfg.pops.iter().map(|p| p.name.clone()).collect(),
        proxies: trusted_prefixes(&cfg.http.trusted_proxies),
    });
    let limit = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut listeners = Vec::with_capacity(cfg.http.listen.len());
    for &addr in &cfg.http.listen {
        let l = crate::dns::tcp_listener(addr)
            .map_err(|e| std::io::Error::new(e.kind(), format!("{addr}: {e}")))?;
        listeners.push((addr, l));
    }
    for (addr, l) in listeners {
        info!(%addr, trusted_proxies = ctx.proxies.len(), "HTTP redirector listening");
        tasks.spawn(accept_loop(l, ctx.clone(), limit.clone()));
    }
    Ok(())
}

/// Accept forever; connection tasks live in a set owned here, so aborting
/// this task ends them too.
async fn accept_loop(listener: TcpListener, ctx: Arc<Ctx>, limit: Arc<Semaphore>) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            r = listener.accept() => match r {
                Ok((stream, peer)) => match limit.clone().try_acquire_owned() {
                    Ok(permit) => {
                        let ctx = ctx.clone();
                        conns.spawn(async move {
                            if let Err(e) = serve(stream, peer.ip(), &ctx).await {
                                debug!(%peer, error = %e, "HTTP connection");
                            }
                            drop(permit);
                        });
                    }
                    Err(_) => {
                        debug!(%peer, "HTTP: connection limit reached; closing");
                        drop(stream);
                    }
                },
                Err(e) => {
                    // E.g. out of file descriptors: back off instead of spinning.
                    warn!(error = %e, "HTTP accept");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

/// One connection: read one request head, answer, close.
async fn serve(mut stream: TcpStream, peer: IpAddr, ctx: &Ctx) -> std::io::Result<()> {
    let mut buf = vec![0u8; MAX_HEAD];
    let mut len = 0;
    let deadline = tokio::time::Instant::now() + READ_TIMEOUT;
    let resp = loop {
        if let Some(end) = head_end(&buf[..len]) {
            break match parse_request(&buf[..end]) {
                Ok(req) => respond(ctx, &req, peer),
                Err(e) => {
                    debug!(%peer, error = %e, "HTTP: bad request");
                    Response::error(e.status())
                }
            };
        }
        if len == MAX_HEAD {
            let e = if buf.contains(&b'\n') {
                RequestError::HeadTooLarge
            } else {
                RequestError::UriTooLong
            };
            debug!(%peer, error = %e, "HTTP: bad request");
            break Response::error(e.status());
        }
        match tokio::time::timeout_at(deadline, stream.read(&mut buf[len..])).await {
            Ok(Ok(0)) => return Ok(()),
            Ok(Ok(n)) => len += n,
            Ok(Err(e)) => return Err(e),
            Err(_) if len == 0 => return Ok(()),
            Err(_) => break Response::error(Status::Timeout),
        }
    };
    let bytes = resp.to_bytes(&http_date(SystemTime::now()));
    match tokio::time::timeout(WRITE_TIMEOUT, stream.write_all(&bytes)).await {
        Ok(r) => r?,
        Err(_) => return Ok(()),
    }
    // Lingering close: end our side, then read what the client still sends
    // (bounded) so that closing does not reset the connection under the response.
    stream.shutdown().await?;
    let _ = tokio::time::timeout(LINGER_TIME, async {
        let mut drained = 0;
        while drained < LINGER_BYTES {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => drained += n,
            }
        }
    })
    .await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Prefix {
        s.parse().unwrap()
    }
    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn head_end_finds_the_blank_line() {
        assert_eq!(head_end(b"GET / HTTP/1.1\r\nHost: a\r\n\r\nxyz"), Some(27));
        assert_eq!(head_end(b"GET / HTTP/1.0\n\n"), Some(16));
        assert_eq!(head_end(b"\r\nGET / HTTP/1.0\r\n\r\n"), Some(20));
        assert_eq!(head_end(b"GET / HTTP/1.1\r\nHost: a\r\n"), None);
        assert_eq!(head_end(b""), None);
        assert_eq!(head_end(b"\r\n\r\n"), None);
    }

    fn parse(s: &str) -> Result<Request<'_>, RequestError> {
        let b = s.as_bytes();
        let end = head_end(b).expect("complete head");
        parse_request(&b[..end])
    }

    #[test]
    fn parses_request_line_and_fields() {
        let r = parse(
            "GET /a/b?x=1&y=%20 HTTP/1.1\r\nHost: example.net\r\nX-Forwarded-For:  1.2.3.4 ,5.6.7.8\t\r\nx-forwarded-for: 9.9.9.9\r\n\r\n",
        )
        .unwrap();
        assert_eq!(r.method, "GET");
        assert_eq!(r.target, "/a/b?x=1&y=%20");
        assert_eq!(r.minor, 1);
        let xff: Vec<&[u8]> = r.values("X-FORWARDED-FOR").collect();
        assert_eq!(xff, vec![&b"1.2.3.4 ,5.6.7.8"[..], &b"9.9.9.9"[..]]);
        // HTTP/1.0 needs no Host; bare LF line ends are accepted.
        let r = parse("HEAD /x HTTP/1.0\n\n").unwrap();
        assert_eq!((r.method, r.target, r.minor), ("HEAD", "/x", 0));
    }

    #[test]
    fn rejects_malformed_heads() {
        use RequestError::*;
        for bad in [
            "GET /\r\n\r\n",                                    // HTTP/0.9
            "GET  / HTTP/1.1\r\nHost: a\r\n\r\n",               // double space
            "GET / HTTP/1.1 x\r\nHost: a\r\n\r\n",              // extra token
            "G(T / HTTP/1.1\r\nHost: a\r\n\r\n",                // bad method
            "GET /a b HTTP/1.1\r\nHost: a\r\n\r\n",             // space in target
            "GET /a#f HTTP/1.1\r\nHost: a\r\n\r\n",             // fragment
            "GET /\x7f HTTP/1.1\r\nHost: a\r\n\r\n",            // control char
            "GET / HTTX/1.1\r\nHost: a\r\n\r\n",                // version
            "GET / HTTP/1.1\r\n\r\n",                           // no Host
            "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",     // two Hosts
            "GET / HTTP/1.1\r\nHost: a b\r\n\r\n",              // bad Host
            "GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n",     // obs-fold
            "GET / HTTP/1.1\r\nHost: a\r\nNoColon\r\n\r\n",     // no colon
            "GET / HTTP/1.1\r\nHost: a\r\nBad Name: x\r\n\r\n", // space in name
            "GET / HTTP/1.1\r\nHost: a\r\n: x\r\n\r\n",         // empty name
            "GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n",     // bare CR
            "\u{e9}GET / HTTP/1.1\r\nHost: a\r\n\r\n",          // non-ASCII
        ] {
            assert!(matches!(parse(bad), Err(Malformed(_))), "{bad:?}");
            assert_eq!(parse(bad).unwrap_err().status().code(), 400);
        }
        assert_eq!(parse("GET / HTTP/2.0\r\n\r\n"), Err(Version));
        assert_eq!(Version.status().code(), 505);
        assert_eq!(HeadTooLarge.status().code(), 431);
    }

    #[test]
    fn xff_only_from_trusted_proxies_right_to_left() {
        let proxies = vec![p("127.0.0.1/32"), p("10.0.0.0/8"), p("2001:db8:1::/48")];
        let t = ip("127.0.0.1");
        // No header, or an untrusted peer: the TCP source.
        assert_eq!(client_addr(t, &[], &proxies), t);
        assert_eq!(
            client_addr(ip("127.0.0.2"), &[b"198.51.100.7"], &proxies),
            ip("127.0.0.2")
        );
        // Trusted peer: the rightmost untrusted entry, skipping trusted ones.
        assert_eq!(
            client_addr(t, &[b"203.0.113.9, 198.51.100.7, 10.1.1.1"], &proxies),
            ip("198.51.100.7")
        );
        // Several fields form one list, in order.
        assert_eq!(
            client_addr(t, &[b"203.0.113.9", b"198.51.100.7", b"10.2.2.2"], &proxies),
            ip("198.51.100.7")
        );
        // All trusted: the leftmost.
        assert_eq!(
            client_addr(t, &[b"10.9.9.9, 10.1.1.1"], &proxies),
            ip("10.9.9.9")
        );
        // IPv6 entries, and IPv4-mapped ones count as IPv4 (peer and entries).
        assert_eq!(
            client_addr(t, &[b"2001:db8:2::1, 2001:db8:1::5"], &proxies),
            ip("2001:db8:2::1")
        );
        assert_eq!(
            client_addr(ip("::ffff:127.0.0.1"), &[b"::ffff:198.51.100.7"], &proxies),
            ip("198.51.100.7")
        );
        assert_eq!(
            client_addr(ip("::ffff:127.0.0.2"), &[], &proxies),
            ip("127.0.0.2")
        );
        // Empty elements are ignored; a list of only empty elements is no list.
        assert_eq!(
            client_addr(t, &[b" ,198.51.100.7,, "], &proxies),
            ip("198.51.100.7")
        );
        assert_eq!(client_addr(t, &[b" , "], &proxies), t);
        // Anything unreadable: the whole field is ignored.
        for bad in [
            &b"198.51.100.7:443"[..],
            b"[2001:db8::1]",
            b"unknown, 198.51.100.7",
            b"198.51.100.7, 300.1.1.1",
            b"\xff",
        ] {
            assert_eq!(client_addr(t, &[bad], &proxies), t, "{bad:?}");
        }
    }

    #[test]
    fn trusted_prefixes_map_v4_mapped() {
        let got = trusted_prefixes(&[
            "::ffff:10.0.0.0/104".into(),
            "127.0.0.1/32".into(),
            "junk".into(),
        ]);
        assert_eq!(got, vec![p("10.0.0.0/8"), p("127.0.0.1/32")]);
    }

    #[test]
    fn choose_pop_first_usable_with_url_else_first_with_url() {
        let url = |i: usize| i != 3;
        // First usable with a URL.
        assert_eq!(choose_pop(&[0, 1, 2], |i| i != 0, url), Some(1));
        assert_eq!(choose_pop(&[2, 1, 0], |_| true, url), Some(2));
        // A usable POP without a URL is skipped.
        assert_eq!(choose_pop(&[3, 1, 0], |_| true, url), Some(1));
        // None usable: the first with a URL (all down = all up).
        assert_eq!(choose_pop(&[3, 2, 0], |_| false, url), Some(2));
        // No URL at all.
        assert_eq!(choose_pop(&[3], |_| true, url), None);
        assert_eq!(choose_pop(&[], |_| true, url), None);
    }

    #[test]
    fn location_keeps_target_and_never_doubles_the_slash() {
        assert_eq!(
            location("https://y.example.net", "/a?b=1"),
            "https://y.example.net/a?b=1"
        );
        assert_eq!(
            location("https://y.example.net/", "/a?b=1"),
            "https://y.example.net/a?b=1"
        );
        assert_eq!(
            location("https://y.example.net/p/", "/"),
            "https://y.example.net/p/"
        );
        assert_eq!(
            location("http://y:8080/p", "/x/../%2F?q=a%20b&&"),
            "http://y:8080/p/x/../%2F?q=a%20b&&"
        );
        assert_eq!(location("https://y", "//evil"), "https://y//evil");
    }

    #[test]
    fn http_date_is_imf_fixdate() {
        let t = |s| UNIX_EPOCH + Duration::from_secs(s);
        assert_eq!(http_date(t(0)), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(http_date(t(784_111_777)), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(http_date(t(951_782_400)), "Tue, 29 Feb 2000 00:00:00 GMT");
        assert_eq!(http_date(t(4_102_444_799)), "Thu, 31 Dec 2099 23:59:59 GMT");
    }

    #[test]
    fn responses_on_the_wire() {
        let r = Response::error(Status::MethodNotAllowed);
        let s = String::from_utf8(r.to_bytes("D")).unwrap();
        assert!(s.starts_with("HTTP/1.1 405 Method Not Allowed\r\nDate: D\r\n"));
        assert!(s.contains("\r\nAllow: GET, HEAD\r\n"));
        assert!(s.contains("\r\nConnection: close\r\n"));
        assert!(s.ends_with("\r\n\r\n405 Method Not Allowed\n"));
        let mut r = Response::error(Status::BadRequest);
        r.head_only = true;
        let s = String::from_utf8(r.to_bytes("D")).unwrap();
        assert!(
            s.ends_with("Content-Length: 16\r\nConnection: close\r\n\r\n"),
            "{s}"
        );
    }

    proptest::proptest! {
        /// Any bytes: the parser, the head scanner and the XFF rule never panic,
        /// and a parsed target is always visible ASCII (safe in `Location`).
        #[test]
        fn arbitrary_input_never_panics(
            buf in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..600),
            prefix in proptest::sample::select(vec![
                &b""[..], b"GET /", b"GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: ",
            ]),
        ) {
            let mut all = prefix.to_vec();
            all.extend_from_slice(&buf);
            all.extend_from_slice(b"\r\n\r\n");
            let end = head_end(&all).unwrap_or(all.len());
            if let Ok(req) = parse_request(&all[..end]) {
                proptest::prop_assert!(req.target.bytes().all(|b| b.is_ascii_graphic()));
                let xff: Vec<&[u8]> = req.values("x-forwarded-for").collect();
                let _ = client_addr(ip("127.0.0.1"), &xff, &[p("127.0.0.0/8")]);
            }
            let _ = client_addr(ip("127.0.0.1"), &[&buf], &[p("127.0.0.0/8")]);
        }
    }

    /// A context over a config whose fallback map sends 198.51.100.0/24 to
    /// `y` and 203.0.113.0/24 to `z`; `y`'s session is down, `z` has none (so
    /// it counts as up, but has no url).
    fn ctx() -> Ctx {
        let cfg = crate::config::parse(
            "local_asn: 65001\nrouter_id: 10.0.0.1\npop: x\npops:\n  - {name: x, asn: 65001, url: 'https://x.example.net/'}\n  - {name: y, asn: 65002, url: 'https://y.example.net'}\n  - {name: z, asn: 65003}\npeers:\n  - {name: py, address: 10.0.0.2, remote_asn: 65002, role: pop, multihop: 4}\nsteering:\n  fallback:\n    - {prefix: 198.51.100.0/24, pop: y}\n    - {prefix: 203.0.113.0/24, pop: z}\nhttp:\n  listen: ['127.0.0.1:8080']\n  trusted_proxies: [127.0.0.1/32]\n",
            "t.yaml",
        )
        .unwrap();
        Ctx {
            steering: steer::handle(&cfg),
            pops: Arc::new(PopState::new(&cfg, None)),
            urls: cfg.pops.iter().map(|p| p.url.clone()).collect(),
            names: cfg.pops.iter().map(|p| p.name.clone()).collect(),
            proxies: trusted_prefixes(&cfg.http.trusted_proxies),
        }
    }

    fn header<'a>(r: &'a Response, name: &str) -> Option<&'a str> {
        r.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn respond_redirects_by_the_steering_decision() {
        let c = ctx();
        let get = |t: &str, xff: Option<&str>, peer: &str| {
            let s = match xff {
                Some(x) => format!("GET {t} HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: {x}\r\n\r\n"),
                None => format!("GET {t} HTTP/1.1\r\nHost: h\r\n\r\n"),
            };
            let req = parse_request(s.as_bytes()).unwrap();
            respond(&c, &req, ip(peer))
        };
        // y is down (no sessions): the next usable POP with a url, x.
        let r = get("/p?q", Some("198.51.100.1"), "127.0.0.1");
        assert_eq!(r.status, Status::Found);
        assert_eq!(header(&r, "Location"), Some("https://x.example.net/p?q"));
        assert_eq!(header(&r, "X-Sparrow-Pop"), Some("x"));
        // z has no url: its clients go to the next usable POP with one.
        let r = get("/", Some("203.0.113.1"), "127.0.0.1");
        assert_eq!(header(&r, "X-Sparrow-Pop"), Some("x"));
        // Drain x: nothing usable has a url, so the first with a url (y).
        c.pops.set_drained("x", true).unwrap();
        let r = get("/p?q", Some("198.51.100.1"), "127.0.0.1");
        assert_eq!(header(&r, "Location"), Some("https://y.example.net/p?q"));
        // An untrusted peer's XFF is ignored: 127.0.0.2 -> default POP x.
        let r = get("/", Some("198.51.100.1"), "127.0.0.2");
        assert_eq!(header(&r, "X-Sparrow-Pop"), Some("x"));
        assert!(r.body.contains("https://x.example.net/"));
        // Methods and targets.
        let req = parse_request(b"POST / HTTP/1.1\r\nHost: h\r\n\r\n").unwrap();
        assert_eq!(
            respond(&c, &req, ip("127.0.0.1")).status,
            Status::MethodNotAllowed
        );
        for t in ["*", "http://h/x", "h:80"] {
            let s = format!("GET {t} HTTP/1.1\r\nHost: h\r\n\r\n");
            let req = parse_request(s.as_bytes()).unwrap();
            assert_eq!(
                respond(&c, &req, ip("127.0.0.1")).status,
                Status::BadRequest
            );
        }
        let req = parse_request(b"HEAD /h HTTP/1.1\r\nHost: h\r\n\r\n").unwrap();
        let r = respond(&c, &req, ip("127.0.0.1"));
        assert!(r.head_only && r.status == Status::Found);
        // HEAD never gets a body, errors included.
        let req = parse_request(b"HEAD * HTTP/1.1\r\nHost: h\r\n\r\n").unwrap();
        let r = respond(&c, &req, ip("127.0.0.1"));
        assert!(r.head_only && r.status == Status::BadRequest);
    }
}
