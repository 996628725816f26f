//! Reading MRT RIB dumps into a per-peer route table.
//!
//! Opens TABLE_DUMP (v1) and TABLE_DUMP_V2 files (plain, gzip through
//! `flate2`, or bzip2 through the `bzip2` crate, both in-process), keeping
//! every complete record of a cut stream and stopping cleanly there, and
//! groups the routes by the collector's peer (peer IP + peer ASN): each peer's
//! prefixes are grouped by identical attributes, the first route per prefix
//! wins. Talks to `bgpkit_parser` for decoding and to [`crate::convert`] for
//! the attributes; [`crate::plan`] and [`crate::report`] read the result.

use std::collections::HashSet;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use bgpkit_parser::models::{
    Attributes, MrtMessage, NetworkPrefix, PeerIndexTable, TableDumpV2Message, TableDumpV2Type,
};
use bgpkit_parser::{BgpkitParser, ParserError};
use rustc_hash::FxHashMap;
use sparrow::types::{Afi, PathAttrs, Prefix};

use crate::convert::convert_attrs;
use crate::par::par_map;

const READ_BUF: usize = 1 << 20;

/// The first bytes of a gzip stream (RFC 1952) and of a bzip2 stream.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const BZIP2_MAGIC: &[u8; 3] = b"BZh";

/// Open a dump, decompressing gzip (flate2) and bzip2 (the `bzip2` crate)
/// in-process by their magic bytes. A cut compressed stream yields every byte
/// of its complete blocks and then a read error, which [`load_reader`] turns
/// into "stream ends inside a record" after the last complete record.
fn open_input(path: &Path) -> Result<Box<dyn Read + Send>> {
    let f = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut buffered = BufReader::with_capacity(READ_BUF, f);
    let magic = buffered
        .fill_buf()
        .with_context(|| format!("reading {}", path.display()))?;
    let (gzip, bzip2) = (
        magic.starts_with(&GZIP_MAGIC),
        magic.starts_with(BZIP2_MAGIC),
    );
    if gzip {
        let gz = flate2::bufread::MultiGzDecoder::new(buffered);
        return Ok(Box::new(BufReader::with_capacity(READ_BUF, gz)));
    }
    if bzip2 {
        let bz = bzip2::bufread::MultiBzDecoder::new(buffered);
        return Ok(Box::new(BufReader::with_capacity(READ_BUF, bz)));
    }
    Ok(Box::new(buffered))
}

/// One set of identical attributes and the prefixes (one family) that carry it.
#[derive(Debug, Clone)]
pub struct Group {
    pub afi: Afi,
    pub attrs: Arc<PathAttrs>,
    pub prefixes: Vec<Prefix>,
}

/// Everything one collector peer announced.
#[derive(Debug)]
pub struct PeerRoutes {
    pub ip: IpAddr,
    pub asn: u32,
    /// Groups in order of first appearance.
    pub groups: Vec<Group>,
    /// Per family: attributes -> index in `groups`. Dropped after loading.
    by_attrs: [FxHashMap<Arc<PathAttrs>, usize>; 2],
    /// Prefixes already taken (the first route per prefix wins). Dropped after loading.
    seen: HashSet<Prefix, rustc_hash::FxBuildHasher>,
    /// Routes kept, per family.
    pub counts: [usize; 2],
    /// Routes that cannot be sent (no usable next hop for the family).
    pub skipped: usize,
    /// Further routes for a prefix already taken (ADD-PATH dumps, repeated entries).
    pub duplicates: usize,
}

impl PeerRoutes {
    fn new(ip: IpAddr, asn: u32) -> Self {
        PeerRoutes {
            ip,
            asn,
            groups: Vec::new(),
            by_attrs: Default::default(),
            seen: Default::default(),
            counts: [0; 2],
            skipped: 0,
            duplicates: 0,
        }
    }

    fn group_index(&mut self, afi: Afi, attrs: PathAttrs) -> usize {
        let map = &mut self.by_attrs[afi.index()];
        if let Some(&i) = map.get(&attrs) {
            return i;
        }
        let attrs = Arc::new(attrs);
        let i = self.groups.len();
        self.groups.push(Group {
            afi,
            attrs: attrs.clone(),
            prefixes: Vec::new(),
        });
        map.insert(attrs, i);
        i
    }

    /// Take `prefix` with `attrs` unless the prefix is already present.
    fn push(&mut self, prefix: Prefix, attrs: PathAttrs) {
        if !self.seen.insert(prefix) {
            self.duplicates += 1;
            return;
        }
        let afi = prefix.afi();
        let gi = self.group_index(afi, attrs);
        self.groups[gi].prefixes.push(prefix);
        self.counts[afi.index()] += 1;
    }

    pub fn total(&self) -> usize {
        self.counts[0] + self.counts[1]
    }

