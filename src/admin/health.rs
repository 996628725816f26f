//! `health`: the health runner's status (`crate::health::Status`) joined
//! with the operator's forced states and the load figures of
//! `crate::pops::PopState`, as a [`HealthReply`].

use super::reply::{HealthCheck, HealthLoad, HealthReply, HealthTarget};
use super::AdminCtx;

/// Build the `health` reply.
pub(crate) fn health_reply(ctx: &AdminCtx) -> HealthReply {
    let snap = ctx.health.snapshot();
    let pops = &ctx.pops;
    let targets = snap
        .targets
        .into_iter()
        .map(|t| HealthTarget {
            up: pops.up_mask(t.pop) & (1u64 << t.target.min(63)) != 0,
            checks_up: t.up,
            detail: t.detail,
            forced: pops.target_forced(t.pop, t.target),
            pop_forced: pops.forced(t.pop),
            pop_up: pops.up(t.pop),
            pop: t.pop_name,
            address: t.addr.to_string(),
            checks: t
                .checks
                .into_iter()
                .map(|c| HealthCheck {
                    name: c.name,
                    kind: c.kind,
                    last: c.last,
                    state: c.state.map(|s| if s { "up" } else { "down" }.into()),
                    consecutive: c.consecutive,
                    since_change_secs: c.since_change_secs,
                })
                .collect(),
        })
        .collect();
    let loads = (0..pops.len())
        .map(|p| {
            let src = snap.loads.iter().find(|l| l.pop == p);
            let (low, high) = pops.watermarks(p);
            HealthLoad {
                pop: pops.names()[p].to_string(),
                load: pops.load(p),
                manual: pops.manual_load(p),
                source: src.map(|l| l.source.clone()),
                measured: src.and_then(|l| l.smoothed),
                last_sample: src.and_then(|l| l.last_sample),
                age_secs: src.and_then(|l| l.age_secs),
                error: src.and_then(|l| l.error.clone()),
                low,
                high,
            }
        })
        .collect();
    HealthReply { targets, loads }
}
