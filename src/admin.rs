//! Admin socket: a Unix stream socket (mode 0600 by default) speaking one JSON
//! request line in, JSON lines out, then close. `sparrowctl` is its client.
//!
//! Replies are the serde types of `reply` (the RIB's own from
//! `crate::rib::reply`), sent as JSON.
//!
//! Owns the socket file. Talks to: `session` (peer status, reset), `rib`
//! (queries over the RIB channel, counters read lock-free from `RibStats`),
//! `pops` (drain/undrain/force/load in `operator`, saved to the state file;
//! up/drained state; the pick for `lookup`), `health` (check status) and `dns` (what each steered name
//! answers, for `explain`).

use std::io;
use std::net::IpAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, warn};

use crate::config::{Config, Role};
use crate::rib::{Query, QueryReply, RibMsg, RibStats};
use crate::session::{PeerCtl, Peers};
use crate::steer;
use crate::types::{Afi, PerFamily, Prefix};

mod health;
pub(crate) use health::health_reply;
mod operator;
pub mod reply;

use reply::{
    BestPath, ExplainReply, PeerReply, PeerTotals, PeersReply, PopAsn, PopInfo, PopRankState,
    PopsReply, ResetReply, SteeringSummary, SummaryReply,
};

/// A request on the admin socket.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "lowercase")]
pub enum Request {
    Peers,
    Route {
        target: String,
        #[serde(default)]
        exact: bool,
    },
    Summary,
    /// Total paths held, O(1).
    Paths,
    /// Every path, one JSON object per line.
    Dump,
    /// Administrative reset of a peer's session.
    Reset {
        peer: String,
    },
    /// Why an address gets its POP: snapshot decision, RIB best path, POP ASN found.
    Explain {
        target: String,
        /// Only what this query name answers (through its wildcard, if any).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
    },
    /// Streaming: after this request, each line in (an address) gets one line out
    /// (the chosen POP's name, or `NULL` for input that is not an address).
    Lookup,
    /// Every POP: local, up (sessions), drained (operator).
    Pops,
    /// Every checked target with each check's state; every POP's load.
    Health,
    /// Every anycast prefix: state, reason, time since the last change, peers.
    Announcements,
    /// Stop answering with a POP (saved in the state file).
    Drain {
        pop: String,
        /// Who asked, as the client says (logged beside the socket peer's uid/pid).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        by: Option<String>,
    },
    /// Re-read the config file: apply zones, report sections needing a restart.
    Reload,
    /// Answer with a drained POP again.
    Undrain {
        pop: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        by: Option<String>,
    },
    /// Force a POP, or one of its addresses (`address`), up, down or back
    /// to auto (saved in the state file).
    Force {
        pop: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        address: Option<String>,
        state: crate::pops::Force,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        by: Option<String>,
    },
    /// Set a POP's load figure (0..1), or `None` for back to the measured one
    /// (saved in the state file).
    Load {
        pop: String,
        #[serde(default)]
        load: Option<f64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        by: Option<String>,
    },
}

/// Admin errors.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("admin socket {path}: {source}")]
    Bind { path: PathBuf, source: io::Error },
    /// No permission to create the socket or its directory: the default
    /// `/run/sparrow` is made by systemd (`RuntimeDirectory=sparrow`) or root.
    #[error(
        "admin socket {path}: this user may not create it (under systemd, \
RuntimeDirectory=sparrow makes /run/sparrow for the sparrow user); without root, set \
admin.socket to a path you can create (e.g. /tmp/sparrow.sock, as the embedded \
default config does) and give sparrowctl the same path (--socket or $SPARROW_SOCKET)"
    )]
    Denied { path: PathBuf, source: io::Error },
}

/// Shared handles the admin server needs.
pub struct AdminCtx {
    pub cfg: Arc<Config>,
    pub peers: Arc<Peers>,
    pub rib: mpsc::Sender<RibMsg>,
    pub stats: Arc<RibStats>,
    pub started: Instant,
    /// The published steering snapshot (`steer::select` on it decides every answer).
    pub steering: steer::Handle,
    /// POP up/drained state (drain/undrain write it).
    pub pops: Arc<crate::pops::PopState>,
    /// `admin.state_file`: operator changes are saved through it.
    pub store: Arc<crate::pops::StateStore>,
    /// The DNS authority (explain lists what each steered name answers).
    pub dns: crate::dns::Shared,
    /// Config reload (`reload`).
    pub reload: Arc<crate::reload::Reloader>,
    /// The health checks' status (`health`).
    pub health: Arc<crate::health::Status>,
    /// The anycast controller (`announcements`).
    pub announcer: Arc<crate::announce::Announcer>,
}