    /// Free the loading indexes.
    fn seal(&mut self) {
        self.by_attrs = Default::default();
        self.seen = Default::default();
    }
}

#[derive(Debug, Default, Clone)]
pub struct LoadStats {
    pub files: usize,
    pub records: u64,
    pub entries: u64,
    /// Records we do not replay (BGP4MP, multicast, RIB_GENERIC, ...).
    pub other_records: u64,
    pub parse_errors: u64,
    /// Why a stream ended early, per file.
    pub truncated: Vec<String>,
}

#[derive(Debug, Default)]
pub struct Table {
    pub peers: Vec<PeerRoutes>,
    index: FxHashMap<(IpAddr, u32), usize>,
    pub stats: LoadStats,
}

impl Table {
    fn peer_index(&mut self, ip: IpAddr, asn: u32) -> usize {
        if let Some(&i) = self.index.get(&(ip, asn)) {
            return i;
        }
        let i = self.peers.len();
        self.peers.push(PeerRoutes::new(ip, asn));
        self.index.insert((ip, asn), i);
        i
    }

    /// Add one RIB entry.
    fn add(
        &mut self,
        peer_ip: IpAddr,
        peer_asn: u32,
        prefix: &NetworkPrefix,
        attrs: Attributes,
        local_asn: Option<u32>,
    ) {
        self.stats.entries += 1;
        let pi = self.peer_index(peer_ip, peer_asn);
        let peer = &mut self.peers[pi];
        let Some(p) = Prefix::new(prefix.prefix.addr(), prefix.prefix.prefix_len()) else {
            peer.skipped += 1;
            return;
        };
        match convert_attrs(attrs, p.afi(), local_asn == Some(peer_asn)) {
            Some(pa) => peer.push(p, pa),
            None => peer.skipped += 1,
        }
    }

    /// Append `other` (a later file): new peers at the end, routes for prefixes
    /// a peer already has are duplicates.
    fn merge(&mut self, other: Table) {
        let s = other.stats;
        self.stats.files += s.files;
        self.stats.records += s.records;
        self.stats.entries += s.entries;
        self.stats.other_records += s.other_records;
        self.stats.parse_errors += s.parse_errors;
        self.stats.truncated.extend(s.truncated);
        for op in other.peers {
            let pi = self.peer_index(op.ip, op.asn);
            let peer = &mut self.peers[pi];
            peer.skipped += op.skipped;
            peer.duplicates += op.duplicates;
            for g in op.groups {
                let attrs = Arc::unwrap_or_clone(g.attrs);
                let mut gi = None;
                for p in g.prefixes {
                    if !peer.seen.insert(p) {
                        peer.duplicates += 1;
                        continue;
                    }
                    let i = *gi.get_or_insert_with(|| peer.group_index(g.afi, attrs.clone()));
                    peer.groups[i].prefixes.push(p);
                    peer.counts[g.afi.index()] += 1;
                }
            }
        }
    }
}

fn is_unicast_rib(t: TableDumpV2Type) -> bool {
    matches!(
        t,
        TableDumpV2Type::RibIpv4Unicast
            | TableDumpV2Type::RibIpv6Unicast
            | TableDumpV2Type::RibIpv4UnicastAddPath
            | TableDumpV2Type::RibIpv6UnicastAddPath
    )
}

/// Give up on a stream after this many consecutive undecodable records.
const MAX_CONSECUTIVE_ERRORS: u64 = 10_000;

