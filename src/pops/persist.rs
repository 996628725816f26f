//! Operator state that survives a restart: drains, forced states (POP and
//! POP/ADDR) and manual loads, as JSON in `admin.state_file`.
//!
//! [`StateStore::change`] applies an operator's change to [`PopState`] and
//! writes the whole operator state atomically (a temporary file beside it,
//! fsync, rename, fsync of the directory), one change at a time, so the file
//! always holds a state that was live. [`StateStore::restore`] reads it at
//! start: a missing file is no state; an entry naming a POP or address the
//! config no longer has is logged and dropped; a file that does not parse is
//! logged, renamed to `<file>.bad` (kept for the operator, and so the next
//! save does not overwrite it) and the daemon starts with no operator state.
//! A file that cannot be written (e.g. `/var/lib/sparrow` not writable
//! without root) is not fatal: the change applies, the reply says it was not
//! saved, and a warning is logged.
//!
//! Called by the admin socket (`crate::admin`) and the daemon at start.
//! Never on the query path.

use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use super::state::{Force, PopState};

/// The file's content.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct OperatorState {
    /// Format version (1).
    pub version: u32,
    /// Drained POPs.
    pub drained: Vec<String>,
    /// Forced states other than `auto`.
    pub forced: Vec<Forced>,
    /// Manual load figures.
    pub loads: Vec<ManualLoad>,
}

/// One forced POP (`address` None) or target.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Forced {
    pub pop: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<IpAddr>,
    pub state: Force,
}

/// One POP's manual load.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ManualLoad {
    pub pop: String,
    pub load: f64,
}

/// Why the state file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum PersistError {
    #[error("state file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("state file {path}: not valid JSON state: {msg}")]
    Parse { path: PathBuf, msg: String },
}

impl PopState {
    /// The operator's part of the state, as saved.
    pub fn operator_state(&self) -> OperatorState {
        let mut s = OperatorState {
            version: 1,
            ..OperatorState::default()
        };
        for (i, name) in self.names().into_iter().enumerate() {
            if self.drained(i) {
                s.drained.push(name.to_string());
            }
            if self.forced(i) != Force::Auto {
                s.forced.push(Forced {
                    pop: name.to_string(),
                    address: None,
                    state: self.forced(i),
                });
            }
            for (t, &addr) in self.targets(i).iter().enumerate() {
                if self.target_forced(i, t) != Force::Auto {
                    s.forced.push(Forced {
                        pop: name.to_string(),
                        address: Some(addr),
                        state: self.target_forced(i, t),
                    });
                }
            }
            if let Some(l) = self.manual_load(i) {
                // Stored as f32: keep the figure the operator typed.
                let load = (l * 1e6).round() / 1e6;
                s.loads.push(ManualLoad {
                    pop: name.to_string(),
                    load,
                });
            }
        }
        s
    }

    /// Apply a saved operator state; returns a message per entry dropped
    /// (unknown POP or address, bad load).
    pub fn apply_operator_state(&self, s: &OperatorState) -> Vec<String> {
        let mut dropped = Vec::new();
        for pop in &s.drained {
            if let Err(e) = self.set_drained(pop, true) {
                dropped.push(format!("drain of {pop}: {e}"));
            }
        }
        for f in &s.forced {
            if let Err(e) = self.force(&f.pop, f.address, f.state) {
                dropped.push(format!("forced state of {}: {e}", f.pop));
            }
        }
        for l in &s.loads {
            if let Err(e) = self.set_manual_load(&l.pop, Some(l.load)) {
                dropped.push(format!("load of {}: {e}", l.pop));
            }
        }
        dropped
    }
}

/// The state file, and the lock that orders changes and their saves.
#[derive(Debug)]
pub struct StateStore {
    path: PathBuf,
    lock: Mutex<()>,
}

