//! OPEN messages and capabilities (RFC 4271 §4.2, RFC 5492, RFC 9072).

use std::net::Ipv4Addr;

use super::iana::{gr as grf, safi};
use super::{
    cap, code, finish_msg, msg, open_err, start_msg, Capabilities, GracefulRestartCap, Open,
    WireError, AS_TRANS, HEADER_LEN,
};
use crate::types::Afi;

/// Optional parameter type: Capabilities (RFC 5492).
const PARAM_CAPABILITIES: u8 = 2;
/// RFC 9072: non-extended length 255 followed by this type marks extended parameters.
const PARAM_EXTENDED: u8 = 255;

fn open_error(subcode: u8, data: Vec<u8>, msg: impl Into<String>) -> WireError {
    WireError::new(code::OPEN, subcode, data, msg)
}

fn put_cap(out: &mut Vec<u8>, code: u8, value: &[u8]) {
    // A capability value is at most 255 bytes; anything longer cannot be encoded.
    let value = &value[..value.len().min(255)];
    out.push(code);
    out.push(value.len() as u8);
    out.extend_from_slice(value);
}

/// Encode a complete OPEN message. `my_as` on the wire is `open.asn`, or AS_TRANS
/// when it does not fit in 2 octets (then the 4-octet AS capability is always sent).
/// Capabilities go in one Capabilities parameter; if they exceed 255 bytes the
/// RFC 9072 extended optional parameters encoding is used.
pub fn encode_open(open: &Open) -> Vec<u8> {
    let caps = &open.caps;
    let mut c = Vec::with_capacity(64);
    for afi in &caps.multiprotocol {
        let a = afi.code().to_be_bytes();
        put_cap(&mut c, cap::MULTIPROTOCOL, &[a[0], a[1], 0, 1]);
    }
    if caps.route_refresh {
        put_cap(&mut c, cap::ROUTE_REFRESH, &[]);
    }
    if caps.extended_message {
        put_cap(&mut c, cap::EXTENDED_MESSAGE, &[]);
    }
    if let Some(gr) = &caps.graceful_restart {
        let mut v = Vec::with_capacity(2 + 4 * gr.afis.len());
        let mut hdr = gr.restart_time & grf::TIME_MASK;
        if gr.restarting {
            hdr |= grf::RESTART_STATE;
        }
        if gr.notification {
            hdr |= grf::NOTIFICATION;
        }
        v.extend_from_slice(&hdr.to_be_bytes());
        for (afi, fwd) in &gr.afis {
            v.extend_from_slice(&afi.code().to_be_bytes());
            v.push(safi::UNICAST);
            v.push(if *fwd { grf::FORWARDING } else { 0 });
        }
        put_cap(&mut c, cap::GRACEFUL_RESTART, &v);
    }
    let as4 = caps.as4.or((open.asn > 0xffff).then_some(open.asn));
    if let Some(asn) = as4 {
        put_cap(&mut c, cap::AS4, &asn.to_be_bytes());
    }
    for (code, value) in &caps.other {
        put_cap(&mut c, *code, value);
    }

    let my_as = u16::try_from(open.asn).unwrap_or(AS_TRANS as u16);
    let mut out = Vec::with_capacity(HEADER_LEN + 10 + 6 + c.len());
    let s = start_msg(&mut out, msg::OPEN);
    out.push(4);
    out.extend_from_slice(&my_as.to_be_bytes());
    out.extend_from_slice(&open.hold_time.to_be_bytes());
    out.extend_from_slice(&open.router_id.octets());
    if c.is_empty() {
        out.push(0);
    } else if c.len() <= 253 {
        out.push(c.len() as u8 + 2);
        out.push(PARAM_CAPABILITIES);
        out.push(c.len() as u8);
        out.extend_from_slice(&c);
    } else {
        // RFC 9072: 255, 255, extended length (2), then type (1) + length (2) params.
        let c = &c[..c.len().min(u16::MAX as usize - 3)];
        out.push(255);
        out.push(PARAM_EXTENDED);
        out.extend_from_slice(&(c.len() as u16 + 3).to_be_bytes());
        out.push(PARAM_CAPABILITIES);
        out.extend_from_slice(&(c.len() as u16).to_be_bytes());
        out.extend_from_slice(c);
    }
    finish_msg(&mut out, s);
    out
}

