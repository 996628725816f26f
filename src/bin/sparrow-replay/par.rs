//! A small scoped thread pool: map a function over a slice on up to one
//! thread per core, results in input order. Used to load MRT files and to
//! pre-encode UPDATEs; talks to nothing else.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use anyhow::{anyhow, Result};

/// `f` applied to every item, on `min(cores, items)` threads (at least one)
/// taking the next unprocessed item in turn. `what` names the workers in the
/// error for a thread that panicked or did not finish.
pub fn par_map<T: Sync, R: Send>(
    items: &[T],
    what: &str,
    f: impl Fn(&T) -> R + Sync,
) -> Result<Vec<R>> {
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .min(items.len())
        .max(1);
    let next = AtomicUsize::new(0);
    let slots: Vec<Mutex<Option<R>>> = items.iter().map(|_| Mutex::new(None)).collect();
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= items.len() {
                    break;
                }
                let r = f(&items[i]);
                if let Ok(mut slot) = slots[i].lock() {
                    *slot = Some(r);
                }
            });
        }
    });
    slots
        .into_iter()
        .map(|s| {
            s.into_inner()
                .map_err(|_| anyhow!("{what} thread panicked"))?
                .ok_or_else(|| anyhow!("{what} thread did not finish"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_in_input_order() {
        let items: Vec<u32> = (0..100).collect();
        let out = par_map(&items, "test", |&x| x * 2).unwrap();
        assert_eq!(out, (0..100).map(|x| x * 2).collect::<Vec<_>>());
        assert!(par_map(&[] as &[u32], "test", |&x| x).unwrap().is_empty());
    }
}
