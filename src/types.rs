//! Core value types shared by every module: peer and POP indices, prefixes,
//! address families (and [`PerFamily`] values), path attributes and the
//! messages that flow between session tasks and the RIB task.
//!
//! Owns no state. `wire` produces these from bytes, `rib` stores them, `session`
//! carries them over channels, `admin` renders them.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// Index of a configured peer (position in the config's peer list).
pub type PeerId = u16;

/// Index of a configured POP (position in the config's `pops`), as rankings
/// store it: two bytes, so up to `config::MAX_POPS` (1024) POPs fit.
pub type PopIdx = u16;

/// Address family (AFI + SAFI unicast; we only do unicast).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Afi {
    Ipv4,
    Ipv6,
}

impl Afi {
    pub const ALL: [Afi; 2] = [Afi::Ipv4, Afi::Ipv6];
    /// IANA AFI number.
    pub fn code(self) -> u16 {
        match self {
            Afi::Ipv4 => 1,
            Afi::Ipv6 => 2,
        }
    }
    pub fn from_code(afi: u16) -> Option<Afi> {
        match afi {
            1 => Some(Afi::Ipv4),
            2 => Some(Afi::Ipv6),
            _ => None,
        }
    }
    pub fn index(self) -> usize {
        self as usize
    }
    /// `ipv4` or `ipv6` (as in config, logs and metric labels).
    pub fn as_str(self) -> &'static str {
        match self {
            Afi::Ipv4 => "ipv4",
            Afi::Ipv6 => "ipv6",
        }
    }
}

impl fmt::Display for Afi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Afi::Ipv4 => "ipv4",
            Afi::Ipv6 => "ipv6",
        })
    }
}

/// A value per address family, keyed `ipv4` and `ipv6` in config and JSON
/// (a missing one is defaulted, any other key is an error).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PerFamily<T> {
    pub ipv4: T,
    pub ipv6: T,
}

impl<T> PerFamily<T> {
    /// The value of `afi`.
    pub fn get(&self, afi: Afi) -> &T {
        match afi {
            Afi::Ipv4 => &self.ipv4,
            Afi::Ipv6 => &self.ipv6,
        }
    }

    /// The value of `afi`, to change.
    pub fn get_mut(&mut self, afi: Afi) -> &mut T {
        match afi {
            Afi::Ipv4 => &mut self.ipv4,
            Afi::Ipv6 => &mut self.ipv6,
        }
    }
}

impl<T: Copy> PerFamily<T> {
    /// From an array indexed by [`Afi::index`].
    pub fn of(v: [T; 2]) -> PerFamily<T> {
        PerFamily {
            ipv4: v[0],
            ipv6: v[1],
        }
    }
}

/// An IP prefix with host bits cleared. Ordered by family, then address, then length.
#[derive(Copy, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Prefix {
    V4 { addr: u32, len: u8 },
    V6 { addr: u128, len: u8 },
}