/// Read every record of an MRT stream into a table. Never fails: a cut or
/// corrupt stream ends the table where the data ends (noted in `stats.truncated`).
fn load_reader<R: Read>(reader: R, name: &str, local_asn: Option<u32>) -> Table {
    let mut table = Table::default();
    table.stats.files = 1;
    let mut parser = BgpkitParser::from_reader(reader).disable_warnings();
    let mut peer_table: Option<PeerIndexTable> = None;
    let mut consecutive_errors = 0u64;
    loop {
        let record = match parser.next_record() {
            Ok(r) => r,
            Err(e) => match e.error {
                ParserError::EofExpected => break,
                ParserError::IoError(err) | ParserError::EofError(err) => {
                    table.stats.truncated.push(format!(
                        "{name}: stream ends inside a record after {} records: {err}",
                        table.stats.records
                    ));
                    break;
                }
                ParserError::OversizedRecord { length } => {
                    table.stats.truncated.push(format!(
                        "{name}: record {} declares {length} bytes; stopping",
                        table.stats.records
                    ));
                    break;
                }
                _ => {
                    table.stats.parse_errors += 1;
                    consecutive_errors += 1;
                    if consecutive_errors >= MAX_CONSECUTIVE_ERRORS {
                        table.stats.truncated.push(format!(
                            "{name}: {consecutive_errors} undecodable records in a row; stopping"
                        ));
                        break;
                    }
                    continue;
                }
            },
        };
        consecutive_errors = 0;
        table.stats.records += 1;
        match record.message {
            MrtMessage::TableDumpMessage(m) => table.add(
                m.peer_ip,
                m.peer_asn.to_u32(),
                &m.prefix,
                m.attributes,
                local_asn,
            ),
            MrtMessage::TableDumpMessageBatch(ms) => {
                for m in ms {
                    table.add(
                        m.peer_ip,
                        m.peer_asn.to_u32(),
                        &m.prefix,
                        m.attributes,
                        local_asn,
                    );
                }
            }
            MrtMessage::TableDumpV2Message(TableDumpV2Message::PeerIndexTable(t)) => {
                peer_table = Some(t);
            }
            MrtMessage::TableDumpV2Message(TableDumpV2Message::RibAfi(rib))
                if is_unicast_rib(rib.rib_type) =>
            {
                let Some(pt) = peer_table.as_ref() else {
                    table.stats.other_records += 1;
                    continue;
                };
                for e in rib.rib_entries {
                    match pt.id_peer_map.get(&e.peer_index) {
                        Some(peer) => table.add(
                            peer.peer_ip,
                            peer.peer_asn.to_u32(),
                            &rib.prefix,
                            e.attributes,
                            local_asn,
                        ),
                        None => table.stats.parse_errors += 1,
                    }
                }
            }
            _ => table.stats.other_records += 1,
        }
    }
    table
}

fn load_file(path: &Path, local_asn: Option<u32>) -> Result<Table> {
    let reader = open_input(path)?;
    Ok(load_reader(reader, &path.display().to_string(), local_asn))
}

