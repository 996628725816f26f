//! The `file` check: an external monitor writes lines `POP[/ADDR] UP|DOWN`
//! (`#` starts a comment, blank lines are skipped); the file is re-read when
//! its modification time or size changes and judged every interval.
//!
//! Rules: a `POP/ADDR` line wins over a `POP` line for that address (in any
//! order); of two lines for the same key the later wins; a target the file
//! does not name passes (the monitor has no opinion: up). An unreadable
//! file gives no result at all (targets keep their state), logged once per
//! change of the error. Lines that do not parse are skipped and logged.
//!
//! Parsing is pure; [`FileWatch`] keeps the parsed file and its stamp. Used
//! by `runner`.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::SystemTime;

use super::hysteresis::Outcome;

/// The parsed file: verdicts per POP and per (POP, address).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Verdicts {
    pops: HashMap<String, bool>,
    targets: HashMap<(String, IpAddr), bool>,
}

impl Verdicts {
    /// The outcome for one target of `pop` (pass when the file does not name it).
    pub fn outcome(&self, pop: &str, addr: IpAddr) -> Outcome {
        let v = self
            .targets
            .get(&(pop.to_string(), addr))
            .or_else(|| self.pops.get(pop));
        match v {
            Some(false) => Outcome::Fail("file DOWN".into()),
            _ => Outcome::Pass,
        }
    }
}

/// Parse the file's text; also returns the lines that did not parse (1-based
/// line number and why).
pub fn parse(text: &str) -> (Verdicts, Vec<(usize, String)>) {
    let mut v = Verdicts::default();
    let mut bad = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let mut words = line.split_whitespace();
        let (Some(key), Some(state), None) = (words.next(), words.next(), words.next()) else {
            bad.push((i + 1, format!("`{line}`: expected `POP[/ADDR] UP|DOWN`")));
            continue;
        };
        let up = match state.to_ascii_uppercase().as_str() {
            "UP" => true,
            "DOWN" => false,
            _ => {
                bad.push((i + 1, format!("`{state}` is not UP or DOWN")));
                continue;
            }
        };
        match key.split_once('/') {
            None => {
                v.pops.insert(key.to_string(), up);
            }
            Some((pop, addr)) => match addr.parse::<IpAddr>() {
                Ok(a) => {
                    v.targets
                        .insert((pop.to_string(), crate::net::canonical_ip(a)), up);
                }
                Err(_) => bad.push((i + 1, format!("`{addr}` is not an IP address"))),
            },
        }
    }
    (v, bad)
}

/// One watched file: the last parse and the (mtime, size) it came from.
#[derive(Debug)]
pub struct FileWatch {
    path: PathBuf,
    stamp: Option<(SystemTime, u64)>,
    verdicts: Option<Verdicts>,
    last_error: Option<String>,
}

impl FileWatch {
    pub fn new(path: PathBuf) -> FileWatch {
        FileWatch {
            path,
            stamp: None,
            verdicts: None,
            last_error: None,
        }
    }

    /// The current verdicts, re-reading the file if its stamp changed;
    /// `None` while it cannot be read.
    pub fn poll(&mut self) -> Option<&Verdicts> {
        match self.refresh() {
            Ok(()) => {
                if self.last_error.take().is_some() {
                    tracing::info!(file = %self.path.display(), "health file readable again");
                }
                self.verdicts.as_ref()
            }
            Err(e) => {
                if self.last_error.as_deref() != Some(e.as_str()) {
                    tracing::warn!(file = %self.path.display(), error = %e, "health file unreadable: targets keep their state");
                    self.last_error = Some(e);
                }
                self.stamp = None;
                self.verdicts = None;
                None
            }
        }
    }

    fn refresh(&mut self) -> Result<(), String> {
        let md = std::fs::metadata(&self.path).map_err(|e| e.to_string())?;
        let stamp = (md.modified().map_err(|e| e.to_string())?, md.len());
        if self.stamp == Some(stamp) && self.verdicts.is_some() {
            return Ok(());
        }
        let text = std::fs::read_to_string(&self.path).map_err(|e| e.to_string())?;
        let (v, bad) = parse(&text);
        for (line, why) in bad {
            tracing::warn!(file = %self.path.display(), line, "health file: {why}");
        }
        self.stamp = Some(stamp);
        self.verdicts = Some(v);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::ip;

    #[test]
    fn pop_lines_target_lines_and_comments() {
        let (v, bad) = parse(
            "# monitor output\n\
             y DOWN\n\
             y/203.0.113.21 up   # this one is fine\n\
             \n\
             x/2001:db8:ff::10 DOWN\n",
        );
        assert!(bad.is_empty(), "{bad:?}");
        assert_eq!(
            v.outcome("y", ip("203.0.113.20")),
            Outcome::Fail("file DOWN".into())
        );
        assert_eq!(v.outcome("y", ip("203.0.113.21")), Outcome::Pass);
        assert_eq!(v.outcome("x", ip("203.0.113.10")), Outcome::Pass);
        assert!(!v.outcome("x", ip("2001:db8:ff::10")).passed());
        // not named at all: up
        assert_eq!(v.outcome("z", ip("192.0.2.1")), Outcome::Pass);
    }

    #[test]
    fn later_line_wins_and_target_beats_pop_in_any_order() {
        let (v, _) = parse("x/192.0.2.1 UP\nx DOWN\ny DOWN\ny UP\n");
        assert!(v.outcome("x", ip("192.0.2.1")).passed());
        assert!(!v.outcome("x", ip("192.0.2.2")).passed());
        assert!(v.outcome("y", ip("192.0.2.2")).passed());
    }

    #[test]
    fn bad_lines_are_reported_and_skipped() {
        let (v, bad) = parse("x MAYBE\ny/not-an-ip DOWN\nz\nw UP extra\nq DOWN\n");
        assert_eq!(
            bad.iter().map(|b| b.0).collect::<Vec<_>>(),
            [1, 2, 3, 4],
            "{bad:?}"
        );
        assert!(!v.outcome("q", ip("192.0.2.1")).passed());
    }

    #[test]
    fn watch_rereads_on_change_and_reports_unreadable() {
        let dir = std::env::temp_dir().join(format!("sparrow-hfile-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("health");
        let mut w = FileWatch::new(path.clone());
        assert!(w.poll().is_none(), "missing file: no verdicts");
        std::fs::write(&path, "x DOWN\n").unwrap();
        assert!(!w.poll().unwrap().outcome("x", ip("192.0.2.1")).passed());
        // a different size: re-read even within the same mtime second
        std::fs::write(&path, "x UP  \n").unwrap();
        assert!(w.poll().unwrap().outcome("x", ip("192.0.2.1")).passed());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
