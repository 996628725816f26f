//! Tests for framing, OPEN, NOTIFICATION, KEEPALIVE and ROUTE-REFRESH.

use super::*;

fn header(len: u16, ty: u8) -> Vec<u8> {
    let mut h = vec![0xff; 16];
    h.extend_from_slice(&len.to_be_bytes());
    h.push(ty);
    h
}

#[test]
fn check_header_accepts_each_type_minimum() {
    for (ty, min) in [(1, 29), (2, 23), (3, 21), (4, 19), (5, 23)] {
        assert_eq!(
            check_header(&header(min, ty), MAX_MSG_LEN).unwrap(),
            (ty, min as usize)
        );
    }
    assert_eq!(
        check_header(&header(4096, 2), MAX_MSG_LEN).unwrap(),
        (2, 4096)
    );
    assert_eq!(
        check_header(&header(65535, 2), MAX_EXT_MSG_LEN).unwrap(),
        (2, 65535)
    );
}

#[test]
fn check_header_bad_marker_is_1_1() {
    let mut h = header(19, 4);
    h[7] = 0xfe;
    let e = check_header(&h, MAX_MSG_LEN).unwrap_err();
    assert_eq!((e.code, e.subcode), (1, 1));
}

#[test]
fn check_header_bad_length_is_1_2_with_length_data() {
    for (len, ty, max) in [
        (18u16, 4u8, MAX_MSG_LEN),
        (4097, 2, MAX_MSG_LEN),
        (20, 4, MAX_MSG_LEN), // KEEPALIVE must be exactly 19
        (28, 1, MAX_MSG_LEN),
        (22, 2, MAX_MSG_LEN),
        (20, 3, MAX_MSG_LEN),
        (22, 5, MAX_MSG_LEN),
        (5000, 2, 4999),
    ] {
        let e = check_header(&header(len, ty), max).unwrap_err();
        assert_eq!((e.code, e.subcode), (1, 2), "len {len} type {ty}");
        assert_eq!(e.data, len.to_be_bytes().to_vec());
    }
    let e = check_header(&[0xff; 10], MAX_MSG_LEN).unwrap_err();
    assert_eq!((e.code, e.subcode), (1, 2));
}

#[test]
fn check_header_unknown_type_is_1_3_with_type_data() {
    for ty in [0u8, 6, 255] {
        let e = check_header(&header(19, ty), MAX_MSG_LEN).unwrap_err();
        assert_eq!((e.code, e.subcode, e.data.clone()), (1, 3, vec![ty]));
    }
}

pub(super) fn full_open() -> Open {
    Open {
        asn: 4_200_000_001,
        my_as: AS_TRANS as u16,
        hold_time: 90,
        router_id: Ipv4Addr::new(192, 0, 2, 1),
        caps: Capabilities {
            multiprotocol: vec![Afi::Ipv4, Afi::Ipv6],
            as4: Some(4_200_000_001),
            route_refresh: true,
            extended_message: true,
            graceful_restart: Some(GracefulRestartCap {
                restart_time: 120,
                restarting: true,
                notification: true,
                afis: vec![(Afi::Ipv4, true), (Afi::Ipv6, false)],
            }),
            other: vec![(69, vec![0, 1, 1, 1]), (73, b"\x03abc\x00".to_vec())],
        },
    }
}

#[test]
fn open_round_trip_every_capability() {
    let open = full_open();
    let msg = encode_open(&open);
    let (ty, len) = check_header(&msg, MAX_MSG_LEN).unwrap();
    assert_eq!((ty, len), (msg::OPEN, msg.len()));
    let back = decode_open(&msg[HEADER_LEN..]).unwrap();
    assert_eq!(back, open);
}

/// The Graceful Restart capability's bytes: R, N and restart time in the
/// header, one (AFI, SAFI, F) tuple per family (RFC 4724 §3, RFC 8538 §2).
fn gr_cap_bytes(gr: GracefulRestartCap) -> Vec<u8> {
    let mut open = full_open();
    open.caps = Capabilities {
        graceful_restart: Some(gr),
        ..Capabilities::default()
    };
    open.asn = 65001;
    let msg = encode_open(&open);
    // header 19, version..opt len 10, param type + length 2, then capabilities
    let caps = &msg[HEADER_LEN + 12..];
    let at = caps
        .iter()
        .position(|&b| b == cap::GRACEFUL_RESTART)
        .unwrap();
    let len = caps[at + 1] as usize;
    caps[at + 2..at + 2 + len].to_vec()
}

