//! The HTTP redirector's counters: responses by status and redirects by
//! POP, added to with `fetch_add` (one connection per request: not a hot
//! path), read by `crate::metrics` at a scrape.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use super::response::Status;

/// Counters of the redirector (`http.listen`).
#[derive(Debug)]
pub struct HttpStats {
    responses: [AtomicU64; Status::ALL.len()],
    redirects: Box<[AtomicU64]>,
}

impl HttpStats {
    /// Counters for redirects to `pops` POPs.
    pub fn new(pops: usize) -> HttpStats {
        HttpStats {
            responses: std::array::from_fn(|_| AtomicU64::new(0)),
            redirects: (0..pops).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    pub(super) fn response(&self, s: Status) {
        if let Some(i) = Status::ALL.iter().position(|&x| x == s) {
            self.responses[i].fetch_add(1, Relaxed);
        }
    }

    pub(super) fn redirect(&self, pop: usize) {
        if let Some(c) = self.redirects.get(pop) {
            c.fetch_add(1, Relaxed);
        }
    }

    /// `(status code, responses)` for every status.
    pub fn responses(&self) -> Vec<(u16, u64)> {
        Status::ALL
            .iter()
            .zip(&self.responses)
            .map(|(s, c)| (s.code(), c.load(Relaxed)))
            .collect()
    }

    /// Redirects per POP index.
    pub fn redirects(&self) -> Vec<u64> {
        self.redirects.iter().map(|c| c.load(Relaxed)).collect()
    }
}