/// Bind the socket (replacing a stale file, creating a missing directory)
/// with file mode `mode` (`Config::admin_mode`, parsed at config load). No
/// permission there is [`AdminError::Denied`], whose message says how to run
/// without root.
pub fn bind(path: &Path, mode: u32) -> Result<UnixListener, AdminError> {
    let err = |source: io::Error| {
        let path = path.to_path_buf();
        if source.kind() == io::ErrorKind::PermissionDenied {
            AdminError::Denied { path, source }
        } else {
            AdminError::Bind { path, source }
        }
    };
    if path.exists() {
        // A live daemon on it would answer; a stale file would not.
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(err(io::Error::new(
                io::ErrorKind::AddrInUse,
                "another daemon is listening on it",
            )));
        }
        std::fs::remove_file(path).map_err(err)?;
    }
    if let Some(dir) = path.parent() {
        if !dir.as_os_str().is_empty() {
            std::fs::create_dir_all(dir).map_err(err)?;
        }
    }
    let l = UnixListener::bind(path).map_err(err)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(err)?;
    Ok(l)
}

/// Serve admin connections forever.
pub async fn serve(listener: UnixListener, ctx: Arc<AdminCtx>) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let ctx = ctx.clone();
                tokio::spawn(async move {
                    if let Err(e) = handle(stream, &ctx).await {
                        debug!(error = %e, "admin connection");
                    }
                });
            }
            Err(e) => {
                warn!(error = %e, "admin accept");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

async fn handle(stream: UnixStream, ctx: &AdminCtx) -> io::Result<()> {
    let who = Caller::of(&stream);
    let (rd, mut wr) = stream.into_split();
    let mut rd = BufReader::new(rd);
    let mut line = String::new();
    rd.read_line(&mut line).await?;
    let req: Request = match serde_json::from_str(line.trim()) {
        Ok(r) => r,
        Err(e) => {
            return write_json(
                &mut wr,
                &json!({"ok": false, "error": format!("bad request: {e}")}),
            )
            .await
        }
    };
    match req {
        Request::Dump => return dump(&mut wr, ctx).await,
        Request::Lookup => return lookup(rd, &mut wr, ctx).await,
        _ => {}
    }
    let reply = match answer(req, ctx, &who).await {
        Ok(data) => json!({"ok": true, "data": data}),
        Err(e) => json!({"ok": false, "error": e}),
    };
    write_json(&mut wr, &reply).await
}

/// The process on the other end of an admin connection (for the drain log).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Caller {
    uid: Option<u32>,
    pid: Option<i32>,
}

impl Caller {
    fn of(stream: &UnixStream) -> Caller {
        match stream.peer_cred() {
            Ok(c) => Caller {
                uid: Some(c.uid()),
                pid: c.pid(),
            },
            Err(_) => Caller::default(),
        }
    }
}

/// `pops`: the POP state plus each POP's ASN and whether answers may use it.
/// `announcements`: the controller's rows, with the peers whose session
/// has each prefix (from their status).
pub(crate) fn announcements_reply(ctx: &AdminCtx) -> reply::AnnouncementsReply {
    let mut rows = ctx.announcer.rows();
    for (i, pc) in ctx.cfg.peers.iter().enumerate() {
        let originated = ctx.peers.snapshot(i).originated;
        for r in rows.iter_mut().filter(|r| originated.contains(&r.prefix)) {
            r.peers.push(pc.name.clone());
        }
    }
    reply::AnnouncementsReply {
        announcements: rows,
    }
}

