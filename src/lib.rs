//! sparrow: a BGP-steered authoritative DNS server.
//!
//! Architecture (one process, `sparrowd`; README "Code map" has the files,
//! `daemon` the tasks and channels):
//! - `config`: one YAML file -> the raw schema (`config::schema`) -> a
//!   validated `Config` with its derived tables (local POP index, POP by ASN,
//!   admin socket mode) and zones parsed once (`config::zones`); a leaf.
//! - `wire`: pure BGP encode/decode with our own RFC 4271/7606 validation;
//!   `wire::iana` names every protocol number (tables from `registry!`).
//! - `fsm`: pure RFC 4271 state machine, `(state, event) -> (state, actions)`,
//!   the only place a session's state changes.
//! - `session`: one task per peer feeds its connections' events to `fsm` and
//!   carries out the actions (`session::task`); sockets (`socket`), OPEN and
//!   collisions (`handshake`), Established (`established`) in their own files.
//!   Decoded route changes go to the RIB over a bounded channel.
//! - `rib`: the one thread that writes Adj-RIB-In, Loc-RIB (`rib::bestpath`)
//!   and export queues to POP sessions (`rib::export`, encoding in
//!   `rib::encode`); answers admin queries (typed replies, `rib::reply`);
//!   tells a `rib::LocRibListener` what changed after every burst (it knows
//!   nothing of steering).
//! - `steer`: per-address POP rankings from the Loc-RIB (or the static
//!   fallback), published as immutable LPM snapshots by `steer::Publisher`,
//!   the RIB's listener; `steer::select` is the one selection function and
//!   `steer::Ranker::closest_pop` the one closest-POP rule.
//! - `pops`: POP availability facts in atomics (`pops::PopState`: the
//!   sessions' `pops::SessionFlags`, per-target health from `health`, the
//!   operator's drains, forced states and loads, saved to the state file),
//!   read lock-free per query, and `pops::pick`, the one POP pick
//!   (availability, load shedding, the all-down policy).
//! - `health`: service health checks (tcp, http/https, dns, file) with
//!   rise/fall hysteresis and load sources (URL or file, smoothed), run on
//!   their own thread; they write per-target health and measured load into
//!   `pops::PopState`; `sparrowctl health` reads their status.
//! - `announce`: anycast: the `announce` prefixes, originated while their
//!   check passes, the POP is not drained and steering is off the fallback
//!   map (rise/fall, hold-down, `on_down`, the shutdown sequence); published
//!   on a watch channel that each session (`session::originate`) sends from.
//! - `dns`: the authority: protocol numbers (`dns::iana`), request parsing and shared decisions
//!   (`dns::packet`), the pure resolver (`dns::answer`) over the zone data
//!   (`dns::zone`), response writing (`dns::response`), the one
//!   query-to-reply function and our UDP socket loop (`dns::fast`), and our
//!   TCP server with its connection limits (`dns::tcp`); per-worker counters
//!   (`dns::stats`), added up only at a scrape.
//! - `http`: optional 302 redirector on the same decision; its connection
//!   loop also serves `metrics`.
//! - `metrics`: the operations endpoint (`/metrics` in the Prometheus text
//!   format, `/healthz`, `/readyz`), read at a scrape from the admin
//!   replies and the counters the other modules keep.
//! - `net`: listener and socket helpers for BGP, DNS and HTTP, and the one
//!   address canonicalisation.
//! - `admin`: Unix-socket server (JSON lines of the typed `admin::reply`
//!   structs) used by `sparrowctl`; `render` turns those replies into text.
//! - `notify`: systemd's `sd_notify` protocol (`READY=1`, the steering
//!   source in `STATUS=`, `RELOADING=1`, `STOPPING=1`) when `$NOTIFY_SOCKET` is set.
//! - `reload`: SIGHUP / `sparrowctl reload`: validate, then swap in new zones.
//! - `rt`: the one way to start a named thread with its own Tokio runtime
//!   (the RIB's, the health checks').
//! - `sockopt`: the only `unsafe`: TCP-MD5 and GTSM `setsockopt`.
//! - `daemon`: wires the tasks together for the `sparrowd` binary.

#![deny(unsafe_code)]

#[macro_use]
mod registry;

pub mod admin;
pub mod announce;
#[cfg(test)]
mod arch_tests;
pub mod config;
pub mod daemon;
pub mod dns;
pub mod fsm;
pub mod health;
pub mod http;
pub mod metrics;
pub mod net;
pub mod notify;
pub mod pops;
pub mod reload;
pub mod render;
pub mod rib;
pub mod rt;
pub mod session;
pub mod sockopt;
pub mod steer;
#[cfg(test)]
pub mod testutil;
pub mod types;
pub mod wire;
