//! `sparrow-replay`: replay MRT RIB dumps to a BGP speaker over loopback.
//!
//! Reads TABLE_DUMP (v1) and TABLE_DUMP_V2 RIB dumps (plain, gzip, or bzip2
//! through the system `bzip2`), stopping cleanly where a stream is cut.
//! Routes are grouped by the collector's peer (peer IP + peer ASN); each such
//! peer gets its own BGP session to `--connect`, from its own loopback source
//! address (`--bind-base` + index), speaking as the peer's ASN. Every route is
//! sent with its original attributes, prefixes sharing identical attributes
//! packed into the same UPDATEs, followed by End-of-RIB for each family. The
//! sessions then stay up (KEEPALIVEs) for `--linger` seconds, until stdin (a
//! pipe) closes, or until SIGTERM/SIGINT. `--timeout` always ends the tool.
//!
//! UPDATEs are encoded before connecting (one big buffer per peer) so the
//! send phase is a few large writes; that makes the tool usable for
//! benchmarks.
//!
//! Other modes: `--list-peers` (JSON array, for generating a receiver config)
//! and `--dump-text` (one line per route, for debugging).
//!
//! Output on stdout in replay mode is JSON lines: `loaded`, `encoded`,
//! `established`, `sent`, `done`, `notification`, `error`, `exit`. Times `t`
//! are seconds since the tool started (monotonic).

use std::collections::HashSet;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use bgpkit_parser::models::{
    AsPathSegment, Attribute, AttributeValue, Attributes, Community, MrtMessage, NetworkPrefix,
    NextHopAddress, Origin as MrtOrigin, PeerIndexTable, TableDumpV2Message, TableDumpV2Type,
};
use bgpkit_parser::{BgpkitParser, ParserError};
use bytes::BytesMut;
use clap::Parser;
use rustc_hash::FxHashMap;
use serde_json::json;
use sparrow::types::{Afi, AsPath, AsSegment, Origin, PathAttrs, Prefix, RawAttr};
use sparrow::wire::{self, Capabilities, EncodeCtx, Notification, Open};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

/// Replay MRT RIB dumps (TABLE_DUMP / TABLE_DUMP_V2; plain, .gz, .bz2) as BGP
/// sessions to a speaker on loopback: one session per collector peer.
#[derive(Parser, Debug, Clone)]
#[command(name = "sparrow-replay", version)]
struct Args {
    /// MRT files; several files are read in parallel and merged (peers keyed by IP + ASN).
    #[arg(required = true)]
    mrt: Vec<PathBuf>,

    /// Target speaker (must be a loopback address), e.g. 127.0.0.1:1790.
    #[arg(long)]
    connect: Option<SocketAddr>,

    /// Source address of peer 0; peer i binds BASE + i (must stay in 127.0.0.0/8).
    #[arg(long, default_value = "127.0.1.1")]
    bind_base: IpAddr,

    /// Seconds to keep the sessions up after every peer has sent End-of-RIB.
    #[arg(long, default_value_t = 0.0)]
    linger: f64,

    /// Hard limit on the tool's run time in seconds (default: linger + 300).
    #[arg(long)]
    timeout: Option<f64>,

    /// Seconds to keep trying to connect / establish each session.
    #[arg(long, default_value_t = 30.0)]
    connect_timeout: f64,

    /// Hold time offered in our OPENs.
    #[arg(long, default_value_t = 90)]
    hold_time: u16,

    /// The receiver's ASN: peers with this ASN are iBGP and get LOCAL_PREF (else never sent).
    #[arg(long)]
    local_asn: Option<u32>,

    /// Offer the extended-message capability (RFC 8654) and use 64 KiB UPDATEs if agreed.
    #[arg(long)]
    extended_message: bool,

    /// Only replay these peer indexes (comma separated, as in --list-peers).
    #[arg(long, value_delimiter = ',')]
    peers: Option<Vec<usize>>,

    /// Print the collector peers that have routes to send (the sessions a replay opens) as a
    /// JSON array and exit.
    #[arg(long)]
    list_peers: bool,

    /// Print the routes that would be sent (`peer_ip|prefix|as path|origin|next hop|med|communities`) and exit.
    #[arg(long)]
    dump_text: bool,
}

// ---------------------------------------------------------------------------
// Output helpers
// ---------------------------------------------------------------------------

fn start_time() -> Instant {
    static START: OnceLock<Instant> = OnceLock::new();
    *START.get_or_init(Instant::now)
}

/// Seconds since the tool started, millisecond resolution.
fn now_t() -> f64 {
    (start_time().elapsed().as_secs_f64() * 1000.0).round() / 1000.0
}

/// Print one JSON event line on stdout (replay mode) and flush it.
fn emit(v: serde_json::Value) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{v}");
    let _ = out.flush();
}

// ---------------------------------------------------------------------------
// Reading MRT
// ---------------------------------------------------------------------------

/// An opened input stream, plus the decompressor process to reap (bzip2).
struct Input {
    reader: Box<dyn Read + Send>,
    child: Option<Child>,
}

