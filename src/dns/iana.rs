//! DNS protocol numbers by name (the IANA DNS parameter registries, RFC 1035
//! §4.1.1, RFC 6891, RFC 7871): RCODEs (with their names, for logs and
//! counters), classes, header flag bits, the OPT type and EDNS option codes.
//! The request and response code names these instead of writing the number.

registry! {
    /// RCODEs we produce (RFC 1035 §4.1.1; BADVERS needs OPT, RFC 6891 §9).
    pub mod rcode: u16 {
        NOERROR = 0 => "NOERROR",
        FORMERR = 1 => "FORMERR",
        SERVFAIL = 2 => "SERVFAIL",
        NXDOMAIN = 3 => "NXDOMAIN",
        NOTIMP = 4 => "NOTIMP",
        REFUSED = 5 => "REFUSED",
        BADVERS = 16 => "BADVERS",
    }
}

registry! {
    /// Classes we answer or refuse by name.
    pub mod class: u16 {
        IN = 1 => "IN",
        CH = 3 => "CH",
        ANY = 255 => "ANY",
    }
}

/// Header flag bits of the second 16-bit word (RFC 1035 §4.1.1, RFC 4035).
pub mod hflag {
    /// QR: this is a response.
    pub const QR: u16 = 0x8000;
    /// The four OPCODE bits.
    pub const OPCODE_MASK: u16 = 0x7800;
    /// AA: authoritative answer.
    pub const AA: u16 = 0x0400;
    /// TC: truncated.
    pub const TC: u16 = 0x0200;
    /// RD: recursion desired (copied to the response).
    pub const RD: u16 = 0x0100;
    /// CD: checking disabled (copied to the response).
    pub const CD: u16 = 0x0010;
    /// The low four RCODE bits (the rest go in OPT).
    pub const RCODE_MASK: u16 = 0x000F;
}

/// RR type of the OPT pseudo-record (RFC 6891 §6.1.1).
pub const TYPE_OPT: u16 = 41;
/// EDNS option code of Client Subnet (RFC 7871 §6).
pub const ECS_CODE: u16 = 8;
/// The DO bit in the OPT record's TTL flags (RFC 3225), as its high byte.
pub const OPT_DO_BYTE: u8 = 0x80;
