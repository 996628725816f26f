//! What an Established session does, as the FSM's actions ask: `SessionUp`
//! (record the negotiated session, tell the RIB), `ProcessUpdate` (decode with
//! `wire` and hand the changes to the RIB, batched: [`Ingest`]), `ProcessRouteRefresh`, the RIB's
//! commands (exports, End-of-RIB, teardown), and `SessionDown` (tell the RIB,
//! keeping routes stale under graceful restart as `graceful` decides). Counts
//! in the peer's status: UPDATEs and End-of-RIBs sent, `flaps`, and the RFC
//! 7606 actions of a batch ([`Ingest`], published by the task per batch).
//!
//! Talks to: `rib` (RibMsg out, SessionCmd in; export encoding is
//! `rib::encode`), `task` (which calls these from its action loop).

use std::net::{IpAddr, Ipv6Addr};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tracing::info;

use super::handshake::Negotiated;
use super::socket::Link;
use super::task::PeerCtx;
use super::{Rfc7606Counts, SessionError};
use crate::rib::{encode, RibMsg, SessionCmd, SessionInfo};
use crate::types::{Afi, RouteChange};
use crate::wire::{self, EncodeCtx, Open, UpdateCtx, WireError};

/// The RIB task is gone (daemon shutting down).
#[derive(Debug)]
pub(super) struct RibGone;

/// What an Established session needs to decode and encode.
pub(super) struct Up {
    pub(super) uctx: UpdateCtx,
    pub(super) enc: EncodeCtx,
    /// Next-hop-self for exported IPv4 and IPv6 routes.
    pub(super) nh: (IpAddr, IpAddr),
    pub(super) afis: [bool; 2],
    graceful_restart: bool,
    /// Both sides set RFC 8538's N bit.
    gr_notification: bool,
    /// The peer's announced restart time (RFC 4724), 0 if none.
    peer_restart_time: u16,
}

/// `SessionUp`: record the session in the peer's status and tell the RIB.
/// Returns what the session needs and the RIB's command channel.
pub(super) async fn session_up(
    ctx: &PeerCtx,
    link: &Link,
    open: &Open,
    neg: &Negotiated,
) -> Result<(Up, mpsc::UnboundedReceiver<SessionCmd>), RibGone> {
    let pc = ctx.pc();
    let local_ip = link.local.map(|a| crate::net::canonical_ip(a.ip()));
    ctx.with_status(|s| {
        s.established_at = Some(Instant::now());
        s.established_count += 1;
        s.remote_router_id = Some(open.router_id);
        s.local_address = link.local;
        s.remote_address = link.remote;
        s.hold_time = Some(neg.hold);
        s.keepalive = Some(neg.keepalive);
        s.as4 = neg.as4;
        s.families = Afi::ALL
            .iter()
            .copied()
            .filter(|a| neg.afis[a.index()])
            .collect();
        s.route_refresh = neg.route_refresh;
        s.extended_message = neg.extended;
        s.graceful_restart = neg.graceful_restart;
        s.graceful_notification = neg.gr_notification;
        s.eor_sent = Default::default();
    });
    info!(
        remote_id = %open.router_id,
        hold = neg.hold,
        as4 = neg.as4,
        "session established"
    );
    let up = Up {
        uctx: UpdateCtx {
            as4: neg.as4,
            ebgp: pc.is_ebgp(ctx.cfg.local_asn),
            peer_as: pc.remote_asn,
            local_as: ctx.cfg.local_asn,
            local_addr: local_ip,
            afis: neg.afis,
        },
        enc: EncodeCtx {
            as4: neg.as4,
            max_len: neg.max_len(),
        },
        nh: encode::self_next_hops(
            local_ip.unwrap_or(IpAddr::V4(ctx.cfg.router_id)),
            ctx.cfg.router_id,
        ),
        afis: neg.afis,
        graceful_restart: neg.graceful_restart,
        gr_notification: neg.gr_notification,
        peer_restart_time: open
            .caps
            .graceful_restart
            .as_ref()
            .map(|g| g.restart_time)
            .unwrap_or(0),
    };
    let mut gr_preserved = [false; 2];
    if let Some(gr) = &open.caps.graceful_restart {
        for (afi, forwarding) in &gr.afis {
            gr_preserved[afi.index()] = *forwarding;
        }
    }
    let info = SessionInfo {
        remote_as: open.asn,
        router_id: open.router_id,
        remote_addr: pc.address,
        local_addr: local_ip.unwrap_or(IpAddr::V6(Ipv6Addr::UNSPECIFIED)),
        afis: neg.afis,
        gr_preserved,
    };
    let (ctl_tx, ctl_rx) = mpsc::unbounded_channel();
    ctx.rib
        .send(RibMsg::PeerUp {
            peer: ctx.id,
            info,
            ctl: ctl_tx,
        })
        .await
        .map_err(|_| RibGone)?;
    Ok((up, ctl_rx))
}

/// UPDATEs whose changes one `RibMsg::Updates` carries at most.
pub(super) const INGEST_BATCH: usize = 32;

