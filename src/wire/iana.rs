//! Protocol numbers by name (the IANA BGP registries): message types,
//! NOTIFICATION codes and subcodes, path attribute types and flags, capability
//! codes, AFI/SAFI and AS_TRANS. Every other module names these instead of
//! writing the number. The NOTIFICATION and path attribute registries also
//! give each number's name (`code::name`, `cease::name`, `attr::name`, ...;
//! `wire::notification_name` joins them), from the same table as the consts.

/// AS_TRANS (RFC 6793).
pub const AS_TRANS: u32 = 23456;

registry! {
    /// BGP message types (RFC 4271 §4.1, RFC 2918).
    pub mod msg: u8 {
        OPEN = 1 => "OPEN",
        UPDATE = 2 => "UPDATE",
        NOTIFICATION = 3 => "NOTIFICATION",
        KEEPALIVE = 4 => "KEEPALIVE",
        ROUTE_REFRESH = 5 => "ROUTE-REFRESH",
    }
}

registry! {
    /// NOTIFICATION error codes (RFC 4271 §4.5, RFC 7313, RFC 9687).
    pub mod code: u8 {
        MSG_HEADER = 1 => "Message Header Error",
        OPEN = 2 => "OPEN Message Error",
        UPDATE = 3 => "UPDATE Message Error",
        HOLD_TIMER = 4 => "Hold Timer Expired",
        FSM = 5 => "Finite State Machine Error",
        CEASE = 6 => "Cease",
        ROUTE_REFRESH = 7 => "ROUTE-REFRESH Message Error",
        SEND_HOLD_TIMER = 8 => "Send Hold Timer Expired",
    }
}

/// The subcode of an error code that has none (Hold Timer Expired) or an
/// unspecific one (RFC 4271 §4.5).
pub const NO_SUBCODE: u8 = 0;

registry! {
    /// Cease subcodes (RFC 4486, RFC 8538, RFC 9384).
    pub mod cease: u8 {
        MAX_PREFIX = 1 => "Maximum Number of Prefixes Reached",
        ADMIN_SHUTDOWN = 2 => "Administrative Shutdown",
        PEER_DECONFIGURED = 3 => "Peer De-configured",
        ADMIN_RESET = 4 => "Administrative Reset",
        CONNECTION_REJECTED = 5 => "Connection Rejected",
        OTHER_CONFIG_CHANGE = 6 => "Other Configuration Change",
        COLLISION = 7 => "Connection Collision Resolution",
        OUT_OF_RESOURCES = 8 => "Out of Resources",
        HARD_RESET = 9 => "Hard Reset",
        BFD_DOWN = 10 => "BFD Down",
    }
}

registry! {
    /// Message Header Error subcodes (RFC 4271 §6.1).
    pub mod header_err: u8 {
        CONNECTION_NOT_SYNCHRONIZED = 1 => "Connection Not Synchronized",
        BAD_MESSAGE_LENGTH = 2 => "Bad Message Length",
        BAD_MESSAGE_TYPE = 3 => "Bad Message Type",
    }
}

registry! {
    /// Finite State Machine Error subcodes (RFC 6608).
    pub mod fsm_err: u8 {
        UNSPECIFIED = 0 => "Unspecified Error",
        IN_OPENSENT = 1 => "Unexpected Message in OpenSent State",
        IN_OPENCONFIRM = 2 => "Unexpected Message in OpenConfirm State",
        IN_ESTABLISHED = 3 => "Unexpected Message in Established State",
    }
}

registry! {
    /// ROUTE-REFRESH Message Error subcodes (RFC 7313).
    pub mod route_refresh_err: u8 {
        INVALID_MESSAGE_LENGTH = 1 => "Invalid Message Length",
    }
}

