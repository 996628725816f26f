//! Daemon wiring: starts the RIB thread, the sessions and listeners, DNS,
//! HTTP, the anycast controller, the metrics endpoint and the admin socket; turns SIGTERM/SIGINT
//! into the anycast shutdown sequence (GRACEFUL_SHUTDOWN grace, then withdraw),
//! then Cease/Administrative Shutdown on every session (a planned restart: with graceful restart and
//! RFC 8538 the other POPs keep our routes as stale) and writes the restart
//! marker (`session::graceful`) that makes the next sparrowd set the Restart
//! State bit; removes the admin socket on the way out; SIGHUP reloads. Tells
//! systemd (`notify`) when it serves, its steering status, and when it stops.
//!
//! Wires the one-way dependencies: the steering publisher becomes the RIB
//! task's `rib::LocRibListener`, and the sessions' `pops::SessionFlags` feed
//! `pops::PopState`, which the health thread (`health::start`, started only
//! when checks or load sources are configured) also writes; the anycast
//! controller (`announce::start`) publishes on a watch channel created before
//! the sessions, which read it. Owns the tokio tasks. Called by the `sparrowd` binary.
//!
//! Tasks (T), threads (th) and channels:
//!
//! ```text
//!  BGP listener (T, session::socket) ──PeerCtl::Incoming──┐
//!  admin socket (T, admin) ──PeerCtl::Reset/Shutdown──────┤ unbounded mpsc, per peer
//!                                                         ▼
//!  per connection: reader (T) ──ConnEvent (mpsc 16)──▶ peer task (T, session::task)
//!                  writer (T) ◀──bytes (unbounded)──────  │  fsm::step decides
//!                                                          │ RibMsg (mpsc RIB_CHANNEL,
//!                                                          ▼ back-pressure)
//!  admin ──RibMsg::Query (oneshot reply)──▶ RIB (th "rib": Adj-RIB-In, Loc-RIB, export)
//!  peer task ◀──SessionCmd (unbounded, per session: exports, teardown)──┘ │
//!  writer (T) ──ExportCredit dropped once written ─▶ RibMsg::ExportDrained
//!      (the RIB's own unbounded channel; paces table walks, rib::outbox)  │
//!                                  LocRibListener::changed after each burst
//!                                                          ▼
//!                          steer::Publisher ──Batch (std mpsc)──▶ th "steer-build"
//!                                                          │ ArcSwap<Snapshot>::store
//!                                                          ▼
//!  th "dns-udp-N" (dns::fast), DNS TCP accept (T per address, dns::tcp) and
//!  one task (T) per TCP connection, HTTP (T), admin explain/lookup:
//!      ArcSwap::load per query ─▶ steer::select ─▶ pops (SessionFlags, drains)
//!      each counts in its own dns::stats::Cells (a UDP thread's block, or TCP's)
//!  SIGHUP / `sparrowctl reload` ─▶ reload ─▶ ArcSwap<dns::Authority>::store
//!
//!  metrics endpoint (T per address, metrics; `metrics.listen`): per scrape
//!  the admin replies (RibMsg::Query for summary and peer counts, peer
//!  status, pops, health, announcements) plus dns::stats (summed over the
//!  workers), http::HttpStats, steer::PublishStats, reload::ReloadCounts
//!
//!  th "health" (own current-thread runtime, health::runner): one task (T) per
//!  (check, target), per `file` check and per load source, a semaphore of
//!  `health.concurrency` permits ─▶ health::Status (Mutex, one lock per result)
//!      ─▶ PopState::set_target_health / set_measured_load (atomics the DNS
//!         path reads) ; admin `health` reads Status::snapshot
//!
//!  announce runner (T, announce::runner): every `interval` reads
//!  Status::check_verdict, PopState::drained, the steering source (and sends
//!  its DNS self-query) ─▶ announce::Announcer ─▶ watch<Adverts> ─▶ every
//!  peer task (session::originate sends the difference) ; admin
//!  `announcements` reads Announcer::rows ; SIGTERM: Announcer::stop (grace,
//!  then withdraw) before PeerCtl::Shutdown
//! ```

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tracing::{info, warn};

use crate::admin::{self, AdminCtx, AdminError};
use crate::config::Config;
use crate::dns;
use crate::http;
use crate::pops::PopState;
use crate::reload::Reloader;
use crate::rib::{self, RibStats};
use crate::session::{self, PeerCtl};
use crate::steer;

