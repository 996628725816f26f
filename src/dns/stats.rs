//! DNS counters: what each request and answer was, counted where it is
//! answered and summed only when someone asks (a Prometheus scrape).
//!
//! Every UDP worker thread owns one [`Cells`] block (`Cells::single_writer`):
//! it is the only writer, so a count is a relaxed load and store of a value
//! no other core writes (no locked read-modify-write, no cache line shared
//! with another worker), and a reader (the scrape) sees each counter whole.
//! The TCP tasks, which move between the runtime's threads, share one block
//! written with `fetch_add`. [`DnsStats::totals`] adds the blocks up into
//! [`Totals`]; `crate::metrics` turns those into the exposition.
//!
//! What is counted per request ([`Outcome`], filled by `fast::respond`):
//! protocol and address family of the transport, the question type (a fixed
//! list, [`QTYPES`], plus `other`), the RCODE sent ([`RCODES`] plus `other`),
//! the reply's size and the time to answer (histograms with fixed buckets),
//! TC set, ECS use (used, source prefix length 0, malformed), and for a
//! steered name the POP and why it answered; requests sent nothing are
//! counted as drops by reason.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use super::iana::rcode;

/// The question types counted by name (CoreDNS counts a similar fixed set);
/// any other is `other`.
pub const QTYPES: [(u16, &str); 15] = [
    (1, "A"),
    (2, "NS"),
    (5, "CNAME"),
    (6, "SOA"),
    (12, "PTR"),
    (15, "MX"),
    (16, "TXT"),
    (28, "AAAA"),
    (33, "SRV"),
    (43, "DS"),
    (48, "DNSKEY"),
    (64, "SVCB"),
    (65, "HTTPS"),
    (257, "CAA"),
    (255, "ANY"),
];
const N_QTYPE: usize = QTYPES.len() + 1;

/// The index of `qtype` in [`QTYPES`] (its length: `other`).
#[inline]
fn qtype_index(qtype: u16) -> usize {
    match qtype {
        1 => 0,
        2 => 1,
        5 => 2,
        6 => 3,
        12 => 4,
        15 => 5,
        16 => 6,
        28 => 7,
        33 => 8,
        43 => 9,
        48 => 10,
        64 => 11,
        65 => 12,
        257 => 13,
        255 => 14,
        _ => QTYPES.len(),
    }
}

/// The RCODEs counted by name; any other is `other`.
pub const RCODES: [(u16, &str); 7] = [
    (rcode::NOERROR, "NOERROR"),
    (rcode::FORMERR, "FORMERR"),
    (rcode::SERVFAIL, "SERVFAIL"),
    (rcode::NXDOMAIN, "NXDOMAIN"),
    (rcode::NOTIMP, "NOTIMP"),
    (rcode::REFUSED, "REFUSED"),
    (rcode::BADVERS, "BADVERS"),
];
const N_RCODE: usize = RCODES.len() + 1;
/// [`SIZE_BUCKETS`] as integers, for the count.
const SIZE_BYTES: [u64; 10] = [0, 100, 200, 300, 400, 511, 1023, 2047, 4095, 8291];

/// Upper bounds (seconds) of the request-duration buckets: 1 µs to 10 ms
/// (an answer takes a few µs; a slow one is a stall).
pub const DURATION_BUCKETS: [f64; 12] = [
    1e-6, 2.5e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 1e-2,
];
/// [`DURATION_BUCKETS`] in ns, for the count.
const DURATION_NS: [u64; 12] = [
    1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000, 2_500_000,
    10_000_000,
];
/// Upper bounds (bytes) of the response-size buckets (CoreDNS's, up to the
/// largest TCP message).
pub const SIZE_BUCKETS: [f64; 10] = [
    0.0, 100.0, 200.0, 300.0, 400.0, 511.0, 1023.0, 2047.0, 4095.0, 8291.0,
];

/// Transport: index 0 UDP, 1 TCP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proto {
    Udp = 0,
    Tcp = 1,
}

impl Proto {
    pub const ALL: [Proto; 2] = [Proto::Udp, Proto::Tcp];
    pub fn as_str(self) -> &'static str {
        match self {
            Proto::Udp => "udp",
            Proto::Tcp => "tcp",
        }
    }
}

