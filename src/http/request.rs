//! HTTP/1.x request heads: where a head ends in the receive buffer
//! ([`head_end`]) and its parse ([`parse_request`]) into method, target,
//! version and field lines, with the RFC 9112 checks; each refusal is a
//! [`RequestError`] that maps to one response status.
//!
//! Pure (bytes in, borrowed parse out); used by the connection loop
//! (`server`) and fuzzed (`fuzz/fuzz_targets/http.rs`).

use super::response::Status;

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

pub(super) fn trim_ows(mut v: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = v {
        v = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = v {
        v = rest;
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
