//! Readiness (`/readyz`) and liveness (`/healthz`): each returns the reasons
//! it fails, none when it passes.
//!
//! Ready: every listener is bound; each family that some peer carries has
//! left the static fallback map (its first upstream End-of-RIB,
//! `steer::eor_peers`; a family no peer carries answers from the fallback
//! map for good and is not waited for); and, when health checks are
//! configured, every check has a first result on every target.
//!
//! Alive: the RIB thread answers a summary query within
//! [`LIVENESS_TIMEOUT`], and every DNS UDP thread is running.

use std::sync::atomic::Ordering;
use std::time::Duration;

use super::Ops;
use crate::steer::{self, Source};
use crate::types::Afi;

/// How long the RIB thread has to answer `/healthz`.
pub const LIVENESS_TIMEOUT: Duration = Duration::from_secs(5);

/// Why sparrowd is not ready (empty: ready).
pub async fn readiness(ops: &Ops) -> Vec<String> {
    let cfg = &ops.admin.cfg;
    let mut why = Vec::new();
    if !ops.listening.load(Ordering::Acquire) {
        why.push("listeners: not all bound yet".to_string());
    }
    let snap = ops.admin.steering.load();
    for afi in Afi::ALL {
        let peers = steer::eor_peers(cfg, afi);
        if !peers.is_empty() && snap.source(afi) == Source::Fallback {
            let names: Vec<&str> = peers
                .iter()
                .map(|&p| cfg.peers[p as usize].name.as_str())
                .collect();
            why.push(format!(
                "steering {}: on the fallback map until the first End-of-RIB from {}",
                afi.as_str(),
                names.join(", ")
            ));
        }
    }
    drop(snap);
    let health = crate::admin::health_reply(&ops.admin);
    let (mut pending, mut total) = (0, 0);
    for c in health.targets.iter().flat_map(|t| &t.checks) {
        total += 1;
        pending += usize::from(c.state.is_none());
    }
    if pending > 0 {
        why.push(format!(
            "health checks: first round not complete ({pending} of {total} without a result)"
        ));
    }
    why
}

/// Why sparrowd is not alive (empty: alive).
pub async fn liveness(ops: &Ops) -> Vec<String> {
    let mut why = Vec::new();
    match tokio::time::timeout(LIVENESS_TIMEOUT, crate::admin::summary(&ops.admin)).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => why.push(format!("RIB thread: {e}")),
        Err(_) => why.push(format!(
            "RIB thread: no answer within {} s",
            LIVENESS_TIMEOUT.as_secs()
        )),
    }
    let (alive, total) = ops.dns.udp_workers_alive();
    if alive < total {
        why.push(format!(
            "DNS UDP threads: {} of {total} stopped",
            total - alive
        ));
    }
    why
}