/// How the query used EDNS Client Subnet.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum EcsUse {
    /// No ECS option.
    #[default]
    None,
    /// ECS with a source prefix length above 0: the querier is its address.
    Used,
    /// ECS with source prefix length 0 (RFC 7871 §7.1.2: the resolver asks
    /// us not to use its address).
    ZeroSource,
    /// A malformed ECS option (answered FORMERR).
    Malformed,
}

/// Why a request got no reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DropReason {
    /// Shorter than a header, or a response (QR set).
    Invalid,
    /// UDP source port 0 (RFC 768: no reply possible).
    SourcePortZero,
    /// Response rate limiting (`dns.rrl`) dropped the reply.
    RateLimited,
}

impl DropReason {
    pub const ALL: [DropReason; 3] = [
        DropReason::Invalid,
        DropReason::SourcePortZero,
        DropReason::RateLimited,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::Invalid => "invalid",
            DropReason::SourcePortZero => "source_port_zero",
            DropReason::RateLimited => "rate_limited",
        }
    }
}

/// The number of [`AnswerReason`]s.
const REASONS: usize = 5;

/// Why a steered name answered with its POP (the `reason` of
/// `sparrow_steering_answers_total`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AnswerReason {
    /// The client's first-ranked POP, ranked from the RIB.
    Closest,
    /// The first-ranked POP, ranked by the static `steering` map (this
    /// family's steering has not left the fallback map).
    Fallback,
    /// A later POP: the ones before were not usable.
    Failover,
    /// A later POP: the one before shed this client (load).
    Shed,
    /// No POP usable: answered with all addresses (`all_down: answer_all`)
    /// or, with no POP, NODATA (`all_down: empty`).
    AllDown,
}

impl AnswerReason {
    pub const ALL: [AnswerReason; REASONS] = [
        AnswerReason::Closest,
        AnswerReason::Fallback,
        AnswerReason::Failover,
        AnswerReason::Shed,
        AnswerReason::AllDown,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            AnswerReason::Closest => "closest",
            AnswerReason::Fallback => "fallback",
            AnswerReason::Failover => "failover",
            AnswerReason::Shed => "shed",
            AnswerReason::AllDown => "all_down",
        }
    }
}

/// A steered name's answer: the POP (`None`: NODATA, no POP usable) and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Steered {
    pub pop: Option<u16>,
    pub reason: AnswerReason,
}

/// What one request was, as `fast::respond` saw it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// QTYPE (0 when there was no question).
    pub qtype: u16,
    /// RCODE sent.
    pub rcode: u16,
    pub ecs: EcsUse,
    pub truncated: bool,
    /// Reply bytes (0: none sent).
    pub size: usize,
    pub steered: Option<Steered>,
}

/// One writer's counters (see the module docs).
#[derive(Debug)]
pub struct Cells {
    single_writer: bool,
    /// The sampled query log: one line per this many requests (0: off).
    sample_every: u64,
    /// Requests seen by the sampler.
    seen: AtomicU64,
    /// [family][qtype]
    requests: [[AtomicU64; N_QTYPE]; 2],
    rcodes: [AtomicU64; N_RCODE],
    duration: Histogram<{ DURATION_BUCKETS.len() }>,
    size: Histogram<{ SIZE_BUCKETS.len() }>,
    truncated: AtomicU64,
    /// Used, ZeroSource, Malformed.
    ecs: [AtomicU64; 3],
    drops: [AtomicU64; 3],
    /// [pop * reasons + reason]; the last POP slot is "no POP".
    answers: Box<[AtomicU64]>,
}

/// A histogram's counters: one per bucket (not cumulative), the sum and count.
#[derive(Debug)]
struct Histogram<const N: usize> {
    buckets: [AtomicU64; N],
    /// In the unit of [`Histogram::observe`]'s integer (ns or bytes).
    sum: AtomicU64,
    count: AtomicU64,
}

impl<const N: usize> Histogram<N> {
    fn new() -> Self {
        Histogram {
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            sum: AtomicU64::new(0),
            count: AtomicU64::new(0),
        }
    }
}