/// Load several files in parallel (one thread per file, at most one per core)
/// and merge them in command-line order.
pub fn load_all(paths: &[PathBuf], local_asn: Option<u32>) -> Result<Table> {
    let results = par_map(paths, "loader", |path| load_file(path, local_asn))?;
    let mut table = Table::default();
    for r in results {
        table.merge(r?);
    }
    for p in &mut table.peers {
        p.seal();
    }
    Ok(table)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bgpkit_parser::encoder::MrtRibEncoder;
    use bgpkit_parser::models::{Asn, BgpElem, Community, MetaCommunity, Origin as MrtOrigin};
    use std::str::FromStr;

    fn data_dir() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data")
    }

    /// `name` in [`data_dir`], or `None` (noted on stderr: the test skips)
    /// when that file is not present.
    fn data_file(name: &str) -> Option<PathBuf> {
        let path = data_dir().join(name);
        if !path.exists() {
            eprintln!("skipping: {} not present", path.display());
            return None;
        }
        Some(path)
    }

    fn elem(peer: &str, asn: u32, prefix: &str, path: &[u32], nh: &str) -> BgpElem {
        BgpElem {
            peer_ip: IpAddr::from_str(peer).unwrap(),
            peer_asn: Asn::new_32bit(asn),
            prefix: NetworkPrefix::from_str(prefix).unwrap(),
            next_hop: Some(IpAddr::from_str(nh).unwrap()),
            as_path: Some(bgpkit_parser::models::AsPath::from_sequence(path)),
            origin: Some(MrtOrigin::IGP),
            ..Default::default()
        }
    }

    fn tdv2(elems: &[BgpElem]) -> Vec<u8> {
        let mut enc = MrtRibEncoder::new();
        for e in elems {
            enc.process_elem(e).unwrap();
        }
        enc.export_bytes().unwrap().to_vec()
    }

    #[test]
    fn grouping_and_dedup() {
        let mut e1 = elem("192.0.2.9", 65001, "10.0.0.0/8", &[65001, 2], "192.0.2.9");
        e1.communities = Some(vec![MetaCommunity::Plain(Community::NoExport)]);
        let elems = vec![
            e1,
            elem("192.0.2.9", 65001, "11.0.0.0/8", &[65001, 3], "192.0.2.9"),
            elem("192.0.2.9", 65001, "12.0.0.0/8", &[65001, 2], "192.0.2.9"),
            elem("192.0.2.10", 65002, "10.0.0.0/8", &[65002, 2], "192.0.2.10"),
            elem(
                "192.0.2.9",
                65001,
                "2001:db8::/32",
                &[65001, 2],
                "2001:db8::9",
            ),
            elem(
                "192.0.2.9",
                65001,
                "2001:db9::/32",
                &[65001, 2],
                "2001:db8::9",
            ),
        ];
        let bytes = tdv2(&elems);
        let mut t = load_reader(&bytes[..], "test", None);
        assert!(t.stats.truncated.is_empty(), "{:?}", t.stats.truncated);
        assert_eq!(t.peers.len(), 2);
        let p = &t.peers[t.index[&(IpAddr::from_str("192.0.2.9").unwrap(), 65001)]];
        assert_eq!(p.counts, [3, 2]);
        // 10/8 has a community, 12/8 not: 3 v4 groups; both v6 share one group.
        assert_eq!(p.groups.iter().filter(|g| g.afi == Afi::Ipv4).count(), 3);
        let v6: Vec<_> = p.groups.iter().filter(|g| g.afi == Afi::Ipv6).collect();
        assert_eq!(v6.len(), 1);
        assert_eq!(v6[0].prefixes.len(), 2);
        assert_eq!(
            v6[0].attrs.next_hop,
            Some(IpAddr::from_str("2001:db8::9").unwrap())
        );
        // Merging the same data again only adds duplicates.
        let again = load_reader(&bytes[..], "again", None);
        t.merge(again);
        let p = &t.peers[t.index[&(IpAddr::from_str("192.0.2.9").unwrap(), 65001)]];
        assert_eq!(p.counts, [3, 2]);
        assert_eq!(p.duplicates, 5);
    }

    /// `n` routes of one peer for 10.x.y.0/24, the AS path of route `i` from `path`.
    fn numbered(n: u32, path: impl Fn(u32) -> Vec<u32>) -> Vec<BgpElem> {
        (0..n)
            .map(|i| {
                elem(
                    "192.0.2.9",
                    65001,
                    &format!("10.{}.{}.0/24", i / 256, i % 256),
                    &path(i),
                    "192.0.2.9",
                )
            })
            .collect()
    }

    #[test]
    fn truncated_stream_stops_cleanly() {
        let bytes = tdv2(&numbered(200, |i| vec![65001, i + 1]));
        let full = load_reader(&bytes[..], "full", None);
        assert_eq!(full.peers[0].total(), 200);
        let cut = &bytes[..bytes.len() * 2 / 3];
        let t = load_reader(cut, "cut", None);
        assert_eq!(t.stats.truncated.len(), 1, "{:?}", t.stats);
        let n = t.peers[0].total();
        assert!(n > 50 && n < 200, "{n}");
    }

    /// The 2002 RIS dump (TABLE_DUMP v1) matches bgpdump's entry count.
    #[test]
    fn ris_2002_table_dump_v1() {
        let Some(path) = data_file("ris-bview.20020722.2337.gz") else {
            return;
        };
        let t = load_all(&[path], None).unwrap();
        assert!(t.stats.truncated.is_empty(), "{:?}", t.stats.truncated);
        assert_eq!(t.stats.entries, 115_521);
        let routes: usize = t.peers.iter().map(|p| p.total()).sum();
        assert_eq!(routes, 115_521);
        assert_eq!(t.peers[0].ip.to_string(), "193.203.0.1");
        assert_eq!(t.peers[0].asn, 1853);
    }

    /// A bzip2 stream cut inside its last block: every record of the complete
    /// blocks is read, then the cut is noted.
    #[test]
    fn cut_bz2_keeps_complete_blocks() {
        use std::io::Write;
        let raw = tdv2(&numbered(6000, |i| {
            vec![65001, i + 1, i % 7 + 100, i % 13 + 200]
        }));
        assert!(
            raw.len() > 250_000,
            "{} bytes: want several 100k blocks",
            raw.len()
        );
        let mut enc = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::new(1));
        enc.write_all(&raw).unwrap();
        let bz = enc.finish().unwrap();
        let dir = std::env::temp_dir().join(format!("sparrow-replay-bz2-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (full_path, cut_path) = (dir.join("full.bz2"), dir.join("cut.bz2"));
        std::fs::write(&full_path, &bz).unwrap();
        std::fs::write(&cut_path, &bz[..bz.len() - 100]).unwrap();
        let full = load_all(&[full_path], None).unwrap();
        let cut = load_all(&[cut_path], None).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(
            full.stats.truncated.is_empty(),
            "{:?}",
            full.stats.truncated
        );
        assert_eq!(full.peers[0].total(), 6000);
        assert_eq!(cut.stats.truncated.len(), 1, "{:?}", cut.stats);
        let n = cut.peers[0].total();
        // 100k blocks: at least the first two are complete, the last is lost.
        assert!(n > 2000 && n < 6000, "{n}");
    }

    /// The cut bz2 RouteViews TABLE_DUMP_V2 file ends cleanly (read in place).
    #[test]
    fn routeviews_truncated_bz2() {
        let Some(path) = data_file("routeviews-rib.20140523.0600.firstMB.bz2") else {
            return;
        };
        let t = load_all(&[path], None).unwrap();
        assert!(t.peers.iter().map(|p| p.total()).sum::<usize>() > 1000);
        assert!(!t.stats.truncated.is_empty());
    }
}