/// Capacity of the session -> RIB channel, in messages; a message carries the
/// changes of up to `session::established::INGEST_BATCH` (32) UPDATEs, so this
/// bounds the UPDATEs in flight at 32 x 32 = 1024, as one UPDATE per message
/// with a capacity of 1024 did.
pub const RIB_CHANNEL: usize = 32;

/// Why the daemon could not run.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    Admin(#[from] AdminError),
    #[error("BGP listener: {0}")]
    Listen(std::io::Error),
    #[error("DNS: {0}")]
    Dns(dns::DnsError),
    #[error("HTTP listener: {0}")]
    Http(std::io::Error),
    #[error("metrics listener: {0}")]
    Metrics(std::io::Error),
    #[error("signal handler or thread: {0}")]
    Signal(std::io::Error),
}

/// Run until SIGTERM or SIGINT; SIGHUP reloads `path` (see `crate::reload`).
pub async fn run(cfg: Config, path: Option<PathBuf>) -> Result<(), DaemonError> {
    let cfg = Arc::new(cfg);
    let started = Instant::now();
    let stats = Arc::new(RibStats::default());
    let (rib_tx, rib_rx) = mpsc::channel(RIB_CHANNEL);
    // Steering snapshots: the fallback until the RIB is ready, then published
    // by the RIB task. DNS answers with `steer::select(addr, &steering.load())`.
    let steering = steer::handle(&cfg);
    let publisher = steer::Publisher::new(&cfg, steering.clone()).map_err(DaemonError::Signal)?;
    let publish_stats = publisher.stats();
    // The RIB gets a thread of its own: removing a full-table peer takes ~0.3 s
    // of CPU, which must not stall the session tasks' timers and sockets.
    let rib_thread = {
        let (cfg, stats) = (cfg.clone(), stats.clone());
        crate::rt::spawn_runtime_thread("rib", move || {
            rib::run_with(cfg, rib_rx, stats, Some(Box::new(publisher)))
        })
        .map_err(DaemonError::Signal)?
    };

    let socket_path = PathBuf::from(&cfg.admin.socket);
    let admin_listener = admin::bind(&socket_path, cfg.admin_mode())?;

    let mut tasks = JoinSet::new();
    let restarting = session::graceful::take_restart_marker(&cfg);
    // Anycast: the controller (started below, once its inputs exist)
    // publishes what we originate; every session sends it.
    let (adverts_tx, adverts_rx) = crate::announce::channel();
    let peers = session::start(
        cfg.clone(),
        rib_tx.clone(),
        &mut tasks,
        restarting,
        adverts_rx,
    )
    .await
    .map_err(DaemonError::Listen)?;
    let pops = Arc::new(PopState::new(&cfg, Some(peers.established.clone())));
    // Operator state (drains, forced states, manual loads) from the last run,
    // before the first answer.
    let store = Arc::new(crate::pops::StateStore::new(&cfg.admin.state_file));
    let restored = store.restore(&pops);
    for w in &restored.warnings {
        warn!(file = %cfg.admin.state_file, "{w}");
    }
    if restored.loaded {
        let s = pops.operator_state();
        info!(file = %cfg.admin.state_file, drained = ?s.drained, forced = s.forced.len(),
            loads = s.loads.len(), "operator state restored");
    }
    let authority: dns::Shared = Arc::new(arc_swap::ArcSwap::from_pointee(
        dns::Authority::new(&cfg, steering.clone(), pops.clone()).map_err(DaemonError::Dns)?,
    ));
    // systemd (`Type=notify`, `$NOTIFY_SOCKET`): see `crate::notify`.
    let notifier = crate::notify::from_env();
    let reloader = Arc::new(
        Reloader::new(
            path,
            cfg.clone(),
            authority.clone(),
            steering.clone(),
            pops.clone(),
        )
        .with_notifier(notifier.clone()),
    );
    // DNS and HTTP tasks never end by themselves; aborted at shutdown.
    let mut services = JoinSet::new();
    let dns_stats = Arc::new(dns::stats::DnsStats::new(
        cfg.pops.len(),
        cfg.logging.query_sample,
    ));
    dns::start(authority.clone(), &cfg, &dns_stats, &mut services)
        .await
        .map_err(DaemonError::Dns)?;
    let http_stats = Arc::new(http::HttpStats::new(cfg.pops.len()));
    http::start(
        cfg.clone(),
        steering.clone(),
        pops.clone(),
        http_stats.clone(),
        &mut services,
    )
    .await
    .map_err(DaemonError::Http)?;
    // Health checks and load polls: their own thread, writing into `pops`.
    let health = crate::health::start(cfg.clone(), pops.clone()).map_err(DaemonError::Signal)?;
    let announcer = crate::announce::start(
        cfg.clone(),
        adverts_tx,
        health.clone(),
        pops.clone(),
        steering.clone(),
    );
    let actx = Arc::new(AdminCtx {
        cfg: cfg.clone(),
        peers: peers.clone(),
        rib: rib_tx.clone(),
        stats,
        started,
        steering: steering.clone(),
        pops,
        store,
        dns: authority,
        reload: reloader.clone(),
        health,
        announcer: announcer.clone(),
    });
    // The operations endpoint (`metrics.listen`): bound last, so that
    // `listening` is set once every listener is.
    let ops = Arc::new(crate::metrics::Ops {
        admin: actx.clone(),
        dns: dns_stats,
        http: http_stats,
        publish: publish_stats,
        listening: false.into(),
    });
    crate::metrics::start(ops.clone(), &mut services).map_err(DaemonError::Metrics)?;
    ops.listening
        .store(true, std::sync::atomic::Ordering::Release);
    let admin_task = tokio::spawn(admin::serve(admin_listener, actx));
    info!(
        asn = cfg.local_asn,
        router_id = %cfg.router_id,
        pop = %cfg.pop,
        peers = cfg.peers.len(),
        admin = %socket_path.display(),
        "sparrowd started"
    );
    // Every listener is bound and served: READY=1, then the steering STATUS=.
    let systemd =
        crate::notify::Systemd::serving_steering(notifier, steering.clone(), peers.clone());

    let mut term = signal(SignalKind::terminate()).map_err(DaemonError::Signal)?;
    let mut int = signal(SignalKind::interrupt()).map_err(DaemonError::Signal)?;
    let mut hup = signal(SignalKind::hangup()).map_err(DaemonError::Signal)?;
    loop {
        tokio::select! {
            _ = term.recv() => { info!("SIGTERM: shutting down"); break }
            _ = int.recv() => { info!("SIGINT: shutting down"); break }
            _ = hup.recv() => {
                info!("SIGHUP: reloading the configuration");
                let r = reloader.clone();
                // Errors are logged by the reloader; the running config stays.
                let _ = tokio::task::spawn_blocking(move || r.reload()).await;
            }
        }
    }
    systemd.stopping();
    // Anycast: GRACEFUL_SHUTDOWN for the grace period where configured, then
    // withdraw everything we originate, before the sessions close.
    if let Some(until) = announcer.stop(Instant::now()) {
        info!(
            seconds = until
                .saturating_duration_since(Instant::now())
                .as_secs_f64(),
            "announce: graceful shutdown"
        );
        // A second SIGTERM or SIGINT cuts the grace period short.
        tokio::select! {
            _ = tokio::time::sleep_until(until.into()) => {}
            _ = term.recv() => info!("SIGTERM again: ending the grace period"),
            _ = int.recv() => info!("SIGINT again: ending the grace period"),
        }
        announcer.stop_now();
    }
    session::graceful::write_restart_marker(&cfg);
    // Exports stop first: upstream sessions closing must not withdraw our
    // routes from the POPs that keep them (stale) while we restart.
    let _ = rib_tx.send(rib::RibMsg::Shutdown).await;
    for c in &peers.ctl {
        let _ = c.send(PeerCtl::Shutdown);
    }
    // Peer tasks send Cease and end; the listener tasks never end by themselves.
    let _ = tokio::time::timeout(Duration::from_secs(3), async {
        while tasks.len() > cfg.listen.addresses.len() * usize::from(cfg.listen.enabled) {
            if tasks.join_next().await.is_none() {
                break;
            }
        }
    })
    .await;
    tasks.abort_all();
    services.abort_all();
    admin_task.abort();
    drop(rib_tx);
    // The RIB thread ends with its channel; the process exit does not wait for it.
    drop(rib_thread);
    let _ = std::fs::remove_file(&socket_path);
    info!("sparrowd stopped");
    Ok(())
}