impl Cells {
    fn new(pops: usize, single_writer: bool, sample_every: u64) -> Cells {
        Cells {
            single_writer,
            sample_every,
            seen: AtomicU64::new(0),
            requests: std::array::from_fn(|_| std::array::from_fn(|_| AtomicU64::new(0))),
            rcodes: std::array::from_fn(|_| AtomicU64::new(0)),
            duration: Histogram::new(),
            size: Histogram::new(),
            truncated: AtomicU64::new(0),
            ecs: std::array::from_fn(|_| AtomicU64::new(0)),
            drops: std::array::from_fn(|_| AtomicU64::new(0)),
            answers: (0..(pops + 1) * REASONS)
                .map(|_| AtomicU64::new(0))
                .collect(),
        }
    }

    #[inline]
    fn add(&self, c: &AtomicU64, n: u64) {
        if self.single_writer {
            // The only writer: no locked read-modify-write needed.
            c.store(c.load(Relaxed).wrapping_add(n), Relaxed);
        } else {
            c.fetch_add(n, Relaxed);
        }
    }

    /// Whether this request goes into the sampled query log (`querylog`):
    /// every `logging.query_sample`-th one this writer sees.
    #[inline]
    pub fn sampled(&self) -> bool {
        if self.sample_every == 0 {
            return false;
        }
        self.add(&self.seen, 1);
        self.seen.load(Relaxed) % self.sample_every == 0
    }

    /// Count a request that got no reply.
    #[inline]
    pub fn dropped(&self, why: DropReason) {
        self.add(&self.drops[why as usize], 1);
    }

    /// Count one request from an address of family `v6` that was answered
    /// (or, `o.size == 0`, dropped after answering: rate limited) in `ns`.
    #[inline]
    pub fn record(&self, v6: bool, o: &Outcome, ns: u64) {
        self.add(&self.requests[v6 as usize][qtype_index(o.qtype)], 1);
        let b = DURATION_NS.partition_point(|&s| s < ns);
        self.observe(&self.duration, b, ns);
        if let Some(s) = o.steered {
            let pop = s.pop.map_or(self.answers.len() / REASONS - 1, usize::from);
            if let Some(c) = self.answers.get(pop * REASONS + s.reason as usize) {
                self.add(c, 1);
            }
        }
        match o.ecs {
            EcsUse::None => {}
            e => self.add(&self.ecs[e as usize - 1], 1),
        }
        if o.size == 0 {
            self.dropped(DropReason::RateLimited);
            return;
        }
        let r = RCODES
            .iter()
            .position(|&(c, _)| c == o.rcode)
            .unwrap_or(RCODES.len());
        self.add(&self.rcodes[r], 1);
        let size = o.size as u64;
        let b = SIZE_BYTES.partition_point(|&s| s < size);
        self.observe(&self.size, b, size);
        if o.truncated {
            self.add(&self.truncated, 1);
        }
    }

    #[inline]
    fn observe<const N: usize>(&self, h: &Histogram<N>, bucket: usize, v: u64) {
        if let Some(c) = h.buckets.get(bucket) {
            self.add(c, 1);
        }
        self.add(&h.sum, v);
        self.add(&h.count, 1);
    }
}

/// Every writer's block, per protocol; added up at [`DnsStats::totals`].
#[derive(Debug)]
pub struct DnsStats {
    pops: usize,
    sample_every: u64,
    udp: Mutex<Vec<Arc<Cells>>>,
    tcp: Arc<Cells>,
}

impl DnsStats {
    /// Counters for answers among `pops` POPs; a query log line per
    /// `sample_every` requests per writer (0: none).
    pub fn new(pops: usize, sample_every: u32) -> DnsStats {
        let sample_every = u64::from(sample_every);
        DnsStats {
            pops,
            sample_every,
            udp: Mutex::new(Vec::new()),
            tcp: Arc::new(Cells::new(pops, false, sample_every)),
        }
    }

    /// A new block for one UDP worker thread (its only writer).
    pub fn udp_worker(&self) -> Arc<Cells> {
        let c = Arc::new(Cells::new(self.pops, true, self.sample_every));
        self.udp.lock().expect("dns stats lock").push(c.clone());
        c
    }