const READ_BUF: usize = 1 << 20;

fn open_input(path: &Path) -> Result<Input> {
    let mut f = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut magic = [0u8; 3];
    let mut got = 0;
    while got < magic.len() {
        let n = f.read(&mut magic[got..])?;
        if n == 0 {
            break;
        }
        got += n;
    }
    drop(f);
    let f = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let buffered = BufReader::with_capacity(READ_BUF, f);
    if got >= 2 && magic[..2] == [0x1f, 0x8b] {
        let gz = flate2::bufread::MultiGzDecoder::new(buffered);
        return Ok(Input {
            reader: Box::new(BufReader::with_capacity(READ_BUF, gz)),
            child: None,
        });
    }
    if got == 3 && &magic == b"BZh" {
        // No bzip2 crate among our dependencies: use the system decompressor.
        let mut child = Command::new("bzip2")
            .arg("-dc")
            .arg("--")
            .arg(path)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("running bzip2 -dc (needed for .bz2 input)")?;
        let out = child.stdout.take().ok_or_else(|| anyhow!("bzip2 stdout"))?;
        return Ok(Input {
            reader: Box::new(BufReader::with_capacity(READ_BUF, out)),
            child: Some(child),
        });
    }
    Ok(Input {
        reader: Box::new(buffered),
        child: None,
    })
}

/// One set of identical attributes and the prefixes (one family) that carry it.
#[derive(Debug, Clone)]
struct Group {
    afi: Afi,
    attrs: Arc<PathAttrs>,
    prefixes: Vec<Prefix>,
}

/// Everything one collector peer announced.
#[derive(Debug)]
struct PeerRoutes {
    ip: IpAddr,
    asn: u32,
    /// Groups in order of first appearance.
    groups: Vec<Group>,
    /// Per family: attributes -> index in `groups`. Dropped after loading.
    by_attrs: [FxHashMap<Arc<PathAttrs>, usize>; 2],
    /// Prefixes already taken (the first route per prefix wins). Dropped after loading.
    seen: HashSet<Prefix, rustc_hash::FxBuildHasher>,
    /// Routes kept, per family.
    counts: [usize; 2],
    /// Routes that cannot be sent (no usable next hop for the family).
    skipped: usize,
    /// Further routes for a prefix already taken (ADD-PATH dumps, repeated entries).
    duplicates: usize,
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

    fn total(&self) -> usize {
        self.counts[0] + self.counts[1]
    }

    /// Free the loading indexes.
    fn seal(&mut self) {
        self.by_attrs = Default::default();
        self.seen = Default::default();
    }
}

#[derive(Debug, Default, Clone)]
struct LoadStats {
    files: usize,
    records: u64,
    entries: u64,
    /// Records we do not replay (BGP4MP, multicast, RIB_GENERIC, ...).
    other_records: u64,
    parse_errors: u64,
    /// Why a stream ended early, per file.
    truncated: Vec<String>,
}

#[derive(Debug, Default)]
struct Table {
    peers: Vec<PeerRoutes>,
    index: FxHashMap<(IpAddr, u32), usize>,
    stats: LoadStats,
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
    let input = open_input(path)?;
    let name = path.display().to_string();
    let mut table = load_reader(input.reader, &name, local_asn);
    if let Some(mut child) = input.child {
        // The pipe is at EOF (or we stopped reading): bzip2 ends on its own.
        let _ = child.kill();
        if let Ok(st) = child.wait() {
            if !st.success() && table.stats.truncated.is_empty() {
                table
                    .stats
                    .truncated
                    .push(format!("{name}: bzip2 reports a damaged or cut stream"));
            }
        }
    }
    Ok(table)
}

/// Load several files in parallel (one thread per file, at most one per core)
/// and merge them in command-line order.
fn load_all(paths: &[PathBuf], local_asn: Option<u32>) -> Result<Table> {
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .min(paths.len())
        .max(1);
    let next = AtomicUsize::new(0);
    let results: Vec<std::sync::Mutex<Option<Result<Table>>>> =
        paths.iter().map(|_| std::sync::Mutex::new(None)).collect();
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= paths.len() {
                    break;
                }
                let r = load_file(&paths[i], local_asn);
                if let Ok(mut slot) = results[i].lock() {
                    *slot = Some(r);
                }
            });
        }
    });
    let mut table = Table::default();
    for r in results {
        let t = r
            .into_inner()
            .map_err(|_| anyhow!("loader thread panicked"))?
            .ok_or_else(|| anyhow!("loader thread did not finish"))??;
        table.merge(t);
    }
    for p in &mut table.peers {
        p.seal();
    }
    Ok(table)
}

// ---------------------------------------------------------------------------
// Attribute conversion
// ---------------------------------------------------------------------------

