//! `sparrow-replay`: replay MRT RIB dumps to a BGP speaker over loopback.
//!
//! Reads TABLE_DUMP (v1) and TABLE_DUMP_V2 RIB dumps (plain, gzip, or bzip2,
//! decompressed in-process), keeping every complete record of a cut stream
//! and stopping cleanly where it ends.
//! Routes are grouped by the collector's peer (peer IP + peer ASN); each such
//! peer gets its own BGP session to `--connect`, from its own loopback source
//! address (`--bind-base` + index), speaking as the peer's ASN. Every route is
//! sent with its original attributes, prefixes sharing identical attributes
//! packed into the same UPDATEs, followed by End-of-RIB for each family. The
//! sessions then stay up (KEEPALIVEs) for `--linger` seconds, until stdin (a
//! pipe) closes, or until SIGTERM/SIGINT. `--timeout` always ends the tool.
//!
//! UPDATEs are encoded before connecting (one big buffer per peer) so the
//! send phase is a few large writes; that makes the tool usable for
//! benchmarks.
//!
//! Other modes: `--list-peers` (JSON array, for generating a receiver config)
//! and `--dump-text` (one line per route, for debugging).
//!
//! Output on stdout in replay mode is JSON lines: `loaded`, `encoded`,
//! `established`, `sent`, `done`, `notification`, `error`, `exit`. Times `t`
//! are seconds since the tool started (monotonic).
//!
//! Modules, in the order data flows: [`args`] (command line), [`mrt`] (read
//! the dumps into a per-peer table, with [`convert`] for the attributes),
//! [`plan`] (which sessions to open), [`encode`] (UPDATEs, in parallel through
//! [`par`]), [`replay`] (run and stop the sessions), [`client`] (one BGP
//! session), [`report`] (output: event lines, `--list-peers`, `--dump-text`).

#![deny(unsafe_code)]

mod args;
mod client;
mod convert;
mod encode;
mod mrt;
mod par;
mod plan;
mod replay;
mod report;

use std::io::Write;

use anyhow::{bail, Result};
use clap::Parser;
use serde_json::json;
use sparrow::wire;

use crate::args::Args;
use crate::report::{emit, now_t, start_time};

fn real_main(args: Args) -> Result<i32> {
    if let Some(c) = args.connect {
        if !c.ip().is_loopback() {
            bail!("--connect {c}: only loopback targets are allowed");
        }
    }
    if !(args.linger >= 0.0 && args.linger.is_finite()) {
        bail!("--linger must be a non-negative number of seconds");
    }
    let table = mrt::load_all(&args.mrt, args.local_asn)?;
    if args.list_peers {
        eprintln!("{}", report::stats_json(&table));
        println!("{}", report::list_peers_json(&table, &args));
        return Ok(0);
    }
    if args.dump_text {
        eprintln!("{}", report::stats_json(&table));
        if let Err(e) = report::dump_text(&table, &args) {
            if e.kind() != std::io::ErrorKind::BrokenPipe {
                return Err(e.into());
            }
        }
        return Ok(0);
    }
    if args.connect.is_none() {
        bail!("--connect ADDR:PORT is required (or use --list-peers / --dump-text)");
    }
    emit(report::stats_json(&table));
    let plans = plan::plan_peers(table.peers, &args)?;
    // Pre-encode for the likely negotiation (4-octet AS, both families).
    let max_len = if args.extended_message {
        wire::MAX_EXT_MSG_LEN
    } else {
        wire::MAX_MSG_LEN
    };
    let encoded = encode::encode_all(&plans, max_len)?;
    emit(json!({
        "event": "encoded",
        "peers": plans.len(),
        "updates": encoded.iter().map(|e| e.updates).sum::<usize>(),
        "prefixes": encoded.iter().map(|e| e.prefixes).sum::<usize>(),
        "bytes": encoded.iter().map(|e| e.buf.len()).sum::<usize>(),
        "t": now_t(),
    }));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(replay::replay(&args, plans, encoded))
}

fn main() {
    let _ = start_time();
    let args = Args::parse();
    let code = match real_main(args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("sparrow-replay: {e:#}");
            1
        }
    };
    let _ = std::io::stdout().flush();
    std::process::exit(code);
}
