//! [`pick`]: the one usable-POP pick, with load shedding and the all-down
//! policy. DNS answers (`dns::answer` through `dns::zone::pick`), `explain`
//! (`dns::zone::explain`), `sparrowctl lookup` and the HTTP redirector all
//! choose their POP here; explain passes a `trace` callback that records why
//! each POP was passed over, the query paths pass a no-op one, so there is
//! one implementation. Per query it only does atomic loads (through
//! [`Avail`]) and arithmetic: no lock, no allocation.
//!
//! Rules, walking the client's ranking closest first:
//! - a POP without records of the asked type (no URL for HTTP) is passed
//!   over (`no records`); the first POP that has records is the client's
//!   *first-ranked* POP;
//! - a POP that is not usable (down, forced down, unhealthy, drained) is
//!   passed over, as is one whose records of the asked type are all down
//!   (every target bit clear in `up_mask`);
//! - load ≥ `high`: the POP counts as drained;
//! - `low` ≤ load < `high` on the POP that would answer: a fraction
//!   f = (load − low) / (high − low) of the decision units move to their next
//!   usable POP whose own load is below its `low` (runners-up at or above
//!   their low watermark are passed over; if every runner-up is, the POP keeps
//!   them). A unit moves when `unit(key, pop) < f`, a fixed hash of the
//!   decision's key and the POP, so the units that move at a lower load stay
//!   moved as the load rises (monotone), and each moves to its own runner-up;
//! - nothing usable: `health.all_down: answer_all` answers with the
//!   first-ranked POP that has records, all its addresses (gdnsd's rule, and
//!   sparrow's before checks existed); `empty` gives no POP (NODATA).
//!
//! The key ([`shed_key`]): the issue asks for "a consistent hash of the
//! snapshot's matched prefix", so that the ECS scope stays truthful. We hash
//! the *safe-scope block* instead: the querier's address masked to
//! `steer::Decision::scope`, plus that length. Every address in that block
//! gets the same ranking (that is what the safe scope means) and — proved in
//! `steer::lpm::safe_scope`'s terms, tested here against a brute-force model —
//! the same safe scope, hence the same key and the same shed decision; so
//! the scope the answer carries never covers an address with another answer,
//! with no change to the scope. For a prefix that is its own range (no
//! neighbour merged into it, no more-specific with another ranking inside),
//! the block *is* the matched prefix. Hashing the matched prefix instead
//! would need the scope raised to at least the prefix length whenever the
//! POP sheds (a merged range's scope can be shorter than the prefix), i.e.
//! answers would change their ECS scope with the load. The block is also the
//! unit a resolver caches, so the share of cached answers that move follows f.
//! A routing change that splits or merges ranges changes the blocks and so
//! reshuffles which units move; monotonicity in the load holds per snapshot.

use std::net::IpAddr;

use crate::config::AllDownPolicy;
use crate::types::PopIdx;

/// What the pick needs to know of a POP; [`super::PopState`] in the daemon,
/// plain tables in the tests' brute-force model.
pub trait Avail {
    /// Up and not drained by the operator.
    fn usable(&self, pop: usize) -> bool;
    /// Load figure, 0..1 (0 when there is none).
    fn load(&self, pop: usize) -> f64;
    /// `(low, high)` watermarks.
    fn watermarks(&self, pop: usize) -> (f64, f64);
}

/// Whether a POP has records of the asked type, and whether any of them is up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Records {
    /// No records (no URL): not a candidate.
    None,
    /// Records, every one of them down.
    AllDown,
    /// Records, at least one up.
    Up,
}

/// Why the chosen POP answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// The client's first-ranked POP (the first with records).
    #[default]
    Closest,
    /// A later POP, because the ones before were not usable.
    Failover,
    /// A later POP, because the one before shed this unit.
    Shed,
    /// Nothing usable: `all_down: answer_all` (all addresses).
    AllDown,
}

/// The pick's result.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pick {
    pub pop: usize,
    pub reason: Reason,
    /// The client's first-ranked POP (the first with records) answers.
    pub first: bool,
}

impl Pick {
    /// The normal TTL applies (else `ttl_failover`): the first-ranked POP
    /// answers, usable, not shed, not as the all-down fallback.
    pub fn normal_ttl(&self) -> bool {
        self.reason == Reason::Closest
    }
}

