//! Response rate limiting (RRL) for the UDP fast path, after Knot's `rrl`
//! module and BIND's `rate-limit`: a token bucket per client prefix (/24 for
//! IPv4 and /56 for IPv6 by default), `rate` responses per second with a
//! burst of `rate`. A response over the rate is dropped, except every
//! `slip`-th one, which is sent as a minimal reply with TC=1 and the question
//! (`response::slip`), so a real client behind a spoofed flood retries over
//! TCP (which RRL does not limit: it cannot be spoofed). `slip` 0 drops every
//! limited response; 1 sends each as TC.
//!
//! The table is one fixed array of `table_size` atomic words shared by every
//! UDP worker thread (`dns-udp-N`), so the rate applies to a prefix as a whole
//! whichever SO_REUSEPORT socket its queries reach. A slot is chosen by a
//! keyed hash of the prefix (the key is random per table, so a spoofer cannot
//! aim at a victim's slot); a prefix that hashes onto a slot held by another
//! evicts it (the evicted one starts again with a full bucket). Nothing is
//! allocated per query; the check is one load and one compare-exchange.
//!
//! Each slot packs `tag | time | tokens | slip counter` into a `u64`: the
//! tag tells prefixes sharing a slot apart, time is in [`TICKS_PER_SEC`]
//! ticks of a coarse clock passed in by the caller ([`Rrl::now`]), tokens are
//! in 1/[`TICKS_PER_SEC`] responses (refilled by `rate` per tick).
//!
//! The table lives in `dns::Authority`, so a reload that rebuilds the
//! authority starts it empty (every bucket full). [`Rrl::check`] is pure:
//! an address and a time in, a [`Verdict`] out. [`Rrl::admit`] is what `fast`
//! calls with each UDP reply: it reads the clock and cuts a slipped reply with
//! `response::slip`.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use crate::config::{RrlConfig, RRL_MAX_RATE, RRL_MAX_SLIP, RRL_MAX_TABLE_SIZE};
use crate::types::Prefix;

/// Clock ticks per second (the time resolution of the buckets).
pub const TICKS_PER_SEC: u64 = 64;

const TAG_BITS: u32 = 12;
const TIME_BITS: u32 = 22;
const TOKEN_BITS: u32 = 26;
const SLIP_BITS: u32 = 4;
const TIME_MASK: u64 = (1 << TIME_BITS) - 1;
const TOKEN_MASK: u64 = (1 << TOKEN_BITS) - 1;
const SLIP_MASK: u64 = (1 << SLIP_BITS) - 1;
const TOKEN_SHIFT: u32 = SLIP_BITS;
const TIME_SHIFT: u32 = TOKEN_SHIFT + TOKEN_BITS;
const TAG_SHIFT: u32 = TIME_SHIFT + TIME_BITS;
const _: () = assert!(TAG_BITS + TIME_BITS + TOKEN_BITS + SLIP_BITS == 64);
const _: () = assert!(RRL_MAX_RATE as u64 * TICKS_PER_SEC <= TOKEN_MASK);
const _: () = assert!(RRL_MAX_SLIP as u64 <= SLIP_MASK);

/// What to do with one response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Within the rate (or exempt): send it.
    Send,
    /// Over the rate: send nothing.
    Drop,
    /// Over the rate, but this one slips: send a minimal TC=1 reply.
    Slip,
}

/// One table of buckets (see the module doc).
pub struct Rrl {
    slots: Box<[AtomicU64]>,
    /// Tokens added per tick (= responses per second).
    rate: u64,
    /// A full bucket (`rate` responses).
    burst: u64,
    slip: u64,
    ipv4_prefix: u8,
    ipv6_prefix: u8,
    exempt: Vec<Prefix>,
    /// Hash key, random per table.
    key: u64,
    /// Time 0 of [`Rrl::now`].
    epoch: Instant,
}

impl Rrl {
    /// An empty table for a validated `dns.rrl` section.
    pub fn new(cfg: &RrlConfig) -> Rrl {
        let rate = u64::from(cfg.rate.clamp(1, RRL_MAX_RATE));
        Rrl {
            slots: (0..cfg.table_size.clamp(1, RRL_MAX_TABLE_SIZE))
                .map(|_| AtomicU64::new(0))
                .collect(),
            rate,
            burst: rate * TICKS_PER_SEC,
            slip: u64::from(cfg.slip.min(RRL_MAX_SLIP)),
            ipv4_prefix: cfg.ipv4_prefix.min(32),
            ipv6_prefix: cfg.ipv6_prefix.min(128),
            exempt: cfg.exempt_prefixes(),
            key: RandomState::new().hash_one(0x5eed_u32),
            epoch: Instant::now(),
        }
    }

