//! A minimal HTTP/1.1 GET client for the `http`/`https` checks and load URLs:
//! one request per connection (`Connection: close`), the body read to the
//! end (at most [`MAX_BODY`] bytes), chunked bodies decoded. TLS through
//! rustls with the ring provider: either any certificate is accepted
//! (`tls_verify: false`) or it is verified against the system roots with
//! the configured host as the name.
//!
//! Used by `probe` and `load`; the caller applies the timeout.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// Most body bytes read (the rest is ignored).
pub const MAX_BODY: usize = 64 * 1024;

/// A response: status code and (decoded) body.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
}

/// Why a GET failed: the short text a check reports (e.g. `tcp connect refused`).
pub type GetError = String;

/// What to fetch.
pub struct Get<'a> {
    pub addr: SocketAddr,
    pub tls: bool,
    pub verify: bool,
    /// Host header and TLS name (default: the address).
    pub host: Option<&'a str>,
    pub path: &'a str,
}

/// The short reason of a connect error, as checks report it.
pub fn connect_error(e: &std::io::Error) -> String {
    use std::io::ErrorKind::*;
    match e.kind() {
        ConnectionRefused => "tcp connect refused".into(),
        TimedOut => "tcp connect timeout".into(),
        HostUnreachable | NetworkUnreachable => "tcp unreachable".into(),
        _ => format!("tcp connect: {e}"),
    }
}

/// Fetch `g` once.
pub async fn get(g: &Get<'_>) -> Result<Response, GetError> {
    let tcp = TcpStream::connect(g.addr)
        .await
        .map_err(|e| connect_error(&e))?;
    let _ = tcp.set_nodelay(true);
    let name = match g.host {
        Some(h) => h.to_string(),
        None => match g.addr.ip() {
            IpAddr::V6(a) => format!("[{a}]"),
            a => a.to_string(),
        },
    };
    // RFC 9110 §7.2: the port only when it is not the scheme's default.
    let default_port = if g.tls { 443 } else { 80 };
    let host = if g.addr.port() == default_port {
        name
    } else {
        format!("{name}:{}", g.addr.port())
    };
    let req = format!(
        "GET {} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: sparrowd-health\r\nAccept: */*\r\nConnection: close\r\n\r\n",
        g.path
    );
    if !g.tls {
        return exchange(tcp, req.as_bytes()).await;
    }
    let name = match g.host {
        Some(h) => ServerName::try_from(h.to_string()).map_err(|e| format!("tls name: {e}"))?,
        None => ServerName::IpAddress(g.addr.ip().into()),
    };
    let cfg = if g.verify {
        verifying_config()?
    } else {
        accept_any_config()
    };
    let tls = tokio_rustls::TlsConnector::from(cfg)
        .connect(name, tcp)
        .await
        .map_err(|e| format!("tls: {e}"))?;
    exchange(tls, req.as_bytes()).await
}

async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    mut s: S,
    req: &[u8],
) -> Result<Response, GetError> {
    s.write_all(req)
        .await
        .map_err(|e| format!("http write: {e}"))?;
    let mut buf = Vec::with_capacity(4096);
    let mut chunk = [0u8; 8192];
    loop {
        let n = match s.read(&mut chunk).await {
            Ok(n) => n,
            // A TLS peer closing without close_notify: keep what arrived.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !buf.is_empty() => 0,
            Err(e) => return Err(format!("http read: {e}")),
        };
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.len() > MAX_BODY + 16 * 1024 {
            break;
        }
    }
    parse_response(&buf)
}

/// Parse a whole response (status line, headers, body).
pub fn parse_response(buf: &[u8]) -> Result<Response, GetError> {
    let end = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| "http: no complete header".to_string())?;
    let head = std::str::from_utf8(&buf[..end]).map_err(|_| "http: header not UTF-8")?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let mut parts = status_line.split_whitespace();
    let status = match (parts.next(), parts.next()) {
        (Some(v), Some(code)) if v.starts_with("HTTP/") => code
            .parse::<u16>()
            .map_err(|_| format!("http: bad status line `{status_line}`"))?,
        _ => return Err(format!("http: bad status line `{status_line}`")),
    };
    let chunked = lines.any(|l| {
        l.split_once(':').is_some_and(|(k, v)| {
            k.trim().eq_ignore_ascii_case("transfer-encoding")
                && v.to_ascii_lowercase().contains("chunked")
        })
    });
    let raw = &buf[end + 4..];
    let mut body = if chunked { dechunk(raw) } else { raw.to_vec() };
    body.truncate(MAX_BODY);
    Ok(Response { status, body })
}

/// Decode a chunked body (stops at the last chunk or at anything malformed).
fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = b.windows(2).position(|w| w == b"\r\n") {
        let size = std::str::from_utf8(&b[..eol])
            .ok()
            .and_then(|s| usize::from_str_radix(s.split(';').next()?.trim(), 16).ok());
        let Some(size) = size.filter(|&s| s > 0) else {
            break;
        };
        let data = &b[eol + 2..];
        let take = size.min(data.len());
        out.extend_from_slice(&data[..take]);
        if data.len() < size + 2 {
            break;
        }
        b = &data[size + 2..];
    }
    out
}

/// The ring provider (small, no C toolchain needs beyond ring's own; the
/// post-quantum key exchange of the aws-lc provider is not needed for checks).
#[allow(deprecated)]
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A client config that accepts any server certificate (`tls_verify: false`).
fn accept_any_config() -> Arc<ClientConfig> {
    static CFG: OnceLock<Arc<ClientConfig>> = OnceLock::new();
    CFG.get_or_init(|| {
        let p = provider();
        let cfg = ClientConfig::builder_with_provider(p.clone())
            .with_safe_default_protocol_versions()
            .expect("ring supports the default protocol versions")
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAny(p)))
            .with_no_client_auth();
        Arc::new(cfg)
    })
    .clone()
}

/// A client config verifying against the system roots (read once).
fn verifying_config() -> Result<Arc<ClientConfig>, GetError> {
    static CFG: OnceLock<Result<Arc<ClientConfig>, String>> = OnceLock::new();
    CFG.get_or_init(|| {
        let mut roots = rustls::RootCertStore::empty();
        let found = rustls_native_certs::load_native_certs();
        for c in found.certs {
            let _ = roots.add(c);
        }
        if roots.is_empty() {
            return Err("tls: no system root certificates".to_string());
        }
        let cfg = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("tls: {e}"))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Arc::new(cfg))
    })
    .clone()
}

/// Accepts every certificate; still checks the handshake signatures.
#[derive(Debug)]
struct AcceptAny(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_plain_and_chunked() {
        let r = parse_response(b"HTTP/1.1 503 Busy\r\nContent-Length: 2\r\n\r\nno").unwrap();
        assert_eq!((r.status, &r.body[..]), (503, &b"no"[..]));
        let r = parse_response(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n0.42\r\n3\r\nabc\r\n0\r\n\r\n",
        )
        .unwrap();
        assert_eq!(&r.body[..], b"0.42abc");
        assert!(parse_response(b"garbage").is_err());
        assert!(parse_response(b"SSH-2.0 hi\r\n\r\n").is_err());
    }
}