    /// UDP worker threads running, of those started (a thread that ended
    /// has dropped its block).
    pub fn udp_workers_alive(&self) -> (usize, usize) {
        let udp = self.udp.lock().expect("dns stats lock");
        let alive = udp.iter().filter(|c| Arc::strong_count(c) > 1).count();
        (alive, udp.len())
    }

    /// The TCP tasks' shared block.
    pub fn tcp(&self) -> Arc<Cells> {
        self.tcp.clone()
    }

    /// The sums over every block.
    pub fn totals(&self) -> Totals {
        let mut t = Totals::new(self.pops);
        for c in self.udp.lock().expect("dns stats lock").iter() {
            t.add(Proto::Udp, c);
        }
        t.add(Proto::Tcp, &self.tcp);
        t
    }
}

/// A histogram's sums: per-bucket counts (not cumulative), sum and count.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HistogramTotals {
    pub buckets: Vec<u64>,
    pub sum: u64,
    pub count: u64,
}

impl HistogramTotals {
    fn add<const N: usize>(&mut self, h: &Histogram<N>) {
        self.buckets.resize(N, 0);
        for (t, c) in self.buckets.iter_mut().zip(&h.buckets) {
            *t += c.load(Relaxed);
        }
        self.sum += h.sum.load(Relaxed);
        self.count += h.count.load(Relaxed);
    }

    /// `(upper bound, cumulative count)` pairs for the exposition, ending
    /// with `+Inf` (which is `count`).
    pub fn cumulative(&self, bounds: &[f64]) -> Vec<(f64, u64)> {
        let mut acc = 0;
        let mut out: Vec<(f64, u64)> = bounds
            .iter()
            .zip(self.buckets.iter().chain(std::iter::repeat(&0)))
            .map(|(&b, &n)| {
                acc += n;
                (b, acc)
            })
            .collect();
        out.push((f64::INFINITY, self.count));
        out
    }
}

/// The DNS counters summed over the writers, per protocol where labelled so.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Totals {
    /// [proto][family (0 v4, 1 v6)][qtype index; the last is `other`]
    pub requests: [[Vec<u64>; 2]; 2],
    /// [proto][rcode index; the last is `other`]
    pub rcodes: [Vec<u64>; 2],
    /// Seconds x 1e9 in `sum`.
    pub duration: [HistogramTotals; 2],
    pub size: [HistogramTotals; 2],
    pub truncated: [u64; 2],
    /// Used, zero source, malformed.
    pub ecs: [u64; 3],
    /// By [`DropReason`] index.
    pub drops: [u64; 3],
    /// [pop (the last is no POP)][reason]
    pub answers: Vec<[u64; REASONS]>,
}

impl Totals {
    fn new(pops: usize) -> Totals {
        let z = |n| vec![0; n];
        Totals {
            requests: std::array::from_fn(|_| [z(N_QTYPE), z(N_QTYPE)]),
            rcodes: [z(N_RCODE), z(N_RCODE)],
            answers: vec![[0; REASONS]; pops + 1],
            ..Totals::default()
        }
    }

    fn add(&mut self, p: Proto, c: &Cells) {
        let p = p as usize;
        for (f, row) in c.requests.iter().enumerate() {
            for (t, n) in self.requests[p][f].iter_mut().zip(row) {
                *t += n.load(Relaxed);
            }
        }
        for (t, n) in self.rcodes[p].iter_mut().zip(&c.rcodes) {
            *t += n.load(Relaxed);
        }
        self.duration[p].add(&c.duration);
        self.size[p].add(&c.size);
        self.truncated[p] += c.truncated.load(Relaxed);
        for (t, n) in self.ecs.iter_mut().zip(&c.ecs) {
            *t += n.load(Relaxed);
        }
        for (t, n) in self.drops.iter_mut().zip(&c.drops) {
            *t += n.load(Relaxed);
        }
        for (i, n) in c.answers.iter().enumerate() {
            if let Some(row) = self.answers.get_mut(i / REASONS) {
                row[i % REASONS] += n.load(Relaxed);
            }
        }
    }

