//! Conversion of MRT (bgpkit) path attributes into sparrow's [`PathAttrs`],
//! per address family: AS path, next hop (IPv4 NEXT_HOP or MP_REACH global +
//! link-local), communities, and every other attribute kept as raw bytes so
//! the replayed UPDATEs carry the original attributes. Pure functions; called
//! by [`crate::mrt`] for every RIB entry.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use bgpkit_parser::models::{
    AsPathSegment, Attribute, AttributeValue, Attributes, Community, NextHopAddress,
    Origin as MrtOrigin,
};
use bytes::BytesMut;
use sparrow::types::{Afi, AsPath, AsSegment, Origin, PathAttrs, RawAttr};
use sparrow::wire::flag;

/// Well-known communities (RFC 1997).
const NO_EXPORT: u32 = 0xFFFF_FF01;
const NO_ADVERTISE: u32 = 0xFFFF_FF02;
const NO_EXPORT_SUBCONFED: u32 = 0xFFFF_FF03;

/// LOCAL_PREF given to iBGP routes whose dump entry has none.
const DEFAULT_LOCAL_PREF: u32 = 100;

/// A standard community as its 32-bit value.
fn community_value(c: &Community) -> u32 {
    match c {
        Community::NoExport => NO_EXPORT,
        Community::NoAdvertise => NO_ADVERTISE,
        Community::NoExportSubConfed => NO_EXPORT_SUBCONFED,
        Community::Custom(asn, v) => (asn.to_u32() << 16) | u32::from(*v),
    }
}

fn convert_path(p: &bgpkit_parser::models::AsPath) -> AsPath {
    AsPath(
        p.segments
            .iter()
            .map(|s| {
                let (kind, asns) = match s {
                    AsPathSegment::AsSequence(v) => (sparrow::types::AS_SEQUENCE, v),
                    AsPathSegment::AsSet(v) => (sparrow::types::AS_SET, v),
                    AsPathSegment::ConfedSequence(v) => (sparrow::types::AS_CONFED_SEQUENCE, v),
                    AsPathSegment::ConfedSet(v) => (sparrow::types::AS_CONFED_SET, v),
                };
                AsSegment {
                    kind,
                    asns: asns.iter().map(|a| a.to_u32()).collect(),
                }
            })
            .collect(),
    )
}

/// The value bytes of an attribute as bgpkit would put it on the wire.
fn attr_value_bytes(attr: &Attribute) -> Option<(u8, u8, Vec<u8>)> {
    let mut buf = BytesMut::new();
    attr.encode_to(bgpkit_parser::models::AsnLength::Bits32, &mut buf)
        .ok()?;
    if buf.len() < 3 {
        return None;
    }
    // Header: flags, type code, then a 1-octet length (2 with EXTENDED_LENGTH).
    let flags = buf[0];
    let code = buf[1];
    let start = if flags & flag::EXTENDED_LENGTH != 0 {
        4
    } else {
        3
    };
    Some((flags, code, buf.get(start..)?.to_vec()))
}

/// Next hop (global, link-local) from an MP_REACH next hop, for IPv6 NLRI.
fn v6_next_hop(nh: &NextHopAddress) -> Option<(Ipv6Addr, Option<Ipv6Addr>)> {
    match *nh {
        NextHopAddress::Ipv6(a) => Some((a, None)),
        NextHopAddress::Ipv6LinkLocal(a, b) => {
            if a.is_unicast_link_local() && !b.is_unicast_link_local() {
                Some((b, Some(a)))
            } else {
                Some((a, b.is_unicast_link_local().then_some(b)))
            }
        }
        _ => None,
    }
}

