//! Publishing snapshots from the RIB task.
//!
//! Two halves:
//! - [`Publisher`] lives in the RIB task, as its [`LocRibListener`] (the
//!   daemon passes it to `rib::run_with`). After every burst
//!   of messages it takes the prefixes whose paths changed in any way
//!   ([`Rib::set_track_all_path_changes`], [`Rib::take_changed`]: a ranking
//!   depends on every POP's path, not only the best), ranks them (a hash lookup, a best-path selection
//!   or two and an AS_PATH scan each: ~1 us) and sends `(prefix, ranking id)`
//!   changes plus newly interned rankings to the builder thread. It also
//!   latches, per family, the first upstream End-of-RIB.
//! - The builder thread (`steer-build`) keeps the ranked Loc-RIB per family
//!   (`update::RankedMap`). Once a family answers from the RIB (before that,
//!   changes are only recorded) it updates that family's trie for the changed
//!   prefixes (`update::apply`: copy-on-write, only the blocks they cover),
//!   then swaps the new snapshot into the [`Handle`]. It takes every batch
//!   already queued before building, so a burst becomes one update.
//!
//! Full rebuilds (`update::full`) happen only for a family's first snapshot
//! from the RIB and when more than [`INCREMENTAL_MAX`] prefixes changed since
//! the last publication (a POP going down re-ranks most of the table), or a
//! prefix shorter than /8 (IPv4) or /16 (IPv6) changed. Those are paced: they
//! start at most every [`MIN_REBUILD_INTERVAL`] (or twice the last full
//! build's duration, if longer), so the builder uses at most about half a
//! core while a whole table moves; increments are published at once. Once a
//! family's next build is full, its changed prefixes are no longer recorded
//! (only the map is updated): during the initial load that list would hold
//! the whole table.
//!
//! Dropping old snapshots: readers only `load()`. The builder swaps in the new
//! snapshot and keeps the previous one for [`RETIRE_AFTER`] or until the
//! start of its next build, whichever comes first, then drops it itself, so
//! the last reference to a snapshot is practically never a reader's guard and
//! freeing what only it holds (after an update: the replaced root pages and
//! nodes; after a full build: the whole previous trie, ~10 MB) happens on the
//! builder thread, not on the query path, and before the next build
//! allocates. A reader holding a guard that long would free it itself;
//! harmless.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tracing::{debug, info, warn};

use super::lpm::Addr;
use super::update::{self, Params, RankedMap};
use super::{
    pop_names, rank_prefix, Family, Handle, PopIdx, RankInterner, Ranker, Ranking, Snapshot,
    Source, DEFAULT_RANK,
};
use crate::config::{Config, Role};
use crate::rib::{LocRibListener, PathKey, Rib};
use crate::types::{Afi, PeerId, Prefix};

/// Shortest time between two rebuild starts while changes keep arriving.
pub const MIN_REBUILD_INTERVAL: Duration = Duration::from_millis(50);

/// How long the builder keeps the snapshot it replaced (at most).
pub const RETIRE_AFTER: Duration = Duration::from_millis(200);

/// Changes from the RIB task to the builder.
#[derive(Debug, Default)]
struct Batch {
    /// Rankings interned since the last batch, flattened, in id order.
    rankings: Vec<PopIdx>,
    /// `None`: the prefix is gone.
    v4: Vec<(u32, u8, Option<u16>)>,
    v6: Vec<(u128, u8, Option<u16>)>,
    /// The family answers from the RIB from now on.
    ready: [bool; 2],
}

/// The RIB task's half: see the module docs.
#[derive(Debug)]
pub struct Publisher {
    ranker: Ranker,
    interner: RankInterner,
    tx: Option<mpsc::Sender<Batch>>,
    thread: Option<JoinHandle<()>>,
    /// Peers whose End-of-RIB switches a family to the RIB.
    eor_peers: [Vec<PeerId>; 2],
    ready: [bool; 2],
    paths: Vec<(PathKey, u32)>,
    ranking: Ranking,
    stats: Arc<PublishStats>,
}

