//! Zone files (`zones[].file`): an RFC 1035 master file, read when the
//! config is loaded (a relative path is relative to the config file) and
//! parsed with hickory-proto's parser (`serialize::txt::Parser`), with the
//! zone's origin as `$ORIGIN` and its `ttl` as the default `$TTL`.
//!
//! hickory's parser gives no line numbers, so the line of a record or of an
//! error is found by parsing growing prefixes of the file (a binary search,
//! run only when an error is reported). `$INCLUDE` is refused: a reload
//! compares the file's text to decide whether the zone changed.
//!
//! Talks to hickory-proto only; `validate` reads the files, `zones::parse_zone`
//! parses them.

use std::collections::BTreeMap;
use std::path::Path;

use hickory_proto::rr::{LowerName, Name, Record, RecordSet, RecordType, RrKey};
use hickory_proto::serialize::txt::{LexerError, ParseError, Parser};

type Sets = BTreeMap<RrKey, RecordSet>;

/// A zone file as read: where from (for messages) and its text.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ZoneFile {
    /// The path as resolved (relative ones joined to the config file's directory).
    pub path: String,
    pub text: String,
}

impl ZoneFile {
    /// Read `file`; a relative path is relative to the directory of `config_file`.
    pub fn read(config_file: &str, file: &str) -> Result<ZoneFile, String> {
        let p = Path::new(file);
        let path = match Path::new(config_file).parent() {
            Some(dir) if p.is_relative() => dir.join(p),
            _ => p.to_path_buf(),
        };
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read zone file {}: {e}", path.display()))?;
        Ok(ZoneFile {
            path: path.display().to_string(),
            text,
        })
    }

    /// Every record of the file, or the first error as (line, message).
    pub fn records(&self, origin: &Name, ttl: u32) -> Result<Vec<Record>, (usize, String)> {
        if let Some(n) = self.text.lines().position(|l| {
            l.split_whitespace()
                .next()
                .is_some_and(|w| w.eq_ignore_ascii_case("$INCLUDE"))
        }) {
            return Err((n + 1, "$INCLUDE is not supported".into()));
        }
        let total = self.text.lines().count();
        match self.parse_lines(origin, ttl, total) {
            Ok(sets) => Ok(sets
                .values()
                .flat_map(|s| s.records_without_rrsigs().cloned())
                .collect()),
            Err(e) => Err((self.first_line(origin, ttl, |r| r.is_err()), e.to_string())),
        }
    }

    /// The line (1-based) where the first record of `name`/`rtype` starts;
    /// 0 if the file has none.
    pub fn line_of(&self, origin: &Name, ttl: u32, name: &Name, rtype: RecordType) -> usize {
        let key = RrKey::new(LowerName::new(name), rtype);
        self.first_line(origin, ttl, |r| {
            r.as_ref().is_ok_and(|sets| sets.contains_key(&key))
        })
    }

    /// The first `n` lines parsed (after `$TTL ttl`).
    fn parse_lines(&self, origin: &Name, ttl: u32, n: usize) -> Result<Sets, ParseError> {
        let mut text = format!("$TTL {ttl}\n");
        for l in self.text.lines().take(n) {
            text.push_str(l);
            text.push('\n');
        }
        Parser::new(text, None, Some(origin.clone()))
            .parse()
            .map(|(_, sets)| sets)
    }

    /// The smallest line count `n` such that `hit` holds for the shortest
    /// prefix of at least `n` lines that does not end inside parentheses or
    /// quotes (so a record spanning lines is found at its first line); 0 if
    /// the whole file does not satisfy `hit`.
    fn first_line(
        &self,
        origin: &Name,
        ttl: u32,
        hit: impl Fn(&Result<Sets, ParseError>) -> bool,
    ) -> usize {
        let total = self.text.lines().count();
        let probe = |n: usize| {
            for m in n..=total {
                let r = self.parse_lines(origin, ttl, m);
                let open = matches!(
                    &r,
                    Err(ParseError::Lexer(
                        LexerError::UnclosedList | LexerError::UnclosedQuotedString
                    ))
                );
                if !open || m == total {
                    return hit(&r);
                }
            }
            false
        };
        if total == 0 || !probe(total) {
            return 0;
        }
        let (mut lo, mut hi) = (1, total);
        while lo < hi {
            let mid = (lo + hi) / 2;
            if probe(mid) {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        lo
    }
}