    /// The current time in ticks since the table was made (coarse: callers
    /// may read it once per batch of queries).
    pub fn now(&self) -> u64 {
        let e = self.epoch.elapsed();
        e.as_secs() * TICKS_PER_SEC + u64::from(e.subsec_nanos()) * TICKS_PER_SEC / 1_000_000_000
    }

    /// Number of slots (fixed at creation).
    pub fn table_size(&self) -> usize {
        self.slots.len()
    }

    /// Account the reply in `out` to `client` now: `true` to send it (as it
    /// is, or cut to its TC=1 form by `response::slip`), `false` to drop it.
    pub(super) fn admit(&self, client: IpAddr, out: &mut Vec<u8>) -> bool {
        match self.check(client, self.now()) {
            Verdict::Send => true,
            Verdict::Drop => false,
            Verdict::Slip => {
                super::response::slip(out);
                true
            }
        }
    }

    /// Account one response to `client` (transport source, IPv4-mapped
    /// addresses unmapped) at time `now` (ticks, see [`Rrl::now`]).
    pub fn check(&self, client: IpAddr, now: u64) -> Verdict {
        let prefix = match client {
            IpAddr::V4(a) => Prefix::v4(a.into(), self.ipv4_prefix),
            IpAddr::V6(a) => Prefix::v6(a.into(), self.ipv6_prefix),
        };
        let Some(prefix) = prefix else {
            return Verdict::Send;
        };
        if self.exempt.iter().any(|e| e.contains(&prefix)) {
            return Verdict::Send;
        }
        let h = self.hash(&prefix);
        // Multiply-shift onto the slots (any size); the tag from the low bits.
        let slot = &self.slots[((u128::from(h) * self.slots.len() as u128) >> 64) as usize];
        let tag = (h & ((1 << TAG_BITS) - 1)) | 1;
        let now = now & TIME_MASK;
        let mut old = slot.load(Ordering::Relaxed);
        loop {
            let (verdict, new) = self.step(old, tag, now);
            match slot.compare_exchange_weak(old, new, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return verdict,
                Err(cur) => old = cur,
            }
        }
    }

    /// The verdict and the slot's next word, from its word `old`.
    fn step(&self, old: u64, tag: u64, now: u64) -> (Verdict, u64) {
        let (tokens, slips) = if old >> TAG_SHIFT != tag {
            // Empty, or another prefix's: a full bucket.
            (self.burst, 0)
        } else {
            let then = (old >> TIME_SHIFT) & TIME_MASK;
            let elapsed = now.wrapping_sub(then) & TIME_MASK;
            let tokens = (old >> TOKEN_SHIFT) & TOKEN_MASK;
            let refill = elapsed.min(TICKS_PER_SEC) * self.rate;
            ((tokens + refill).min(self.burst), old & SLIP_MASK)
        };
        let (verdict, tokens, slips) = if tokens >= TICKS_PER_SEC {
            (Verdict::Send, tokens - TICKS_PER_SEC, slips)
        } else if self.slip == 0 {
            (Verdict::Drop, tokens, 0)
        } else if slips + 1 >= self.slip {
            (Verdict::Slip, tokens, 0)
        } else {
            (Verdict::Drop, tokens, slips + 1)
        };
        let word =
            tag << TAG_SHIFT | now << TIME_SHIFT | tokens << TOKEN_SHIFT | (slips & SLIP_MASK);
        (verdict, word)
    }

    /// A keyed mix of the prefix (family, address, length) into 64 bits.
    fn hash(&self, p: &Prefix) -> u64 {
        let (addr, fam) = match *p {
            Prefix::V4 { addr, .. } => (u128::from(addr), 4u64),
            Prefix::V6 { addr, .. } => (addr, 6u64),
        };
        let mut h = self.key ^ fam ^ u64::from(p.len()) << 8;
        for part in [(addr >> 64) as u64, addr as u64] {
            h = mix(h ^ part);
        }
        h
    }
}

