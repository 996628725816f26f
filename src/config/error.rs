//! Config errors: every error names file, line and key
//! (`file:line: key: message`), as `sparrowd --check-config` prints them.
//!
//! Talks to nobody.

/// A config error: where, and what.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}{}{}: {msg}", line_part(*.line), key_part(.key))]
pub struct ConfigError {
    pub file: String,
    /// 1-based line, 0 when unknown.
    pub line: usize,
    /// Dotted key path, e.g. `peers[1].hold_time`.
    pub key: String,
    pub msg: String,
}

/// `:LINE`, or nothing when the line is unknown (0).
fn line_part(line: usize) -> String {
    if line > 0 {
        format!(":{line}")
    } else {
        String::new()
    }
}

/// `: KEY`, or nothing when there is no key.
fn key_part(key: &str) -> String {
    if key.is_empty() {
        String::new()
    } else {
        format!(": {key}")
    }
}

/// One problem in one zone, keyed relative to the zone (`.soa.mname`,
/// `.records[2].data`); config validation prefixes `zones[i]`. An error in
/// a zone file carries that file and line in `at`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {msg}")]
pub struct ZoneError {
    pub key: String,
    pub msg: String,
    /// (file, line) when the error is in a zone file rather than the config.
    pub at: Option<(String, usize)>,
}

impl ZoneError {
    pub(super) fn new(key: impl Into<String>, msg: impl Into<String>) -> ZoneError {
        ZoneError {
            key: key.into(),
            msg: msg.into(),
            at: None,
        }
    }

    /// The same error, located in a zone file.
    pub(super) fn at(mut self, file: String, line: usize) -> ZoneError {
        self.at = Some((file, line));
        self
    }
}

/// Format errors one per line, as `sparrowd --check-config` prints them.
pub fn format_errors(errors: &[ConfigError]) -> String {
    let mut out = String::new();
    for e in errors {
        out.push_str(&e.to_string());
        out.push('\n');
    }
    out
}
