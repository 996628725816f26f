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
//! - The builder thread (`steer-build`) keeps the ranked Loc-RIB in ordered
//!   maps, and rebuilds the LPM of a changed family (only once the family
//!   answers from the RIB: before that, changes are only recorded), then swaps
//!   the new snapshot into the [`Handle`].
//!
//! Coalescing: the first change after a quiet period is built at once; while
//! changes keep coming, builds start at most every [`MIN_REBUILD_INTERVAL`]
//! (or twice the last build's duration, if longer), so the builder uses at most
//! about half a core during a full-table convergence and a change is visible
//! within ~50 ms + one build.
//!
//! Dropping old snapshots: readers only `load()`. The builder swaps in the new
//! snapshot and keeps the previous one for one more generation (at least one
//! rebuild interval) before dropping it itself, so the last reference to a
//! snapshot is practically never a reader's guard and freeing the (~10-20 MB)
//! arrays happens on the builder thread, not on the query path. A reader
//! holding a guard across two publications would free it itself; harmless.

use std::collections::BTreeMap;
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tracing::{debug, info, warn};

use super::lpm::Addr;
use super::{
    pop_names, rank_prefix, Family, Handle, PopIdx, RankInterner, Ranker, Ranking, Snapshot,
    Source, DEFAULT_RANK, V4_INDEX_BITS, V6_INDEX_BITS,
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

/// Rebuild one family's LPM from its ranked `prefixes` into `cur`, if it
/// answers from the RIB (`ready`) and changed since the last build (`dirty`,
/// cleared). Returns whether it rebuilt.
fn rebuild<A: Addr>(
    cur: &mut Arc<Family<A>>,
    ready: bool,
    dirty: &mut bool,
    prefixes: impl Iterator<Item = (A, u8, u16)>,
    rankings: &Arc<Vec<PopIdx>>,
    bits: u32,
) -> bool {
    if !ready || !*dirty {
        return false;
    }
    *cur = Arc::new(Family::new(
        Source::Rib,
        prefixes,
        DEFAULT_RANK,
        rankings.clone(),
        bits,
    ));
    *dirty = false;
    true
}

/// The builder thread's state.
struct Builder {
    handle: Handle,
    pops: Arc<[Box<str>]>,
    rankings: Arc<Vec<PopIdx>>,
    /// Key: address << 8 | length (sorts like the prefixes).
    v4: BTreeMap<u64, u16>,
    v6: BTreeMap<(u128, u8), u16>,
    ready: [bool; 2],
    dirty: [bool; 2],
    cur4: Arc<Family<u32>>,
    cur6: Arc<Family<u128>>,
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
            v4: BTreeMap::new(),
            v6: BTreeMap::new(),
            ready: [false; 2],
            dirty: [false; 2],
            cur4: cur.v4.clone(),
            cur6: cur.v6.clone(),
            generation: cur.generation,
            retired: None,
            handle,
        }
    }

    fn run(mut self, rx: mpsc::Receiver<Batch>) {
        let mut last_start = Instant::now() - MIN_REBUILD_INTERVAL;
        let mut interval = MIN_REBUILD_INTERVAL;
        while let Ok(b) = rx.recv() {
            self.apply(b);
            let deadline = last_start + interval;
            let mut open = true;
            loop {
                let now = Instant::now();
                if now >= deadline {
                    // Take what is already queued, then build.
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
            let start = Instant::now();
            if self.build() {
                last_start = start;
                interval = MIN_REBUILD_INTERVAL.max(start.elapsed() * 2);
            }
            if !open {
                break;
            }
        }
    }

    fn apply(&mut self, b: Batch) {
        Arc::make_mut(&mut self.rankings).extend_from_slice(&b.rankings);
        for (a, l, id) in b.v4 {
            let k = (u64::from(a) << 8) | u64::from(l);
            match id {
                Some(id) => self.v4.insert(k, id),
                None => self.v4.remove(&k),
            };
            self.dirty[0] = true;
        }
        for (a, l, id) in b.v6 {
            match id {
                Some(id) => self.v6.insert((a, l), id),
                None => self.v6.remove(&(a, l)),
            };
            self.dirty[1] = true;
        }
        for f in 0..2 {
            if b.ready[f] && !self.ready[f] {
                self.ready[f] = true;
                self.dirty[f] = true;
            }
        }
    }

    /// Rebuild the families that changed and answer from the RIB; publish.
    /// Returns whether anything was built.
    fn build(&mut self) -> bool {
        let t = Instant::now();
        let [dirty4, dirty6] = &mut self.dirty;
        let v4 = self
            .v4
            .iter()
            .map(|(&k, &id)| ((k >> 8) as u32, k as u8, id));
        let v6 = self.v6.iter().map(|(&(a, l), &id)| (a, l, id));
        let rankings = &self.rankings;
        let built4 = rebuild(
            &mut self.cur4,
            self.ready[0],
            dirty4,
            v4,
            rankings,
            V4_INDEX_BITS,
        );
        let built6 = rebuild(
            &mut self.cur6,
            self.ready[1],
            dirty6,
            v6,
            rankings,
            V6_INDEX_BITS,
        );
        if !built4 && !built6 {
            return false;
        }
        self.generation += 1;
        let snap = Snapshot {
            generation: self.generation,
            pops: self.pops.clone(),
            v4: self.cur4.clone(),
            v6: self.cur6.clone(),
        };
        let old = self.handle.swap(Arc::new(snap));
        let first = old.v4.source != self.cur4.source || old.v6.source != self.cur6.source;
        // Drop the one before (off the query path), keep `old` for a while.
        self.retired = Some(old);
        let s = self.handle.load().stats();
        if first {
            info!(generation = self.generation, v4 = ?self.cur4.source, v6 = ?self.cur6.source,
                prefixes_v4 = self.v4.len(), prefixes_v6 = self.v6.len(), ms = t.elapsed().as_millis() as u64,
                "steering: answering from the RIB");
        } else {
            debug!(
                generation = self.generation,
                ranges_v4 = s.ranges_v4,
                ranges_v6 = s.ranges_v6,
                rankings = s.rankings,
                us = t.elapsed().as_micros() as u64,
                "steering: snapshot published"
            );
        }
        true
    }
}