/// The peers whose first End-of-RIB in `afi` switches that family's
/// steering from the fallback map to the RIB: the upstreams carrying it,
/// else every peer carrying it. None: the family answers from the fallback
/// map for good (readiness, `crate::metrics`, does not wait for it).
pub fn eor_peers(cfg: &Config, afi: Afi) -> Vec<PeerId> {
    let carries = |role: Option<Role>| {
        cfg.peers
            .iter()
            .enumerate()
            .filter(|(_, p)| p.families.contains(&afi))
            .filter(|(_, p)| role.is_none_or(|r| p.role == r))
            .map(|(i, _)| i as PeerId)
            .collect::<Vec<_>>()
    };
    let up = carries(Some(Role::Upstream));
    if up.is_empty() {
        carries(None)
    } else {
        up
    }
}

/// What the builder thread last published, for metrics: written after each
/// publication, read at a scrape.
#[derive(Debug)]
pub struct PublishStats {
    /// Unix time of the last publication, ms (0: none yet).
    pub published_unix_ms: AtomicU64,
    /// Time the last publication took to build, µs.
    pub build_us: AtomicU64,
    pub full_builds: AtomicU64,
    pub incremental_builds: AtomicU64,
    /// Per family, per POP: prefixes of the ranked RIB that rank it first.
    pub first: [Box<[AtomicU64]>; 2],
}

impl PublishStats {
    fn new(pops: usize) -> PublishStats {
        let z = || (0..pops).map(|_| AtomicU64::new(0)).collect();
        PublishStats {
            published_unix_ms: AtomicU64::new(0),
            build_us: AtomicU64::new(0),
            full_builds: AtomicU64::new(0),
            incremental_builds: AtomicU64::new(0),
            first: [z(), z()],
        }
    }

    /// Count, per POP, the prefixes of `counts` (prefixes per ranking id)
    /// whose ranking (`rankings`, `pops` entries per id) puts it first.
    fn set_first(&self, f: usize, counts: &[u64], rankings: &[PopIdx]) {
        let n = self.first[f].len();
        let mut per = vec![0u64; n];
        for (id, &c) in counts.iter().enumerate() {
            if let Some(&p) = rankings.get(id * n) {
                if let Some(x) = per.get_mut(p as usize) {
                    *x += c;
                }
            }
        }
        for (a, v) in self.first[f].iter().zip(per) {
            a.store(v, Relaxed);
        }
    }
}

impl Publisher {
    /// What the builder thread publishes, for metrics.
    pub fn stats(&self) -> Arc<PublishStats> {
        self.stats.clone()
    }

    /// A publisher into `handle` (which holds the fallback snapshot), with its
    /// builder thread started.
    pub fn new(cfg: &Config, handle: Handle) -> std::io::Result<Publisher> {
        let ranker = Ranker::new(cfg);
        let interner = RankInterner::new(ranker.local(), ranker.pops());
        let eor_peers = Afi::ALL.map(|afi| eor_peers(cfg, afi));
        let (tx, rx) = mpsc::channel();
        let stats = Arc::new(PublishStats::new(cfg.pops.len()));
        let builder = Builder::new(cfg, handle, stats.clone());
        let thread = std::thread::Builder::new()
            .name("steer-build".into())
            .spawn(move || builder.run(rx))?;
        Ok(Publisher {
            stats,
            ranker,
            interner,
            tx: Some(tx),
            thread: Some(thread),
            eor_peers,
            ready: [false; 2],
            paths: Vec::new(),
            ranking: Ranking::new(),
        })
    }

    /// Start tracking `rib` (turns on its change tracking) and send what it
    /// already holds.
    pub fn attach(&mut self, rib: &mut Rib) {
        rib.set_track_all_path_changes(true);
        let mut b = Batch::default();
        for afi in Afi::ALL {
            let all: Vec<Prefix> = rib.best_routes(afi).map(|(p, _, _)| p).collect();
            for p in all {
                self.add(rib, p, &mut b);
            }
        }
        self.check_ready(rib, &mut b);
        self.send(b);
    }

    /// After a burst of RIB messages: send the best-path changes.
    pub fn sync(&mut self, rib: &mut Rib) {
        let mut b = Batch::default();
        for afi in Afi::ALL {
            for p in rib.take_changed(afi) {
                self.add(rib, p, &mut b);
            }
        }
        let changed = self.check_ready(rib, &mut b);
        if changed || !b.v4.is_empty() || !b.v6.is_empty() {
            self.send(b);
        }
    }