/// Why a POP was passed over (the `trace` callback of [`pick`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Skip {
    NoRecords,
    /// Not usable: down, forced down, unhealthy or drained (the caller tells
    /// which from its state).
    Unusable,
    /// Usable, but every record of the asked type is down.
    RecordsDown,
    /// Load at or above `high`: counts as drained.
    Overloaded {
        load: f64,
    },
    /// Load between the watermarks and this unit falls in the moved fraction.
    Shed {
        load: f64,
        f: f64,
    },
    /// A runner-up at or above its own low watermark.
    AboveLow {
        load: f64,
    },
}

/// The shedding key of a decision: the querier's address masked to the safe
/// scope `scope`, and `scope` (see the module doc).
#[inline]
pub fn shed_key(addr: IpAddr, scope: u8) -> u64 {
    let (bits, width, fam) = match addr {
        IpAddr::V4(a) => (u32::from(a) as u128, 32u32, 4u64),
        IpAddr::V6(a) => (u128::from(a), 128u32, 6u64),
    };
    let s = u32::from(scope).min(width);
    let masked = if s == 0 {
        0
    } else {
        bits & (u128::MAX << (width - s)) & (u128::MAX >> (128 - width))
    };
    let h = mix(masked as u64 ^ mix((masked >> 64) as u64 ^ 0x9e37_79b9_7f4a_7c15));
    mix(h ^ (fam << 8 | u64::from(scope)))
}

/// splitmix64's finaliser.
#[inline]
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Where unit `key` falls for POP `pop`, uniform in [0, 1): it moves off
/// `pop` when this is below f. Salted with the POP so that each POP sheds its
/// own subset.
#[inline]
pub fn unit(key: u64, pop: usize) -> f64 {
    let h = mix(key ^ (pop as u64).wrapping_mul(0xd6e8_feb8_6659_fd93));
    (h >> 11) as f64 / (1u64 << 53) as f64
}

/// The shed fraction of a POP at `load` between watermarks `low`, `high`
/// (only meaningful for `low <= load < high`).
#[inline]
pub fn shed_fraction(load: f64, low: f64, high: f64) -> f64 {
    if high > low {
        ((load - low) / (high - low)).clamp(0.0, 1.0)
    } else {
        1.0
    }
}

/// The usable-POP pick (see the module doc). `ranking`: POP indices, closest
/// first; `key`: [`shed_key`] of the decision; `serves`: the POP's records of
/// the asked type; `trace`: called for every POP passed over, in order (a
/// no-op on the query paths).
#[inline]
pub fn pick<A: Avail + ?Sized>(
    ranking: &[PopIdx],
    key: u64,
    st: &A,
    serves: impl Fn(usize) -> Records,
    all_down: AllDownPolicy,
    mut trace: impl FnMut(usize, Skip),
) -> Option<Pick> {
    let mut first = None;
    // The POP that shed this unit; the walk then looks for its runner-up.
    let mut shed_from: Option<usize> = None;
    let chosen = |p: usize, first: Option<usize>| Pick {
        pop: p,
        reason: if first == Some(p) {
            Reason::Closest
        } else {
            Reason::Failover
        },
        first: first == Some(p),
    };
    for &p in ranking {
        let p = p as usize;
        let rec = serves(p);
        if rec == Records::None {
            trace(p, Skip::NoRecords);
            continue;
        }
        if first.is_none() {
            first = Some(p);
        }
        if !st.usable(p) {
            trace(p, Skip::Unusable);
            continue;
        }
        if rec == Records::AllDown {
            trace(p, Skip::RecordsDown);
            continue;
        }
        let load = st.load(p);
        let (low, high) = st.watermarks(p);
        if load >= high {
            trace(p, Skip::Overloaded { load });
            continue;
        }
        if shed_from.is_some() {
            if load >= low {
                trace(p, Skip::AboveLow { load });
                continue;
            }
            return Some(Pick {
                pop: p,
                reason: Reason::Shed,
                first: false,
            });
        }
        if load >= low {
            let f = shed_fraction(load, low, high);
            if unit(key, p) < f {
                trace(p, Skip::Shed { load, f });
                shed_from = Some(p);
                continue;
            }
        }
        return Some(chosen(p, first));
    }
    // Shed, but no runner-up has room: the POP keeps the unit.
    if let Some(p) = shed_from {
        return Some(chosen(p, first));
    }
    match all_down {
        AllDownPolicy::AnswerAll => first.map(|p| Pick {
            pop: p,
            reason: Reason::AllDown,
            first: true,
        }),
        AllDownPolicy::Empty => None,
    }
}

#[cfg(test)]
#[path = "pick_tests.rs"]
mod tests;