#[test]
fn graceful_restart_cap_bits_and_tuples() {
    let gr = |restarting, notification, afis| GracefulRestartCap {
        restart_time: 300,
        restarting,
        notification,
        afis,
    };
    // Helper only, no flags: restart time alone.
    assert_eq!(gr_cap_bytes(gr(false, false, vec![])), [0x01, 0x2c]);
    // N only, both families with F.
    assert_eq!(
        gr_cap_bytes(gr(false, true, vec![(Afi::Ipv4, true), (Afi::Ipv6, true)])),
        [0x41, 0x2c, 0, 1, 1, 0x80, 0, 2, 1, 0x80]
    );
    // R and N, IPv6 without F.
    assert_eq!(
        gr_cap_bytes(gr(true, true, vec![(Afi::Ipv6, false)])),
        [0xc1, 0x2c, 0, 2, 1, 0]
    );
    // Decoding FRR's form: R+N, time 120, IPv4 unicast with F, an unknown
    // SAFI (ignored), IPv6 unicast without F.
    let body = [
        4, 0xfd, 0xe9, 0, 90, 1, 1, 1, 1, 18, 2, 16, 64, 14, 0xc0, 120, 0, 1, 1, 0x80, 0, 1, 128,
        0x80, 0, 2, 1, 0,
    ];
    let o = decode_open(&body).unwrap();
    let g = o.caps.graceful_restart.unwrap();
    assert_eq!(
        g,
        gr(true, true, vec![(Afi::Ipv4, true), (Afi::Ipv6, false)]).with_time(120)
    );
    // Restart time uses 12 bits; the other two flag bits are ignored.
    let body = [4, 0xfd, 0xe9, 0, 90, 1, 1, 1, 1, 6, 2, 4, 64, 2, 0x3f, 0xff];
    let g = decode_open(&body).unwrap().caps.graceful_restart.unwrap();
    assert_eq!(
        (g.restart_time, g.restarting, g.notification),
        (4095, false, false)
    );
}

impl GracefulRestartCap {
    fn with_time(mut self, t: u16) -> Self {
        self.restart_time = t;
        self
    }
}

#[test]
fn hard_reset_wraps_the_inner_cease() {
    let inner = Notification {
        code: code::CEASE,
        subcode: cease::ADMIN_RESET,
        data: b"x".to_vec(),
    };
    let h = hard_reset(&inner);
    assert!(is_hard_reset(&h) && !is_hard_reset(&inner));
    assert_eq!((h.code, h.subcode), (6, 9));
    assert_eq!(h.data, [6, 4, b'x']);
    let msg = encode_notification(&h);
    assert_eq!(&msg[HEADER_LEN..], &[6, 9, 6, 4, b'x']);
}

#[test]
fn open_small_asn_no_caps_round_trip() {
    let open = Open {
        asn: 65001,
        my_as: 65001,
        hold_time: 0,
        router_id: Ipv4Addr::new(10, 0, 0, 1),
        caps: Capabilities::default(),
    };
    let msg = encode_open(&open);
    assert_eq!(msg.len(), 29);
    assert_eq!(decode_open(&msg[HEADER_LEN..]).unwrap(), open);
}

#[test]
fn open_large_asn_uses_as_trans() {
    let mut open = full_open();
    open.caps.as4 = None; // encoder adds the capability anyway
    let msg = encode_open(&open);
    assert_eq!(&msg[20..22], &(AS_TRANS as u16).to_be_bytes());
    let back = decode_open(&msg[HEADER_LEN..]).unwrap();
    assert_eq!(back.asn, 4_200_000_001);
    assert_eq!(back.my_as, AS_TRANS as u16);
}

#[test]
fn open_hand_written_bytes() {
    // version 4, AS 65001, hold 180, id 1.1.1.1, one Capabilities param with
    // MP IPv6 unicast, route refresh (old Cisco code 128), AS4 65001.
    let body = [
        4, 0xfd, 0xe9, 0, 180, 1, 1, 1, 1, 16, 2, 14, 1, 4, 0, 2, 0, 1, 128, 0, 65, 4, 0, 0, 0xfd,
        0xe9,
    ];
    let o = decode_open(&body).unwrap();
    assert_eq!(o.asn, 65001);
    assert_eq!(o.hold_time, 180);
    assert_eq!(o.caps.multiprotocol, vec![Afi::Ipv6]);
    assert!(o.caps.route_refresh);
    assert_eq!(o.caps.as4, Some(65001));
}

#[test]
fn open_non_unicast_mp_goes_to_other() {
    // MP AFI 1 SAFI 128 (VPN).
    let body = [4, 0, 1, 0, 90, 1, 1, 1, 1, 8, 2, 6, 1, 4, 0, 1, 0, 128];
    let o = decode_open(&body).unwrap();
    assert!(o.caps.multiprotocol.is_empty());
    assert_eq!(o.caps.other, vec![(1, vec![0, 1, 0, 128])]);
}

#[test]
fn open_rfc9072_extended_optional_parameters() {
    // Many unknown capabilities force the extended encoding; check both ways.
    let mut open = full_open();
    for i in 0..40u8 {
        open.caps.other.push((200, vec![i; 6]));
    }
    let msg = encode_open(&open);
    assert_eq!(msg[28], 255);
    assert_eq!(msg[29], 255);
    assert_eq!(decode_open(&msg[HEADER_LEN..]).unwrap(), open);

    // Hand-written: ext length 9, one param type 2 with 2-byte length 6, AS4 cap.
    let body = [
        4, 0, 1, 0, 90, 1, 1, 1, 1, 255, 255, 0, 9, 2, 0, 6, 65, 4, 0, 1, 0, 0,
    ];
    let o = decode_open(&body).unwrap();
    assert_eq!(o.asn, 65536);
}

