//! sparrow: a BGP-steered authoritative DNS server.
//!
//! Architecture (one process, `sparrowd`):
//! - `config`: one YAML file -> `Arc<Config>`, shared read-only by every task.
//! - `wire`: pure BGP encode/decode with our own RFC 4271/7606 validation.
//! - `fsm`: pure RFC 4271 state machine, `(state, event) -> (state, actions)`.
//! - `session`: one task per peer owns the socket and timers, drives `fsm`,
//!   validates and decodes with `wire`, and sends route changes to the RIB over a
//!   bounded channel; a listener hands accepted connections to peer tasks.
//! - `rib`: the one task that writes Adj-RIB-In, Loc-RIB (`rib::bestpath`) and
//!   export queues to POP sessions; answers admin queries (typed replies,
//!   `rib::reply`); tells a `rib::LocRibListener` what changed after every
//!   burst (it knows nothing of steering).
//! - `admin`: Unix-socket server (JSON lines of the typed `admin::reply`
//!   structs) used by `sparrowctl`; `render` turns those replies into text.
//! - `sockopt`: the only `unsafe`: TCP-MD5 `setsockopt`.
//! - `steer`: per-address POP rankings from the Loc-RIB (or the static
//!   fallback), published as immutable LPM snapshots by `steer::Publisher`,
//!   the RIB task's listener; `steer::select` is the one selection function
//!   and `steer::Ranker::closest_pop` the one closest-POP rule.
//! - `pops`: which POPs are up (the sessions' `pops::SessionFlags`) and
//!   drained (operator), lock-free.
//! - `dns`: the authority (hickory-server for TCP, our UDP fast path), answers
//!   steered names from `steer::select` + `pops`.
//! - `http`: optional 302 redirector on the same decision.
//! - `net`: listener and socket helpers (TCP listeners, SO_REUSEPORT UDP
//!   sockets) and the one address canonicalisation.
//! - `reload`: SIGHUP / `sparrowctl reload`: validate, then swap in new zones.
//! - `daemon`: wires the tasks together for the `sparrowd` binary.

#![deny(unsafe_code)]

pub mod admin;
pub mod config;
pub mod daemon;
pub mod dns;
pub mod fsm;
pub mod http;
pub mod net;
pub mod pops;
pub mod reload;
pub mod render;
pub mod rib;
pub mod session;
pub mod sockopt;
pub mod steer;
#[cfg(test)]
pub mod testutil;
pub mod types;
pub mod wire;
