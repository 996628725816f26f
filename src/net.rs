//! Listener and socket helpers shared by BGP, DNS and HTTP: the BGP listener
//! (dual-stack, TCP-MD5 keys), TCP listeners, SO_REUSEPORT UDP sockets, and
//! the one canonical form of a peer address.
//!
//! Talks to the OS (through `socket2`, std and `sockopt`); no policy of its own.

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::os::fd::AsFd;

use socket2::{Domain, Protocol, Socket, Type};

/// An address as steering and peer lookup see it: an IPv4-mapped IPv6
/// address (`::ffff:a.b.c.d`) is its IPv4 address; every other address is
/// itself (IPv4-compatible `::a.b.c.d` stays IPv6). This is std's
/// `IpAddr::to_canonical`, named here as the one rule every caller uses.
#[inline]
pub fn canonical_ip(ip: IpAddr) -> IpAddr {
    ip.to_canonical()
}

/// A socket of `ty` for `addr`'s family; IPv6 ones are v6only (an IPv6
/// listener never takes IPv4 traffic: list both families to serve both).
fn socket(addr: SocketAddr, ty: Type, proto: Protocol) -> std::io::Result<Socket> {
    let s = Socket::new(Domain::for_address(addr), ty, Some(proto))?;
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    Ok(s)
}

/// A listening TCP socket on `addr` (IPv6: v6only; SO_REUSEADDR; backlog
/// 1024), nonblocking for tokio. Used by DNS (TCP) and the HTTP redirector.
pub fn tcp_listener(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let s = socket(addr, Type::STREAM, Protocol::TCP)?;
    s.set_reuse_address(true)?;
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    s.listen(1024)?;
    tokio::net::TcpListener::from_std(s.into())
}

/// The BGP listener on `addr`: "::" also serves IPv4 peers (as v4-mapped
/// addresses), other IPv6 addresses are v6only; SO_REUSEADDR; each peer's
/// TCP-MD5 key (RFC 2385) is set before listening, since it must be on the
/// socket before the peer's SYN arrives.
pub fn bgp_listener(
    addr: SocketAddr,
    md5_keys: &[(IpAddr, &[u8])],
) -> std::io::Result<tokio::net::TcpListener> {
    let s = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    s.set_reuse_address(true)?;
    let v6 = addr.is_ipv6();
    if v6 {
        s.set_only_v6(!addr.ip().is_unspecified())?;
    }
    s.set_nonblocking(true)?;
    for &(peer, key) in md5_keys {
        if v6 || peer.is_ipv4() {
            crate::sockopt::set_md5sig(s.as_fd(), v6, peer, Some(key))
                .map_err(std::io::Error::other)?;
        }
    }
    s.bind(&addr.into())?;
    s.listen(128)?;
    tokio::net::TcpListener::from_std(s.into())
}

/// A blocking UDP socket on `addr` with SO_REUSEPORT (so several can share
/// it, the kernel spreading datagrams over them), IPv6 v6only, and a 4 MiB
/// receive buffer asked for (best effort).
pub fn udp_reuseport(addr: SocketAddr) -> std::io::Result<UdpSocket> {
    let s = socket(addr, Type::DGRAM, Protocol::UDP)?;
    s.set_reuse_port(true)?;
    // Room for bursts while the thread answers (the kernel doubles it).
    let _ = s.set_recv_buffer_size(4 << 20);
    s.bind(&addr.into())?;
    Ok(s.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_ip_unmaps_ipv4_mapped_only() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(canonical_ip(ip("::ffff:192.0.2.1")), ip("192.0.2.1"));
        assert_eq!(canonical_ip(ip("192.0.2.1")), ip("192.0.2.1"));
        assert_eq!(canonical_ip(ip("2001:db8::1")), ip("2001:db8::1"));
        // IPv4-compatible (deprecated) addresses stay IPv6.
        assert_eq!(canonical_ip(ip("::192.0.2.1")), ip("::192.0.2.1"));
        assert_eq!(canonical_ip(ip("::1")), ip("::1"));
        // Same as the hand-written rule it replaces (`to_ipv4_mapped`).
        for a in [
            "::ffff:0.0.0.0",
            "::ffff:10.1.2.3",
            "::ffff:1:2",
            "fe80::1",
            "1.2.3.4",
        ] {
            let a = ip(a);
            let by_hand = match a {
                IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
                v4 => v4,
            };
            assert_eq!(canonical_ip(a), by_hand, "{a}");
        }
    }

    #[test]
    fn listeners_bind_on_loopback() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .unwrap();
        let l = rt.block_on(async { tcp_listener("127.0.0.1:0".parse().unwrap()) });
        assert!(l.unwrap().local_addr().unwrap().port() > 0);
        let u = udp_reuseport("127.0.0.1:0".parse().unwrap()).unwrap();
        let at = u.local_addr().unwrap();
        // SO_REUSEPORT: a second socket on the same port.
        let again = udp_reuseport(at).unwrap();
        assert_eq!(again.local_addr().unwrap(), at);
    }
}