    fn check_ready(&mut self, rib: &Rib, b: &mut Batch) -> bool {
        let mut changed = false;
        for afi in Afi::ALL {
            let f = afi.index();
            if !self.ready[f]
                && self.eor_peers[f]
                    .iter()
                    .any(|&p| rib.end_of_rib_seen(p, afi))
            {
                self.ready[f] = true;
                changed = true;
            }
        }
        b.ready = self.ready;
        changed
    }

    fn add(&mut self, rib: &Rib, p: Prefix, b: &mut Batch) {
        let id = rank_prefix(rib, &self.ranker, &p, &mut self.paths, &mut self.ranking)
            .map(|()| self.interner.intern(&self.ranking));
        match p {
            Prefix::V4 { addr, len } => b.v4.push((addr, len, id)),
            Prefix::V6 { addr, len } => b.v6.push((addr, len, id)),
        }
    }

    fn send(&mut self, mut b: Batch) {
        b.rankings = self.interner.take_new();
        if let Some(tx) = &self.tx {
            if tx.send(b).is_err() {
                warn!("steering builder thread is gone; snapshots are no longer updated");
                self.tx = None;
            }
        }
    }
}

/// How the daemon hands the publisher to the RIB task (`rib::run_with`).
impl LocRibListener for Publisher {
    fn attach(&mut self, rib: &mut Rib) {
        Publisher::attach(self, rib)
    }
    fn changed(&mut self, rib: &mut Rib) {
        self.sync(rib)
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        // Closing the channel ends the builder after its last build.
        self.tx = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Above this many changed prefixes of a family since its last publication,
/// a full build is cheaper than updating each.
pub const INCREMENTAL_MAX: usize = 4096;

/// One family's builder state.
struct Fam<A: Addr> {
    map: RankedMap<A>,
    /// Answers from the RIB (the first End-of-RIB was seen).
    ready: bool,
    /// The published family.
    cur: Arc<Family<A>>,
    /// `cur` is built from the RIB (else the first build must be full).
    built: bool,
    /// Changed since `cur` (not recorded while a full build is due).
    pending: Vec<(A, u8)>,
    /// A full build is due: a changed prefix is short or more than
    /// [`INCREMENTAL_MAX`] changed.
    full: bool,
    /// Prefixes shorter than this force a full build.
    short_len: u8,
}

impl<A: Addr> Fam<A> {
    fn new(cur: Arc<Family<A>>, short_len: u8) -> Fam<A> {
        Fam {
            map: RankedMap::new(),
            ready: false,
            cur,
            built: false,
            pending: Vec::new(),
            full: false,
            short_len,
        }
    }

    fn set(&mut self, a: A, l: u8, id: Option<u16>) {
        if !self.map.set(a, l, id) || !self.built || self.full {
            return;
        }
        if l < self.short_len || self.pending.len() >= INCREMENTAL_MAX {
            self.full = true;
            self.pending = Vec::new();
        } else {
            self.pending.push((a, l));
        }
    }

    /// What the next build of this family is, if any.
    fn due(&self) -> Option<Kind> {
        if !self.ready {
            None
        } else if !self.built || self.full {
            Some(Kind::Full)
        } else if self.pending.is_empty() {
            None
        } else {
            Some(Kind::Incremental)
        }
    }

    /// Build `kind` into `cur` with `rankings`.
    fn build(&mut self, kind: Kind, rankings: &Arc<Vec<PopIdx>>) {
        let p = Params {
            default_rank: DEFAULT_RANK,
            compress: true,
        };
        let trie = match kind {
            Kind::Full => update::full(&self.map, p),
            Kind::Incremental => {
                let mut t = self.cur.trie.clone();
                update::apply(&mut t, &self.map, p, &self.pending);
                t
            }
        };
        self.cur = Arc::new(Family {
            source: Source::Rib,
            trie,
            rankings: rankings.clone(),
        });
        self.built = true;
        self.pending.clear();
        self.full = false;
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Full,
    Incremental,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Full => "full",
            Kind::Incremental => "incremental",
        }
    }
}

impl Builder {
    /// Note a publication in [`PublishStats`].
    fn record(&self, k4: Option<Kind>, k6: Option<Kind>, us: u64) {
        let st = &self.stats;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        st.published_unix_ms.store(now, Relaxed);
        st.build_us.store(us, Relaxed);
        for k in [k4, k6].into_iter().flatten() {
            match k {
                Kind::Full => st.full_builds.fetch_add(1, Relaxed),
                Kind::Incremental => st.incremental_builds.fetch_add(1, Relaxed),
            };
        }
        st.set_first(0, self.v4.map.count_by_id(), &self.rankings);
        st.set_first(1, self.v6.map.count_by_id(), &self.rankings);
    }
}

/// What the builder's wait ended with.
enum Next {
    Batch(Batch),
    /// The channel is closed (the publisher is gone).
    Closed,
    /// No batch, the retired snapshot was dropped.
    Retired,
}

/// The builder thread's state.
struct Builder {
    handle: Handle,
    pops: Arc<[Box<str>]>,
    rankings: Arc<Vec<PopIdx>>,
    v4: Fam<u32>,
    v6: Fam<u128>,
    generation: u64,
    /// The snapshot replaced by the last publication and when, dropped at
    /// the start of the next build or after [`RETIRE_AFTER`].
    retired: Option<(Arc<Snapshot>, Instant)>,
    stats: Arc<PublishStats>,
}

impl Builder {
    fn new(cfg: &Config, handle: Handle, stats: Arc<PublishStats>) -> Builder {
        let cur = handle.load_full();
        Builder {
            stats,
            pops: pop_names(cfg),
            rankings: Arc::new(Vec::new()),
            v4: Fam::new(cur.v4.clone(), 8),
            v6: Fam::new(cur.v6.clone(), 16),
            generation: cur.generation,
            retired: None,
            handle,
        }
    }

