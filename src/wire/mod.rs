//! BGP wire format: framing, OPEN and capabilities, UPDATE validation and
//! decoding (RFC 4271, 4760, 6793, 7606, 8654), UPDATE encoding for export,
//! NOTIFICATION, KEEPALIVE and ROUTE-REFRESH.
//!
//! Pure functions over byte slices: no sockets, no state. Every byte a peer
//! sends passes through [`check_header`] and then the decoder for its type;
//! errors carry the NOTIFICATION code/subcode/data to send (one-to-one).
//! Talks to nobody; `session` calls it, `rib` consumes the decoded values.
//!
//! Layout: this file has the shared types, framing (`check_header`),
//! KEEPALIVE/NOTIFICATION/ROUTE-REFRESH; `open` has OPEN and capabilities;
//! `update` validates and decodes UPDATEs (see its docs for the NOTIFICATION
//! mapping); `encode` builds UPDATEs for export.

use std::net::{IpAddr, Ipv4Addr};

use crate::types::{Afi, RouteChange};
use iana::safi;

mod encode;
pub mod iana;
mod open;
mod update;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod update_tests;

pub use encode::{
    encode_announce, encode_end_of_rib, encode_withdraw, try_encode_announce, EncodeError,
};
pub use open::{decode_open, encode_open};
pub use update::{decode_update, merge_as4_path};

pub use iana::{
    attr, cap, cease, code, community, flag, fsm_err, gr, header_err, msg, open_err,
    route_refresh_err, update_err, AS_TRANS, NO_SUBCODE,
};

pub const HEADER_LEN: usize = 19;
/// Largest message without the extended-message capability (RFC 4271).
pub const MAX_MSG_LEN: usize = 4096;
/// Largest message with the extended-message capability (RFC 8654).
pub const MAX_EXT_MSG_LEN: usize = 65535;

/// A NOTIFICATION message's content.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notification {
    pub code: u8,
    pub subcode: u8,
    pub data: Vec<u8>,
}

/// A wire error that ends the session with a NOTIFICATION.
#[derive(Debug, thiserror::Error)]
#[error("{msg} (NOTIFICATION {code}/{subcode})")]
pub struct WireError {
    pub code: u8,
    pub subcode: u8,
    pub data: Vec<u8>,
    pub msg: String,
}

impl WireError {
    pub fn notification(&self) -> Notification {
        Notification {
            code: self.code,
            subcode: self.subcode,
            data: self.data.clone(),
        }
    }
}

/// Graceful restart capability (RFC 4724, with RFC 8538's N bit).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct GracefulRestartCap {
    pub restart_time: u16,
    /// Restart State (R): the sender restarted (RFC 4724 §4.1).
    pub restarting: bool,
    /// Graceful Notification (N, RFC 8538 §2).
    pub notification: bool,
    /// Families with their Forwarding State bit.
    pub afis: Vec<(Afi, bool)>,
}

/// Capabilities carried in an OPEN (RFC 5492).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Capabilities {
    /// Multiprotocol unicast families (RFC 4760).
    pub multiprotocol: Vec<Afi>,
    /// 4-octet ASN (RFC 6793).
    pub as4: Option<u32>,
    pub route_refresh: bool,
    /// Extended messages (RFC 8654).
    pub extended_message: bool,
    pub graceful_restart: Option<GracefulRestartCap>,
    /// Any capability we do not interpret: (code, value).
    pub other: Vec<(u8, Vec<u8>)>,
}

/// An OPEN message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Open {
    /// The speaker's ASN: the 4-octet capability's value if present, else `my_as`.
    pub asn: u32,
    /// The 2-octet My Autonomous System field as sent (AS_TRANS for large ASNs).
    pub my_as: u16,
    pub hold_time: u16,
    pub router_id: Ipv4Addr,
    pub caps: Capabilities,
}

/// What the decoder needs to know about the session.
#[derive(Clone, Debug)]
pub struct UpdateCtx {
    /// Both sides announced the 4-octet ASN capability.
    pub as4: bool,
    /// The peer's ASN differs from ours.
    pub ebgp: bool,
    pub peer_as: u32,
    pub local_as: u32,
    /// Our own address on this session (a next hop equal to it is invalid).
    pub local_addr: Option<IpAddr>,
    /// Families negotiated for this session, indexed by `Afi::index()`.
    pub afis: [bool; 2],
}