    /// Requests over every protocol, family and type.
    pub fn requests_total(&self) -> u64 {
        self.requests.iter().flatten().flatten().sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workers_are_summed_by_protocol_family_type_and_rcode() {
        let s = DnsStats::new(2, 0);
        let (a, b, t) = (s.udp_worker(), s.udp_worker(), s.tcp());
        let aaaa = Outcome {
            qtype: 28,
            rcode: rcode::NXDOMAIN,
            size: 80,
            ..Outcome::default()
        };
        a.record(false, &aaaa, 3_000);
        b.record(false, &aaaa, 3_000);
        t.record(
            true,
            &Outcome {
                qtype: 99,
                rcode: 9,
                size: 1500,
                truncated: true,
                ..aaaa
            },
            20_000_000,
        );
        let tot = s.totals();
        let aaaa_i = QTYPES.iter().position(|q| q.1 == "AAAA").unwrap();
        assert_eq!(tot.requests[0][0][aaaa_i], 2);
        assert_eq!(
            tot.requests[1][1][N_QTYPE - 1],
            1,
            "an unlisted qtype is other"
        );
        assert_eq!(tot.rcodes[0][3], 2);
        assert_eq!(tot.rcodes[1][N_RCODE - 1], 1);
        assert_eq!(tot.truncated, [0, 1]);
        assert_eq!(tot.requests_total(), 3);
        // 3 µs falls in the 5 µs bucket; 20 ms over the last bound (+Inf only).
        let c = tot.duration[0].cumulative(&DURATION_BUCKETS);
        assert_eq!(c[1], (2.5e-6, 0));
        assert_eq!(c[2], (5e-6, 2));
        assert_eq!(*c.last().unwrap(), (f64::INFINITY, 2));
        assert_eq!(tot.duration[0].sum, 6_000);
        let c = tot.duration[1].cumulative(&DURATION_BUCKETS);
        assert_eq!(c[DURATION_BUCKETS.len() - 1].1, 0);
        assert_eq!(c.last().unwrap().1, 1);
        assert_eq!(tot.size[1].cumulative(&SIZE_BUCKETS)[7], (2047.0, 1));
    }

    #[test]
    fn integer_tables_match_the_exposed_bounds() {
        for (i, &(t, _)) in QTYPES.iter().enumerate() {
            assert_eq!(qtype_index(t), i);
        }
        assert_eq!(qtype_index(99), QTYPES.len());
        for (ns, s) in DURATION_NS.iter().zip(DURATION_BUCKETS) {
            assert_eq!(*ns as f64, (s * 1e9).round());
        }
        for (b, s) in SIZE_BYTES.iter().zip(SIZE_BUCKETS) {
            assert_eq!(*b as f64, s);
        }
    }

    #[test]
    fn answers_ecs_and_drops() {
        let s = DnsStats::new(2, 0);
        let w = s.udp_worker();
        let o = |pop, reason, ecs| Outcome {
            qtype: 1,
            size: 60,
            ecs,
            steered: Some(Steered { pop, reason }),
            ..Outcome::default()
        };
        w.record(false, &o(Some(1), AnswerReason::Failover, EcsUse::Used), 1);
        w.record(
            false,
            &o(None, AnswerReason::AllDown, EcsUse::ZeroSource),
            1,
        );
        w.record(
            false,
            &Outcome {
                size: 0,
                ..o(Some(0), AnswerReason::Closest, EcsUse::Malformed)
            },
            1,
        );
        w.dropped(DropReason::SourcePortZero);
        let t = s.totals();
        assert_eq!(t.answers[1][AnswerReason::Failover as usize], 1);
        assert_eq!(
            t.answers[2][AnswerReason::AllDown as usize],
            1,
            "no POP is the last row"
        );
        assert_eq!(t.answers[0][AnswerReason::Closest as usize], 1);
        assert_eq!(t.ecs, [1, 1, 1]);
        assert_eq!(t.drops, [0, 1, 1], "a rate-limited reply is a drop");
        assert_eq!(
            t.rcodes[0].iter().sum::<u64>(),
            2,
            "a dropped reply has no rcode"
        );
    }
}