#[test]
fn open_errors() {
    let ok = [4u8, 0, 1, 0, 90, 1, 1, 1, 1, 0];
    assert!(decode_open(&ok).is_ok());
    let sub = |b: &[u8]| {
        let e = decode_open(b).unwrap_err();
        (e.code, e.subcode)
    };
    let mut v3 = ok;
    v3[0] = 3;
    let e = decode_open(&v3).unwrap_err();
    assert_eq!((e.code, e.subcode, e.data), (2, 1, vec![0, 4]));
    for hold in [1u8, 2] {
        let mut b = ok;
        b[4] = hold;
        assert_eq!(sub(&b), (2, 6));
    }
    let mut b = ok;
    b[4] = 3;
    assert!(decode_open(&b).is_ok());
    let mut b = ok;
    b[5..9].copy_from_slice(&[0, 0, 0, 0]);
    assert_eq!(sub(&b), (2, 3));
    // Authentication parameter (type 1): unsupported.
    assert_eq!(sub(&[4, 0, 1, 0, 90, 1, 1, 1, 1, 3, 1, 1, 0]), (2, 4));
    // Parameter length mismatch / overrun / capability overrun.
    assert_eq!(sub(&[4, 0, 1, 0, 90, 1, 1, 1, 1, 3, 2, 0]), (2, 0));
    assert_eq!(sub(&[4, 0, 1, 0, 90, 1, 1, 1, 1, 2, 2, 5]), (2, 0));
    assert_eq!(sub(&[4, 0, 1, 0, 90, 1, 1, 1, 1, 4, 2, 2, 65, 4]), (2, 0));
    // AS4 capability of the wrong length.
    assert_eq!(
        sub(&[4, 0, 1, 0, 90, 1, 1, 1, 1, 5, 2, 3, 65, 1, 0]),
        (2, 0)
    );
    // Truncated RFC 9072 header.
    assert_eq!(sub(&[4, 0, 1, 0, 90, 1, 1, 1, 1, 255, 255, 0]), (2, 0));
    assert_eq!(sub(&[4, 0, 1]), (1, 2));
}

#[test]
fn check_peer_as_bad_peer_as() {
    let o = full_open();
    assert!(check_peer_as(&o, 4_200_000_001).is_ok());
    let e = check_peer_as(&o, 65000).unwrap_err();
    assert_eq!((e.code, e.subcode), (2, 2));
}

#[test]
fn keepalive_bytes() {
    let k = encode_keepalive();
    assert_eq!(k.len(), 19);
    assert_eq!(check_header(&k, MAX_MSG_LEN).unwrap(), (msg::KEEPALIVE, 19));
}

#[test]
fn notification_round_trip() {
    let n = Notification {
        code: 6,
        subcode: 2,
        data: b"\x05bye!".to_vec(),
    };
    let m = encode_notification(&n);
    assert_eq!(check_header(&m, MAX_MSG_LEN).unwrap(), (3, m.len()));
    assert_eq!(decode_notification(&m[HEADER_LEN..]), n);
    assert_eq!(
        decode_notification(&[4]),
        Notification {
            code: 0,
            subcode: 0,
            data: vec![]
        }
    );
    let big = Notification {
        code: 3,
        subcode: 1,
        data: vec![0; 10_000],
    };
    assert_eq!(encode_notification(&big).len(), MAX_MSG_LEN);
    let e = WireError::new(3, 11, vec![1], "x");
    assert_eq!(e.notification().subcode, 11);
}

#[test]
fn route_refresh_round_trip() {
    for afi in Afi::ALL {
        let m = encode_route_refresh(afi);
        assert_eq!(check_header(&m, MAX_MSG_LEN).unwrap(), (5, 23));
        assert_eq!(decode_route_refresh(&m[HEADER_LEN..]).unwrap(), Some(afi));
    }
    assert_eq!(decode_route_refresh(&[0, 1, 0, 128]).unwrap(), None);
    assert_eq!(decode_route_refresh(&[0, 25, 0, 1]).unwrap(), None);
    assert_eq!(decode_route_refresh(&[0, 1, 1, 1]).unwrap(), None); // BoRR
    let e = decode_route_refresh(&[0, 1, 0, 1, 9]).unwrap_err();
    assert_eq!((e.code, e.subcode), (7, 1));
    assert_eq!(e.data.len(), 24); // the complete message (RFC 7313 §5)
}

#[test]
fn notification_names() {
    assert_eq!(notification_name(6, 4), "Cease/Administrative Reset");
    assert_eq!(notification_name(4, 0), "Hold Timer Expired");
    assert_eq!(
        notification_name(3, 11),
        "UPDATE Message Error/Malformed AS_PATH"
    );
    assert_eq!(
        notification_name(1, 1),
        "Message Header Error/Connection Not Synchronized"
    );
    assert_eq!(notification_name(6, 77), "Cease/subcode 77");
    assert_eq!(notification_name(42, 1), "Unknown error 42/1");
}
