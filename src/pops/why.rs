//! Words for `explain`: why the pick passed over a POP ([`skip_reason`]),
//! from a [`Skip`] and the POP's state (drained, forced, unhealthy with the
//! checks' details, down, load figures).
//!
//! Called by `dns::zone::explain` only (never on the query path).

use super::pick::Skip;
use super::state::{Force, PopState};

/// Why `pop` was passed over. `records`: the target bits of the records of
/// the asked type (for `RecordsDown`: whose details to give).
pub fn skip_reason(pops: &PopState, pop: usize, skip: Skip, records: u64) -> String {
    match skip {
        Skip::NoRecords => "no records".into(),
        Skip::Unusable if pops.drained(pop) => "drained".into(),
        Skip::Unusable if pops.forced(pop) == Force::Down => "forced".into(),
        Skip::Unusable if pops.checked(pop) => {
            format!("unhealthy ({})", down_details(pops, pop, u64::MAX))
        }
        Skip::Unusable => "down".into(),
        Skip::RecordsDown => format!("unhealthy ({})", down_details(pops, pop, records)),
        Skip::Overloaded { load } => format!("drained (load {load:.2})"),
        Skip::Shed { load, f } => format!("shed (load {load:.2}, f={f:.2})"),
        Skip::AboveLow { load } => format!("above low watermark (load {load:.2})"),
    }
}

/// The checks' details of `pop`'s targets that are down, among `among`
/// (bits): one target's detail as it is (`http 503 x3`), several as
/// `ADDR detail; ...`; a target forced down says so.
pub fn down_details(pops: &PopState, pop: usize, among: u64) -> String {
    let up = pops.up_mask(pop);
    let health = pops.target_health(pop);
    let down: Vec<(String, String)> = pops
        .targets(pop)
        .iter()
        .enumerate()
        .filter(|&(i, _)| i < 64 && among & (1 << i) != 0 && up & (1 << i) == 0)
        .map(|(i, a)| {
            let d = if pops.target_forced(pop, i) == Force::Down {
                "forced down".to_string()
            } else {
                health
                    .get(i)
                    .map(|h| h.detail.clone())
                    .filter(|d| !d.is_empty())
                    .unwrap_or_else(|| "down".into())
            };
            (a.to_string(), d)
        })
        .collect();
    match down.as_slice() {
        [] => "too few targets up".into(),
        [(_, d)] => d.clone(),
        many => many
            .iter()
            .map(|(a, d)| format!("{a} {d}"))
            .collect::<Vec<_>>()
            .join("; "),
    }
}
