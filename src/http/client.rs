//! The client address a request is steered by: the TCP source, or, from a
//! trusted proxy (`http.trusted_proxies`), the address taken from
//! `X-Forwarded-For` (rule at [`client_addr`]). Addresses are canonical
//! (`net::canonical_ip`: IPv4-mapped IPv6 is IPv4).
//!
//! Pure; used by `redirect`.

use std::net::IpAddr;

use super::request::trim_ows;
use crate::net::canonical_ip;
use crate::types::Prefix;

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
    let peer = canonical_ip(peer);
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
                Some(a) => list.push(canonical_ip(a)),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::request::{head_end, parse_request};
    use crate::testutil::ip;

    fn p(s: &str) -> Prefix {
        s.parse().unwrap()
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
}
