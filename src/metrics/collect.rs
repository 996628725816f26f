//! What each metric is read from, at a scrape ([`exposition`]). Names follow
//! CoreDNS (`dns_*`), GoBGP and OpenBGPD (`bgp_*`) where they have one; label
//! sets are bounded: POP and peer names come from the config, types and
//! codes from fixed lists.

use std::sync::atomic::Ordering::Relaxed;

use super::expo::{Expo, Labels};
use super::{ready, Ops};
use crate::dns::stats::{
    AnswerReason, DropReason, Proto, DURATION_BUCKETS, QTYPES, RCODES, SIZE_BUCKETS,
};
use crate::fsm::State;
use crate::types::Afi;

/// Why a scrape failed.
#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    #[error("admin query: {0}")]
    Query(String),
    #[error("encoding the exposition")]
    Encode(#[from] std::fmt::Error),
}

fn l(pairs: &[(&'static str, &str)]) -> Labels {
    pairs.iter().map(|&(k, v)| (k, v.to_string())).collect()
}

const STATES: [(State, &str); 6] = [
    (State::Idle, "idle"),
    (State::Connect, "connect"),
    (State::Active, "active"),
    (State::OpenSent, "opensent"),
    (State::OpenConfirm, "openconfirm"),
    (State::Established, "established"),
];

/// The whole exposition.
pub async fn exposition(ops: &Ops) -> Result<String, CollectError> {
    let mut e = Expo::default();
    process(ops, &mut e).await;
    dns(ops, &mut e);
    steering(ops, &mut e);
    pops(ops, &mut e);
    let summary = crate::admin::summary(&ops.admin)
        .await
        .map_err(CollectError::Query)?;
    rib(&summary.rib, &mut e);
    bgp(ops, &mut e).await?;
    http(ops, &mut e);
    announce(ops, &mut e);
    Ok(e.encode()?)
}

async fn process(ops: &Ops, e: &mut Expo) {
    let cfg = &ops.admin.cfg;
    e.gauge(
        "build_info",
        "sparrowd's version, and this POP (always 1).",
        [(
            l(&[("version", env!("CARGO_PKG_VERSION")), ("pop", &cfg.pop)]),
            1.0,
        )],
    );
    e.gauge(
        "uptime_seconds",
        "Seconds since sparrowd started.",
        [(vec![], ops.admin.started.elapsed().as_secs_f64())],
    );
    let r = ops.admin.reload.counts();
    e.counter(
        "config_reloads",
        "Config reloads by result.",
        [
            (l(&[("result", "success")]), r.ok.load(Relaxed)),
            (l(&[("result", "failure")]), r.failed.load(Relaxed)),
        ],
    );
    let last = r.last_ok_unix.load(Relaxed);
    e.gauge(
        "config_last_reload_success_timestamp_seconds",
        "Unix time of the last successful config reload (0: none since start).",
        [(vec![], last as f64)],
    );
    let ready = ready::readiness(ops).await.is_empty();
    e.gauge(
        "ready",
        "1 when /readyz answers 200.",
        [(vec![], f64::from(u8::from(ready)))],
    );
}

fn dns(ops: &Ops, e: &mut Expo) {
    let t = ops.dns.totals();
    let qtype = |i: usize| QTYPES.get(i).map_or("other", |q| q.1);
    let mut rows = Vec::new();
    for p in Proto::ALL {
        for (f, fam) in ["1", "2"].iter().enumerate() {
            for (i, &n) in t.requests[p as usize][f].iter().enumerate() {
                if n > 0 {
                    rows.push((
                        l(&[("proto", p.as_str()), ("family", fam), ("type", qtype(i))]),
                        n,
                    ));
                }
            }
        }
    }
    if rows.is_empty() {
        rows.push((l(&[("proto", "udp"), ("family", "1"), ("type", "A")]), 0));
    }
    e.counter(
        "dns_requests",
        "DNS requests answered, by transport, address family (1 IPv4, 2 IPv6) and query type.",
        rows,
    );
    let rcode = |i: usize| RCODES.get(i).map_or("other", |r| r.1);
    e.counter(
        "dns_responses",
        "DNS responses sent, by transport and RCODE.",
        Proto::ALL.iter().flat_map(|&p| {
            t.rcodes[p as usize]
                .iter()
                .enumerate()
                .map(move |(i, &n)| (l(&[("proto", p.as_str()), ("rcode", rcode(i))]), n))
        }),
    );
    e.histogram(
        "dns_request_duration_seconds",
        "Time from a request's turn to its answer, by transport.",
        Proto::ALL.iter().map(|&p| {
            let h = &t.duration[p as usize];
            (
                l(&[("proto", p.as_str())]),
                h.cumulative(&DURATION_BUCKETS),
                h.sum as f64 / 1e9,
            )
        }),
    );
    e.histogram(
        "dns_response_size_bytes",
        "Size of the DNS responses sent, by transport.",
        Proto::ALL.iter().map(|&p| {
            let h = &t.size[p as usize];
            (
                l(&[("proto", p.as_str())]),
                h.cumulative(&SIZE_BUCKETS),
                h.sum as f64,
            )
        }),
    );
    e.counter(
        "dns_truncated_responses",
        "Responses sent with TC set, by transport.",
        Proto::ALL
            .iter()
            .map(|&p| (l(&[("proto", p.as_str())]), t.truncated[p as usize])),
    );
    e.counter(
        "dns_ecs_requests",
        "Requests with EDNS Client Subnet: used (source prefix above 0), zero source, malformed.",
        ["used", "zero_source", "malformed"]
            .iter()
            .zip(t.ecs)
            .map(|(k, n)| (l(&[("ecs", k)]), n)),
    );
    e.counter(
        "dns_dropped",
        "Requests that got no reply, by reason.",
        DropReason::ALL
            .iter()
            .map(|d| (l(&[("reason", d.as_str())]), t.drops[*d as usize])),
    );
    let names = &ops.admin.cfg.pops;
    let mut rows = Vec::new();
    for (p, row) in t.answers.iter().enumerate() {
        let pop = names.get(p).map_or("none", |c| c.name.as_str());
        for r in AnswerReason::ALL {
            // "none" (no POP) only ever has all_down.
            if pop == "none" && r != AnswerReason::AllDown {
                continue;
            }
            rows.push((l(&[("pop", pop), ("reason", r.as_str())]), row[r as usize]));
        }
    }
    e.counter(
        "steering_answers",
        "Steered DNS answers by the POP answered with (none: NODATA, no POP usable) and why.",
        rows,
    );
}

fn steering(ops: &Ops, e: &mut Expo) {
    let snap = ops.admin.steering.load();
    e.gauge(
        "steering_snapshot_generation",
        "Generation of the published steering snapshot.",
        [(vec![], snap.generation() as f64)],
    );
    let mut rows = Vec::new();
    for afi in Afi::ALL {
        for src in [crate::steer::Source::Rib, crate::steer::Source::Fallback] {
            rows.push((
                l(&[("family", afi.as_str()), ("source", src.as_str())]),
                f64::from(u8::from(snap.source(afi) == src)),
            ));
        }
    }
    drop(snap);
    e.gauge(
        "steering_source",
        "1 for the source each family's steering answers from (rib, fallback).",
        rows,
    );
    let p = &ops.publish;
    e.gauge(
        "steering_last_publish_timestamp_seconds",
        "Unix time of the last snapshot published from the RIB (0: none yet).",
        [(vec![], p.published_unix_ms.load(Relaxed) as f64 / 1e3)],
    );
    e.gauge(
        "steering_publish_duration_seconds",
        "Time the last snapshot publication took to build.",
        [(vec![], p.build_us.load(Relaxed) as f64 / 1e6)],
    );
    e.counter(
        "steering_builds",
        "Snapshot builds per family build kind (full, incremental).",
        [
            (l(&[("kind", "full")]), p.full_builds.load(Relaxed)),
            (
                l(&[("kind", "incremental")]),
                p.incremental_builds.load(Relaxed),
            ),
        ],
    );
    let names = &ops.admin.cfg.pops;
    e.gauge(
        "steering_prefixes_first",
        "Prefixes of the ranked RIB that rank each POP first, per family.",
        Afi::ALL.iter().flat_map(|&afi| {
            p.first[afi.index()].iter().zip(names).map(move |(n, c)| {
                (
                    l(&[("family", afi.as_str()), ("pop", &c.name)]),
                    n.load(Relaxed) as f64,
                )
            })
        }),
    );
}

fn pops(ops: &Ops, e: &mut Expo) {
    let r = crate::admin::pops_reply(&ops.admin);
    let b = |v: bool| f64::from(u8::from(v));
    let rows = |f: &dyn Fn(&crate::admin::reply::PopInfo) -> f64| -> Vec<(Labels, f64)> {
        r.pops
            .iter()
            .map(|p| (l(&[("pop", &p.name)]), f(p)))
            .collect()
    };
    e.gauge(
        "pop_usable",
        "1 when answers may use the POP (up and not drained).",
        rows(&|p| b(p.usable)),
    );
    e.gauge(
        "pop_up",
        "1 when the POP is up: the local POP, or a session to it Established.",
        rows(&|p| b(p.up)),
    );
    e.gauge(
        "pop_drained",
        "1 when an operator drained the POP.",
        rows(&|p| b(p.drained)),
    );
    e.gauge(
        "pop_load",
        "The POP's load figure in use (0..1).",
        rows(&|p| p.load),
    );
}

fn rib(r: &crate::rib::reply::RibSummary, e: &mut Expo) {
    e.gauge(
        "rib_prefixes",
        "Prefixes in the Loc-RIB, per family.",
        Afi::ALL
            .iter()
            .map(|&a| (l(&[("family", a.as_str())]), *r.prefixes.get(a) as f64)),
    );
    e.gauge(
        "rib_paths",
        "Paths held (every peer's Adj-RIB-In), per family.",
        Afi::ALL
            .iter()
            .map(|&a| (l(&[("family", a.as_str())]), *r.paths.get(a) as f64)),
    );
    e.gauge(
        "rib_attribute_sets",
        "Distinct interned path attribute sets.",
        [(vec![], r.attr_sets as f64)],
    );
    let m = &r.memory;
    e.gauge(
        "rib_bytes",
        "The RIB's estimates of its memory: prefix tables and attribute sets.",
        [
            (l(&[("kind", "tables")]), m.table_bytes_estimate as f64),
            (l(&[("kind", "attributes")]), m.attr_bytes_estimate as f64),
        ],
    );
    e.gauge(
        "process_resident_memory_bytes",
        "Resident set size of sparrowd.",
        [(vec![], m.rss_bytes as f64)],
    );
    e.gauge(
        "process_resident_memory_max_bytes",
        "High-water mark of sparrowd's resident set size.",
        [(vec![], m.hwm_bytes as f64)],
    );
}

async fn bgp(ops: &Ops, e: &mut Expo) -> Result<(), CollectError> {
    let r = crate::admin::peers(&ops.admin)
        .await
        .map_err(CollectError::Query)?;
    let peer = |p: &crate::admin::reply::PeerReply| {
        vec![("peer", p.name.clone()), ("role", p.role.clone())]
    };
    let with = |p: &crate::admin::reply::PeerReply, k: &'static str, v: &str| {
        let mut x = peer(p);
        x.push((k, v.to_string()));
        x
    };
    e.gauge(
        "bgp_session_state",
        "1 for each peer's session state (RFC 4271 §8.2.2).",
        r.peers.iter().flat_map(|p| {
            STATES.iter().map(move |&(s, name)| {
                (
                    with(p, "state", name),
                    f64::from(u8::from(p.session.state == s)),
                )
            })
        }),
    );
    e.gauge(
        "bgp_session_established",
        "1 while the session is Established.",
        r.peers.iter().map(|p| {
            (
                peer(p),
                f64::from(u8::from(p.session.state == State::Established)),
            )
        }),
    );
    e.counter(
        "bgp_session_established_transitions",
        "Times the session reached Established.",
        r.peers
            .iter()
            .map(|p| (peer(p), p.session.established_count)),
    );
    e.counter(
        "bgp_session_flaps",
        "Times an Established session ended.",
        r.peers.iter().map(|p| (peer(p), p.session.flaps)),
    );
    e.gauge(
        "bgp_session_last_change_timestamp_seconds",
        "Unix time of the session's last state change.",
        r.peers
            .iter()
            .map(|p| (peer(p), p.session.last_change_unix as f64)),
    );
    e.gauge(
        "bgp_session_state_seconds",
        "Seconds since the session's last state change.",
        r.peers.iter().map(|p| (peer(p), p.since_secs as f64)),
    );
    let fam = |f: &dyn Fn(&crate::admin::reply::PeerReply) -> crate::types::PerFamily<u64>| {
        r.peers
            .iter()
            .flat_map(|p| {
                let v = f(p);
                Afi::ALL.map(|a| (with(p, "family", a.as_str()), *v.get(a)))
            })
            .collect::<Vec<_>>()
    };
    let gauge = |v: Vec<(Labels, u64)>| v.into_iter().map(|(l, n)| (l, n as f64));
    let flag = |b: crate::types::PerFamily<bool>| crate::types::PerFamily {
        ipv4: u64::from(b.ipv4),
        ipv6: u64::from(b.ipv6),
    };
    e.gauge(
        "bgp_routes_received",
        "Routes held from the peer (Adj-RIB-In), per family.",
        gauge(fam(&|p| p.routes.received)),
    );
    e.gauge(
        "bgp_routes_accepted",
        "Routes from the peer accepted by import policy, per family.",
        gauge(fam(&|p| p.routes.accepted)),
    );
    e.gauge(
        "bgp_routes_advertised",
        "Prefixes advertised to the peer now (exported RIB routes and our announce prefixes), per family.",
        gauge(fam(&|p| p.advertised)),
    );
    e.gauge(
        "bgp_end_of_rib_received",
        "1 once the peer's End-of-RIB for the family arrived.",
        gauge(fam(&|p| flag(p.routes.eor))),
    );
    e.gauge(
        "bgp_end_of_rib_sent",
        "1 once our End-of-RIB for the family went out in this session.",
        gauge(fam(&|p| flag(p.session.eor_sent))),
    );
    e.gauge(
        "bgp_max_prefix_exceeded",
        "1 while the peer is over its max-prefix limit for the family.",
        gauge(fam(&|p| flag(p.routes.max_prefix_exceeded))),
    );
    e.counter(
        "bgp_max_prefix_events",
        "Times the peer went over its max-prefix limit, per family.",
        fam(&|p| p.routes.max_prefix_events),
    );
    e.counter(
        "bgp_messages",
        "BGP messages by direction and type.",
        r.peers.iter().flat_map(|p| {
            let (rx, tx) = (&p.session.messages_received, &p.session.messages_sent);
            [("received", rx), ("sent", tx)]
                .into_iter()
                .flat_map(move |(d, m)| {
                    [
                        ("open", m.open),
                        ("update", m.update),
                        ("notification", m.notification),
                        ("keepalive", m.keepalive),
                        ("route_refresh", m.route_refresh),
                    ]
                    .map(|(t, n)| {
                        let mut x = with(p, "direction", d);
                        x.push(("type", t.to_string()));
                        (x, n)
                    })
                })
        }),
    );
    e.counter(
        "bgp_notifications",
        "NOTIFICATIONs by direction, error code and subcode (RFC 4271 §4.5); kinds past the first 32 of a peer are in code=\"other\".",
        r.peers.iter().flat_map(|p| {
            let listed = p.session.notifications.iter().map(move |n| {
                let mut x = with(p, "direction", n.direction.as_str());
                x.push(("code", n.code.to_string()));
                x.push(("subcode", n.subcode.to_string()));
                (x, n.count)
            });
            let other = (p.session.notifications_unlisted > 0).then(|| {
                let mut x = with(p, "direction", "any");
                x.push(("code", "other".to_string()));
                x.push(("subcode", "other".to_string()));
                (x, p.session.notifications_unlisted)
            });
            listed.chain(other)
        }),
    );
    e.counter(
        "bgp_rfc7606_actions",
        "UPDATE errors handled per RFC 7606: treat-as-withdraw, attribute discard.",
        r.peers.iter().flat_map(|p| {
            let c = &p.session.rfc7606;
            [
                ("treat_as_withdraw", c.treat_as_withdraw),
                ("attribute_discard", c.attribute_discard),
            ]
            .map(|(a, n)| (with(p, "action", a), n))
        }),
    );
    Ok(())
}

fn http(ops: &Ops, e: &mut Expo) {
    if ops.admin.cfg.http.listen.is_empty() {
        return;
    }
    e.counter(
        "http_responses",
        "HTTP redirector responses by status code.",
        ops.http
            .responses()
            .into_iter()
            .map(|(code, n)| (l(&[("code", &code.to_string())]), n)),
    );
    let names = &ops.admin.cfg.pops;
    e.counter(
        "http_redirects",
        "HTTP redirects by the POP redirected to.",
        ops.http
            .redirects()
            .into_iter()
            .zip(names)
            .map(|(n, c)| (l(&[("pop", &c.name)]), n)),
    );
}

fn announce(ops: &Ops, e: &mut Expo) {
    let rows = crate::admin::announcements_reply(&ops.admin).announcements;
    const ST: [&str; 4] = ["withdrawn", "up", "prepended", "grace"];
    e.gauge(
        "announce_state",
        "1 for each anycast prefix's state (withdrawn, up, prepended, grace).",
        rows.iter().flat_map(|r| {
            ST.map(|s| {
                (
                    l(&[("prefix", &r.prefix.to_string()), ("state", s)]),
                    f64::from(u8::from(r.state == s)),
                )
            })
        }),
    );
    e.counter(
        "announce_changes",
        "State changes of each anycast prefix since start.",
        rows.iter()
            .map(|r| (l(&[("prefix", &r.prefix.to_string())]), r.changes)),
    );
    e.gauge(
        "announce_peers",
        "Sessions that carry each anycast prefix.",
        rows.iter().map(|r| {
            (
                l(&[("prefix", &r.prefix.to_string())]),
                r.peers.len() as f64,
            )
        }),
    );
}