fn community_value(c: &Community) -> u32 {
    match c {
        Community::NoExport => 0xFFFF_FF01,
        Community::NoAdvertise => 0xFFFF_FF02,
        Community::NoExportSubConfed => 0xFFFF_FF03,
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
    let flags = buf[0];
    let code = buf[1];
    let start = if flags & 0x10 != 0 { 4 } else { 3 };
    Some((flags, code, buf.get(start..)?.to_vec()))
}

fn is_link_local(a: &Ipv6Addr) -> bool {
    (a.segments()[0] & 0xffc0) == 0xfe80
}

/// Next hop (global, link-local) from an MP_REACH next hop, for IPv6 NLRI.
fn v6_next_hop(nh: &NextHopAddress) -> Option<(Ipv6Addr, Option<Ipv6Addr>)> {
    match *nh {
        NextHopAddress::Ipv6(a) => Some((a, None)),
        NextHopAddress::Ipv6LinkLocal(a, b) => {
            if is_link_local(&a) && !is_link_local(&b) {
                Some((b, Some(a)))
            } else {
                Some((a, is_link_local(&b).then_some(b)))
            }
        }
        _ => None,
    }
}

/// Our `PathAttrs` for a route of family `afi` from the MRT attributes.
/// `None` when the route cannot be announced (no next hop usable for the family).
/// LOCAL_PREF is kept only for iBGP peers (default 100 when the dump has none).
fn convert_attrs(attrs: Attributes, afi: Afi, ibgp: bool) -> Option<PathAttrs> {
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
        pa.local_pref = Some(local_pref.unwrap_or(100));
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

// ---------------------------------------------------------------------------
// Rendering (--list-peers, --dump-text)
// ---------------------------------------------------------------------------

fn origin_str(o: Origin) -> &'static str {
    match o {
        Origin::Igp => "IGP",
        Origin::Egp => "EGP",
        Origin::Incomplete => "INCOMPLETE",
    }
}

fn communities_str(pa: &PathAttrs) -> String {
    let mut parts: Vec<String> = pa
        .communities
        .iter()
        .map(|c| format!("{}:{}", c >> 16, c & 0xffff))
        .collect();
    parts.extend(
        pa.large_communities
            .iter()
            .map(|l| format!("{}:{}:{}", l[0], l[1], l[2])),
    );
    parts.join(" ")
}

/// One `--dump-text` line.
fn route_line(peer_ip: IpAddr, prefix: &Prefix, pa: &PathAttrs) -> String {
    format!(
        "{}|{}|{}|{}|{}|{}|{}",
        peer_ip,
        prefix,
        pa.as_path,
        origin_str(pa.origin),
        pa.next_hop.map(|n| n.to_string()).unwrap_or_default(),
        pa.med.map(|m| m.to_string()).unwrap_or_default(),
        communities_str(pa),
    )
}

/// Source address of peer `index`: `base + index` (carrying into higher octets).
fn bind_addr(base: IpAddr, index: usize) -> Option<IpAddr> {
    match base {
        IpAddr::V4(b) => u32::from(b)
            .checked_add(u32::try_from(index).ok()?)
            .map(|a| IpAddr::V4(Ipv4Addr::from(a))),
        IpAddr::V6(b) => u128::from(b)
            .checked_add(index as u128)
            .map(|a| IpAddr::V6(Ipv6Addr::from(a))),
    }
}

/// BGP identifier of peer `index`: 10.0.0.0 + index + 1.
fn router_id(index: usize) -> Ipv4Addr {
    Ipv4Addr::from(0x0A00_0000u32.wrapping_add((index as u32 & 0x00ff_ffff) + 1))
}

fn selected(args: &Args, index: usize) -> bool {
    args.peers.as_ref().is_none_or(|s| s.contains(&index))
}

fn stats_json(table: &Table) -> serde_json::Value {
    let s = &table.stats;
    json!({
        "event": "loaded",
        "files": s.files,
        "records": s.records,
        "entries": s.entries,
        "peers": table.peers.len(),
        "routes": table.peers.iter().map(|p| p.total()).sum::<usize>(),
        "groups": table.peers.iter().map(|p| p.groups.len()).sum::<usize>(),
        "skipped": table.peers.iter().map(|p| p.skipped).sum::<usize>(),
        "duplicates": table.peers.iter().map(|p| p.duplicates).sum::<usize>(),
        "other_records": s.other_records,
        "parse_errors": s.parse_errors,
        "truncated": s.truncated,
        "t": now_t(),
    })
}

fn list_peers_json(table: &Table, args: &Args) -> serde_json::Value {
    let peers: Vec<serde_json::Value> = table
        .peers
        .iter()
        .enumerate()
        .filter(|(i, p)| selected(args, *i) && p.total() > 0)
        .map(|(i, p)| {
            json!({
                "index": i,
                "peer_ip": p.ip.to_string(),
                "peer_asn": p.asn,
                "bind": bind_addr(args.bind_base, i).map(|a| a.to_string()),
                "router_id": router_id(i).to_string(),
                "v4": p.counts[0],
                "v6": p.counts[1],
                "skipped": p.skipped,
                "duplicates": p.duplicates,
            })
        })
        .collect();
    serde_json::Value::Array(peers)
}

fn dump_text(table: &Table, args: &Args) -> std::io::Result<()> {
    let mut out = BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    for (i, p) in table.peers.iter().enumerate() {
        if !selected(args, i) {
            continue;
        }
        for g in &p.groups {
            for prefix in &g.prefixes {
                writeln!(out, "{}", route_line(p.ip, prefix, &g.attrs))?;
            }
        }
    }
    out.flush()
}

// ---------------------------------------------------------------------------
// Encoding
// ---------------------------------------------------------------------------

/// All UPDATEs for one peer, ready to write.
#[derive(Debug)]
struct Encoded {
    buf: Vec<u8>,
    updates: usize,
    prefixes: usize,
    as4: bool,
    max_len: usize,
    afis: [bool; 2],
}

/// Walk complete BGP messages in `buf`; returns how many, or an error if the
/// framing is broken.
fn count_messages(buf: &[u8]) -> Result<usize> {
    let mut pos = 0;
    let mut n = 0;
    while pos < buf.len() {
        if buf.len() - pos < wire::HEADER_LEN {
            bail!("encoder output ends inside a header at byte {pos}");
        }
        let len = usize::from(u16::from_be_bytes([buf[pos + 16], buf[pos + 17]]));
        if len < wire::HEADER_LEN || pos + len > buf.len() {
            bail!("encoder output has a bad message length {len} at byte {pos}");
        }
        pos += len;
        n += 1;
    }
    Ok(n)
}

fn encode_groups(groups: &[Group], as4: bool, max_len: usize, afis: [bool; 2]) -> Result<Encoded> {
    let ctx = EncodeCtx { as4, max_len };
    let prefixes: usize = groups
        .iter()
        .filter(|g| afis[g.afi.index()])
        .map(|g| g.prefixes.len())
        .sum();
    let mut buf = Vec::with_capacity(prefixes * 6 + groups.len() * 96);
    for g in groups.iter().filter(|g| afis[g.afi.index()]) {
        wire::encode_announce(&ctx, g.afi, &g.prefixes, &g.attrs, &mut buf);
    }
    let updates = count_messages(&buf)?;
    Ok(Encoded {
        buf,
        updates,
        prefixes,
        as4,
        max_len,
        afis,
    })
}

// ---------------------------------------------------------------------------
// Sessions
// ---------------------------------------------------------------------------

struct PeerPlan {
    index: usize,
    ip: IpAddr,
    asn: u32,
    bind: IpAddr,
    router_id: Ipv4Addr,
    groups: Vec<Group>,
    has: [bool; 2],
}

struct Shared {
    target: SocketAddr,
    hold_time: u16,
    extended_message: bool,
    connect_timeout: Duration,
}

/// Why a session task ended.
#[derive(Debug)]
enum PeerError {
    Notification(Notification),
    Other(anyhow::Error),
}

impl From<anyhow::Error> for PeerError {
    fn from(e: anyhow::Error) -> Self {
        PeerError::Other(e)
    }
}

impl From<std::io::Error> for PeerError {
    fn from(e: std::io::Error) -> Self {
        PeerError::Other(e.into())
    }
}

/// Read one BGP message: (type, body).
async fn read_msg<R: AsyncReadExt + Unpin>(rd: &mut R) -> std::io::Result<(u8, Vec<u8>)> {
    let mut hdr = [0u8; wire::HEADER_LEN];
    rd.read_exact(&mut hdr).await?;
    if hdr[..16].iter().any(|&b| b != 0xff) {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "bad BGP marker from the receiver",
        ));
    }
    let len = usize::from(u16::from_be_bytes([hdr[16], hdr[17]]));
    if len < wire::HEADER_LEN {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("bad BGP message length {len} from the receiver"),
        ));
    }
    let mut body = vec![0u8; len - wire::HEADER_LEN];
    rd.read_exact(&mut body).await?;
    Ok((hdr[18], body))
}