impl StateStore {
    pub fn new(path: impl Into<PathBuf>) -> StateStore {
        StateStore {
            path: path.into(),
            lock: Mutex::new(()),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Read the file: `None` when it does not exist.
    pub fn load(&self) -> Result<Option<OperatorState>, PersistError> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(self.io(source)),
        };
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| PersistError::Parse {
                path: self.path.clone(),
                msg: e.to_string(),
            })
    }

    fn io(&self, source: std::io::Error) -> PersistError {
        PersistError::Io {
            path: self.path.clone(),
            source,
        }
    }

    /// Write `s` atomically: temporary file, fsync, rename, fsync the directory.
    pub fn save(&self, s: &OperatorState) -> Result<(), PersistError> {
        let dir = self
            .path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(|e| self.io(e))?;
        let mut tmp = self.path.clone().into_os_string();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        let mut text = serde_json::to_vec_pretty(s).map_err(|e| self.io(e.into()))?;
        text.push(b'\n');
        let write = || -> std::io::Result<()> {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&text)?;
            f.sync_all()?;
            std::fs::rename(&tmp, &self.path)?;
            std::fs::File::open(dir)?.sync_all()
        };
        write().map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            self.io(e)
        })
    }

    /// At start: read the file into `pops`. Returns what to log (each a
    /// warning): a file that cannot be read or parsed (renamed to
    /// `<file>.bad` when it does not parse), and every entry dropped.
    pub fn restore(&self, pops: &PopState) -> Restored {
        let _g = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        match self.load() {
            Ok(None) => Restored::default(),
            Ok(Some(s)) => Restored {
                loaded: true,
                warnings: pops.apply_operator_state(&s),
            },
            Err(e @ PersistError::Parse { .. }) => {
                let mut bad = self.path.clone().into_os_string();
                bad.push(".bad");
                let moved = std::fs::rename(&self.path, &bad);
                Restored {
                    loaded: false,
                    warnings: vec![match moved {
                        Ok(()) => format!(
                            "{e}; starting with no operator state (the file is kept as {})",
                            PathBuf::from(bad).display()
                        ),
                        Err(m) => format!("{e}; starting with no operator state ({m})"),
                    }],
                }
            }
            Err(e) => Restored {
                loaded: false,
                warnings: vec![format!("{e}; starting with no operator state")],
            },
        }
    }

    /// Apply an operator's change (`f` on `pops`) and save the resulting
    /// state, one change at a time. `Err` from `f`: nothing changed, nothing
    /// written. Otherwise `f`'s value and whether the save worked.
    pub fn change<T, E>(
        &self,
        pops: &PopState,
        f: impl FnOnce(&PopState) -> Result<T, E>,
    ) -> Result<(T, Result<(), PersistError>), E> {
        let _g = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        let v = f(pops)?;
        Ok((v, self.save(&pops.operator_state())))
    }
}

/// What [`StateStore::restore`] did.
#[derive(Debug, Default)]
pub struct Restored {
    /// A state file was read.
    pub loaded: bool,
    pub warnings: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::TestConfig;

    fn dir() -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "sparrow-persist-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn round_trip_and_bad_entries_and_bad_file() {
        let cfg = TestConfig::two_pops().build();
        let a = PopState::new(&cfg, None);
        let d = dir();
        let store = StateStore::new(d.join("sub/state.json"));
        // Missing file: nothing.
        assert!(!store.restore(&a).loaded);
        let (_, saved) = store.change(&a, |p| p.set_drained("x", true)).unwrap();
        saved.unwrap();
        store
            .change(&a, |p| p.force("y", None, Force::Down))
            .unwrap()
            .1
            .unwrap();
        store
            .change(&a, |p| p.set_manual_load("y", Some(0.9)))
            .unwrap()
            .1
            .unwrap();
        // A failed change writes nothing.
        assert!(store.change(&a, |p| p.set_drained("nope", true)).is_err());
        let want = a.operator_state();
        assert_eq!(want.drained, vec!["x"]);
        assert_eq!(want.loads[0].load, 0.9);

        let b = PopState::new(&cfg, None);
        let r = store.restore(&b);
        assert!(r.loaded && r.warnings.is_empty(), "{r:?}");
        assert_eq!(b.operator_state(), want);
        assert!(b.drained(0) && b.forced(1) == Force::Down && !b.up(1));

        // Unknown POP and address: dropped with a message, the rest applies.
        let mut s = want.clone();
        s.drained.push("gone".into());
        s.forced.push(Forced {
            pop: "x".into(),
            address: Some("192.0.2.99".parse().unwrap()),
            state: Force::Down,
        });
        store.save(&s).unwrap();
        let c = PopState::new(&cfg, None);
        let r = store.restore(&c);
        assert_eq!(r.warnings.len(), 2, "{r:?}");
        assert!(c.drained(0));

        // Unparsable: start with none, the file kept as .bad.
        std::fs::write(store.path(), "{not json").unwrap();
        let e = PopState::new(&cfg, None);
        let r = store.restore(&e);
        assert!(!r.loaded && r.warnings[0].contains(".bad"), "{r:?}");
        assert!(!e.drained(0));
        assert!(d.join("sub/state.json.bad").exists() && !store.path().exists());
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn unwritable_state_file_is_an_error_not_a_panic() {
        let cfg = TestConfig::two_pops().build();
        let a = PopState::new(&cfg, None);
        let store = StateStore::new("/proc/sparrow-no/state.json");
        let (was, saved) = store.change(&a, |p| p.set_drained("x", true)).unwrap();
        assert!(!was && saved.is_err() && a.drained(0));
    }
}