    fn due(&self) -> (Option<Kind>, Option<Kind>) {
        (self.v4.due(), self.v6.due())
    }

    fn run(mut self, rx: mpsc::Receiver<Batch>) {
        let mut last_full = Instant::now() - MIN_REBUILD_INTERVAL;
        let mut interval = MIN_REBUILD_INTERVAL;
        let mut open = true;
        while open {
            match self.next_batch(&rx) {
                Next::Batch(b) => self.apply(b),
                Next::Closed => break,
                Next::Retired => continue,
            }
            // Take what is already queued.
            while let Ok(b) = rx.try_recv() {
                self.apply(b);
            }
            // A full build waits for its pace, taking batches meanwhile.
            let full = |d: (Option<Kind>, Option<Kind>)| {
                d.0 == Some(Kind::Full) || d.1 == Some(Kind::Full)
            };
            if full(self.due()) {
                let deadline = last_full + interval;
                loop {
                    let now = Instant::now();
                    if now >= deadline {
                        while let Ok(b) = rx.try_recv() {
                            self.apply(b);
                        }
                        break;
                    }
                    match rx.recv_timeout(deadline - now) {
                        Ok(b) => self.apply(b),
                        Err(mpsc::RecvTimeoutError::Timeout) => break,
                        Err(mpsc::RecvTimeoutError::Disconnected) => {
                            open = false;
                            break;
                        }
                    }
                }
            }
            let start = Instant::now();
            let was_full = full(self.due());
            if self.build() && was_full {
                last_full = start;
                interval = MIN_REBUILD_INTERVAL.max(start.elapsed() * 2);
            }
        }
    }

    /// Wait for the next batch; drops the retired snapshot if
    /// [`RETIRE_AFTER`] passes first.
    fn next_batch(&mut self, rx: &mpsc::Receiver<Batch>) -> Next {
        let Some((_, at)) = self.retired else {
            return rx.recv().map_or(Next::Closed, Next::Batch);
        };
        let wait = (at + RETIRE_AFTER).saturating_duration_since(Instant::now());
        match rx.recv_timeout(wait) {
            Ok(b) => Next::Batch(b),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                self.retired = None;
                Next::Retired
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => Next::Closed,
        }
    }

    fn apply(&mut self, b: Batch) {
        if !b.rankings.is_empty() {
            Arc::make_mut(&mut self.rankings).extend_from_slice(&b.rankings);
        }
        for (a, l, id) in b.v4 {
            self.v4.set(a, l, id);
        }
        for (a, l, id) in b.v6 {
            self.v6.set(a, l, id);
        }
        for (f, ready) in b.ready.into_iter().enumerate() {
            if ready {
                match f {
                    0 => self.v4.ready = true,
                    _ => self.v6.ready = true,
                }
            }
        }
    }