fn notification_json(peer: &PeerPlan, n: &Notification, received: bool) -> serde_json::Value {
    let data: String = n.data.iter().map(|b| format!("{b:02x}")).collect();
    json!({
        "event": "notification",
        "peer": peer.index,
        "peer_ip": peer.ip.to_string(),
        "direction": if received { "received" } else { "sent" },
        "code": n.code,
        "subcode": n.subcode,
        "name": wire::notification_name(n.code, n.subcode),
        "data": data,
        "t": now_t(),
    })
}

async fn connect_once(bind: IpAddr, target: SocketAddr) -> std::io::Result<TcpStream> {
    let sock = match target {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    sock.set_reuseaddr(true)?;
    let _ = sock.set_send_buffer_size(4 << 20);
    sock.bind(SocketAddr::new(bind, 0))?;
    let s = sock.connect(target).await?;
    s.set_nodelay(true)?;
    Ok(s)
}

/// An established session: the halves and what was negotiated.
struct Established {
    rd: tokio::io::BufReader<OwnedReadHalf>,
    wr: OwnedWriteHalf,
    as4: bool,
    max_len: usize,
    afis: [bool; 2],
    hold: u16,
}

/// Connect, exchange OPENs and KEEPALIVEs. Connection failures before
/// Established are retried until `connect_timeout`; a NOTIFICATION is final.
async fn establish(shared: &Shared, peer: &PeerPlan) -> Result<Established, PeerError> {
    let deadline = Instant::now() + shared.connect_timeout;
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        let left = deadline.saturating_duration_since(Instant::now());
        let r = tokio::time::timeout(
            left.max(Duration::from_millis(1)),
            try_establish(shared, peer),
        )
        .await
        .unwrap_or_else(|_| Err(PeerError::Other(anyhow!("timed out establishing"))));
        match r {
            Ok(e) => return Ok(e),
            Err(PeerError::Notification(n)) => return Err(PeerError::Notification(n)),
            Err(PeerError::Other(e)) => {
                if Instant::now() + Duration::from_millis(250) >= deadline || attempt >= 10_000 {
                    return Err(PeerError::Other(e.context(format!(
                        "no session from {} to {} after {attempt} attempts",
                        peer.bind, shared.target
                    ))));
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
    }
}

async fn try_establish(shared: &Shared, peer: &PeerPlan) -> Result<Established, PeerError> {
    let stream = connect_once(peer.bind, shared.target)
        .await
        .with_context(|| format!("connecting {} -> {}", peer.bind, shared.target))?;
    let (rd, mut wr) = stream.into_split();
    let mut rd = tokio::io::BufReader::with_capacity(1 << 16, rd);
    let open = Open {
        asn: peer.asn,
        my_as: u16::try_from(peer.asn).unwrap_or(wire::AS_TRANS as u16),
        hold_time: shared.hold_time,
        router_id: peer.router_id,
        caps: Capabilities {
            multiprotocol: vec![Afi::Ipv4, Afi::Ipv6],
            as4: Some(peer.asn),
            route_refresh: true,
            extended_message: shared.extended_message,
            graceful_restart: None,
            other: Vec::new(),
        },
    };
    wr.write_all(&wire::encode_open(&open)).await?;
    let (ty, body) = read_msg(&mut rd).await?;
    let theirs = match ty {
        wire::MSG_OPEN => {
            wire::decode_open(&body).map_err(|e| anyhow!("receiver's OPEN does not decode: {e}"))?
        }
        wire::MSG_NOTIFICATION => {
            return Err(PeerError::Notification(wire::decode_notification(&body)))
        }
        t => return Err(anyhow!("expected OPEN, got message type {t}").into()),
    };
    wr.write_all(&wire::encode_keepalive()).await?;
    // OpenConfirm: the receiver's KEEPALIVE (an UPDATE also proves Established).
    let (ty, body) = read_msg(&mut rd).await?;
    match ty {
        wire::MSG_KEEPALIVE | wire::MSG_UPDATE => {}
        wire::MSG_NOTIFICATION => {
            return Err(PeerError::Notification(wire::decode_notification(&body)))
        }
        t => return Err(anyhow!("expected KEEPALIVE, got message type {t}").into()),
    }
    let mp = &theirs.caps.multiprotocol;
    let afis = if mp.is_empty() {
        [true, false]
    } else {
        [mp.contains(&Afi::Ipv4), mp.contains(&Afi::Ipv6)]
    };
    Ok(Established {
        rd,
        wr,
        as4: theirs.caps.as4.is_some(),
        max_len: if shared.extended_message && theirs.caps.extended_message {
            wire::MAX_EXT_MSG_LEN
        } else {
            wire::MAX_MSG_LEN
        },
        afis,
        hold: shared.hold_time.min(theirs.hold_time),
    })
}

/// How the reading side of a session ended.
#[derive(Debug)]
enum ReadEnd {
    Notification(Notification),
    HoldExpired,
    Io(std::io::Error),
}

/// Read and discard everything the receiver sends, until it closes, sends a
/// NOTIFICATION, or stays silent past the hold time.
async fn read_loop(mut rd: tokio::io::BufReader<OwnedReadHalf>, hold: u16) -> ReadEnd {
    loop {
        let r = if hold == 0 {
            read_msg(&mut rd).await
        } else {
            match tokio::time::timeout(Duration::from_secs(hold.into()), read_msg(&mut rd)).await {
                Ok(r) => r,
                Err(_) => return ReadEnd::HoldExpired,
            }
        };
        match r {
            Ok((wire::MSG_NOTIFICATION, body)) => {
                return ReadEnd::Notification(wire::decode_notification(&body))
            }
            Ok(_) => {}
            Err(e) => return ReadEnd::Io(e),
        }
    }
}

fn read_end_error(r: Result<ReadEnd, tokio::task::JoinError>) -> PeerError {
    match r {
        Ok(ReadEnd::Notification(n)) => PeerError::Notification(n),
        Ok(ReadEnd::HoldExpired) => PeerError::Other(anyhow!("hold timer expired")),
        Ok(ReadEnd::Io(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            PeerError::Other(anyhow!("receiver closed the connection"))
        }
        Ok(ReadEnd::Io(e)) => PeerError::Other(anyhow!("reading from receiver: {e}")),
        Err(e) => PeerError::Other(anyhow!("reader task: {e}")),
    }
}

async fn send_cease(wr: &mut OwnedWriteHalf) {
    let n = Notification {
        code: wire::code::CEASE,
        subcode: wire::cease::ADMIN_SHUTDOWN,
        data: Vec::new(),
    };
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        let _ = wr.write_all(&wire::encode_notification(&n)).await;
        let _ = wr.shutdown().await;
    })
    .await;
}

/// Resolves once the stop flag is set (or its sender is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|&v| v).await;
}

/// One session: establish, send everything, End-of-RIB, keep alive until stopped.
async fn run_peer(
    shared: Arc<Shared>,
    peer: Arc<PeerPlan>,
    pre: Arc<Encoded>,
    sent_tx: mpsc::UnboundedSender<usize>,
    mut stop: watch::Receiver<bool>,
) -> Result<(), PeerError> {
    let est = tokio::select! {
        r = establish(&shared, &peer) => r?,
        _ = stopped(&mut stop) => return Ok(()),
    };
    let Established {
        rd,
        mut wr,
        as4,
        max_len,
        afis,
        hold,
    } = est;
    emit(json!({
        "event": "established",
        "peer": peer.index,
        "peer_ip": peer.ip.to_string(),
        "asn": peer.asn,
        "bind": peer.bind.to_string(),
        "as4": as4,
        "max_len": max_len,
        "ipv6": afis[1],
        "hold": hold,
        "t": now_t(),
    }));
    if !afis[1] && peer.has[1] {
        emit(json!({"event": "warning", "peer": peer.index,
            "msg": "receiver did not negotiate IPv6 unicast: IPv6 routes not sent"}));
    }
    let mut reader = tokio::spawn(read_loop(rd, hold));
    let enc = if pre.as4 == as4 && pre.max_len == max_len && pre.afis == afis {
        pre
    } else {
        let p = peer.clone();
        Arc::new(
            tokio::task::spawn_blocking(move || encode_groups(&p.groups, as4, max_len, afis))
                .await
                .map_err(|e| anyhow!("encoder task: {e}"))??,
        )
    };
    // Families whose End-of-RIB we send: every negotiated one.
    let send = async {
        wr.write_all(&enc.buf).await?;
        for afi in Afi::ALL {
            if afis[afi.index()] {
                wr.write_all(&wire::encode_end_of_rib(afi)).await?;
            }
        }
        wr.flush().await
    };
    tokio::select! {
        r = send => r.context("sending UPDATEs")?,
        r = &mut reader => return Err(read_end_error(r)),
        _ = stopped(&mut stop) => {
            reader.abort();
            send_cease(&mut wr).await;
            return Ok(());
        }
    }
    emit(json!({
        "event": "sent",
        "peer": peer.index,
        "peer_ip": peer.ip.to_string(),
        "updates": enc.updates,
        "prefixes": enc.prefixes,
        "bytes": enc.buf.len(),
        "t": now_t(),
    }));
    let _ = sent_tx.send(peer.index);
    let keepalive = wire::encode_keepalive();
    let every = Duration::from_secs(u64::from((hold / 3).max(1)));
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    loop {
        tokio::select! {
            _ = ticker.tick(), if hold > 0 => {
                wr.write_all(&keepalive).await.context("sending KEEPALIVE")?;
            }
            r = &mut reader => return Err(read_end_error(r)),
            _ = stopped(&mut stop) => {
                reader.abort();
                send_cease(&mut wr).await;
                return Ok(());
            }
        }
    }
}

/// Watch stdin if it is a pipe or socket: its EOF ends the replay. (A
/// terminal or /dev/null is ignored, so `< /dev/null` does not stop us.)
fn watch_stdin() -> Option<mpsc::UnboundedReceiver<()>> {
    use std::os::unix::fs::FileTypeExt;
    let ft = std::fs::metadata("/dev/stdin").ok()?.file_type();
    if !(ft.is_fifo() || ft.is_socket()) {
        return None;
    }
    let (tx, rx) = mpsc::unbounded_channel();
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin().lock();
        let mut buf = [0u8; 4096];
        loop {
            match stdin.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
        let _ = tx.send(());
    });
    Some(rx)
}

