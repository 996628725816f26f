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
/// socket before the peer's SYN arrives. `gtsm` says how GTSM peers' segments
/// below TTL 255 are dropped from the SYN on, so that no byte of theirs is
/// read before the accepted socket gets its IP_MINTTL (see [`ListenerGtsm`]).
pub fn bgp_listener(
    addr: SocketAddr,
    md5_keys: &[(IpAddr, &[u8])],
    gtsm: ListenerGtsm<'_>,
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
    match gtsm {
        ListenerGtsm::Off => {}
        ListenerGtsm::Everyone => {
            crate::sockopt::set_min_ttl(s.as_fd(), v6, addr.ip(), 255)
                .map_err(std::io::Error::other)?;
        }
        ListenerGtsm::Peers(peers) => s.attach_filter(&gtsm_filter(peers)?)?,
    }
    s.bind(&addr.into())?;
    s.listen(128)?;
    tokio::net::TcpListener::from_std(s.into())
}

/// How the BGP listener keeps GTSM peers' low-TTL segments out before accept.
#[derive(Clone, Copy, Debug)]
pub enum ListenerGtsm<'a> {
    /// No GTSM peer (or no way to filter: accepted sockets get IP_MINTTL).
    Off,
    /// Every peer uses GTSM: IP_MINTTL / IPV6_MINHOPCOUNT 255 on the listener
    /// itself (inherited by accepted sockets); needs no privilege.
    Everyone,
    /// Only these peers use GTSM: the [`gtsm_filter`] program. Some kernels
    /// refuse socket filters without CAP_NET_ADMIN: then EPERM.
    Peers(&'a [IpAddr]),
}

/// A classic BPF socket filter (RFC 5082, GTSM, in the kernel): a packet from
/// one of `peers` with a TTL (IPv4) or hop limit (IPv6) below 255 is dropped;
/// every other packet passes. Sockets accepted from a listener inherit its
/// filter. Fails if `peers` make the program's jumps too long (about 30 IPv6
/// peers).
pub fn gtsm_filter(peers: &[IpAddr]) -> std::io::Result<Vec<libc::sock_filter>> {
    let (v4, v6): (Vec<IpAddr>, Vec<IpAddr>) = peers.iter().partition(|p| p.is_ipv4());
    let mut a = bpf::Asm::default();
    let (l4, l6, ttl4, ttl6) = (a.label(), a.label(), a.label(), a.label());
    let (accept, drop) = (a.label(), a.label());
    // The IP version: the high nibble of the first byte of the network header.
    a.load_byte(0);
    a.rsh(4);
    a.jeq(4, l4, None);
    a.jeq(6, l6, accept);
    a.mark(l4);
    a.load_word(12); // IPv4 source address
    for p in &v4 {
        let IpAddr::V4(p) = p else { continue };
        a.jeq(u32::from(*p), ttl4, None);
    }
    a.jump(accept);
    a.mark(ttl4);
    a.load_byte(8); // IPv4 TTL
    a.jeq(255, accept, drop);
    a.mark(l6);
    for p in &v6 {
        let IpAddr::V6(p) = p else { continue };
        let next = a.label();
        let words = p.octets();
        for (i, w) in words.chunks(4).enumerate() {
            a.load_word(8 + 4 * i as i32); // IPv6 source address, word i
            let w = u32::from_be_bytes([w[0], w[1], w[2], w[3]]);
            if i < 3 {
                a.jeq(w, None, next);
            } else {
                a.jeq(w, ttl6, next);
            }
        }
        a.mark(next);
    }
    a.jump(accept);
    a.mark(ttl6);
    a.load_byte(7); // IPv6 hop limit
    a.jeq(255, accept, drop);
    a.mark(accept);
    a.ret(u32::MAX);
    a.mark(drop);
    a.ret(0);
    a.assemble()
}

/// A small classic-BPF assembler with forward labels, for [`gtsm_filter`].
mod bpf {
    /// A jump target: a label, or `None` for the next instruction.
    pub type Target = Option<usize>;

    enum Insn {
        Stmt(u16, u32),
        Jeq(u32, Target, Target),
        Ja(usize),
        Mark(usize),
    }

    #[derive(Default)]
    pub struct Asm {
        insns: Vec<Insn>,
        labels: usize,
    }

    const LD_W_ABS: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
    const LD_B_ABS: u16 = (libc::BPF_LD | libc::BPF_B | libc::BPF_ABS) as u16;
    const RSH_K: u16 = (libc::BPF_ALU | libc::BPF_RSH | libc::BPF_K) as u16;
    const JEQ_K: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
    const JA: u16 = (libc::BPF_JMP | libc::BPF_JA) as u16;
    const RET_K: u16 = (libc::BPF_RET | libc::BPF_K) as u16;

    /// An absolute load offset relative to the network (IP) header.
    fn net(off: i32) -> u32 {
        (libc::SKF_NET_OFF + off) as u32
    }