    /// Build the families that are due and publish. Returns whether anything
    /// was built.
    fn build(&mut self) -> bool {
        let t = Instant::now();
        let (k4, k6) = self.due();
        if k4.is_some() || k6.is_some() {
            // Free it before this build allocates.
            self.retired = None;
        }
        if let Some(k) = k4 {
            self.v4.build(k, &self.rankings);
        }
        if let Some(k) = k6 {
            self.v6.build(k, &self.rankings);
        }
        if k4.is_none() && k6.is_none() {
            return false;
        }
        let was = self.handle.load();
        let first = was.v4.source != self.v4.cur.source || was.v6.source != self.v6.cur.source;
        drop(was);
        self.generation += 1;
        let snap = Snapshot {
            generation: self.generation,
            pops: self.pops.clone(),
            v4: self.v4.cur.clone(),
            v6: self.v6.cur.clone(),
        };
        let old = self.handle.swap(Arc::new(snap));
        // Keep `old` for a while (dropped off the query path).
        self.retired = Some((old, Instant::now()));
        let kind = |k: Option<Kind>| k.map_or("none", Kind::as_str);
        let us = t.elapsed().as_micros() as u64;
        self.record(k4, k6, us);
        if first {
            info!(generation = self.generation, v4 = ?self.v4.cur.source, v6 = ?self.v6.cur.source,
                prefixes_v4 = self.v4.map.len(), prefixes_v6 = self.v6.map.len(),
                map_bytes = self.v4.map.bytes() + self.v6.map.bytes(),
                ms = us / 1000, us, "steering: answering from the RIB");
        } else {
            debug!(
                generation = self.generation,
                v4 = kind(k4),
                v6 = kind(k6),
                prefixes_v4 = self.v4.map.len(),
                prefixes_v6 = self.v6.map.len(),
                rankings = self.rankings.len() / self.pops.len().max(1),
                us,
                "steering: snapshot published"
            );
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::TestConfig;

    #[test]
    fn changes_are_not_recorded_while_a_full_build_is_due() {
        let rankings = Arc::new(Vec::new());
        let map = RankedMap::new();
        let cur = Arc::new(Family::new(Source::Fallback, &map, 0, rankings.clone()));
        let mut f = Fam::<u32>::new(cur, 8);
        // Before the first build (and before the family is ready).
        for i in 0..10u32 {
            f.set(i << 16, 16, Some(0));
        }
        assert!(f.pending.is_empty());
        assert_eq!(f.due(), None);
        f.ready = true;
        assert_eq!(f.due(), Some(Kind::Full));
        f.build(Kind::Full, &rankings);
        assert_eq!(f.due(), None);
        f.set(1 << 16, 24, Some(1));
        assert_eq!(f.pending.len(), 1);
        assert_eq!(f.due(), Some(Kind::Incremental));
        // A short prefix: full build, the list is dropped and stays empty.
        f.set(0x1000_0000, 4, Some(1));
        assert_eq!((f.pending.len(), f.pending.capacity()), (0, 0));
        assert_eq!(f.due(), Some(Kind::Full));
        f.set(2 << 16, 24, Some(1));
        assert!(f.pending.is_empty());
        f.build(Kind::Full, &rankings);
        // More than INCREMENTAL_MAX changes.
        for i in 0..=INCREMENTAL_MAX as u32 {
            f.set(i << 8 | 0x4000_0000, 24, Some(2));
        }
        assert_eq!(f.due(), Some(Kind::Full));
        assert!(f.pending.is_empty());
        assert_eq!(f.map.len(), 10 + 2 + 1 + INCREMENTAL_MAX + 1);
    }

    #[test]
    fn the_replaced_snapshot_is_dropped_without_a_next_publication() {
        let cfg = TestConfig::embedded_default().build();
        let h = super::super::handle(&cfg);
        let old = Arc::downgrade(&h.load_full());
        let (tx, rx) = mpsc::channel();
        let builder = Builder::new(&cfg, h.clone(), Arc::new(PublishStats::new(cfg.pops.len())));
        let thread = std::thread::spawn(move || builder.run(rx));
        // Both families ready: a first (full) build, published as generation 1.
        let ready = Batch {
            ready: [true, true],
            ..Batch::default()
        };
        tx.send(ready).unwrap();
        let t = Instant::now();
        while old.upgrade().is_some() {
            assert!(t.elapsed() < RETIRE_AFTER * 25, "still held");
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(h.load().generation(), 1);
        assert_eq!(h.load().source(Afi::Ipv4), Source::Rib);
        drop(tx);
        thread.join().unwrap();
    }
}