/// Run every session; returns the exit code.
async fn replay(args: &Args, plans: Vec<Arc<PeerPlan>>, encoded: Vec<Arc<Encoded>>) -> Result<i32> {
    let target = args
        .connect
        .ok_or_else(|| anyhow!("--connect is required to replay"))?;
    let shared = Arc::new(Shared {
        target,
        hold_time: args.hold_time,
        extended_message: args.extended_message,
        connect_timeout: Duration::from_secs_f64(args.connect_timeout.max(0.1)),
    });
    let timeout = args.timeout.unwrap_or(args.linger + 300.0).max(0.1);
    let global_deadline =
        tokio::time::Instant::from_std(start_time()) + Duration::from_secs_f64(timeout.min(1e9));
    let linger = Duration::from_secs_f64(args.linger.clamp(0.0, 1e9));
    let (stop_tx, stop_rx) = watch::channel(false);
    let (sent_tx, mut sent_rx) = mpsc::unbounded_channel();
    let mut set = JoinSet::new();
    let n = plans.len();
    for (p, e) in plans.iter().zip(encoded) {
        let peer = p.clone();
        let fut = run_peer(
            shared.clone(),
            p.clone(),
            e,
            sent_tx.clone(),
            stop_rx.clone(),
        );
        set.spawn(async move { (peer, fut.await) });
    }
    drop(sent_tx);
    let mut stdin_rx = watch_stdin();
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut sigint = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;

    let mut sent = 0usize;
    let mut done_at: Option<tokio::time::Instant> = None;
    let mut code = 0;
    let reason;
    loop {
        let linger_end = done_at.map(|t| t + linger).unwrap_or(global_deadline);
        tokio::select! {
            Some(_) = sent_rx.recv() => {
                sent += 1;
                if sent == n {
                    emit(json!({"event": "done", "peers": n, "t": now_t()}));
                    done_at = Some(tokio::time::Instant::now());
                }
            }
            Some(res) = set.join_next() => {
                match res {
                    Ok((peer, Err(PeerError::Notification(nf)))) => {
                        emit(notification_json(&peer, &nf, true));
                        reason = format!("peer {} ({}) received NOTIFICATION", peer.index, peer.ip);
                    }
                    Ok((peer, Err(PeerError::Other(e)))) => {
                        emit(json!({"event": "error", "peer": peer.index,
                            "peer_ip": peer.ip.to_string(), "msg": format!("{e:#}"), "t": now_t()}));
                        reason = format!("peer {} ({}): {e:#}", peer.index, peer.ip);
                    }
                    Ok((peer, Ok(()))) => {
                        reason = format!("peer {} session ended", peer.index);
                    }
                    Err(e) => reason = format!("session task failed: {e}"),
                }
                code = 1;
                break;
            }
            _ = tokio::time::sleep_until(linger_end), if done_at.is_some() => {
                reason = "linger time over".to_string();
                break;
            }
            _ = tokio::time::sleep_until(global_deadline) => {
                reason = format!("--timeout {timeout} s reached");
                if done_at.is_none() {
                    code = 2;
                }
                break;
            }
            r = async { match stdin_rx.as_mut() { Some(rx) => rx.recv().await, None => std::future::pending().await } } => {
                let _ = r;
                reason = "stdin closed".to_string();
                break;
            }
            _ = sigterm.recv() => { reason = "SIGTERM".to_string(); break; }
            _ = sigint.recv() => { reason = "SIGINT".to_string(); break; }
        }
    }
    if code != 0 || done_at.is_none() {
        eprintln!("sparrow-replay: stopping: {reason}");
    }
    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(res) = set.join_next().await {
            if let Ok((peer, Err(PeerError::Notification(nf)))) = res {
                emit(notification_json(&peer, &nf, true));
                code = code.max(1);
            }
        }
    })
    .await;
    emit(json!({"event": "exit", "code": code, "reason": reason, "t": now_t()}));
    Ok(code)
}

