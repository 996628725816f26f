//! Whole receive path over an arbitrary byte stream: frame with `check_header`,
//! then dispatch each message to its decoder, UPDATEs under every session kind.
#![no_main]

use std::net::{IpAddr, Ipv4Addr};

use libfuzzer_sys::fuzz_target;
use sparrow::wire::{
    check_header, decode_notification, decode_open, decode_route_refresh, decode_update, UpdateCtx,
    HEADER_LEN, MAX_EXT_MSG_LEN, MAX_MSG_LEN, msg,
};

fn ctxs() -> [UpdateCtx; 5] {
    let c = |as4, ebgp, afis| UpdateCtx {
        as4,
        ebgp,
        peer_as: 65001,
        local_as: if ebgp { 65000 } else { 65001 },
        local_addr: Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 254))),
        afis,
    };
    [
        c(true, true, [true, true]),
        c(true, false, [true, true]),
        c(false, true, [true, true]),
        c(false, false, [true, true]),
        c(true, true, [true, false]),
    ]
}

fuzz_target!(|data: &[u8]| {
    // First byte picks the maximum message length (extended messages or not).
    let Some((&sel, mut stream)) = data.split_first() else {
        return;
    };
    let max = if sel & 1 == 0 {
        MAX_MSG_LEN
    } else {
        MAX_EXT_MSG_LEN
    };
    let ctxs = ctxs();
    while stream.len() >= HEADER_LEN {
        let Ok((ty, len)) = check_header(stream, max) else {
            // A real session would reset here; skip the header to keep exploring.
            stream = &stream[HEADER_LEN..];
            continue;
        };
        let Some(msg) = stream.get(..len) else {
            break;
        };
        let body = &msg[HEADER_LEN..];
        match ty {
            msg::OPEN => {
                if let Ok(o) = decode_open(body) {
                    assert!(o.hold_time == 0 || o.hold_time >= 3);
                }
            }
            msg::UPDATE => {
                for c in &ctxs {
                    if let Ok(d) = decode_update(body, c) {
                        let n = d.v4.announced.len()
                            + d.v4.withdrawn.len()
                            + d.v6.announced.len()
                            + d.v6.withdrawn.len();
                        assert!(n <= body.len());
                        assert_eq!(d.v4.attrs.is_some(), !d.v4.announced.is_empty());
                        assert_eq!(d.v6.attrs.is_some(), !d.v6.announced.is_empty());
                    }
                }
            }
            msg::NOTIFICATION => {
                let _ = decode_notification(body);
            }
            msg::ROUTE_REFRESH => {
                let _ = decode_route_refresh(body);
            }
            _ => {}
        }
        stream = &stream[len..];
    }
});
