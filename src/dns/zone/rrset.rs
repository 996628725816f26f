//! One RRset in both forms: hickory-proto `Record`s (for `explain` and the
//! tests) and precomputed wire bytes after the owner name (what the reply
//! writer sends, UDP and TCP alike, with a compression pointer in front of
//! each). A set
//! owned by a wildcard (`*.label`) is written with the name it answered
//! (`answer::Resolution::owner`), RFC 4592 §3.3.1.
//!
//! Talks to hickory-proto only.

use hickory_proto::rr::rdata::TXT;
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder, NameEncoding};

use super::name_wire;

/// One RRset, in both forms.
#[derive(Debug)]
pub struct RrSet {
    pub rtype: RecordType,
    /// Lowercase wire form of the owner name.
    pub owner: Box<[u8]>,
    /// The owner is a wildcard: answers name the query instead (RFC 4592).
    pub wildcard: bool,
    /// Lowercase wire form of a CNAME set's target (empty for other types).
    pub target: Box<[u8]>,
    pub records: Vec<Record>,
    /// Per record: TYPE CLASS TTL RDLENGTH RDATA, concatenated.
    pub tails: Box<[u8]>,
    pub count: u16,
    /// Steered sets: per record, its target index among the POP's targets
    /// (`pops::PopState::targets`, the bit in `up_mask`), or [`NO_TARGET`]
    /// (always written). Empty for other sets: every record is written.
    pub targets: Box<[u8]>,
    /// The union of the records' target bits (0: none is a target).
    pub target_mask: u64,
    /// Some record is no target (always written).
    pub untargeted: bool,
}

/// A record that is no health target (past `pops::MAX_TARGETS`).
pub const NO_TARGET: u8 = u8::MAX;

impl RrSet {
    /// Build from records that share owner, type and class.
    pub fn new(records: Vec<Record>) -> Result<RrSet, String> {
        let first = records.first().ok_or("empty RRset")?;
        let rtype = first.record_type();
        let owner = name_wire(&first.name);
        let target = match &first.data {
            RData::CNAME(c) => name_wire(&c.0),
            _ => Vec::new(),
        };
        let mut tails = Vec::new();
        for r in &records {
            let mut rd = Vec::new();
            {
                let mut enc = BinEncoder::new(&mut rd);
                enc.set_name_encoding(NameEncoding::UncompressedLowercase);
                r.data
                    .emit(&mut enc)
                    .map_err(|e| format!("cannot encode {rtype} data: {e}"))?;
            }
            let len = u16::try_from(rd.len()).map_err(|_| "record data too long".to_string())?;
            tails.extend_from_slice(&u16::from(r.record_type()).to_be_bytes());
            tails.extend_from_slice(&u16::from(r.dns_class).to_be_bytes());
            tails.extend_from_slice(&r.ttl.to_be_bytes());
            tails.extend_from_slice(&len.to_be_bytes());
            tails.extend_from_slice(&rd);
        }
        Ok(RrSet {
            rtype,
            wildcard: first.name.is_wildcard(),
            target: target.into(),
            owner: owner.into(),
            count: records.len() as u16,
            records,
            tails: tails.into(),
            targets: Box::new([]),
            target_mask: 0,
            untargeted: true,
        })
    }

    /// Wire size of the set when every owner is a 2-byte pointer.
    pub fn wire_len_compressed(&self) -> usize {
        self.tails.len() + 2 * self.count as usize
    }

    /// Whether record `i` is written under target mask `up` (bit per target
    /// of the set's POP): a record that is no target always is.
    #[inline]
    pub fn record_up(&self, i: usize, up: u64) -> bool {
        match self.targets.get(i) {
            Some(&t) if t != NO_TARGET => up & (1u64 << t) != 0,
            _ => true,
        }
    }

    /// Whether any record is written under target mask `up`.
    #[inline]
    pub fn any_up(&self, up: u64) -> bool {
        self.untargeted || self.target_mask & up != 0
    }

    /// Each record's tail (TYPE .. RDATA).
    pub fn tails(&self) -> impl Iterator<Item = &[u8]> {
        let mut rest = &self.tails[..];
        std::iter::from_fn(move || {
            if rest.len() < 10 {
                return None;
            }
            let n = 10 + u16::from_be_bytes([rest[8], rest[9]]) as usize;
            let (t, r) = rest.split_at(n);
            rest = r;
            Some(t)
        })
    }
}

/// CH-class TXT set answering `name` with `text` (`id.server`, `hostname.bind`).
pub fn chaos_txt(name: &str, text: &str) -> RrSet {
    let mut r = Record::from_rdata(
        Name::from_ascii(name).unwrap_or_else(|_| Name::root()),
        0,
        RData::TXT(TXT::new(vec![text.to_string()])),
    );
    r.dns_class = DNSClass::CH;
    RrSet::new(vec![r]).unwrap_or_else(|_| RrSet {
        rtype: RecordType::TXT,
        owner: Box::new([0]),
        wildcard: false,
        target: Box::new([]),
        records: Vec::new(),
        tails: Box::new([]),
        count: 0,
        targets: Box::new([]),
        target_mask: 0,
        untargeted: true,
    })
}
