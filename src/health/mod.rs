//! Service health checks and load sources: the producers of availability
//! facts. Every sparrowd checks every POP's answer addresses (its own POP's
//! included) from its own vantage point and polls the POPs' load sources.
//!
//! - `probe`: one run of a `tcp`, `http`/`https` (`httpget`) or `dns` check;
//!   the GET client is also exported ([`http_get`]) for `sparrowctl ready`;
//! - `file`: the `file` check's `POP[/ADDR] UP|DOWN` lines;
//! - `hysteresis`: rise/fall per (check, target), pure;
//! - `load`: load polls (URL or file), smoothing and staleness;
//! - `status`: the shared [`Status`] (per target, per check; per POP load),
//!   which folds results into `pops::PopState` (`set_target_health`,
//!   `set_measured_load`) and answers `sparrowctl health` (via `admin`);
//! - `runner`: the "health" thread, its tasks, jitter and concurrency cap.
//!
//! Talks to `config` (the `health` section and `pops[].capacity`) and
//! `pops` (writes only through the two setters above). Started by `daemon`;
//! read by `admin`. Never runs on a DNS worker.

mod file;
mod httpget;
mod hysteresis;
mod load;
mod probe;
mod runner;
mod status;

#[cfg(test)]
mod tests;

pub use file::{parse as parse_file, Verdicts};
pub use httpget::{get as http_get, Get as HttpGet, Response as HttpResponse};
pub use hysteresis::{Hysteresis, Outcome};
pub use load::{parse_load, split_url, Smoother};
pub use probe::{dns_query, port_of, rcode_number, run as probe};
pub use runner::{jittered, start, Prng};
pub use status::{
    covered, kind_name, CheckSnapshot, LoadSnapshot, Snapshot, Status, TargetSnapshot,
};
