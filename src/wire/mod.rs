//! BGP wire format: framing, OPEN and capabilities, UPDATE validation and
//! decoding (RFC 4271, 4760, 6793, 7606, 8654), UPDATE encoding for export,
//! NOTIFICATION, KEEPALIVE and ROUTE-REFRESH.
//!
//! Pure functions over byte slices: no sockets, no state. Every byte a peer
//! sends passes through [`check_header`] and then the decoder for its type;
//! errors carry the NOTIFICATION code/subcode/data to send (one-to-one).
//! Talks to nobody; `session` calls it, `rib` consumes the decoded values.

use std::net::{IpAddr, Ipv4Addr};

use crate::types::{Afi, PathAttrs, Prefix, RouteChange};

pub const HEADER_LEN: usize = 19;
/// Largest message without the extended-message capability (RFC 4271).
pub const MAX_MSG_LEN: usize = 4096;
/// Largest message with the extended-message capability (RFC 8654).
pub const MAX_EXT_MSG_LEN: usize = 65535;
/// AS_TRANS (RFC 6793).
pub const AS_TRANS: u32 = 23456;

pub const MSG_OPEN: u8 = 1;
pub const MSG_UPDATE: u8 = 2;
pub const MSG_NOTIFICATION: u8 = 3;
pub const MSG_KEEPALIVE: u8 = 4;
pub const MSG_ROUTE_REFRESH: u8 = 5;

/// NOTIFICATION error codes (RFC 4271 §4.5).
pub mod code {
    pub const MSG_HEADER: u8 = 1;
    pub const OPEN: u8 = 2;
    pub const UPDATE: u8 = 3;
    pub const HOLD_TIMER: u8 = 4;
    pub const FSM: u8 = 5;
    pub const CEASE: u8 = 6;
    pub const ROUTE_REFRESH: u8 = 7;
}

/// Cease subcodes (RFC 4486).
pub mod cease {
    pub const MAX_PREFIX: u8 = 1;
    pub const ADMIN_SHUTDOWN: u8 = 2;
    pub const PEER_DECONFIGURED: u8 = 3;
    pub const ADMIN_RESET: u8 = 4;
    pub const CONNECTION_REJECTED: u8 = 5;
    pub const OTHER_CONFIG_CHANGE: u8 = 6;
    pub const COLLISION: u8 = 7;
    pub const OUT_OF_RESOURCES: u8 = 8;
}

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

/// Graceful restart capability (RFC 4724).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct GracefulRestartCap {
    pub restart_time: u16,
    pub restarting: bool,
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
}

/// How to encode for one session.
#[derive(Clone, Debug)]
pub struct EncodeCtx {
    /// The peer announced the 4-octet ASN capability (else AS_TRANS + AS4_PATH).
    pub as4: bool,
    /// Largest message to build (MAX_MSG_LEN, or MAX_EXT_MSG_LEN when negotiated).
    pub max_len: usize,
}

/// Check a message header at the start of `buf` (at least HEADER_LEN bytes):
/// marker, length within [19, max_len] and the minimum for its type, known type.
/// Returns (type, total message length).
pub fn check_header(buf: &[u8], max_len: usize) -> Result<(u8, usize), WireError> {
    let _ = (buf, max_len);
    todo!()
}

pub fn encode_open(open: &Open) -> Vec<u8> {
    let _ = open;
    todo!()
}

/// Decode an OPEN body (after the header). Checks version 4, hold time 0 or >= 3,
/// BGP identifier not 0, optional parameter framing (RFC 9072 extended lengths too).
pub fn decode_open(body: &[u8]) -> Result<Open, WireError> {
    let _ = body;
    todo!()
}

/// Validate and decode an UPDATE body (after the header) per RFC 4271/4760/6793/7606.
/// `Err` means the session must be reset with `err.notification()`; RFC 7606
/// treat-as-withdraw and attribute-discard are applied inside and reported in `warnings`.
pub fn decode_update(body: &[u8], ctx: &UpdateCtx) -> Result<DecodedUpdate, WireError> {
    let _ = (body, ctx);
    todo!()
}

/// Encode announcements of `prefixes` (all of family `afi`) with `attrs` as complete
/// UPDATE messages, each at most `ctx.max_len` bytes, appended to `out`.
/// IPv4 uses the NLRI field and NEXT_HOP; IPv6 uses MP_REACH_NLRI.
pub fn encode_announce(
    ctx: &EncodeCtx,
    afi: Afi,
    prefixes: &[Prefix],
    attrs: &PathAttrs,
    out: &mut Vec<u8>,
) {
    let _ = (ctx, afi, prefixes, attrs, out);
    todo!()
}

/// Encode withdrawals of `prefixes` (all of family `afi`) as complete UPDATEs appended to `out`.
pub fn encode_withdraw(ctx: &EncodeCtx, afi: Afi, prefixes: &[Prefix], out: &mut Vec<u8>) {
    let _ = (ctx, afi, prefixes, out);
    todo!()
}

/// End-of-RIB marker for a family (RFC 4724 §2).
pub fn encode_end_of_rib(afi: Afi) -> Vec<u8> {
    let _ = afi;
    todo!()
}

pub fn encode_keepalive() -> Vec<u8> {
    todo!()
}

pub fn encode_notification(n: &Notification) -> Vec<u8> {
    let _ = n;
    todo!()
}

/// Decode a NOTIFICATION body. Never fails: a short body gives code/subcode 0.
pub fn decode_notification(body: &[u8]) -> Notification {
    let _ = body;
    todo!()
}

pub fn encode_route_refresh(afi: Afi) -> Vec<u8> {
    let _ = afi;
    todo!()
}

/// Decode a ROUTE-REFRESH body: the requested family, `None` for one we do not support.
pub fn decode_route_refresh(body: &[u8]) -> Result<Option<Afi>, WireError> {
    let _ = body;
    todo!()
}

/// Human-readable name of a NOTIFICATION code/subcode, for logs and `sparrowctl peers`.
pub fn notification_name(code: u8, subcode: u8) -> String {
    format!("{code}/{subcode}")
}