impl Prefix {
    /// Build a prefix, clearing host bits. `None` if `len` is too long for the family.
    pub fn new(addr: IpAddr, len: u8) -> Option<Prefix> {
        match addr {
            IpAddr::V4(a) => Prefix::v4(u32::from(a), len),
            IpAddr::V6(a) => Prefix::v6(u128::from(a), len),
        }
    }
    pub fn v4(addr: u32, len: u8) -> Option<Prefix> {
        if len > 32 {
            return None;
        }
        let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
        Some(Prefix::V4 {
            addr: addr & mask,
            len,
        })
    }
    pub fn v6(addr: u128, len: u8) -> Option<Prefix> {
        if len > 128 {
            return None;
        }
        let mask = if len == 0 {
            0
        } else {
            u128::MAX << (128 - len)
        };
        Some(Prefix::V6 {
            addr: addr & mask,
            len,
        })
    }
    /// The host route for an address (/32 or /128).
    pub fn host(addr: IpAddr) -> Prefix {
        match addr {
            IpAddr::V4(a) => Prefix::V4 {
                addr: a.into(),
                len: 32,
            },
            IpAddr::V6(a) => Prefix::V6 {
                addr: a.into(),
                len: 128,
            },
        }
    }
    pub fn afi(&self) -> Afi {
        match self {
            Prefix::V4 { .. } => Afi::Ipv4,
            Prefix::V6 { .. } => Afi::Ipv6,
        }
    }
    pub fn len(&self) -> u8 {
        match *self {
            Prefix::V4 { len, .. } | Prefix::V6 { len, .. } => len,
        }
    }
    pub fn is_empty(&self) -> bool {
        false
    }
    pub fn addr(&self) -> IpAddr {
        match *self {
            Prefix::V4 { addr, .. } => IpAddr::V4(Ipv4Addr::from(addr)),
            Prefix::V6 { addr, .. } => IpAddr::V6(Ipv6Addr::from(addr)),
        }
    }
    /// Whether `other` lies inside (or equals) this prefix.
    pub fn contains(&self, other: &Prefix) -> bool {
        match (*self, *other) {
            (Prefix::V4 { addr, len }, Prefix::V4 { addr: o, len: ol }) => {
                ol >= len && Prefix::v4(o, len) == Some(Prefix::V4 { addr, len })
            }
            (Prefix::V6 { addr, len }, Prefix::V6 { addr: o, len: ol }) => {
                ol >= len && Prefix::v6(o, len) == Some(Prefix::V6 { addr, len })
            }
            _ => false,
        }
    }
    /// The same address truncated to a shorter length.
    pub fn truncate(&self, len: u8) -> Option<Prefix> {
        match *self {
            Prefix::V4 { addr, .. } => Prefix::v4(addr, len),
            Prefix::V6 { addr, .. } => Prefix::v6(addr, len),
        }
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr(), self.len())
    }
}

impl fmt::Debug for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl Serialize for Prefix {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Prefix {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Error parsing a prefix from text.
#[derive(Debug, thiserror::Error)]
#[error("invalid prefix {0:?}: expected ADDRESS/LENGTH")]
pub struct PrefixParseError(pub String);

impl FromStr for Prefix {
    type Err = PrefixParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || PrefixParseError(s.to_string());
        let (a, l) = match s.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (s, None),
        };
        let addr: IpAddr = a.trim().parse().map_err(|_| err())?;
        let len = match l {
            Some(l) => l.trim().parse::<u8>().map_err(|_| err())?,
            None => match addr {
                IpAddr::V4(_) => 32,
                IpAddr::V6(_) => 128,
            },
        };
        Prefix::new(addr, len).ok_or_else(err)
    }
}

/// ORIGIN attribute value. Lower is preferred.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    #[default]
    Igp = 0,
    Egp = 1,
    Incomplete = 2,
}

impl Origin {
    pub fn from_code(c: u8) -> Option<Origin> {
        match c {
            0 => Some(Origin::Igp),
            1 => Some(Origin::Egp),
            2 => Some(Origin::Incomplete),
            _ => None,
        }
    }
}

/// AS_PATH segment type codes (RFC 4271 §4.3, RFC 5065).
pub const AS_SET: u8 = 1;
pub const AS_SEQUENCE: u8 = 2;
pub const AS_CONFED_SEQUENCE: u8 = 3;
pub const AS_CONFED_SET: u8 = 4;

/// One AS_PATH segment with 4-octet ASNs.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct AsSegment {
    /// One of [`AS_SET`], [`AS_SEQUENCE`], [`AS_CONFED_SEQUENCE`], [`AS_CONFED_SET`].
    pub kind: u8,
    pub asns: Vec<u32>,
}

/// An AS_PATH, always with 4-octet ASNs (after AS4_PATH merging for 2-octet peers).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default, Serialize)]
#[serde(transparent)]
pub struct AsPath(pub Vec<AsSegment>);