/// Graceful Restart capability fields (RFC 4724 §3, RFC 8538 §2): flag bits of
/// the 2-octet Restart Flags / Restart Time header and of each family's flags octet.
pub mod gr {
    /// Restart State (R): the sender has restarted.
    pub const RESTART_STATE: u16 = 0x8000;
    /// Graceful Notification (N, RFC 8538): NOTIFICATIONs other than Hard
    /// Reset keep the routes too.
    pub const NOTIFICATION: u16 = 0x4000;
    /// The 12-bit restart time, in seconds.
    pub const TIME_MASK: u16 = 0x0fff;
    /// Per-family Forwarding State (F) bit.
    pub const FORWARDING: u8 = 0x80;
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

registry! {
    /// Path attribute type codes we interpret, with their IANA names.
    pub mod attr: u8 {
        ORIGIN = 1 => "ORIGIN",
        AS_PATH = 2 => "AS_PATH",
        NEXT_HOP = 3 => "NEXT_HOP",
        MED = 4 => "MULTI_EXIT_DISC",
        LOCAL_PREF = 5 => "LOCAL_PREF",
        ATOMIC_AGGREGATE = 6 => "ATOMIC_AGGREGATE",
        AGGREGATOR = 7 => "AGGREGATOR",
        COMMUNITIES = 8 => "COMMUNITIES",
        ORIGINATOR_ID = 9 => "ORIGINATOR_ID",
        CLUSTER_LIST = 10 => "CLUSTER_LIST",
        MP_REACH_NLRI = 14 => "MP_REACH_NLRI",
        MP_UNREACH_NLRI = 15 => "MP_UNREACH_NLRI",
        EXT_COMMUNITIES = 16 => "EXTENDED COMMUNITIES",
        AS4_PATH = 17 => "AS4_PATH",
        AS4_AGGREGATOR = 18 => "AS4_AGGREGATOR",
        LARGE_COMMUNITIES = 32 => "LARGE_COMMUNITY",
        ;
        /// Whether the codec decodes/encodes this attribute itself (one of
        /// the table above: never kept in `PathAttrs::other`, never emitted
        /// from it).
        pub fn is_native(code: u8) -> bool {
            name(code).is_some()
        }
    }
}

/// Path attribute flag bits (RFC 4271 §4.3).
pub mod flag {
    pub const OPTIONAL: u8 = 0x80;
    pub const TRANSITIVE: u8 = 0x40;
    pub const PARTIAL: u8 = 0x20;
    pub const EXTENDED_LENGTH: u8 = 0x10;
}

registry! {
    /// UPDATE Message Error subcodes (RFC 4271 §6.3).
    pub mod update_err: u8 {
        MALFORMED_ATTR_LIST = 1 => "Malformed Attribute List",
        UNRECOGNIZED_WELL_KNOWN = 2 => "Unrecognized Well-known Attribute",
        MISSING_WELL_KNOWN = 3 => "Missing Well-known Attribute",
        ATTR_FLAGS = 4 => "Attribute Flags Error",
        ATTR_LENGTH = 5 => "Attribute Length Error",
        INVALID_ORIGIN = 6 => "Invalid ORIGIN Attribute",
        AS_ROUTING_LOOP = 7 => "AS Routing Loop",
        INVALID_NEXT_HOP = 8 => "Invalid NEXT_HOP Attribute",
        OPTIONAL_ATTR = 9 => "Optional Attribute Error",
        INVALID_NETWORK_FIELD = 10 => "Invalid Network Field",
        MALFORMED_AS_PATH = 11 => "Malformed AS_PATH",
    }
}

registry! {
    /// OPEN Message Error subcodes (RFC 4271 §6.2, RFC 5492, RFC 9234).
    pub mod open_err: u8 {
        UNSPECIFIC = 0 => "Unspecific",
        UNSUPPORTED_VERSION = 1 => "Unsupported Version Number",
        BAD_PEER_AS = 2 => "Bad Peer AS",
        BAD_BGP_ID = 3 => "Bad BGP Identifier",
        UNSUPPORTED_OPT_PARAM = 4 => "Unsupported Optional Parameter",
        AUTH_FAILURE = 5 => "Authentication Failure",
        UNACCEPTABLE_HOLD_TIME = 6 => "Unacceptable Hold Time",
        UNSUPPORTED_CAPABILITY = 7 => "Unsupported Capability",
        ROLE_MISMATCH = 11 => "Role Mismatch",
    }
}

registry! {
    /// Capability codes (IANA "Capability Codes"; RFC 5492).
    pub mod cap: u8 {
        MULTIPROTOCOL = 1 => "Multiprotocol Extensions",
        ROUTE_REFRESH = 2 => "Route Refresh",
        EXTENDED_MESSAGE = 6 => "Extended Message",
        GRACEFUL_RESTART = 64 => "Graceful Restart",
        AS4 = 65 => "4-octet AS Number",
        // Pre-standard Cisco route refresh code.
        ROUTE_REFRESH_OLD = 128 => "Route Refresh (pre-standard)",
    }
}

/// Well-known communities.
pub mod community {
    /// GRACEFUL_SHUTDOWN 65535:0 (RFC 8326): the path is about to go away.
    pub const GRACEFUL_SHUTDOWN: u32 = 0xFFFF_0000;
}
