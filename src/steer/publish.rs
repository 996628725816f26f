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
//! core while a whole table moves; increments are published at once.
//!
//! Dropping old snapshots: readers only `load()`. The builder swaps in the new
//! snapshot and keeps the previous one until the next publication before
//! dropping it itself, so the last reference to a snapshot is practically
//! never a reader's guard and freeing what only it holds (after an update:
//! the replaced root pages and nodes; after a full build: the whole previous
//! trie, ~10 MB) happens on the builder thread, not on the query path. A
//! reader holding a guard across two publications would free it itself;
//! harmless.

use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

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
}

impl Publisher {
    /// A publisher into `handle` (which holds the fallback snapshot), with its
    /// builder thread started.
    pub fn new(cfg: &Config, handle: Handle) -> std::io::Result<Publisher> {
        let ranker = Ranker::new(cfg);
        let interner = RankInterner::new(ranker.local(), ranker.pops());
        let eor_peers = Afi::ALL.map(|afi| {
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
        });
        let (tx, rx) = mpsc::channel();
        let builder = Builder::new(cfg, handle);
        let thread = std::thread::Builder::new()
            .name("steer-build".into())
            .spawn(move || builder.run(rx))?;
        Ok(Publisher {
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
    /// Changed since `cur`.
    pending: Vec<(A, u8)>,
    /// A changed prefix is short (a full build is due).
    short: bool,
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
            short: false,
            short_len,
        }
    }

    fn set(&mut self, a: A, l: u8, id: Option<u16>) {
        if self.map.set(a, l, id) {
            self.pending.push((a, l));
            self.short |= l < self.short_len;
        }
    }

    /// What the next build of this family is, if any.
    fn due(&self) -> Option<Kind> {
        if !self.ready {
            None
        } else if !self.built || self.short || self.pending.len() > INCREMENTAL_MAX {
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
        self.short = false;
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

/// The builder thread's state.
struct Builder {
    handle: Handle,
    pops: Arc<[Box<str>]>,
    rankings: Arc<Vec<PopIdx>>,
    v4: Fam<u32>,
    v6: Fam<u128>,
    generation: u64,
    /// The previous snapshot, dropped at the next publication.
    retired: Option<Arc<Snapshot>>,
}

impl Builder {
    fn new(cfg: &Config, handle: Handle) -> Builder {
        let cur = handle.load_full();
        Builder {
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
            match rx.recv() {
                Ok(b) => self.apply(b),
                Err(_) => break,
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
        // Drop the one before (off the query path), keep `old` for a while.
        self.retired = Some(old);
        let kind = |k: Option<Kind>| k.map_or("none", Kind::as_str);
        let us = t.elapsed().as_micros() as u64;
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
