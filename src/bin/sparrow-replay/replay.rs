//! Running a replay: one [`crate::client`] session task per plan, then
//! waiting for the end — every peer done plus `--linger`, `--timeout`, stdin
//! closing, SIGTERM/SIGINT, or a session failing — and stopping every
//! session with a Cease. Emits the `done`, `notification`, `error` and `exit`
//! events through [`crate::report`] and decides the exit code.

use std::io::Read;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Result};
use serde_json::json;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use crate::args::Args;
use crate::client::{run_peer, PeerError, Shared};
use crate::encode::Encoded;
use crate::plan::PeerPlan;
use crate::report::{emit, notification_json, now_t, start_time};

/// Watch stdin if it is a pipe or socket: its EOF ends the replay. (A
/// terminal or /dev/null is ignored, so `< /dev/null` does not stop us.)
fn watch_stdin() -> Option<mpsc::UnboundedReceiver<()>> {
    use std::os::unix::fs::FileTypeExt;
    let ft = std::fs::metadata("/dev/stdin").ok()?.file_type();
    if !(ft.is_fifo() || ft.is_socket()) {
        return None;
    }
    let (tx, rx) = mpsc::unbounded_channel();
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin().lock();
        let mut buf = [0u8; 4096];
        loop {
            match stdin.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
        let _ = tx.send(());
    });
    Some(rx)
}

/// Run every session; returns the exit code.
pub async fn replay(
    args: &Args,
    plans: Vec<Arc<PeerPlan>>,
    encoded: Vec<Arc<Encoded>>,
) -> Result<i32> {
    let target = args
        .connect
        .ok_or_else(|| anyhow!("--connect is required to replay"))?;
    let shared = Arc::new(Shared {
        target,
        hold_time: args.hold_time,
        extended_message: args.extended_message,
        connect_timeout: Duration::from_secs_f64(args.connect_timeout.max(0.1)),
    });
    let timeout = args.timeout.unwrap_or(args.linger + 300.0).max(0.1);
    let global_deadline =
        tokio::time::Instant::from_std(start_time()) + Duration::from_secs_f64(timeout.min(1e9));
    let linger = Duration::from_secs_f64(args.linger.clamp(0.0, 1e9));
    let (stop_tx, stop_rx) = watch::channel(false);
    let (sent_tx, mut sent_rx) = mpsc::unbounded_channel();
    let mut set = JoinSet::new();
    let n = plans.len();
    for (p, e) in plans.iter().zip(encoded) {
        let peer = p.clone();
        let fut = run_peer(
            shared.clone(),
            p.clone(),
            e,
            sent_tx.clone(),
            stop_rx.clone(),
        );
        set.spawn(async move { (peer, fut.await) });
    }
    drop(sent_tx);
    let mut stdin_rx = watch_stdin();
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut sigint = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;

    let mut sent = 0usize;
    let mut done_at: Option<tokio::time::Instant> = None;
    let mut code = 0;
    let reason;
    loop {
        let linger_end = done_at.map(|t| t + linger).unwrap_or(global_deadline);
        tokio::select! {
            Some(_) = sent_rx.recv() => {
                sent += 1;
                if sent == n {
                    emit(json!({"event": "done", "peers": n, "t": now_t()}));
                    done_at = Some(tokio::time::Instant::now());
                }
            }
            Some(res) = set.join_next() => {
                match res {
                    Ok((peer, Err(PeerError::Notification(nf)))) => {
                        emit(notification_json(&peer, &nf, true));
                        reason = format!("peer {} ({}) received NOTIFICATION", peer.index, peer.ip);
                    }
                    Ok((peer, Err(PeerError::Other(e)))) => {
                        emit(json!({"event": "error", "peer": peer.index,
                            "peer_ip": peer.ip.to_string(), "msg": format!("{e:#}"), "t": now_t()}));
                        reason = format!("peer {} ({}): {e:#}", peer.index, peer.ip);
                    }
                    Ok((peer, Ok(()))) => {
                        reason = format!("peer {} session ended", peer.index);
                    }
                    Err(e) => reason = format!("session task failed: {e}"),
                }
                code = 1;
                break;
            }
            _ = tokio::time::sleep_until(linger_end), if done_at.is_some() => {
                reason = "linger time over".to_string();
                break;
            }
            _ = tokio::time::sleep_until(global_deadline) => {
                reason = format!("--timeout {timeout} s reached");
                if done_at.is_none() {
                    code = 2;
                }
                break;
            }
            r = async { match stdin_rx.as_mut() { Some(rx) => rx.recv().await, None => std::future::pending().await } } => {
                let _ = r;
                reason = "stdin closed".to_string();
                break;
            }
            _ = sigterm.recv() => { reason = "SIGTERM".to_string(); break; }
            _ = sigint.recv() => { reason = "SIGINT".to_string(); break; }
        }
    }
    if code != 0 || done_at.is_none() {
        eprintln!("sparrow-replay: stopping: {reason}");
    }
    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(res) = set.join_next().await {
            if let Ok((peer, Err(PeerError::Notification(nf)))) = res {
                emit(notification_json(&peer, &nf, true));
                code = code.max(1);
            }
        }
    })
    .await;
    emit(json!({"event": "exit", "code": code, "reason": reason, "t": now_t()}));
    Ok(code)
}