pub(crate) fn pops_reply(ctx: &AdminCtx) -> PopsReply {
    let p = &ctx.pops;
    let pops = p
        .names()
        .iter()
        .enumerate()
        .map(|(i, name)| PopInfo {
            name: name.to_string(),
            asn: ctx
                .cfg
                .pops
                .iter()
                .find(|c| *c.name == **name)
                .map(|c| c.asn),
            local: i == p.local(),
            up: p.up(i),
            monitored: p.monitored(i),
            drained: p.drained(i),
            usable: p.usable(i),
            forced: p.forced(i),
            load: p.load(i),
            manual_load: p.manual_load(i).map(|l| (l * 1e6).round() / 1e6),
            low: p.watermarks(i).0,
            high: p.watermarks(i).1,
            forced_addresses: p
                .targets(i)
                .iter()
                .enumerate()
                .filter(|&(t, _)| p.target_forced(i, t) != crate::pops::Force::Auto)
                .map(|(t, a)| (a.to_string(), p.target_forced(i, t)))
                .collect(),
        })
        .collect();
    PopsReply { pops }
}

async fn write_json<W: AsyncWriteExt + Unpin>(w: &mut W, v: &Value) -> io::Result<()> {
    let mut s = serde_json::to_vec(v)?;
    s.push(b'\n');
    w.write_all(&s).await?;
    w.shutdown().await
}

/// A reply as JSON (the `data` of an `ok` answer).
fn data<T: Serialize>(reply: T) -> Result<Value, String> {
    serde_json::to_value(reply).map_err(|e| e.to_string())
}

const WRONG_REPLY: &str = "RIB task answered another query";

async fn ask_rib(ctx: &AdminCtx, query: Query) -> Result<QueryReply, String> {
    let (tx, rx) = oneshot::channel();
    ctx.rib
        .send(RibMsg::Query { query, reply: tx })
        .await
        .map_err(|_| "RIB task is not running".to_string())?;
    rx.await
        .map_err(|_| "RIB task dropped the query".to_string())
}

/// Parse an address for steering; IPv4-mapped IPv6 addresses are their IPv4 address.
pub fn parse_addr(s: &str) -> Option<IpAddr> {
    match s.trim().parse::<IpAddr>().ok()? {
        IpAddr::V6(v6) => Some(v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4)),
        v4 => Some(v4),
    }
}

/// `lookup`: one POP name per address line, flushed line by line (RewriteMap
/// `prg:` style): the POP `pops::pick` chooses (availability, shedding), as
/// if every POP had records; `NULL` when none is usable under `all_down: empty`.
async fn lookup<R, W>(mut rd: R, w: &mut W, ctx: &AdminCtx) -> io::Result<()>
where
    R: AsyncBufReadExt + Unpin,
    W: AsyncWriteExt + Unpin,
{
    let mut line = String::new();
    let mut out = String::new();
    loop {
        line.clear();
        if rd.read_line(&mut line).await? == 0 {
            return w.shutdown().await;
        }
        out.clear();
        match parse_addr(&line) {
            Some(addr) => {
                let snap = ctx.steering.load();
                let d = steer::select(addr, &snap);
                // The DNS rule with every POP serving: the POP answers go to.
                let key = crate::pops::shed_key(addr, d.scope);
                let all = |_| crate::pops::Records::Up;
                let p = crate::pops::pick(
                    d.ranking,
                    key,
                    &*ctx.pops,
                    all,
                    ctx.cfg.health.all_down,
                    |_, _| {},
                );
                out.push_str(p.map_or("NULL", |p| &*d.pops[p.pop]));
            }
            None => out.push_str("NULL"),
        }
        out.push('\n');
        w.write_all(out.as_bytes()).await?;
        w.flush().await?;
    }
}