    impl Asm {
        pub fn label(&mut self) -> Target {
            self.labels += 1;
            Some(self.labels - 1)
        }
        pub fn mark(&mut self, l: Target) {
            self.insns.push(Insn::Mark(l.expect("a label")));
        }
        pub fn load_byte(&mut self, off: i32) {
            self.insns.push(Insn::Stmt(LD_B_ABS, net(off)));
        }
        pub fn load_word(&mut self, off: i32) {
            self.insns.push(Insn::Stmt(LD_W_ABS, net(off)));
        }
        pub fn rsh(&mut self, n: u32) {
            self.insns.push(Insn::Stmt(RSH_K, n));
        }
        pub fn ret(&mut self, k: u32) {
            self.insns.push(Insn::Stmt(RET_K, k));
        }
        /// If A == k go to `t`, else to `f` (`None`: the next instruction).
        pub fn jeq(&mut self, k: u32, t: Target, f: Target) {
            self.insns.push(Insn::Jeq(k, t, f));
        }
        pub fn jump(&mut self, l: Target) {
            self.insns.push(Insn::Ja(l.expect("a label")));
        }

        pub fn assemble(self) -> std::io::Result<Vec<libc::sock_filter>> {
            let mut at = vec![0usize; self.labels];
            let mut pc = 0;
            for i in &self.insns {
                match i {
                    Insn::Mark(l) => at[*l] = pc,
                    _ => pc += 1,
                }
            }
            let too_far = || std::io::Error::other("GTSM filter: too many peers for one program");
            let rel = |pc: usize, t: Target| -> std::io::Result<u8> {
                t.map_or(Ok(0), |l| {
                    u8::try_from(at[l] - pc - 1).map_err(|_| too_far())
                })
            };
            let mut out = Vec::with_capacity(pc);
            for i in &self.insns {
                let pc = out.len();
                let (code, jt, jf, k) = match *i {
                    Insn::Mark(_) => continue,
                    Insn::Stmt(code, k) => (code, 0, 0, k),
                    Insn::Jeq(k, t, f) => (JEQ_K, rel(pc, t)?, rel(pc, f)?, k),
                    Insn::Ja(l) => (JA, 0, 0, (at[l] - pc - 1) as u32),
                };
                out.push(libc::sock_filter { code, jt, jf, k });
            }
            Ok(out)
        }
    }
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

    /// A connection to 127.0.0.1:`port` sent with `ttl`; an error when no
    /// answer came within 1.5 s.
    async fn connect_with_ttl(
        port: u16,
        ttl: u32,
    ) -> Result<std::io::Result<tokio::net::TcpStream>, tokio::time::error::Elapsed> {
        let s = tokio::net::TcpSocket::new_v4().unwrap();
        socket2::SockRef::from(&s).set_ttl(ttl).unwrap();
        let c = s.connect(SocketAddr::new(IpAddr::from([127, 0, 0, 1]), port));
        tokio::time::timeout(std::time::Duration::from_millis(1500), c).await
    }

    /// A GTSM peer's SYN below TTL 255 never reaches the listener; at 255 it connects.
    #[tokio::test]
    async fn gtsm_filter_drops_low_ttl_from_gtsm_peers_only() {
        let lo = IpAddr::from([127, 0, 0, 1]);
        let l = bgp_listener(SocketAddr::new(lo, 0), &[], ListenerGtsm::Peers(&[lo])).unwrap();
        let port = l.local_addr().unwrap().port();
        let connect = |ttl: u32| connect_with_ttl(port, ttl);
        assert!(
            connect(64).await.is_err(),
            "TTL 64 from a GTSM peer got through"
        );
        assert!(connect(255).await.expect("TTL 255 connects").is_ok());
        let (_, from) = l.accept().await.unwrap();
        assert_eq!(from.ip(), lo);
        // A peer without GTSM (another address) is not filtered.
        let other = bgp_listener(
            SocketAddr::new(lo, 0),
            &[],
            ListenerGtsm::Peers(&["10.0.0.1".parse().unwrap()]),
        )
        .unwrap();
        let port2 = other.local_addr().unwrap().port();
        let s = tokio::net::TcpSocket::new_v4().unwrap();
        socket2::SockRef::from(&s).set_ttl(1).unwrap();
        s.connect(SocketAddr::new(lo, port2)).await.unwrap();
    }

    /// Every peer GTSM: the listener's own IP_MINTTL drops a SYN below TTL 255.
    #[tokio::test]
    async fn gtsm_everyone_drops_low_ttl_at_the_listener() {
        let lo = IpAddr::from([127, 0, 0, 1]);
        let l = bgp_listener(SocketAddr::new(lo, 0), &[], ListenerGtsm::Everyone).unwrap();
        let port = l.local_addr().unwrap().port();
        let connect = |ttl: u32| connect_with_ttl(port, ttl);
        assert!(connect(254).await.is_err(), "TTL 254 got through");
        assert!(connect(255).await.expect("TTL 255 connects").is_ok());
    }

    #[test]
    fn gtsm_filter_for_both_families() {
        let peers: Vec<IpAddr> = vec!["192.0.2.1".parse().unwrap(), "2001:db8::1".parse().unwrap()];
        let prog = gtsm_filter(&peers).unwrap();
        // header 4, v4: load + 1 peer + ja + ttl 2, v6: 8 per peer + ja + ttl 2, 2 returns
        assert_eq!(prog.len(), 4 + 5 + 11 + 2);
        assert_eq!(prog.last().unwrap().k, 0);
        // Too many IPv6 peers for 8-bit jumps is an error, not a wrong program.
        let many: Vec<IpAddr> = (0..40u16)
            .map(|i| IpAddr::from([0x2001, 0xdb8, 0, 0, 0, 0, 0, i]))
            .collect();
        assert!(gtsm_filter(&many).is_err());
    }

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
