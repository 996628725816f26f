//! The operator's POP commands on the admin socket: `drain` / `undrain`,
//! `force POP[/ADDR] up|down|auto` and `load POP VALUE|auto`. Each applies
//! to `pops::PopState` and is saved to `admin.state_file` through
//! `pops::StateStore` (one change at a time, written atomically); the reply
//! gives the new and the previous state and whether the state was saved. A
//! failed save is logged (`warn`) but the change stays applied.
//!
//! Every change is logged at `info` with the caller's uid and pid and the
//! user sparrowctl says it ran as. The change and its save (an fsync) run on
//! a blocking thread, never on a runtime worker (the HTTP redirector shares
//! the runtime).

use std::net::IpAddr;

use tracing::{info, warn};

use super::reply::{DrainReply, ForceReply, LoadReply};
use super::{AdminCtx, Caller};
use crate::pops::{Force, PersistError, PopError, PopState};

/// The caller's own name for itself, bounded (the log escapes it).
fn by_name(by: Option<&str>) -> &str {
    by.map_or("-", |b| {
        b.char_indices().nth(64).map_or(b, |(i, _)| &b[..i])
    })
}

/// `(saved, save_error)` of a save, logging a failure.
fn saved(ctx: &AdminCtx, r: Result<(), PersistError>) -> (bool, Option<String>) {
    match r {
        Ok(()) => (true, None),
        Err(e) => {
            warn!(error = %e, file = %ctx.store.path().display(),
                "operator state not saved: it is lost at the next restart");
            (false, Some(e.to_string()))
        }
    }
}

/// Apply `f` to the POP state and save, on a blocking thread.
async fn change<T: Send + 'static>(
    ctx: &AdminCtx,
    f: impl FnOnce(&PopState) -> Result<T, PopError> + Send + 'static,
) -> Result<(T, Result<(), PersistError>), String> {
    let (store, pops) = (ctx.store.clone(), ctx.pops.clone());
    tokio::task::spawn_blocking(move || store.change(&pops, f))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())
}

/// `drain` / `undrain`: set the flag, save, log who did it, reply with both states.
pub(super) async fn set_drained(
    ctx: &AdminCtx,
    pop: &str,
    drained: bool,
    by: Option<&str>,
    who: &Caller,
) -> Result<DrainReply, String> {
    let name = pop.to_string();
    let (was, save) = change(ctx, move |p| p.set_drained(&name, drained)).await?;
    let state = |d: bool| if d { "drained" } else { "not drained" };
    info!(
        pop,
        drained,
        was_drained = was,
        by = by_name(by),
        uid = who.uid.map_or(-1, i64::from),
        pid = who.pid.unwrap_or(-1),
        "admin {}: POP {pop} is {} (was {})",
        if drained { "drain" } else { "undrain" },
        state(drained),
        state(was)
    );
    let idx = ctx.pops.index(pop).map_err(|e| e.to_string())?;
    let (saved, save_error) = saved(ctx, save);
    Ok(DrainReply {
        pop: pop.into(),
        was_drained: was,
        drained,
        changed: was != drained,
        up: ctx.pops.up(idx),
        usable: ctx.pops.usable(idx),
        saved,
        save_error,
    })
}

/// `force POP[/ADDR] STATE`.
pub(super) async fn force(
    ctx: &AdminCtx,
    pop: &str,
    address: Option<&str>,
    to: Force,
    by: Option<&str>,
    who: &Caller,
) -> Result<ForceReply, String> {
    let addr = match address {
        None => None,
        Some(a) => Some(
            a.trim()
                .parse::<IpAddr>()
                .map_err(|_| format!("{a:?} is not an IP address"))?,
        ),
    };
    let name = pop.to_string();
    let (was, save) = change(ctx, move |p| p.force(&name, addr, to)).await?;
    let target = addr.map_or(pop.to_string(), |a| format!("{pop}/{a}"));
    info!(
        pop,
        address = addr.map(|a| a.to_string()).unwrap_or_default(),
        state = ?to,
        was = ?was,
        by = by_name(by),
        uid = who.uid.map_or(-1, i64::from),
        pid = who.pid.unwrap_or(-1),
        "admin force: {target} is {to:?} (was {was:?})"
    );
    let idx = ctx.pops.index(pop).map_err(|e| e.to_string())?;
    let (saved, save_error) = saved(ctx, save);
    Ok(ForceReply {
        pop: pop.into(),
        address: addr.map(|a| a.to_string()),
        state: to,
        was,
        changed: was != to,
        up: ctx.pops.up(idx),
        usable: ctx.pops.usable(idx),
        saved,
        save_error,
    })
}

/// `load POP VALUE|auto` (`None`: back to the measured figure).
pub(super) async fn load(
    ctx: &AdminCtx,
    pop: &str,
    value: Option<f64>,
    by: Option<&str>,
    who: &Caller,
) -> Result<LoadReply, String> {
    let name = pop.to_string();
    let (was, save) = change(ctx, move |p| p.set_manual_load(&name, value)).await?;
    let show = |v: Option<f64>| v.map_or("auto".to_string(), |l| format!("{l:.2}"));
    info!(
        pop,
        load = show(value),
        was = show(was),
        by = by_name(by),
        uid = who.uid.map_or(-1, i64::from),
        pid = who.pid.unwrap_or(-1),
        "admin load: POP {pop} load is {} (was {})",
        show(value),
        show(was)
    );
    let idx = ctx.pops.index(pop).map_err(|e| e.to_string())?;
    let (saved, save_error) = saved(ctx, save);
    let (low, high) = ctx.pops.watermarks(idx);
    Ok(LoadReply {
        pop: pop.into(),
        manual: value,
        was: was.map(|l| (l * 1e6).round() / 1e6),
        load: ctx.pops.load(idx),
        low,
        high,
        saved,
        save_error,
    })
}