/// `explain`: the steering decision for an address and the routing facts behind it.
async fn explain(ctx: &AdminCtx, target: &str, name: Option<&str>) -> Result<ExplainReply, String> {
    let addr = parse_addr(target).ok_or_else(|| format!("{target:?} is not an IP address"))?;
    let mut v = {
        let snap = ctx.steering.load();
        let d = steer::select(addr, &snap);
        ExplainReply {
            address: addr.to_string(),
            prefix: d.prefix.map(|p| p.to_string()),
            scope: d.scope,
            ranking: d.names().map(str::to_string).collect(),
            generation: d.generation,
            source: d.source,
            // Drains and downs do not change the ranking; they decide which POP answers.
            ranking_state: d
                .ranking
                .iter()
                .map(|&i| {
                    let i = usize::from(i);
                    PopRankState {
                        pop: d.pops.get(i).map(|n| n.to_string()),
                        local: i == ctx.pops.local(),
                        up: ctx.pops.up(i),
                        drained: ctx.pops.drained(i),
                    }
                })
                .collect(),
            // What each steered name answers, from this same decision.
            answers: ctx.dns.load().zones.explain(&d, addr, &ctx.pops, name),
            ..ExplainReply::default()
        }
    };
    let query = Query::Route {
        prefix: Prefix::host(addr),
        exact: false,
    };
    let QueryReply::Route(route) = ask_rib(ctx, query).await? else {
        return Err(WRONG_REPLY.into());
    };
    let best = route.paths.first();
    // The closest-POP rule, as steering applies it to the Loc-RIB best path.
    let rule = best.map(|b| steer::Ranker::new(&ctx.cfg).closest_pop(b.asns()));
    let found = rule.and_then(|r| {
        let (asn, position) = r.by?;
        Some(PopAsn {
            asn,
            pop: ctx.cfg.pops[usize::from(r.pop)].name.clone(),
            position,
            path_length: r.path_len,
        })
    });
    let first = v.ranking.first().map_or("?", |s| s.as_str());
    v.rule = match (best, &found) {
        // Until the family's first upstream End-of-RIB the static map decides.
        _ if v.source == steer::Source::Fallback => match &v.prefix {
            Some(p) => {
                format!("steering.fallback (the RIB is not used yet): {p} ranks {first} first")
            }
            None => format!(
                "steering.fallback (the RIB is not used yet): no entry covers {addr}, \
                 the default POP ({first}) first"
            ),
        },
        (None, _) => format!("no route covers {addr}: the local POP ({})", ctx.cfg.pop),
        (_, Some(f)) => format!(
            "POP ASN {} ({}) is the last POP ASN in the best path, at position {} of {}",
            f.asn, f.pop, f.position, f.path_length
        ),
        (_, None) => format!(
            "no POP ASN in the best path: the local POP ({})",
            ctx.cfg.pop
        ),
    };
    v.best_path = best.map(|b| BestPath {
        peer: b.peer.clone(),
        as_path: b.as_path.clone(),
        next_hop: b.next_hop.clone(),
        origin: b.origin.clone(),
    });
    v.rib_prefix = route.prefix;
    v.pop_asn = found;
    Ok(v)
}

/// Bytes of JSON lines per dump page: the RIB builds one page per query
/// (a few hundred paths), and the page is written out before the next is asked
/// for, so a dump of any table holds about this much at a time.
const DUMP_PAGE_BYTES: usize = 256 * 1024;

/// Stream every path as JSON lines, one bounded page at a time, so a full
/// table never sits in memory (other queries and RIB work interleave between
/// pages).
async fn dump<W: AsyncWriteExt + Unpin>(w: &mut W, ctx: &AdminCtx) -> io::Result<()> {
    for afi in Afi::ALL {
        let mut start = Some(0);
        while let Some(s) = start {
            let query = Query::DumpPage {
                afi,
                start: s,
                max_bytes: DUMP_PAGE_BYTES,
            };
            let page = match ask_rib(ctx, query).await {
                Ok(QueryReply::DumpPage(p)) => p,
                Ok(_) => return write_json(w, &json!({"ok": false, "error": WRONG_REPLY})).await,
                Err(e) => return write_json(w, &json!({"ok": false, "error": e})).await,
            };
            w.write_all(page.lines.as_bytes()).await?;
            start = page.next;
        }
    }
    w.shutdown().await
}