/// One UPDATE after validation, per family.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DecodedUpdate {
    pub v4: RouteChange,
    pub v6: RouteChange,
    /// This UPDATE is an End-of-RIB marker (RFC 4724 §2) for the family.
    pub end_of_rib: Option<Afi>,
    /// RFC 7606 actions taken (treat-as-withdraw, attribute discard), for logging.
    pub warnings: Vec<String>,
    /// RFC 7606 §2 treat-as-withdraw was applied to this UPDATE.
    pub treat_as_withdraw: bool,
    /// Path attributes discarded (RFC 7606 §2 attribute discard).
    pub attributes_discarded: u32,
}

/// How to encode for one session.
#[derive(Clone, Debug)]
pub struct EncodeCtx {
    /// The peer announced the 4-octet ASN capability (else AS_TRANS + AS4_PATH).
    pub as4: bool,
    /// Largest message to build (MAX_MSG_LEN, or MAX_EXT_MSG_LEN when negotiated).
    pub max_len: usize,
}

impl WireError {
    pub fn new(code: u8, subcode: u8, data: Vec<u8>, msg: impl Into<String>) -> WireError {
        WireError {
            code,
            subcode,
            data,
            msg: msg.into(),
        }
    }
}

/// Minimum total length of each message type (RFC 4271 §4, RFC 2918).
fn min_len(ty: u8) -> Option<usize> {
    match ty {
        msg::OPEN => Some(29),
        msg::UPDATE => Some(23),
        msg::NOTIFICATION => Some(21),
        msg::KEEPALIVE => Some(19),
        msg::ROUTE_REFRESH => Some(23),
        _ => None,
    }
}

/// Write a message header with a placeholder length; returns its offset for [`finish_msg`].
pub(crate) fn start_msg(out: &mut Vec<u8>, ty: u8) -> usize {
    let start = out.len();
    out.extend_from_slice(&[0xff; 16]);
    out.extend_from_slice(&[0, 0, ty]);
    start
}

/// Patch the length of the message started at `start`.
pub(crate) fn finish_msg(out: &mut [u8], start: usize) {
    let len = (out.len() - start) as u16;
    out[start + 16..start + 18].copy_from_slice(&len.to_be_bytes());
}

/// Check a message header at the start of `buf` (at least HEADER_LEN bytes):
/// marker, length within [19, max_len] and the minimum for its type, known type.
/// Returns (type, total message length).
///
/// Errors: marker not all ones -> 1/1 Connection Not Synchronized; length out of
/// range or below the type's minimum (KEEPALIVE: exactly 19) -> 1/2 Bad Message
/// Length with the length field as data; unknown type -> 1/3 Bad Message Type
/// with the type as data (RFC 4271 §6.1). A `buf` shorter than a header gives 1/2.
pub fn check_header(buf: &[u8], max_len: usize) -> Result<(u8, usize), WireError> {
    let Some(hdr) = buf.get(..HEADER_LEN) else {
        return Err(WireError::new(
            code::MSG_HEADER,
            header_err::BAD_MESSAGE_LENGTH,
            Vec::new(),
            format!("truncated message header ({} bytes)", buf.len()),
        ));
    };
    if hdr[..16].iter().any(|&b| b != 0xff) {
        return Err(WireError::new(
            code::MSG_HEADER,
            header_err::CONNECTION_NOT_SYNCHRONIZED,
            Vec::new(),
            "message header marker is not all ones",
        ));
    }
    let len_field = [hdr[16], hdr[17]];
    let len = u16::from_be_bytes(len_field) as usize;
    let ty = hdr[18];
    let bad_len = |why: &str| {
        WireError::new(
            code::MSG_HEADER,
            header_err::BAD_MESSAGE_LENGTH,
            len_field.to_vec(),
            format!("bad message length {len} for type {ty}: {why}"),
        )
    };
    if len < HEADER_LEN || len > max_len.min(MAX_EXT_MSG_LEN) {
        return Err(bad_len("outside [19, max]"));
    }
    let Some(min) = min_len(ty) else {
        return Err(WireError::new(
            code::MSG_HEADER,
            header_err::BAD_MESSAGE_TYPE,
            vec![ty],
            format!("bad message type {ty}"),
        ));
    };
    if len < min || (ty == msg::KEEPALIVE && len != HEADER_LEN) {
        return Err(bad_len("below the type's minimum"));
    }
    Ok((ty, len))
}

pub fn encode_keepalive() -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN);
    let s = start_msg(&mut out, msg::KEEPALIVE);
    finish_msg(&mut out, s);
    out
}

/// Encode a NOTIFICATION. Data beyond what fits in a 4096-byte message is cut.
pub fn encode_notification(n: &Notification) -> Vec<u8> {
    let data = &n.data[..n.data.len().min(MAX_MSG_LEN - 21)];
    let mut out = Vec::with_capacity(21 + data.len());
    let s = start_msg(&mut out, msg::NOTIFICATION);
    out.push(n.code);
    out.push(n.subcode);
    out.extend_from_slice(data);
    finish_msg(&mut out, s);
    out
}

