//! Best-path selection: RFC 4271 §9.1.2.2 with the RFC 4456 §9 route-reflection
//! tie-breakers, plus "stale (graceful restart) paths lose first" (RFC 4724 §4.2
//! leaves that choice to the implementation; everybody does this).
//!
//! Two entry points over the same rules:
//! - [`compare`]: pairwise order (`Less` = the first argument is preferred). The
//!   MED rule makes it non-transitive, so it is not an `Ord` and is used for tests
//!   and diagnostics only.
//! - [`select_best`]: the selection the RIB uses. It follows the RFC's own
//!   formulation, which removes routes from consideration step by step over the
//!   whole candidate set. Because every step is defined on the set (MED step: drop
//!   a route when *some* remaining route from the same neighbouring AS has a
//!   lower MED), the result does not depend on the order the paths are stored or
//!   arrived in: deterministic without a "deterministic-med" sort. The last
//!   tie-breaker is the peer id, so the result is always unique.

use std::cmp::Ordering;
use std::net::IpAddr;

use smallvec::SmallVec;

use crate::types::PeerId;

/// Everything best-path selection looks at for one path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PathKey {
    /// Graceful-restart stale path.
    pub stale: bool,
    /// LOCAL_PREF after import policy (always set by import).
    pub local_pref: u32,
    /// `AsPath::path_len` (an AS_SET counts 1, confederation segments 0).
    pub as_path_len: u32,
    /// ORIGIN code: IGP 0 < EGP 1 < INCOMPLETE 2.
    pub origin: u8,
    /// `AsPath::first_as`; `None` (empty path, or starting with a set) is its
    /// own group: such routes compare MED among themselves.
    pub neighbor_as: Option<u32>,
    /// MULTI_EXIT_DISC, missing = 0 (RFC 4271 §9.1.2.2 c).
    pub med: u32,
    /// Learned over eBGP.
    pub ebgp: bool,
    /// ORIGINATOR_ID when present, else the peer's BGP identifier (RFC 4456 §9).
    pub bgp_id: u32,
    /// CLUSTER_LIST length (RFC 4456 §9).
    pub cluster_len: u32,
    /// The peer's address.
    pub peer_addr: IpAddr,
    /// Final, always-unique tie-breaker.
    pub peer: PeerId,
}

/// Rules before MED: stale, (a) LOCAL_PREF, (b) AS_PATH length, (c) ORIGIN.
/// These are total orders, so eliminating by each in turn equals taking the
/// minimum of the tuple. (A path added with a tuple greater than the current
/// best's is eliminated at once and cannot change the result.)
pub fn pre_med(k: &PathKey) -> (bool, std::cmp::Reverse<u32>, u32, u8) {
    (
        k.stale,
        std::cmp::Reverse(k.local_pref),
        k.as_path_len,
        k.origin,
    )
}

/// Rules after MED: (e) eBGP over iBGP, (f) IGP cost skipped, (g) lowest BGP
/// identifier / ORIGINATOR_ID, shortest CLUSTER_LIST, (h) lowest peer address,
/// then the peer id.
fn post_med(k: &PathKey) -> (bool, u32, u32, IpAddr, PeerId) {
    (!k.ebgp, k.bgp_id, k.cluster_len, k.peer_addr, k.peer)
}

/// Pairwise preference: `Less` when `a` is preferred over `b`.
///
/// Not transitive when MEDs from different neighbouring ASes are involved;
/// [`select_best`] is what the RIB uses.
pub fn compare(a: &PathKey, b: &PathKey) -> Ordering {
    pre_med(a)
        .cmp(&pre_med(b))
        .then_with(|| {
            if a.neighbor_as == b.neighbor_as {
                a.med.cmp(&b.med)
            } else {
                Ordering::Equal
            }
        })
        .then_with(|| post_med(a).cmp(&post_med(b)))
}