async fn answer(req: Request, ctx: &AdminCtx, who: &Caller) -> Result<Value, String> {
    match req {
        Request::Pops => data(pops_reply(ctx)),
        Request::Health => data(health::health_reply(ctx)),
        Request::Announcements => data(announcements_reply(ctx)),
        Request::Reload => {
            let r = ctx.reload.clone();
            // Compiling zones is CPU work: off the runtime's worker.
            let res = tokio::task::spawn_blocking(move || r.reload())
                .await
                .map_err(|e| e.to_string())?;
            data(res.map_err(|e| e.to_string())?)
        }
        Request::Drain { pop, by } => {
            data(operator::set_drained(ctx, &pop, true, by.as_deref(), who).await?)
        }
        Request::Undrain { pop, by } => {
            data(operator::set_drained(ctx, &pop, false, by.as_deref(), who).await?)
        }
        Request::Force {
            pop,
            address,
            state,
            by,
        } => data(operator::force(ctx, &pop, address.as_deref(), state, by.as_deref(), who).await?),
        Request::Load { pop, load, by } => {
            data(operator::load(ctx, &pop, load, by.as_deref(), who).await?)
        }
        Request::Paths => data(ctx.stats.paths.load(Ordering::Relaxed)),
        Request::Summary => data(summary(ctx).await?),
        Request::Route { target, exact } => {
            let prefix: Prefix = target.parse().map_err(|e| format!("{e}"))?;
            let exact = exact || target.contains('/');
            match ask_rib(ctx, Query::Route { prefix, exact }).await? {
                QueryReply::Route(r) => data(r),
                _ => Err(WRONG_REPLY.into()),
            }
        }
        Request::Reset { peer } => {
            let i = ctx
                .cfg
                .peers
                .iter()
                .position(|p| p.name == peer)
                .ok_or_else(|| format!("no peer named {peer:?}"))?;
            ctx.peers.ctl[i]
                .send(PeerCtl::Reset)
                .map_err(|_| "peer task is not running".to_string())?;
            data(ResetReply { reset: peer })
        }
        Request::Peers => data(peers(ctx).await?),
        Request::Explain { target, name } => data(explain(ctx, &target, name.as_deref()).await?),
        Request::Dump | Request::Lookup => Err("streamed requests are handled above".into()),
    }
}

/// `summary`: the RIB's counts plus uptime, identity, steering and sessions.
pub(crate) async fn summary(ctx: &AdminCtx) -> Result<SummaryReply, String> {
    let QueryReply::Summary(rib) = ask_rib(ctx, Query::Summary).await? else {
        return Err(WRONG_REPLY.into());
    };
    let snap = ctx.steering.load();
    let established = (0..ctx.cfg.peers.len())
        .filter(|&i| ctx.peers.snapshot(i).state == crate::fsm::State::Established)
        .count();
    Ok(SummaryReply {
        rib,
        uptime_secs: ctx.started.elapsed().as_secs(),
        local_asn: ctx.cfg.local_asn,
        router_id: ctx.cfg.router_id.to_string(),
        pop: ctx.cfg.pop.clone(),
        steering: SteeringSummary {
            generation: snap.generation(),
            stats: snap.stats(),
            source_v4: snap.source(Afi::Ipv4),
            source_v6: snap.source(Afi::Ipv6),
        },
        peers: PeerTotals {
            configured: ctx.cfg.peers.len(),
            established,
        },
    })
}

/// `peers`: config, session state and the RIB's counts of every peer.
pub(crate) async fn peers(ctx: &AdminCtx) -> Result<PeersReply, String> {
    let QueryReply::PeerCounts(counts) = ask_rib(ctx, Query::PeerCounts).await? else {
        return Err(WRONG_REPLY.into());
    };
    let peers = ctx
        .cfg
        .peers
        .iter()
        .enumerate()
        .map(|(i, pc)| {
            let st = ctx.peers.snapshot(i);
            let routes = counts.peers.get(i).map(|c| c.routes).unwrap_or_default();
            let originated = |afi| st.originated.iter().filter(|p| p.afi() == afi).count();
            let advertised = Afi::ALL.map(|afi| *routes.exported.get(afi) + originated(afi) as u64);
            PeerReply {
                name: pc.name.clone(),
                address: pc.address.to_string(),
                remote_asn: pc.remote_asn,
                role: match pc.role {
                    Role::Upstream => "upstream",
                    Role::Pop => "pop",
                }
                .into(),
                since_secs: st.since.elapsed().as_secs(),
                uptime_secs: st.established_at.map(|t| t.elapsed().as_secs()),
                advertised: PerFamily::of(advertised),
                routes,
                session: st,
            }
        })
        .collect();
    Ok(PeersReply { peers })
}

/// Client side: send one request, return the raw reply text.
pub async fn request(path: &Path, req: &Request) -> io::Result<String> {
    let mut s = UnixStream::connect(path).await?;
    let mut line = serde_json::to_vec(req)?;
    line.push(b'\n');
    s.write_all(&line).await?;
    let mut out = String::new();
    tokio::io::AsyncReadExt::read_to_string(&mut s, &mut out).await?;
    Ok(out)
}

#[cfg(test)]
pub(crate) mod tests;