/// Our `PathAttrs` for a route of family `afi` from the MRT attributes.
/// `None` when the route cannot be announced (no next hop usable for the family).
/// LOCAL_PREF is kept only for iBGP peers (default 100 when the dump has none).
pub fn convert_attrs(attrs: Attributes, afi: Afi, ibgp: bool) -> Option<PathAttrs> {
    let mut pa = PathAttrs {
        as_path: attrs
            .effective_as_path()
            .map(|p| convert_path(&p))
            .unwrap_or_default(),
        aggregator: attrs.aggregator().map(|(asn, id)| (asn.to_u32(), id)),
        ..PathAttrs::default()
    };
    let mut nh_attr: Option<IpAddr> = None;
    let mut mp_nh: Option<NextHopAddress> = None;
    let mut origin = None;
    let mut local_pref = None;
    for attr in attrs.into_attributes_iter() {
        match &attr.value {
            AttributeValue::Origin(o) => {
                origin = Some(match o {
                    MrtOrigin::IGP => Origin::Igp,
                    MrtOrigin::EGP => Origin::Egp,
                    MrtOrigin::INCOMPLETE => Origin::Incomplete,
                })
            }
            AttributeValue::AsPath(_)
            | AttributeValue::As4Path(_)
            | AttributeValue::Aggregator { .. }
            | AttributeValue::As4Aggregator { .. }
            | AttributeValue::MpUnreachNlri(_) => {}
            AttributeValue::NextHop(ip) => nh_attr = Some(*ip),
            AttributeValue::MultiExitDiscriminator(m) => pa.med = Some(*m),
            AttributeValue::LocalPreference(l) => local_pref = Some(*l),
            AttributeValue::AtomicAggregate => pa.atomic_aggregate = true,
            AttributeValue::Communities(v) => pa.communities.extend(v.iter().map(community_value)),
            AttributeValue::LargeCommunities(v) => pa.large_communities.extend(
                v.iter()
                    .map(|c| [c.global_admin, c.local_data[0], c.local_data[1]]),
            ),
            AttributeValue::OriginatorId(id) => pa.originator_id = Some(*id),
            AttributeValue::Clusters(c) => {
                pa.cluster_list = c.iter().map(|&x| Ipv4Addr::from(x)).collect()
            }
            AttributeValue::MpReachNlri(n) => mp_nh = n.next_hop,
            AttributeValue::ExtendedCommunities(_) => {
                if let Some((_, _, v)) = attr_value_bytes(&attr) {
                    pa.ext_communities.extend(
                        v.chunks_exact(8)
                            .map(|c| u64::from_be_bytes(c.try_into().unwrap_or([0; 8]))),
                    );
                }
            }
            AttributeValue::Unknown(raw)
            | AttributeValue::Raw(raw)
            | AttributeValue::Deprecated(raw) => pa.other.push(RawAttr {
                flags: attr.flag.bits(),
                code: raw.code,
                value: raw.bytes.to_vec().into_boxed_slice(),
            }),
            _ => {
                if let Some((flags, code, value)) = attr_value_bytes(&attr) {
                    pa.other.push(RawAttr {
                        flags,
                        code,
                        value: value.into_boxed_slice(),
                    });
                }
            }
        }
    }
    pa.origin = origin.unwrap_or(Origin::Incomplete);
    if ibgp {
        pa.local_pref = Some(local_pref.unwrap_or(DEFAULT_LOCAL_PREF));
    }
    match afi {
        Afi::Ipv4 => {
            let nh = match (nh_attr, mp_nh) {
                (Some(IpAddr::V4(a)), _) => a,
                (_, Some(NextHopAddress::Ipv4(a))) => a,
                _ => return None,
            };
            pa.next_hop = Some(IpAddr::V4(nh));
        }
        Afi::Ipv6 => {
            let (g, ll) = match (&mp_nh, nh_attr) {
                (Some(nh), _) if v6_next_hop(nh).is_some() => v6_next_hop(nh)?,
                (_, Some(IpAddr::V6(a))) => (a, None),
                _ => return None,
            };
            pa.next_hop = Some(IpAddr::V6(g));
            pa.next_hop_ll = ll;
        }
    }
    Some(pa)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bgpkit_parser::models::{Asn, LargeCommunity};
    use sparrow::types::Prefix;
    use std::str::FromStr;

    use crate::report::route_line;

    #[test]
    fn community_values() {
        assert_eq!(community_value(&Community::NoExport), 0xFFFF_FF01);
        assert_eq!(
            community_value(&Community::Custom(Asn::new_16bit(3257), 4000)),
            (3257 << 16) | 4000
        );
    }

    #[test]
    fn convert_v4_attrs() {
        let mut a = Attributes::default();
        a.add_attr(AttributeValue::Origin(MrtOrigin::EGP).into());
        let mut path = bgpkit_parser::models::AsPath::from_sequence([1853u32, 1239, 13659]);
        path.segments.push(AsPathSegment::AsSet(
            [13659u32, 701].iter().map(|&x| Asn::new_32bit(x)).collect(),
        ));
        a.add_attr(AttributeValue::AsPath(path).into());
        a.add_attr(AttributeValue::NextHop(IpAddr::from_str("193.203.0.1").unwrap()).into());
        a.add_attr(AttributeValue::MultiExitDiscriminator(7).into());
        a.add_attr(AttributeValue::LocalPreference(200).into());
        a.add_attr(AttributeValue::AtomicAggregate.into());
        a.add_attr(
            AttributeValue::Aggregator {
                asn: Asn::new_16bit(13659),
                id: Ipv4Addr::new(198, 206, 239, 5),
            }
            .into(),
        );
        a.add_attr(
            AttributeValue::Communities(vec![
                Community::Custom(Asn::new_16bit(3257), 4000),
                Community::NoExport,
            ])
            .into(),
        );
        a.add_attr(AttributeValue::LargeCommunities(vec![LargeCommunity::new(1, [2, 3])]).into());
        let pa = convert_attrs(a.clone(), Afi::Ipv4, false).unwrap();
        assert_eq!(pa.origin, Origin::Egp);
        assert_eq!(pa.as_path.to_string(), "1853 1239 13659 {13659,701}");
        assert_eq!(pa.next_hop, Some(IpAddr::from_str("193.203.0.1").unwrap()));
        assert_eq!(pa.med, Some(7));
        assert_eq!(pa.local_pref, None, "eBGP: no LOCAL_PREF");
        assert!(pa.atomic_aggregate);
        assert_eq!(
            pa.aggregator,
            Some((13659, Ipv4Addr::new(198, 206, 239, 5)))
        );
        assert_eq!(pa.communities, vec![(3257 << 16) | 4000, 0xFFFF_FF01]);
        assert_eq!(pa.large_communities, vec![[1, 2, 3]]);
        let ibgp = convert_attrs(a.clone(), Afi::Ipv4, true).unwrap();
        assert_eq!(ibgp.local_pref, Some(200));
        // No usable next hop for IPv6.
        assert!(convert_attrs(a, Afi::Ipv6, false).is_none());
        let p = Prefix::from_str("24.223.0.0/18").unwrap();
        assert_eq!(
            route_line(IpAddr::from_str("193.203.0.1").unwrap(), &p, &pa),
            "193.203.0.1|24.223.0.0/18|1853 1239 13659 {13659,701}|EGP|193.203.0.1|7|3257:4000 65535:65281 1:2:3"
        );
    }
}