/// Route changes decoded and not yet handed to the RIB: up to
/// [`INGEST_BATCH`] UPDATEs go in one `RibMsg::Updates`, so the RIB thread is
/// woken once per batch rather than once per UPDATE. The task sends it
/// ([`flush_ingest`]) at the end of each batch of messages read, and before
/// anything else it tells the RIB about the session, so order is kept.
#[derive(Default)]
pub(super) struct Ingest {
    changes: Vec<(Afi, RouteChange)>,
    updates: usize,
    /// RFC 7606 actions of the UPDATEs decoded, not yet in the status.
    rfc7606: Rfc7606Counts,
}

impl Ingest {
    /// The RFC 7606 actions counted since the last call.
    pub(super) fn take_rfc7606(&mut self) -> Rfc7606Counts {
        std::mem::take(&mut self.rfc7606)
    }
}

/// Hand the buffered changes to the RIB.
pub(super) async fn flush_ingest(ctx: &PeerCtx, batch: &mut Ingest) -> Result<(), RibGone> {
    batch.updates = 0;
    if batch.changes.is_empty() {
        return Ok(());
    }
    let changes = std::mem::take(&mut batch.changes);
    let msg = RibMsg::Updates {
        peer: ctx.id,
        changes,
    };
    ctx.rib.send(msg).await.map_err(|_| RibGone)
}

/// `ProcessUpdate`: validate and decode one UPDATE body and add its changes
/// to `batch` (sent when full; an End-of-RIB sends it, then the End-of-RIB).
/// `Ok(Err(e))`: the UPDATE is an error to send as a NOTIFICATION.
pub(super) async fn on_update(
    ctx: &PeerCtx,
    up: &Up,
    body: &[u8],
    batch: &mut Ingest,
) -> Result<Result<(), WireError>, RibGone> {
    let d = match wire::decode_update(body, &up.uctx) {
        Ok(d) => d,
        Err(e) => return Ok(Err(e)),
    };
    for w in &d.warnings {
        info!(warning = %w, "RFC 7606");
    }
    batch.rfc7606.treat_as_withdraw += u64::from(d.treat_as_withdraw);
    batch.rfc7606.attribute_discard += u64::from(d.attributes_discarded);
    for (afi, change) in [(Afi::Ipv4, d.v4), (Afi::Ipv6, d.v6)] {
        if !change.announced.is_empty() || !change.withdrawn.is_empty() {
            batch.changes.push((afi, change));
        }
    }
    batch.updates += 1;
    if let Some(afi) = d.end_of_rib {
        flush_ingest(ctx, batch).await?;
        let _ = ctx.rib.send(RibMsg::EndOfRib { peer: ctx.id, afi }).await;
    } else if batch.updates >= INGEST_BATCH {
        flush_ingest(ctx, batch).await?;
    }
    Ok(Ok(()))
}

/// `ProcessRouteRefresh`: ask the RIB to resend our export for the family.
pub(super) async fn on_route_refresh(ctx: &PeerCtx, body: &[u8]) -> Result<(), WireError> {
    if let Some(afi) = wire::decode_route_refresh(body)? {
        let _ = ctx
            .rib
            .send(RibMsg::RouteRefresh { peer: ctx.id, afi })
            .await;
    }
    Ok(())
}

/// Export and End-of-RIB commands from the RIB: encode and queue them on the
/// link; an export's credit (`rib::outbox`) rides with its bytes to the
/// writer task, which drops it once they are written. (Teardown is an FSM
/// event; the task handles it.)
pub(super) fn on_rib_cmd(ctx: &PeerCtx, up: &Up, link: &Link, cmd: SessionCmd) {
    match cmd {
        SessionCmd::Export {
            announce,
            withdraw,
            credit,
        } => {
            let mut out = Vec::new();
            let n = encode::encode_export(
                &up.enc,
                up.afis,
                ctx.cfg.local_asn,
                up.nh,
                &announce,
                &withdraw,
                &mut out,
            );
            if !out.is_empty() {
                ctx.with_status(|s| s.count_sent(wire::msg::UPDATE, n));
                // A paced batch's credit goes back to the RIB once written.
                link.send_paced(out, credit);
            }
        }
        SessionCmd::EndOfRib(afi) => {
            if up.afis[afi.index()] {
                link.send(wire::encode_end_of_rib(afi));
                ctx.with_status(|s| {
                    s.count_sent(wire::msg::UPDATE, 1);
                    *s.eor_sent.get_mut(afi) = true;
                });
            }
        }
        SessionCmd::Teardown { .. } => {}
    }
}

/// `SessionDown`: tell the RIB. Graceful restart keeps the routes, stale,
/// when the TCP session died (RFC 4724) or, with RFC 8538's N bit on both
/// sides, after a NOTIFICATION other than Hard Reset (`graceful::keep_stale`).
pub(super) async fn session_down(ctx: &PeerCtx, up: &Up, why: Option<&SessionError>) {
    let keep_stale = super::graceful::keep_stale(up.graceful_restart, up.gr_notification, why)
        .then(|| Duration::from_secs(up.peer_restart_time.min(ctx.pc().restart_time) as u64));
    ctx.with_status(|s| {
        s.established_at = None;
        s.flaps += 1;
    });
    let _ = ctx
        .rib
        .send(RibMsg::PeerDown {
            peer: ctx.id,
            keep_stale,
        })
        .await;
}