/// Index of the best path among `keys` (must not be empty), by elimination over
/// the whole set (see the module docs). Independent of the order of `keys`.
pub fn select_best(keys: &[PathKey]) -> usize {
    debug_assert!(!keys.is_empty());
    if keys.len() == 1 {
        return 0;
    }
    // Stale, (a), (b), (c): keep the routes tied for the best tuple.
    let best_pre = keys.iter().map(pre_med).min().expect("non-empty");
    let mut cand: SmallVec<[usize; 16]> = (0..keys.len())
        .filter(|&i| pre_med(&keys[i]) == best_pre)
        .collect();
    if cand.len() > 1 {
        // (c)/(d) MED: remove a route when another remaining route from the same
        // neighbouring AS has a lower MED.
        let snapshot = cand.clone();
        cand.retain(|&mut i| {
            !snapshot
                .iter()
                .any(|&j| keys[j].neighbor_as == keys[i].neighbor_as && keys[j].med < keys[i].med)
        });
    }
    // (e) .. (h) and the peer id: total order, take the minimum.
    cand.into_iter()
        .min_by(|&i, &j| post_med(&keys[i]).cmp(&post_med(&keys[j])))
        .expect("MED step keeps at least the lowest MED of each group")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn key(peer: PeerId) -> PathKey {
        PathKey {
            stale: false,
            local_pref: 100,
            as_path_len: 3,
            origin: 0,
            neighbor_as: Some(65001),
            med: 0,
            ebgp: true,
            bgp_id: 0x0a00_0001,
            cluster_len: 0,
            peer_addr: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
            peer,
        }
    }

    /// Asserts `a` wins over `b` both pairwise and by selection, in both orders.
    fn assert_prefers(a: PathKey, b: PathKey) {
        assert_eq!(compare(&a, &b), Ordering::Less, "{a:?} should beat {b:?}");
        assert_eq!(compare(&b, &a), Ordering::Greater);
        assert_eq!(select_best(&[a, b]), 0);
        assert_eq!(select_best(&[b, a]), 1);
    }

    #[test]
    fn stale_loses_first() {
        // Stale (RFC 4724) paths lose to any non-stale path, even with higher LOCAL_PREF.
        let a = key(0);
        let mut b = key(1);
        b.stale = true;
        b.local_pref = 500;
        assert_prefers(a, b);
    }

    #[test]
    fn rfc4271_9_1_2_2_a_highest_local_pref() {
        // RFC 4271 §9.1.1 degree of preference = LOCAL_PREF; higher wins, and it
        // beats a shorter AS_PATH.
        let mut a = key(1);
        a.local_pref = 200;
        a.as_path_len = 9;
        let b = key(0);
        assert_prefers(a, b);
    }

    #[test]
    fn rfc4271_9_1_2_2_a_shortest_as_path() {
        // RFC 4271 §9.1.2.2 a): smallest number of AS numbers in AS_PATH wins.
        let mut a = key(1);
        a.as_path_len = 2;
        a.origin = 2;
        let b = key(0);
        assert_prefers(a, b);
    }

    #[test]
    fn rfc4271_9_1_2_2_b_lowest_origin() {
        // RFC 4271 §9.1.2.2 b): lowest ORIGIN (IGP < EGP < INCOMPLETE).
        let mut a = key(1);
        a.origin = 1;
        a.med = 50;
        let mut b = key(0);
        b.origin = 2;
        assert_prefers(a, b);
        let mut c = key(0);
        c.origin = 0;
        assert_prefers(c, a);
    }

    #[test]
    fn rfc4271_9_1_2_2_c_med_same_neighbor_as_only() {
        // RFC 4271 §9.1.2.2 c): lower MED wins only between routes from the same
        // neighbouring AS.
        let mut a = key(1);
        a.med = 10;
        a.ebgp = false;
        let mut b = key(0);
        b.med = 20;
        assert_prefers(a, b);
        // Different neighbouring AS: MED ignored, falls to (d) eBGP over iBGP.
        b.neighbor_as = Some(65002);
        assert_prefers(b, a);
    }

    #[test]
    fn rfc4271_9_1_2_2_c_missing_med_is_zero() {
        // RFC 4271 §9.1.2.2 c): a route without MED is considered to have the
        // lowest possible MED (0).
        let a = key(1); // med 0 = missing
        let mut b = key(0);
        b.med = 1;
        assert_prefers(a, b);
    }

    #[test]
    fn rfc4271_9_1_2_2_d_ebgp_over_ibgp() {
        // RFC 4271 §9.1.2.2 d): prefer routes learned from eBGP over iBGP.
        let a = key(1);
        let mut b = key(0);
        b.ebgp = false;
        b.bgp_id = 1;
        assert_prefers(a, b);
    }

    #[test]
    fn rfc4271_9_1_2_2_f_lowest_bgp_identifier() {
        // RFC 4271 §9.1.2.2 f): lowest BGP Identifier (e: IGP cost is skipped).
        let mut a = key(1);
        a.bgp_id = 5;
        a.peer_addr = "192.0.2.99".parse().unwrap();
        let mut b = key(0);
        b.bgp_id = 6;
        assert_prefers(a, b);
    }

    #[test]
    fn rfc4456_9_originator_id_and_cluster_list() {
        // RFC 4456 §9: ORIGINATOR_ID stands in for the BGP identifier (the RIB
        // puts it in `bgp_id`), then the shorter CLUSTER_LIST wins.
        let mut a = key(1);
        a.cluster_len = 1;
        let mut b = key(0);
        b.cluster_len = 2;
        assert_prefers(a, b);
        b.bgp_id = 1;
        assert_prefers(b, a);
    }

    #[test]
    fn rfc4271_9_1_2_2_g_lowest_peer_address() {
        // RFC 4271 §9.1.2.2 g): lowest peer address, then (ours) peer id.
        let mut a = key(1);
        a.peer_addr = "192.0.2.1".parse().unwrap();
        let mut b = key(0);
        b.peer_addr = "192.0.2.2".parse().unwrap();
        assert_prefers(a, b);
        let c = key(0);
        let d = key(1);
        assert_prefers(c, d);
    }

    #[test]
    fn med_non_transitive_selection_is_order_independent() {
        // Classic MED cycle: A(AS1, med 10) < B(AS1, med 5) by MED; B loses to C
        // (AS2) on router id; C loses to A on router id. Pairwise "best so far"
        // scans give different answers by order; elimination does not.
        let mut a = key(0);
        a.neighbor_as = Some(1);
        a.med = 10;
        a.bgp_id = 1;
        let mut b = key(1);
        b.neighbor_as = Some(1);
        b.med = 5;
        b.bgp_id = 3;
        let mut c = key(2);
        c.neighbor_as = Some(2);
        c.med = 0;
        c.bgp_id = 2;
        assert_eq!(compare(&b, &a), Ordering::Less);
        assert_eq!(compare(&c, &b), Ordering::Less);
        assert_eq!(compare(&a, &c), Ordering::Less);
        // RFC procedure: A is removed by B's lower MED; then C beats B on id.
        let perms = [
            [a, b, c],
            [a, c, b],
            [b, a, c],
            [b, c, a],
            [c, a, b],
            [c, b, a],
        ];
        for p in perms {
            assert_eq!(p[select_best(&p)].peer, 2, "{p:?}");
        }
    }
}
