//! The redirect decision for one parsed request: method and target checks,
//! the client address (`client`), [`steer::select`] on it, the POP
//! (`pops::pick`, the DNS rule: availability, shedding keyed on the
//! decision's safe-scope block, the all-down policy) and the `302 Found` with its `Location` (the POP's
//! base URL plus the request target).
//!
//! Reads the steering snapshot (one `load()` per request) and `PopState`;
//! pure otherwise.

use std::net::IpAddr;
use std::sync::Arc;

use tracing::debug;

use super::client::client_addr;
use super::request::Request;
use super::response::{Response, Status};
use crate::pops::{PopState, Records};
use crate::steer;
use crate::types::Prefix;

/// `Location` for `base` (a validated `pops[].url`) and an origin-form target:
/// the target appended byte for byte, with one `/` where they meet.
pub fn location(base: &str, target: &str) -> String {
    let base = base.strip_suffix('/').unwrap_or(base);
    let mut s = String::with_capacity(base.len() + target.len());
    s.push_str(base);
    s.push_str(target);
    s
}

/// Everything a connection needs, shared by every listener.
pub(super) struct Ctx {
    pub(super) steering: steer::Handle,
    pub(super) pops: Arc<PopState>,
    /// `pops[].url` by POP index (`None`: no URL, or one unusable in a header).
    pub(super) urls: Vec<Option<String>>,
    /// POP names by index.
    pub(super) names: Vec<String>,
    pub(super) proxies: Vec<Prefix>,
    /// `health.all_down` (`empty`: 503 when no POP is usable).
    pub(super) all_down: crate::config::AllDownPolicy,
    /// Responses and redirects counted.
    pub(super) stats: std::sync::Arc<super::stats::HttpStats>,
}

/// The answer to a parsed request from `peer` (the TCP source). A HEAD
/// request gets no body, whatever the status.
pub(super) fn respond(ctx: &Ctx, req: &Request<'_>, peer: IpAddr) -> Response {
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
        let has_url = |i: usize| match ctx.urls.get(i) {
            Some(Some(_)) => Records::Up,
            _ => Records::None,
        };
        let key = crate::pops::shed_key(client, d.scope);
        let pick = crate::pops::pick(d.ranking, key, &*ctx.pops, has_url, ctx.all_down, |_, _| {});
        (pick.map(|p| p.pop), d.generation)
    };
    let Some((pop, Some(base))) = pop.map(|i| (i, &ctx.urls[i])) else {
        debug!(%peer, %client, "HTTP: no POP with a url");
        return Response::error(Status::Unavailable);
    };
    let loc = location(base, req.target);
    let name = &ctx.names[pop];
    ctx.stats.redirect(pop);
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
        content_type: super::response::TEXT_PLAIN,
    }
}

/// Whether a string can go into a header field value as is.
pub(super) fn header_safe(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_graphic())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::client::trusted_prefixes;
    use crate::http::request::parse_request;
    use crate::testutil::{ip, TestConfig};

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

    /// A context over a config whose fallback map sends 198.51.100.0/24 to
    /// `y` and 203.0.113.0/24 to `z`; `y`'s session is down, `z` has none (so
    /// it counts as up, but has no url).
    fn ctx() -> Ctx {
        let cfg = TestConfig::two_pops()
            .replace(
                "{name: x, asn: 65001}",
                "{name: x, asn: 65001, url: 'https://x.example.net/'}",
            )
            .replace(
                "{name: y, asn: 65002}",
                "{name: y, asn: 65002, url: 'https://y.example.net'}",
            )
            .pop("z", 65003)
            .with(
                "\
steering:
  fallback:
    - {prefix: 198.51.100.0/24, pop: y}
    - {prefix: 203.0.113.0/24, pop: z}
http:
  listen: ['127.0.0.1:8080']
  trusted_proxies: [127.0.0.1/32]
",
            )
            .build();
        ctx_of(&cfg)
    }

    fn ctx_of(cfg: &crate::config::Config) -> Ctx {
        Ctx {
            stats: std::sync::Arc::new(super::super::stats::HttpStats::new(cfg.pops.len())),
            steering: steer::handle(cfg),
            pops: Arc::new(PopState::new(cfg, None)),
            urls: cfg.pops.iter().map(|p| p.url.clone()).collect(),
            names: cfg.pops.iter().map(|p| p.name.clone()).collect(),
            proxies: trusted_prefixes(&cfg.http.trusted_proxies),
            all_down: cfg.health.all_down,
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

    /// POPs past one byte's indices: p300 (one byte 44) and p256 (one byte
    /// 0, the local POP x) have urls, no other POP has; 10.0.0.0/8 ranks
    /// p300 first, then config order.
    #[test]
    fn pops_past_one_byte_get_their_clients() {
        use crate::testutil::numbered_pop_asn;
        let with_url = |t: TestConfig, i: usize| {
            let asn = numbered_pop_asn(i);
            t.replace(
                &format!("{{name: p{i}, asn: {asn}}}"),
                &format!("{{name: p{i}, asn: {asn}, url: 'https://p{i}.example.net'}}"),
            )
        };
        let t = TestConfig::two_pops().numbered_pops(301);
        let cfg = with_url(with_url(t, 256), 300)
            .with("steering:\n  fallback:\n    - {prefix: 10.0.0.0/8, pop: p300}\n")
            .build();
        let c = ctx_of(&cfg);
        let get = || {
            let req = parse_request(b"GET /v HTTP/1.1\r\nHost: h\r\n\r\n").unwrap();
            let r = respond(&c, &req, ip("10.1.2.3"));
            (
                header(&r, "X-Sparrow-Pop").map(str::to_string),
                header(&r, "Location").map(str::to_string),
            )
        };
        let at = |p: &str| {
            (
                Some(p.to_string()),
                Some(format!("https://{p}.example.net/v")),
            )
        };
        assert_eq!(get(), at("p300"));
        // p300 down: past 256 POPs without a url, to p256.
        c.pops
            .force("p300", None, crate::pops::Force::Down)
            .unwrap();
        assert_eq!(get(), at("p256"));
    }

    #[test]
    fn the_dns_pick_forced_states_load_and_all_down_empty() {
        let mut c = ctx();
        let pop_of = |c: &Ctx| {
            let s = "GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 198.51.100.1\r\n\r\n";
            let req = parse_request(s.as_bytes()).unwrap();
            let r = respond(c, &req, ip("127.0.0.1"));
            (r.status, header(&r, "X-Sparrow-Pop").map(str::to_string))
        };
        let found = |p: &str| (Status::Found, Some(p.to_string()));
        // y forced up: its client goes to y; at load 1.0 y counts as drained.
        c.pops.force("y", None, crate::pops::Force::Up).unwrap();
        assert_eq!(pop_of(&c), found("y"));
        c.pops.set_manual_load("y", Some(1.0)).unwrap();
        assert_eq!(pop_of(&c), found("x"));
        // Nothing usable: answer_all (the first with a url), empty (503).
        c.pops.force("x", None, crate::pops::Force::Down).unwrap();
        assert_eq!(pop_of(&c), found("y"));
        c.all_down = crate::config::AllDownPolicy::Empty;
        assert_eq!(pop_of(&c).0, Status::Unavailable);
    }
}
