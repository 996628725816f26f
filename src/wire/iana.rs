//! Protocol numbers by name (the IANA BGP registries): message types,
//! NOTIFICATION codes and subcodes, path attribute types and flags, capability
//! codes, AFI/SAFI and AS_TRANS. Every other module names these instead of
//! writing the number.

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

/// The subcode of an error code that has none (Hold Timer Expired) or an
/// unspecific one (RFC 4271 §4.5).
pub const NO_SUBCODE: u8 = 0;

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

/// Message Header Error subcodes (RFC 4271 §6.1).
pub mod header_err {
    pub const CONNECTION_NOT_SYNCHRONIZED: u8 = 1;
    pub const BAD_MESSAGE_LENGTH: u8 = 2;
    pub const BAD_MESSAGE_TYPE: u8 = 3;
}

/// Finite State Machine Error subcodes (RFC 6608).
pub mod fsm_err {
    pub const UNSPECIFIED: u8 = 0;
    pub const IN_OPENSENT: u8 = 1;
    pub const IN_OPENCONFIRM: u8 = 2;
    pub const IN_ESTABLISHED: u8 = 3;
}

/// ROUTE-REFRESH Message Error subcodes (RFC 7313).
pub mod route_refresh_err {
    pub const INVALID_MESSAGE_LENGTH: u8 = 1;
}

/// Address Family Identifiers (IANA).
pub mod afi {
    pub const IPV4: u16 = 1;
    pub const IPV6: u16 = 2;
}

/// Subsequent Address Family Identifiers (IANA).
pub mod safi {
    pub const UNICAST: u8 = 1;
}

/// Path attribute type codes we interpret.
pub mod attr {
    pub const ORIGIN: u8 = 1;
    pub const AS_PATH: u8 = 2;
    pub const NEXT_HOP: u8 = 3;
    pub const MED: u8 = 4;
    pub const LOCAL_PREF: u8 = 5;
    pub const ATOMIC_AGGREGATE: u8 = 6;
    pub const AGGREGATOR: u8 = 7;
    pub const COMMUNITIES: u8 = 8;
    pub const ORIGINATOR_ID: u8 = 9;
    pub const CLUSTER_LIST: u8 = 10;
    pub const MP_REACH_NLRI: u8 = 14;
    pub const MP_UNREACH_NLRI: u8 = 15;
    pub const EXT_COMMUNITIES: u8 = 16;
    pub const AS4_PATH: u8 = 17;
    pub const AS4_AGGREGATOR: u8 = 18;
    pub const LARGE_COMMUNITIES: u8 = 32;

    /// Whether the codec decodes/encodes this attribute itself (never kept in
    /// `PathAttrs::other`, never emitted from it).
    pub fn is_native(code: u8) -> bool {
        matches!(code, 1..=10 | 14..=18 | 32)
    }
}

/// Path attribute flag bits (RFC 4271 §4.3).
pub mod flag {
    pub const OPTIONAL: u8 = 0x80;
    pub const TRANSITIVE: u8 = 0x40;
    pub const PARTIAL: u8 = 0x20;
    pub const EXTENDED_LENGTH: u8 = 0x10;
}

/// UPDATE Message Error subcodes (RFC 4271 §6.3).
pub mod update_err {
    pub const MALFORMED_ATTR_LIST: u8 = 1;
    pub const UNRECOGNIZED_WELL_KNOWN: u8 = 2;
    pub const MISSING_WELL_KNOWN: u8 = 3;
    pub const ATTR_FLAGS: u8 = 4;
    pub const ATTR_LENGTH: u8 = 5;
    pub const INVALID_ORIGIN: u8 = 6;
    pub const INVALID_NEXT_HOP: u8 = 8;
    pub const OPTIONAL_ATTR: u8 = 9;
    pub const INVALID_NETWORK_FIELD: u8 = 10;
    pub const MALFORMED_AS_PATH: u8 = 11;
}

/// OPEN Message Error subcodes (RFC 4271 §6.2, RFC 5492).
pub mod open_err {
    pub const UNSPECIFIC: u8 = 0;
    pub const UNSUPPORTED_VERSION: u8 = 1;
    pub const BAD_PEER_AS: u8 = 2;
    pub const BAD_BGP_ID: u8 = 3;
    pub const UNSUPPORTED_OPT_PARAM: u8 = 4;
    pub const UNACCEPTABLE_HOLD_TIME: u8 = 6;
    pub const UNSUPPORTED_CAPABILITY: u8 = 7;
}

/// Capability codes (IANA).
pub mod cap {
    pub const MULTIPROTOCOL: u8 = 1;
    pub const ROUTE_REFRESH: u8 = 2;
    pub const EXTENDED_MESSAGE: u8 = 6;
    pub const GRACEFUL_RESTART: u8 = 64;
    pub const AS4: u8 = 65;
    /// Pre-standard Cisco route refresh code.
    pub const ROUTE_REFRESH_OLD: u8 = 128;
}