/// Decode a NOTIFICATION body. Never fails: a short body gives code/subcode 0.
pub fn decode_notification(body: &[u8]) -> Notification {
    match body {
        [c, s, data @ ..] => Notification {
            code: *c,
            subcode: *s,
            data: data.to_vec(),
        },
        _ => Notification {
            code: 0,
            subcode: 0,
            data: Vec::new(),
        },
    }
}

/// ROUTE-REFRESH for a unicast family (RFC 2918; subtype 0 = normal request, RFC 7313).
pub fn encode_route_refresh(afi: Afi) -> Vec<u8> {
    let mut out = Vec::with_capacity(23);
    let s = start_msg(&mut out, msg::ROUTE_REFRESH);
    out.extend_from_slice(&afi.code().to_be_bytes());
    out.push(0);
    out.push(1);
    finish_msg(&mut out, s);
    out
}

/// Decode a ROUTE-REFRESH body: the requested family, `None` for one we do not support.
///
/// A body that is not exactly 4 bytes -> 7/1 Invalid Message Length with the
/// complete message as data (RFC 7313 §5). Subtypes 1/2 (BoRR/EoRR, enhanced
/// route refresh, which we do not announce) and unknown subtypes give `None`.
pub fn decode_route_refresh(body: &[u8]) -> Result<Option<Afi>, WireError> {
    let [a0, a1, subtype, safi_byte] = *body else {
        let mut data = Vec::with_capacity(HEADER_LEN + body.len());
        let s = start_msg(&mut data, msg::ROUTE_REFRESH);
        data.extend_from_slice(&body[..body.len().min(MAX_EXT_MSG_LEN - HEADER_LEN)]);
        finish_msg(&mut data, s);
        return Err(WireError::new(
            code::ROUTE_REFRESH,
            route_refresh_err::INVALID_MESSAGE_LENGTH,
            data,
            format!("ROUTE-REFRESH body of {} bytes, expected 4", body.len()),
        ));
    };
    if subtype != 0 || safi_byte != safi::UNICAST {
        return Ok(None);
    }
    Ok(Afi::from_code(u16::from_be_bytes([a0, a1])))
}

/// Whether a NOTIFICATION is a Cease/Hard Reset (RFC 8538 §3).
pub fn is_hard_reset(n: &Notification) -> bool {
    n.code == code::CEASE && n.subcode == cease::HARD_RESET
}

/// `inner` wrapped as a Cease/Hard Reset (RFC 8538 §3): the data is the inner
/// error code, its subcode, then its data.
pub fn hard_reset(inner: &Notification) -> Notification {
    let mut data = Vec::with_capacity(2 + inner.data.len());
    data.push(inner.code);
    data.push(inner.subcode);
    data.extend_from_slice(&inner.data);
    Notification {
        code: code::CEASE,
        subcode: cease::HARD_RESET,
        data,
    }
}

/// Bad Peer AS (2/2) unless the OPEN's ASN is `expected` (for the session engine).
pub fn check_peer_as(open: &Open, expected: u32) -> Result<(), WireError> {
    if open.asn == expected {
        Ok(())
    } else {
        Err(WireError::new(
            code::OPEN,
            open_err::BAD_PEER_AS,
            open.my_as.to_be_bytes().to_vec(),
            format!("bad peer AS {}, expected {expected}", open.asn),
        ))
    }
}

/// Human-readable name of a NOTIFICATION code/subcode, for logs and `sparrowctl peers`.
///
/// `"Cease/Administrative Reset"`, `"Hold Timer Expired"`,
/// `"UPDATE Message Error/Malformed AS_PATH"`; unknown values are shown as numbers.
pub fn notification_name(code: u8, subcode: u8) -> String {
    let Some(name) = iana::code::name(code) else {
        return format!("Unknown error {code}/{subcode}");
    };
    if subcode == NO_SUBCODE {
        return name.to_string();
    }
    let sub = match code {
        code::MSG_HEADER => header_err::name(subcode),
        code::OPEN => open_err::name(subcode),
        code::UPDATE => update_err::name(subcode),
        code::FSM => fsm_err::name(subcode),
        code::CEASE => cease::name(subcode),
        code::ROUTE_REFRESH => route_refresh_err::name(subcode),
        _ => None,
    };
    match sub {
        Some(sub) => format!("{name}/{sub}"),
        None => format!("{name}/subcode {subcode}"),
    }
}
