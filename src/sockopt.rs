//! Socket options the standard library and socket2 do not cover: TCP-MD5
//! (RFC 2385, Linux `TCP_MD5SIG`) and the GTSM minimum TTL (RFC 5082,
//! `IP_MINTTL` / `IPV6_MINHOPCOUNT`).
//!
//! The only module with `unsafe`: each call is one `setsockopt` on a borrowed fd.
//! Used by `session` for outgoing sockets and the listener.

// The one module allowed `unsafe` (the crate denies it everywhere else).
#![allow(unsafe_code)]

use std::io;
use std::mem;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsRawFd, BorrowedFd};

const TCP_MD5SIG_MAXKEYLEN: usize = 80;

/// Linux `struct tcp_md5sig` (include/uapi/linux/tcp.h).
#[repr(C)]
struct TcpMd5Sig {
    addr: libc::sockaddr_storage,
    flags: u8,
    prefixlen: u8,
    keylen: u16,
    ifindex: u32,
    key: [u8; TCP_MD5SIG_MAXKEYLEN],
}

/// Errors setting socket options.
#[derive(Debug, thiserror::Error)]
pub enum SockoptError {
    #[error("TCP-MD5 key is {0} bytes; the kernel allows at most 80")]
    KeyTooLong(usize),
    #[error("setsockopt {what} for {peer}: {source}")]
    Setsockopt {
        what: &'static str,
        peer: IpAddr,
        source: io::Error,
    },
}

/// Install (or with `key = None`, remove) the TCP-MD5 key for `peer` on `fd`.
/// `v6_socket` tells whether the socket is AF_INET6: IPv4 peers are then given
/// as v4-mapped addresses, which the kernel stores as IPv4 keys.
pub fn set_md5sig(
    fd: BorrowedFd<'_>,
    v6_socket: bool,
    peer: IpAddr,
    key: Option<&[u8]>,
) -> Result<(), SockoptError> {
    let key = key.unwrap_or(&[]);
    if key.len() > TCP_MD5SIG_MAXKEYLEN {
        return Err(SockoptError::KeyTooLong(key.len()));
    }
    // SAFETY: all-zero bytes are a valid value for this plain-data C struct.
    let mut sig: TcpMd5Sig = unsafe { mem::zeroed() };
    let sa = socket2::SockAddr::from(match (peer, v6_socket) {
        (IpAddr::V4(a), true) => SocketAddr::new(IpAddr::V6(a.to_ipv6_mapped()), 0),
        (a, _) => SocketAddr::new(a, 0),
    });
    let n = (sa.len() as usize).min(mem::size_of::<libc::sockaddr_storage>());
    // SAFETY: `sa.as_ptr()` points to `sa.len()` initialised bytes of a sockaddr,
    // `sig.addr` has room for a whole sockaddr_storage and `n` is at most that size;
    // the regions do not overlap.
    unsafe {
        std::ptr::copy_nonoverlapping(
            sa.as_ptr() as *const u8,
            &mut sig.addr as *mut libc::sockaddr_storage as *mut u8,
            n,
        );
    }
    sig.keylen = key.len() as u16;
    sig.key[..key.len()].copy_from_slice(key);
    // SAFETY: `fd` is a valid open socket for the lifetime of the borrow, and we
    // pass a pointer to a fully initialised `TcpMd5Sig` with its exact size.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_MD5SIG,
            &sig as *const TcpMd5Sig as *const libc::c_void,
            mem::size_of::<TcpMd5Sig>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        let source = io::Error::last_os_error();
        // Removing a key that was never installed is not an error.
        if key.is_empty() && source.raw_os_error() == Some(libc::ENOENT) {
            return Ok(());
        }
        return Err(SockoptError::Setsockopt {
            what: "TCP_MD5SIG",
            peer,
            source,
        });
    }
    Ok(())
}

/// GTSM: drop packets arriving with a TTL (hop limit) below `min` on this socket.
pub fn set_min_ttl(
    fd: BorrowedFd<'_>,
    v6_socket: bool,
    peer: IpAddr,
    min: u8,
) -> Result<(), SockoptError> {
    let val: libc::c_int = min as libc::c_int;
    let mut opts = vec![(libc::IPPROTO_IP, libc::IP_MINTTL, "IP_MINTTL")];
    if v6_socket {
        // A dual-stack socket carries IPv4-mapped traffic too: set both.
        opts.push((
            libc::IPPROTO_IPV6,
            libc::IPV6_MINHOPCOUNT,
            "IPV6_MINHOPCOUNT",
        ));
    }
    for (level, name, what) in opts {
        // SAFETY: `fd` is a valid open socket for the borrow; we pass a pointer to
        // a live c_int and its exact size.
        let rc = unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                level,
                name,
                &val as *const libc::c_int as *const libc::c_void,
                mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            let source = io::Error::last_os_error();
            // IP_MINTTL on a v6-only path may be refused; the v6 option is what counts there.
            if v6_socket && level == libc::IPPROTO_IP {
                continue;
            }
            return Err(SockoptError::Setsockopt { what, peer, source });
        }
    }
    Ok(())
}
