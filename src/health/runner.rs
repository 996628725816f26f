//! The health runner: its own thread ("health") with a current-thread tokio
//! runtime, never a DNS worker. One task per (network check, target), one
//! per `file` check, one per load source; each runs at once (the first
//! round at start), then every `interval` spread by ±`jitter` × interval.
//! A semaphore of `health.concurrency` permits caps the probes and load
//! polls in flight. Results go to [`Status`].

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use super::file::FileWatch;
use super::status::{covered, Status};
use super::{load, probe};
use crate::config::{CapacityConfig, CheckConfig, CheckKind, Config};
use crate::pops::PopState;

/// A tiny xorshift64* generator (jitter and DNS query ids; not for secrets).
#[derive(Clone, Debug)]
pub struct Prng(u64);

impl Prng {
    pub fn new(seed: u64) -> Prng {
        Prng(seed.max(1))
    }

    fn seeded(salt: u64) -> Prng {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        Prng::new(t ^ salt.wrapping_mul(0x9E37_79B9_7F4A_7C15))
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// A random DNS query id.
pub fn random_u16() -> u16 {
    static STATE: AtomicU64 = AtomicU64::new(0);
    let mut s = STATE.load(Ordering::Relaxed);
    if s == 0 {
        s = Prng::seeded(0xD15).next_u64();
    }
    let mut p = Prng::new(s);
    let v = p.next_u64();
    STATE.store(p.0, Ordering::Relaxed);
    (v >> 24) as u16
}

/// `interval` spread by a random ±`jitter` × interval.
pub fn jittered(interval: f64, jitter: f64, rng: &mut Prng) -> Duration {
    let f = 1.0 + jitter * (2.0 * rng.unit() - 1.0);
    Duration::from_secs_f64((interval * f).max(0.001))
}

/// Start the runner thread if anything is configured; returns the status
/// (empty when nothing is) that admin reads.
pub fn start(cfg: Arc<Config>, pops: Arc<PopState>) -> std::io::Result<Arc<Status>> {
    let status = Arc::new(Status::new(&cfg, pops.clone()));
    if !status.has_work() {
        return Ok(status);
    }
    let st = status.clone();
    crate::rt::spawn_runtime_thread("health", move || run(cfg, pops, st))?;
    Ok(status)
}

/// Spawn every job on the current runtime, then wait forever.
pub async fn run(cfg: Arc<Config>, pops: Arc<PopState>, status: Arc<Status>) {
    let sem = Arc::new(Semaphore::new(cfg.health.concurrency.max(1)));
    let mut salt = 0u64;
    let mut tasks = tokio::task::JoinSet::new();
    for (ci, c) in cfg.health.checks.iter().enumerate() {
        let c = Arc::new(c.clone());
        let cover = covered(&c, &pops);
        if c.kind == CheckKind::File {
            let targets: Vec<(usize, String, usize, IpAddr)> = cover
                .iter()
                .flat_map(|&p| {
                    let name = pops.names()[p].to_string();
                    pops.targets(p)
                        .iter()
                        .enumerate()
                        .map(move |(t, &a)| (p, name.clone(), t, a))
                        .collect::<Vec<_>>()
                })
                .collect();
            salt += 1;
            tasks.spawn(file_job(ci, c, targets, status.clone(), Prng::seeded(salt)));
            continue;
        }
        for &p in &cover {
            for (t, &addr) in pops.targets(p).iter().enumerate() {
                salt += 1;
                let job = NetJob {
                    check: ci,
                    cfg: c.clone(),
                    pop: p,
                    target: t,
                    addr,
                };
                tasks.spawn(job.run(sem.clone(), status.clone(), Prng::seeded(salt)));
            }
        }
    }
    for (p, pc) in cfg.pops.iter().enumerate() {
        if pc.capacity.url.is_some() || pc.capacity.file.is_some() {
            salt += 1;
            tasks.spawn(load_job(
                p,
                pc.capacity.clone(),
                sem.clone(),
                status.clone(),
                Prng::seeded(salt),
            ));
        }
    }
    tracing::info!(jobs = tasks.len(), "health checks started");
    while tasks.join_next().await.is_some() {}
}

/// One network check on one target.
struct NetJob {
    check: usize,
    cfg: Arc<CheckConfig>,
    pop: usize,
    target: usize,
    addr: IpAddr,
}

impl NetJob {
    async fn run(self, sem: Arc<Semaphore>, status: Arc<Status>, mut rng: Prng) {
        loop {
            let start = tokio::time::Instant::now();
            let r = {
                let Ok(_permit) = sem.acquire().await else {
                    return;
                };
                probe::run(&self.cfg, self.addr).await
            };
            status.record(self.check, self.pop, self.target, r, Instant::now());
            let d = jittered(self.cfg.interval, self.cfg.jitter, &mut rng);
            tokio::time::sleep_until(start + d).await;
        }
    }
}

/// One `file` check: judge every covered target from the file each interval.
async fn file_job(
    check: usize,
    cfg: Arc<CheckConfig>,
    targets: Vec<(usize, String, usize, IpAddr)>,
    status: Arc<Status>,
    mut rng: Prng,
) {
    let mut watch = FileWatch::new(PathBuf::from(cfg.file.clone().unwrap_or_default()));
    loop {
        let start = tokio::time::Instant::now();
        if let Some(v) = watch.poll() {
            let now = Instant::now();
            for (p, name, t, addr) in &targets {
                status.record(check, *p, *t, v.outcome(name, *addr), now);
            }
        }
        let d = jittered(cfg.interval, cfg.jitter, &mut rng);
        tokio::time::sleep_until(start + d).await;
    }
}

/// One POP's load source.
async fn load_job(
    pop: usize,
    cap: CapacityConfig,
    sem: Arc<Semaphore>,
    status: Arc<Status>,
    mut rng: Prng,
) {
    loop {
        let start = tokio::time::Instant::now();
        let r = {
            let Ok(_permit) = sem.acquire().await else {
                return;
            };
            load::poll(&cap).await
        };
        status.record_load(pop, r, Instant::now());
        // A small fixed spread keeps many POPs' polls apart.
        let d = jittered(cap.interval, 0.05, &mut rng);
        tokio::time::sleep_until(start + d).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_within_its_band_and_spreads() {
        let mut r = Prng::new(42);
        let ds: Vec<f64> = (0..2000)
            .map(|_| jittered(2.0, 0.25, &mut r).as_secs_f64())
            .collect();
        assert!(ds.iter().all(|&d| (1.5..=2.5).contains(&d)));
        assert!(ds.iter().any(|&d| d < 1.6) && ds.iter().any(|&d| d > 2.4));
        assert!(jittered(1.0, 0.0, &mut r) == Duration::from_secs(1));
    }

    #[test]
    fn query_ids_vary() {
        let ids: std::collections::HashSet<u16> = (0..100).map(|_| random_u16()).collect();
        assert!(ids.len() > 90);
    }
}
