//! Compiling zones: each zone of a validated config, parsed and checked by
//! `config::zones::parse_zone` into a `ZoneSpec`, becomes nodes and RRsets
//! (grouped by owner and type, duplicates dropped, one TTL per set) in
//! [`Zones`], each zone with its own name index; then delegation points,
//! the names under them, and each name's wildcard child are marked.
//!
//! Talks to `config` (the zones and POPs) and `rrset`.

use std::net::IpAddr;

use hickory_proto::rr::rdata::NS;
use hickory_proto::rr::{Name, RData, Record, RecordType};

use super::rrset::NO_TARGET;
use super::{name_wire, Node, RrSet, Steered, Zone, Zones};
use crate::config::zones::{parse_zone, ZoneSpec};
use crate::config::Config;
use crate::dns::DnsError;

impl Zones {
    /// Compile `cfg.zones` (validated by `config::validate` already; errors here
    /// carry the same key paths).
    pub fn compile(cfg: &Config) -> Result<Zones, DnsError> {
        let targets: Vec<Vec<IpAddr>> = cfg
            .pops
            .iter()
            .map(|p| crate::pops::pop_targets(cfg, &p.name))
            .collect();
        Zones::compile_with_targets(cfg, &targets)
    }

    /// Compile with each POP's health targets as numbered by the running
    /// `pops::PopState` (`targets[pop]`; bit `i` of its `up_mask` is
    /// `targets[pop][i]`): a steered record's target index is its address's
    /// place there, so a reload that adds an address leaves it always up.
    pub fn compile_with_targets(cfg: &Config, targets: &[Vec<IpAddr>]) -> Result<Zones, DnsError> {
        let mut z = Zones {
            pop_names: cfg.pops.iter().map(|p| p.name.clone()).collect(),
            all_down: cfg.health.all_down,
            ..Zones::default()
        };
        for (i, zc) in cfg.zones.iter().enumerate() {
            let err = |key, msg| DnsError::Zone { zone: i, key, msg };
            let spec = parse_zone(zc, &cfg.pops).map_err(|es| match es.into_iter().next() {
                Some(e) => err(e.key, e.msg),
                None => err(String::new(), "invalid zone".into()),
            })?;
            z.add_zone(i, &spec, cfg.pops.len(), targets)
                .map_err(|(key, msg)| err(key, msg))?;
        }
        z.mark_cuts();
        Ok(z)
    }

    fn node_for(&mut self, zone: u16, name: &Name) -> u32 {
        let key: Box<[u8]> = name_wire(name).into();
        if let Some(&n) = self.zones[zone as usize].index.get(&key) {
            return n;
        }
        let n = self.nodes.len() as u32;
        self.nodes.push(Node {
            zone,
            name: name.to_lowercase(),
            sets: Vec::new(),
            steered: None,
            cut: false,
            referral: None,
            wildcard: None,
        });
        self.zones[zone as usize].index.insert(key, n);
        // Empty non-terminals up to the apex exist too (NODATA, not NXDOMAIN).
        let origin = self.zones[zone as usize].origin.clone();
        if name.num_labels() > origin.num_labels() {
            let parent = name.base_name();
            self.node_for(zone, &parent);
        }
        n
    }