/// Decode an OPEN body (after the header). Checks version 4, hold time 0 or >= 3,
/// BGP identifier not 0, optional parameter framing (RFC 9072 extended lengths too).
///
/// Errors: version != 4 -> 2/1 with data 0x0004 (the version we support);
/// hold time 1 or 2 -> 2/6; identifier 0 -> 2/3; an optional parameter other than
/// Capabilities -> 2/4 Unsupported Optional Parameter; any framing problem
/// (parameters or capabilities overrunning, a known capability with a bad
/// length) -> 2/0; a body shorter than 10 bytes -> 1/2 Bad Message Length.
/// Peer AS checks are left to the session ([`super::check_peer_as`]).
pub fn decode_open(body: &[u8]) -> Result<Open, WireError> {
    if body.len() < 10 {
        let len = (body.len() + HEADER_LEN) as u16;
        return Err(WireError::new(
            code::MSG_HEADER,
            2,
            len.to_be_bytes().to_vec(),
            format!("OPEN body of {} bytes", body.len()),
        ));
    }
    let version = body[0];
    if version != 4 {
        return Err(open_error(
            open_err::UNSUPPORTED_VERSION,
            vec![0, 4],
            format!("unsupported BGP version {version}"),
        ));
    }
    let my_as = u16::from_be_bytes([body[1], body[2]]);
    let hold_time = u16::from_be_bytes([body[3], body[4]]);
    if hold_time == 1 || hold_time == 2 {
        return Err(open_error(
            open_err::UNACCEPTABLE_HOLD_TIME,
            Vec::new(),
            format!("unacceptable hold time {hold_time}"),
        ));
    }
    let router_id = Ipv4Addr::new(body[5], body[6], body[7], body[8]);
    if router_id.is_unspecified() {
        return Err(open_error(
            open_err::BAD_BGP_ID,
            Vec::new(),
            "BGP identifier 0.0.0.0",
        ));
    }
    let opt_len = body[9] as usize;
    let rest = &body[10..];
    let malformed = |why: &str| open_error(open_err::UNSPECIFIC, Vec::new(), why.to_string());

    // RFC 9072: a non-extended length of 255 with a first parameter type of 255
    // means a 2-byte extended length follows and parameters use 2-byte lengths.
    let (params, params_len, ext_format) =
        if opt_len == 255 && rest.first() == Some(&PARAM_EXTENDED) {
            if rest.len() < 3 {
                return Err(malformed("truncated extended optional parameters length"));
            }
            let n = u16::from_be_bytes([rest[1], rest[2]]) as usize;
            (&rest[3..], n, true)
        } else {
            (rest, opt_len, false)
        };
    if params.len() != params_len {
        return Err(malformed(
            "optional parameters length does not match the message",
        ));
    }

    let mut caps = Capabilities::default();
    let mut p = params;
    while !p.is_empty() {
        let hdr = if ext_format { 3 } else { 2 };
        if p.len() < hdr {
            return Err(malformed("truncated optional parameter header"));
        }
        let ty = p[0];
        let len = if ext_format {
            u16::from_be_bytes([p[1], p[2]]) as usize
        } else {
            p[1] as usize
        };
        let Some(value) = p.get(hdr..hdr + len) else {
            return Err(malformed("optional parameter overruns the parameters"));
        };
        p = &p[hdr + len..];
        if ty != PARAM_CAPABILITIES {
            return Err(open_error(
                open_err::UNSUPPORTED_OPT_PARAM,
                Vec::new(),
                format!("unsupported optional parameter type {ty}"),
            ));
        }
        decode_caps(value, &mut caps)?;
    }

    let asn = caps.as4.unwrap_or(my_as as u32);
    Ok(Open {
        asn,
        my_as,
        hold_time,
        router_id,
        caps,
    })
}

fn decode_caps(mut v: &[u8], caps: &mut Capabilities) -> Result<(), WireError> {
    while !v.is_empty() {
        let [code, len, rest @ ..] = v else {
            return Err(open_error(
                open_err::UNSPECIFIC,
                Vec::new(),
                "truncated capability header",
            ));
        };
        let (code, len) = (*code, *len as usize);
        let Some(value) = rest.get(..len) else {
            return Err(open_error(
                open_err::UNSPECIFIC,
                Vec::new(),
                format!("capability {code} overruns its parameter"),
            ));
        };
        v = &rest[len..];
        let bad = || {
            open_error(
                open_err::UNSPECIFIC,
                Vec::new(),
                format!("malformed capability {code} (length {len})"),
            )
        };
        match code {
            cap::MULTIPROTOCOL => {
                let [a0, a1, _, safi_byte] = *value else {
                    return Err(bad());
                };
                match (Afi::from_code(u16::from_be_bytes([a0, a1])), safi_byte) {
                    (Some(afi), safi::UNICAST) => {
                        if !caps.multiprotocol.contains(&afi) {
                            caps.multiprotocol.push(afi);
                        }
                    }
                    _ => caps.other.push((code, value.to_vec())),
                }
            }
            cap::ROUTE_REFRESH | cap::ROUTE_REFRESH_OLD => {
                if !value.is_empty() {
                    return Err(bad());
                }
                caps.route_refresh = true;
            }
            cap::EXTENDED_MESSAGE => {
                if !value.is_empty() {
                    return Err(bad());
                }
                caps.extended_message = true;
            }
            cap::GRACEFUL_RESTART => {
                if value.len() < 2 || (value.len() - 2) % 4 != 0 {
                    return Err(bad());
                }
                let hdr = u16::from_be_bytes([value[0], value[1]]);
                let mut gr = GracefulRestartCap {
                    restart_time: hdr & grf::TIME_MASK,
                    restarting: hdr & grf::RESTART_STATE != 0,
                    notification: hdr & grf::NOTIFICATION != 0,
                    afis: Vec::new(),
                };
                for t in value[2..].chunks_exact(4) {
                    let afi = Afi::from_code(u16::from_be_bytes([t[0], t[1]]));
                    if let (Some(afi), safi::UNICAST) = (afi, t[2]) {
                        gr.afis.push((afi, t[3] & grf::FORWARDING != 0));
                    }
                }
                caps.graceful_restart = Some(gr);
            }
            cap::AS4 => {
                let [a, b, c, d] = *value else {
                    return Err(bad());
                };
                caps.as4 = Some(u32::from_be_bytes([a, b, c, d]));
            }
            _ => caps.other.push((code, value.to_vec())),
        }
    }
    Ok(())
}