/// splitmix64's finalizer.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::ip;

    fn cfg(rate: u32, slip: u8) -> RrlConfig {
        RrlConfig {
            rate,
            slip,
            ..RrlConfig::default()
        }
    }

    /// Verdicts of `n` responses to `client` at time `now`.
    fn run(r: &Rrl, client: &str, n: usize, now: u64) -> Vec<Verdict> {
        (0..n).map(|_| r.check(ip(client), now)).collect()
    }

    fn count(v: &[Verdict], which: Verdict) -> usize {
        v.iter().filter(|&&x| x == which).count()
    }

    #[test]
    fn over_the_rate_is_limited_and_every_nth_slips() {
        let r = Rrl::new(&cfg(20, 2));
        let v = run(&r, "192.0.2.1", 60, 1000);
        // A full bucket: the first 20 are sent, the rest limited.
        assert!(v[..20].iter().all(|&x| x == Verdict::Send), "{v:?}");
        let limited = &v[20..];
        assert_eq!(count(limited, Verdict::Send), 0);
        // slip 2: drop, slip, drop, slip, ...
        for (i, x) in limited.iter().enumerate() {
            let want = if i % 2 == 1 {
                Verdict::Slip
            } else {
                Verdict::Drop
            };
            assert_eq!(*x, want, "limited response {i}");
        }
        // Another address of the same /24 shares the bucket.
        assert_ne!(r.check(ip("192.0.2.200"), 1000), Verdict::Send);
    }

    #[test]
    fn slip_zero_drops_all_and_one_slips_all() {
        let r = Rrl::new(&cfg(5, 0));
        let v = run(&r, "192.0.2.1", 20, 7);
        assert_eq!(count(&v, Verdict::Send), 5);
        assert_eq!(count(&v, Verdict::Drop), 15);
        let r = Rrl::new(&cfg(5, 1));
        let v = run(&r, "192.0.2.1", 20, 7);
        assert_eq!(count(&v, Verdict::Send), 5);
        assert_eq!(count(&v, Verdict::Slip), 15);
        let r = Rrl::new(&cfg(5, 3));
        let v = run(&r, "192.0.2.1", 20, 7);
        assert_eq!(count(&v, Verdict::Slip), 5, "every 3rd of 15: {v:?}");
    }

    #[test]
    fn another_prefix_is_unaffected() {
        let r = Rrl::new(&cfg(10, 2));
        run(&r, "192.0.2.1", 100, 50);
        let v = run(&r, "198.51.100.1", 10, 50);
        assert_eq!(count(&v, Verdict::Send), 10);
        // And 192.0.3.0/24 is a different /24 from 192.0.2.0/24.
        assert_eq!(r.check(ip("192.0.3.1"), 50), Verdict::Send);
    }

    #[test]
    fn the_bucket_refills_with_time() {
        let r = Rrl::new(&cfg(64, 2));
        let t = 100 * TICKS_PER_SEC;
        assert_eq!(count(&run(&r, "192.0.2.1", 100, t), Verdict::Send), 64);
        // Half a second later: half the rate back.
        let half = t + TICKS_PER_SEC / 2;
        assert_eq!(count(&run(&r, "192.0.2.1", 100, half), Verdict::Send), 32);
        // One tick: rate / TICKS_PER_SEC = 1 response.
        assert_eq!(count(&run(&r, "192.0.2.1", 10, half + 1), Verdict::Send), 1);
        // Long idle: never more than a full bucket.
        let later = half + 3600 * TICKS_PER_SEC;
        assert_eq!(count(&run(&r, "192.0.2.1", 100, later), Verdict::Send), 64);
        // Over a steady flood, rate per second gets through.
        let sent: usize = (0..10 * TICKS_PER_SEC)
            .map(|k| count(&run(&r, "192.0.2.1", 5, later + 1 + k), Verdict::Send))
            .sum();
        assert_eq!(sent, 640);
    }

    #[test]
    fn the_table_stays_bounded() {
        let r = Rrl::new(&RrlConfig {
            table_size: 1000,
            ..cfg(3, 1)
        });
        for i in 0..100_000u32 {
            r.check(IpAddr::V4((i << 8).into()), 1);
        }
        assert_eq!(r.table_size(), 1000);
        // With far more prefixes than slots, a new prefix still gets its rate.
        let v = run(&r, "203.0.113.9", 10, 1);
        assert!(count(&v, Verdict::Send) >= 3, "{v:?}");
    }

    #[test]
    fn ipv6_is_grouped_by_56() {
        let r = Rrl::new(&cfg(4, 1));
        let v: Vec<_> = [
            "2001:db8:0:1::1",
            "2001:db8:0:2::1",
            "2001:db8:0:ff::9",
            "2001:db8:0:3:1::",
        ]
        .iter()
        .map(|a| r.check(ip(a), 9))
        .collect();
        assert_eq!(count(&v, Verdict::Send), 4);
        // The same /56 (2001:db8:0::/56): limited.
        assert_eq!(r.check(ip("2001:db8:0:42::1"), 9), Verdict::Slip);
        // The next /56: its own bucket.
        assert_eq!(r.check(ip("2001:db8:0:100::1"), 9), Verdict::Send);
        // Configurable: /64 separates them.
        let r = Rrl::new(&RrlConfig {
            ipv6_prefix: 64,
            ..cfg(1, 1)
        });
        assert_eq!(r.check(ip("2001:db8:0:1::1"), 9), Verdict::Send);
        assert_eq!(r.check(ip("2001:db8:0:2::1"), 9), Verdict::Send);
        assert_eq!(r.check(ip("2001:db8:0:2::2"), 9), Verdict::Slip);
    }

    #[test]
    fn exempt_prefixes_are_never_limited() {
        let r = Rrl::new(&RrlConfig {
            exempt: vec!["192.0.2.0/24".into(), "2001:db8::/32".into()],
            ..cfg(1, 1)
        });
        assert_eq!(count(&run(&r, "192.0.2.7", 50, 3), Verdict::Send), 50);
        assert_eq!(count(&run(&r, "2001:db8:1::1", 50, 3), Verdict::Send), 50);
        assert_eq!(count(&run(&r, "198.51.100.7", 50, 3), Verdict::Send), 1);
    }

    #[test]
    fn clock_wrap_still_refills() {
        let r = Rrl::new(&cfg(2, 1));
        let before = TIME_MASK - 1;
        assert_eq!(count(&run(&r, "192.0.2.1", 5, before), Verdict::Send), 2);
        // The 22-bit tick counter wraps: one second later is still later.
        let after = before + TICKS_PER_SEC;
        assert_eq!(count(&run(&r, "192.0.2.1", 5, after), Verdict::Send), 2);
    }

    #[test]
    fn a_slipped_reply_is_the_question_with_tc_and_opt() {
        use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
        use hickory_proto::rr::{Name, RecordType};
        let cfg = crate::testutil::TestConfig::yaml(crate::dns::zone::tests::CFG).build();
        let pops = std::sync::Arc::new(crate::pops::PopState::new(&cfg, None));
        let auth = crate::dns::Authority::new(&cfg, crate::steer::handle(&cfg), pops).unwrap();
        for edns in [true, false] {
            let mut m = Message::new(0x4242, MessageType::Query, OpCode::Query);
            m.metadata.recursion_desired = true;
            let name = Name::from_ascii("WwW.example.net.").unwrap();
            m.add_query(Query::query(name, RecordType::A));
            if edns {
                m.set_edns(Edns::new());
            }
            let q = m.to_vec().unwrap();
            let mut out = Vec::new();
            let from = ip("192.0.2.1");
            assert!(crate::dns::fast::respond(&auth, &q, from, true, &mut out).is_some());
            let full = Message::from_vec(&out).unwrap();
            assert!(!full.answers.is_empty() && !full.metadata.truncation);
            crate::dns::response::slip(&mut out);
            let r = Message::from_vec(&out).unwrap();
            assert!(r.metadata.truncation, "TC set");
            assert_eq!(r.metadata.id, 0x4242);
            assert_eq!(r.metadata.response_code, full.metadata.response_code);
            assert_eq!(r.queries, full.queries, "question as asked");
            assert!(r.answers.is_empty() && r.authorities.is_empty());
            assert!(r.additionals.is_empty());
            assert_eq!(r.edns.is_some(), edns, "OPT kept on an EDNS query");
        }
    }

    #[test]
    fn shared_between_threads() {
        let r = std::sync::Arc::new(Rrl::new(&cfg(1000, 2)));
        let sent: usize = (0..4)
            .map(|_| {
                let r = r.clone();
                std::thread::spawn(move || count(&run(&r, "192.0.2.1", 1000, 5), Verdict::Send))
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|t| t.join().unwrap())
            .sum();
        assert_eq!(sent, 1000, "one bucket across threads");
    }
}