fn real_main(args: Args) -> Result<i32> {
    if let Some(c) = args.connect {
        if !c.ip().is_loopback() {
            bail!("--connect {c}: only loopback targets are allowed");
        }
    }
    if !(args.linger >= 0.0 && args.linger.is_finite()) {
        bail!("--linger must be a non-negative number of seconds");
    }
    let table = load_all(&args.mrt, args.local_asn)?;
    if args.list_peers {
        eprintln!("{}", stats_json(&table));
        println!("{}", list_peers_json(&table, &args));
        return Ok(0);
    }
    if args.dump_text {
        eprintln!("{}", stats_json(&table));
        if let Err(e) = dump_text(&table, &args) {
            if e.kind() != std::io::ErrorKind::BrokenPipe {
                return Err(e.into());
            }
        }
        return Ok(0);
    }
    if args.connect.is_none() {
        bail!("--connect ADDR:PORT is required (or use --list-peers / --dump-text)");
    }
    emit(stats_json(&table));
    let mut plans = Vec::new();
    for (i, p) in table.peers.into_iter().enumerate() {
        if !selected(&args, i) || p.total() == 0 {
            continue;
        }
        let bind = bind_addr(args.bind_base, i)
            .filter(|a| a.is_loopback())
            .ok_or_else(|| {
                anyhow!(
                    "peer {i}: source address {} + {i} is not a loopback address",
                    args.bind_base
                )
            })?;
        plans.push(Arc::new(PeerPlan {
            index: i,
            ip: p.ip,
            asn: p.asn,
            bind,
            router_id: router_id(i),
            has: [p.counts[0] > 0, p.counts[1] > 0],
            groups: p.groups,
        }));
    }
    if plans.is_empty() {
        bail!("no routes to replay");
    }
    // Pre-encode for the likely negotiation (4-octet AS, both families).
    let max_len = if args.extended_message {
        wire::MAX_EXT_MSG_LEN
    } else {
        wire::MAX_MSG_LEN
    };
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .min(plans.len());
    let next = AtomicUsize::new(0);
    let slots: Vec<std::sync::Mutex<Option<Result<Encoded>>>> =
        plans.iter().map(|_| std::sync::Mutex::new(None)).collect();
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= plans.len() {
                    break;
                }
                let r = encode_groups(&plans[i].groups, true, max_len, [true, true]);
                if let Ok(mut slot) = slots[i].lock() {
                    *slot = Some(r);
                }
            });
        }
    });
    let mut encoded = Vec::new();
    for s in slots {
        let e = s
            .into_inner()
            .map_err(|_| anyhow!("encoder thread panicked"))?
            .ok_or_else(|| anyhow!("encoder thread did not finish"))??;
        encoded.push(Arc::new(e));
    }
    emit(json!({
        "event": "encoded",
        "peers": plans.len(),
        "updates": encoded.iter().map(|e| e.updates).sum::<usize>(),
        "prefixes": encoded.iter().map(|e| e.prefixes).sum::<usize>(),
        "bytes": encoded.iter().map(|e| e.buf.len()).sum::<usize>(),
        "t": now_t(),
    }));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(replay(&args, plans, encoded))
}