impl AsPath {
    /// Path length for best-path selection (RFC 4271 §9.1.2.2 a): a set counts
    /// as one, confederation segments count zero (RFC 5065 §5.3).
    pub fn path_len(&self) -> u32 {
        self.0
            .iter()
            .map(|s| match s.kind {
                AS_SEQUENCE => s.asns.len() as u32,
                AS_SET => 1,
                _ => 0,
            })
            .sum()
    }
    /// The neighbouring AS: the first AS of the first AS_SEQUENCE segment, if the path starts with one.
    pub fn first_as(&self) -> Option<u32> {
        self.0
            .iter()
            .find(|s| s.kind != AS_CONFED_SEQUENCE && s.kind != AS_CONFED_SET)
            .filter(|s| s.kind == AS_SEQUENCE)
            .and_then(|s| s.asns.first().copied())
    }
    /// The origin AS: the last AS of the last segment if it is an AS_SEQUENCE.
    pub fn origin_as(&self) -> Option<u32> {
        self.0
            .last()
            .filter(|s| s.kind == AS_SEQUENCE)
            .and_then(|s| s.asns.last().copied())
    }
    /// Whether `asn` appears anywhere in the path.
    pub fn contains(&self, asn: u32) -> bool {
        self.0.iter().any(|s| s.asns.contains(&asn))
    }
    /// Every ASN in order of appearance.
    pub fn iter_asns(&self) -> impl Iterator<Item = u32> + '_ {
        self.0.iter().flat_map(|s| s.asns.iter().copied())
    }
    /// A copy with `asn` prepended as a leading AS_SEQUENCE member.
    pub fn prepend(&self, asn: u32) -> AsPath {
        let mut segs = self.0.clone();
        match segs.first_mut() {
            Some(s) if s.kind == AS_SEQUENCE && s.asns.len() < 255 => s.asns.insert(0, asn),
            _ => segs.insert(
                0,
                AsSegment {
                    kind: AS_SEQUENCE,
                    asns: vec![asn],
                },
            ),
        }
        AsPath(segs)
    }
    pub fn sequence(asns: &[u32]) -> AsPath {
        if asns.is_empty() {
            AsPath(Vec::new())
        } else {
            AsPath(vec![AsSegment {
                kind: AS_SEQUENCE,
                asns: asns.to_vec(),
            }])
        }
    }
}

impl fmt::Display for AsPath {
    /// bgpdump / BIRD style: `1 2 {3 4}`; confederation segments in `( )` / `[ ]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for s in &self.0 {
            let (open, close, sep) = match s.kind {
                AS_SET => ("{", "}", ","),
                AS_CONFED_SEQUENCE => ("(", ")", " "),
                AS_CONFED_SET => ("[", "]", ","),
                _ => ("", "", " "),
            };
            if !first {
                f.write_str(" ")?;
            }
            first = false;
            f.write_str(open)?;
            for (i, a) in s.asns.iter().enumerate() {
                if i > 0 {
                    f.write_str(sep)?;
                }
                write!(f, "{a}")?;
            }
            f.write_str(close)?;
        }
        Ok(())
    }
}

/// A path attribute we do not interpret, kept to pass on (optional transitive) or show.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct RawAttr {
    pub flags: u8,
    pub code: u8,
    pub value: Box<[u8]>,
}

/// The attributes of one path, for one address family, after validation and AS4 merging.
/// Interned by the RIB: identical sets are stored once.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default, Serialize)]
pub struct PathAttrs {
    pub origin: Origin,
    pub as_path: AsPath,
    /// NEXT_HOP (IPv4 NLRI) or the MP_REACH global next hop.
    pub next_hop: Option<IpAddr>,
    /// IPv6 link-local next hop from MP_REACH, if the peer sent one.
    pub next_hop_ll: Option<Ipv6Addr>,
    pub med: Option<u32>,
    pub local_pref: Option<u32>,
    pub atomic_aggregate: bool,
    /// AGGREGATOR (ASN, address), 4-octet after AS4_AGGREGATOR merging.
    pub aggregator: Option<(u32, Ipv4Addr)>,
    pub communities: Vec<u32>,
    pub large_communities: Vec<[u32; 3]>,
    pub ext_communities: Vec<u64>,
    pub originator_id: Option<Ipv4Addr>,
    pub cluster_list: Vec<Ipv4Addr>,
    /// Unrecognised optional attributes (transitive ones are passed on with Partial set).
    pub other: Vec<RawAttr>,
}

/// A decoded UPDATE's effect for one address family.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RouteChange {
    pub withdrawn: Vec<Prefix>,
    pub announced: Vec<Prefix>,
    /// Attributes for `announced` (None when nothing is announced).
    pub attrs: Option<Arc<PathAttrs>>,
}