    fn add_zone(
        &mut self,
        zi: usize,
        spec: &ZoneSpec,
        n_pops: usize,
        all_targets: &[Vec<IpAddr>],
    ) -> Result<(), (String, String)> {
        let origin = spec.origin.clone();
        let zone = zi as u16;
        let soa = spec.soa.clone();
        let neg_ttl = spec.soa_ttl.min(soa.minimum);
        let soa_neg = RrSet::new(vec![Record::from_rdata(
            origin.clone(),
            neg_ttl,
            RData::SOA(soa.clone()),
        )])
        .map_err(|m| (".soa".to_string(), m))?;
        self.origins.insert(name_wire(&origin).into(), zone);
        self.zones.push(Zone {
            origin: origin.clone(),
            index: Default::default(),
            apex: 0,
            soa_neg,
        });
        let apex = self.node_for(zone, &origin);
        self.zones[zi].apex = apex;

        // Static records grouped by (owner, type), in config order.
        type Group = ((Vec<u8>, RecordType), Vec<Record>);
        let mut groups: Vec<Group> = Vec::new();
        let mut push = |r: Record| {
            let k = (name_wire(&r.name), r.record_type());
            match groups.iter_mut().find(|(g, _)| *g == k) {
                Some((_, v)) => v.push(r),
                None => groups.push((k, vec![r])),
            }
        };
        push(Record::from_rdata(
            origin.clone(),
            spec.soa_ttl,
            RData::SOA(soa),
        ));
        for n in &spec.ns {
            push(Record::from_rdata(
                origin.clone(),
                spec.ttl,
                RData::NS(NS(n.clone())),
            ));
        }
        for r in &spec.records {
            push(Record::from_rdata(r.owner.clone(), r.ttl, r.data.clone()));
        }
        // Identical records in one set are one record (RFC 2181 §5).
        for ((_, _), mut recs) in groups {
            let mut seen: Vec<RData> = Vec::new();
            recs.retain(|r| {
                let dup = seen.contains(&r.data);
                if !dup {
                    seen.push(r.data.clone());
                }
                !dup
            });
            // One TTL per RRset (RFC 2181 §5.2): the lowest.
            let ttl = recs.iter().map(|r| r.ttl).min().unwrap_or(0);
            for r in &mut recs {
                r.ttl = ttl;
            }
            let node = self.node_for(zone, &recs[0].name.clone());
            let set = RrSet::new(recs).map_err(|m| (".records".to_string(), m))?;
            self.nodes[node as usize].sets.push(set);
        }

        for (j, sc) in spec.steered.iter().enumerate() {
            let key = || format!(".steered[{j}].pops");
            let mut st = Steered {
                ttl: sc.ttl,
                ttl_failover: sc.ttl_failover,
                a: (0..n_pops).map(|_| None).collect(),
                aaaa: (0..n_pops).map(|_| None).collect(),
            };
            for (p, a, aaaa) in &sc.pops {
                // Target bits as `pops::PopState` numbers them.
                let targets = all_targets.get(*p).map_or(&[][..], |t| &t[..]);
                let mk = |data: Vec<RData>| -> Result<Option<RrSet>, (String, String)> {
                    if data.is_empty() {
                        return Ok(None);
                    }
                    let recs = data
                        .into_iter()
                        .map(|d| Record::from_rdata(sc.owner.clone(), sc.ttl, d))
                        .collect();
                    let mut set = RrSet::new(recs).map_err(|m| (key(), m))?;
                    set.targets = set
                        .records
                        .iter()
                        .map(|r| {
                            let addr = match r.data {
                                RData::A(a) => Some(IpAddr::V4(a.0)),
                                RData::AAAA(a) => Some(IpAddr::V6(a.0)),
                                _ => None,
                            };
                            addr.and_then(|a| targets.iter().position(|&t| t == a))
                                .filter(|&t| t < crate::pops::MAX_TARGETS)
                                .map_or(NO_TARGET, |t| t as u8)
                        })
                        .collect();
                    set.target_mask = set
                        .targets
                        .iter()
                        .filter(|&&t| t != NO_TARGET)
                        .fold(0, |m, &t| m | 1u64 << t);
                    set.untargeted = set.targets.contains(&NO_TARGET);
                    Ok(Some(set))
                };
                st.a[*p] = mk(a.iter().map(|&a| RData::A(a.into())).collect())?;
                st.aaaa[*p] = mk(aaaa.iter().map(|&a| RData::AAAA(a.into())).collect())?;
            }
            let node = self.node_for(zone, &sc.owner);
            self.nodes[node as usize].steered = Some(st);
        }
        Ok(())
    }

    /// Mark delegation points (NS below an apex), the highest cut above
    /// every name at or below one, and every name's wildcard child.
    fn mark_cuts(&mut self) {
        for i in 0..self.nodes.len() {
            let apex = self.zones[self.nodes[i].zone as usize].apex;
            if i as u32 != apex && self.nodes[i].set(RecordType::NS).is_some() {
                self.nodes[i].cut = true;
            }
        }
        for i in 0..self.nodes.len() {
            let zi = self.nodes[i].zone;
            let zone = &self.zones[zi as usize];
            let mut name = self.nodes[i].name.clone();
            let mut highest = None;
            while name.num_labels() > zone.origin.num_labels() {
                if let Some(n) = self.node_in(zi, &name_wire(&name)) {
                    if self.nodes[n as usize].cut {
                        highest = Some(n);
                    }
                }
                name = name.base_name();
            }
            self.nodes[i].referral = highest;
            if self.nodes[i].name.is_wildcard() {
                let parent = self.nodes[i].name.base_name();
                if let Some(p) = self.node_in(zi, &name_wire(&parent)) {
                    self.nodes[p as usize].wildcard = Some(i as u32);
                }
            }
        }
    }
}