fn main() {
    let _ = start_time();
    let args = Args::parse();
    let code = match real_main(args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("sparrow-replay: {e:#}");
            1
        }
    };
    let _ = std::io::stdout().flush();
    std::process::exit(code);
}

#[cfg(test)]
mod tests {
    use super::*;
    use bgpkit_parser::encoder::MrtRibEncoder;
    use bgpkit_parser::models::{Asn, BgpElem, LargeCommunity, MetaCommunity};
    use std::str::FromStr;

    fn data_dir() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data")
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
    fn community_values() {
        assert_eq!(community_value(&Community::NoExport), 0xFFFF_FF01);
        assert_eq!(
            community_value(&Community::Custom(Asn::new_16bit(3257), 4000)),
            (3257 << 16) | 4000
        );
    }

    #[test]
    fn bind_and_router_id() {
        let base = IpAddr::from_str("127.0.1.1").unwrap();
        assert_eq!(bind_addr(base, 0).unwrap().to_string(), "127.0.1.1");
        assert_eq!(bind_addr(base, 35).unwrap().to_string(), "127.0.1.36");
        assert_eq!(bind_addr(base, 300).unwrap().to_string(), "127.0.2.45");
        assert_eq!(router_id(0).to_string(), "10.0.0.1");
        assert_ne!(router_id(1), router_id(2));
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

    #[test]
    fn truncated_stream_stops_cleanly() {
        let elems: Vec<BgpElem> = (0..200u32)
            .map(|i| {
                elem(
                    "192.0.2.9",
                    65001,
                    &format!("10.{}.{}.0/24", i / 256, i % 256),
                    &[65001, i + 1],
                    "192.0.2.9",
                )
            })
            .collect();
        let bytes = tdv2(&elems);
        let full = load_reader(&bytes[..], "full", None);
        assert_eq!(full.peers[0].total(), 200);
        let cut = &bytes[..bytes.len() * 2 / 3];
        let t = load_reader(cut, "cut", None);
        assert_eq!(t.stats.truncated.len(), 1, "{:?}", t.stats);
        let n = t.peers[0].total();
        assert!(n > 50 && n < 200, "{n}");
    }

    #[test]
    fn count_messages_framing() {
        let mut buf = vec![0xffu8; 16];
        buf.extend_from_slice(&[0, 19, 4]);
        let one = buf.clone();
        buf.extend_from_slice(&one);
        assert_eq!(count_messages(&buf).unwrap(), 2);
        assert!(count_messages(&buf[..30]).is_err());
    }

    /// The 2002 RIS dump (TABLE_DUMP v1) matches bgpdump's entry count.
    #[test]
    fn ris_2002_table_dump_v1() {
        let path = data_dir().join("ris-bview.20020722.2337.gz");
        if !path.exists() {
            eprintln!("skipping: {} not present", path.display());
            return;
        }
        let t = load_all(&[path], None).unwrap();
        assert!(t.stats.truncated.is_empty(), "{:?}", t.stats.truncated);
        assert_eq!(t.stats.entries, 115_521);
        let routes: usize = t.peers.iter().map(|p| p.total()).sum();
        assert_eq!(routes, 115_521);
        assert_eq!(t.peers[0].ip.to_string(), "193.203.0.1");
        assert_eq!(t.peers[0].asn, 1853);
    }

    /// The cut bz2 RouteViews TABLE_DUMP_V2 file ends cleanly.
    #[test]
    fn routeviews_truncated_bz2() {
        let path = data_dir().join("routeviews-rib.20140523.0600.firstMB.bz2");
        if !path.exists() || Command::new("bzip2").arg("--help").output().is_err() {
            eprintln!("skipping: no data or no bzip2");
            return;
        }
        let t = load_all(&[path], None).unwrap();
        assert!(t.peers.iter().map(|p| p.total()).sum::<usize>() > 1000);
        assert!(!t.stats.truncated.is_empty());
    }
}
