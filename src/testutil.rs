//! Test helpers shared by the unit tests: one test-config builder
//! ([`TestConfig`], YAML text that is parsed and validated like a real file,
//! with numbered POPs for large configs) and the head the literal test
//! configs start with, the error helpers the config tests assert with, paths
//! (files in the repository, per-process temporary files), a RIB peer's
//! session coming up, an address parser, the benchmarks' mixing function and
//! the randomized tests' generator.
//!
//! Compiled only for tests. Talks to `config` and `rib`.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

use tokio::sync::mpsc;

use crate::config::{self, Config, ConfigError};
use crate::rib::{Rib, RibMsg, SessionCmd, SessionInfo};
use crate::types::PeerId;

/// The first lines of the literal test configs, as a literal for `concat!`:
/// local ASN 65001, router ID 10.0.0.1, this POP `x`, and the `pops:` key
/// (the POP list follows).
macro_rules! config_head {
    () => {
        "\
local_asn: 65001
router_id: 10.0.0.1
pop: x
pops:
"
    };
}
pub(crate) use config_head;

/// The YAML of [`TWO_POPS`], as a literal for `concat!`.
macro_rules! two_pops_yaml {
    () => {
        concat!(
            $crate::testutil::config_head!(),
            "  - {name: x, asn: 65001}
  - {name: y, asn: 65002}
peers:
  - {name: py, address: 10.0.0.2, remote_asn: 65002, role: pop, multihop: 4}
"
        )
    };
}
pub(crate) use two_pops_yaml;

/// POPs `x` (65001, this one) and `y` (65002), and one `pop` peer `py` to y.
pub const TWO_POPS: &str = two_pops_yaml!();

/// A config as YAML text, built up by tests and parsed like a real file
/// (named `t.yaml` in errors).
#[derive(Clone, Debug)]
pub struct TestConfig {
    text: String,
}

impl TestConfig {
    /// [`TWO_POPS`].
    pub fn two_pops() -> TestConfig {
        TestConfig::yaml(TWO_POPS)
    }

    /// Any text.
    pub fn yaml(text: &str) -> TestConfig {
        TestConfig {
            text: text.to_string(),
        }
    }

    /// The embedded default config (`config::DEFAULT_CONFIG`: POP `local`,
    /// ASN 64999, no peers).
    pub fn embedded_default() -> TestConfig {
        TestConfig::yaml(config::DEFAULT_CONFIG)
    }

    /// Another POP (flow style), after the last `pops` entry.
    pub fn pop(self, name: &str, asn: u32) -> TestConfig {
        let end = self.section("pops").end;
        self.insert(end, &format!("  - {{name: {name}, asn: {asn}}}\n"))
    }

    /// POPs `p{i}` with ASN [`numbered_pop_asn`]`(i)` appended to `pops`
    /// until it has `total` entries, so the POP at index `i` (from the count
    /// before on) is `p{i}`: large configs without YAML in the tests.
    pub fn numbered_pops(self, total: usize) -> TestConfig {
        let span = self.section("pops");
        let have = self.text[span.clone()]
            .lines()
            .filter(|l| l.trim_start().starts_with("- "))
            .count();
        let list: String = (have..total)
            .map(|i| format!("  - {{name: p{i}, asn: {}}}\n", numbered_pop_asn(i)))
            .collect();
        self.insert(span.end, &list)
    }

    /// The peers, in this order (each a flow-style mapping such as
    /// `{name: p, address: 10.0.0.2, remote_asn: 65002, role: upstream}`),
    /// instead of the `peers` section the text had.
    pub fn peers<S: AsRef<str>>(mut self, peers: &[S]) -> TestConfig {
        if self.text.starts_with("peers:") || self.text.contains("\npeers:") {
            let span = self.section("peers");
            self.text.replace_range(span, "");
        }
        let list: String = peers
            .iter()
            .map(|p| format!("  - {}\n", p.as_ref()))
            .collect();
        self.with(&format!("peers:\n{list}"))
    }

    /// Append top-level sections (YAML ending in a newline).
    pub fn with(mut self, yaml: &str) -> TestConfig {
        self.text.push_str(yaml);
        self
    }

    /// Replace `from` (which must occur) with `to`.
    pub fn replace(self, from: &str, to: &str) -> TestConfig {
        assert!(self.text.contains(from), "`{from}` not in\n{}", self.text);
        TestConfig {
            text: self.text.replace(from, to),
        }
    }

    /// The bytes of top-level section `key`: its `key:` line and the
    /// indented lines under it.
    fn section(&self, key: &str) -> std::ops::Range<usize> {
        let head = format!("{key}:");
        let start = if self.text.starts_with(&head) {
            0
        } else {
            self.text
                .find(&format!("\n{head}"))
                .unwrap_or_else(|| panic!("no `{head}` in\n{}", self.text))
                + 1
        };
        let mut end = self.text[start..]
            .find('\n')
            .map_or(self.text.len(), |i| start + i + 1);
        for line in self.text[end..].split_inclusive('\n') {
            if !line.starts_with(' ') {
                break;
            }
            end += line.len();
        }
        start..end
    }

    fn insert(mut self, at: usize, yaml: &str) -> TestConfig {
        self.text.insert_str(at, yaml);
        self
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    /// Parsed and validated; panics with the errors if it is not valid.
    pub fn build(&self) -> Config {
        parse_ok(&self.text)
    }

    /// The errors; panics if the config is valid.
    pub fn errors(&self) -> Vec<ConfigError> {
        parse_errs(&self.text)
    }
}

/// The ASN of POP `p{i}` of [`TestConfig::numbered_pops`] (private-use
/// 4-byte range).
pub fn numbered_pop_asn(i: usize) -> u32 {
    4_200_000_000 + i as u32
}

/// Parse `text` as `t.yaml`; panics with the errors if it is not valid.
pub fn parse_ok(text: &str) -> Config {
    match config::parse(text, "t.yaml") {
        Ok(c) => c,
        Err(es) => panic!("unexpected errors:\n{}", config::format_errors(&es)),
    }
}

/// Parse `text` as `t.yaml`; the errors (panics if it is valid).
pub fn parse_errs(text: &str) -> Vec<ConfigError> {
    match config::parse(text, "t.yaml") {
        Ok(_) => panic!("expected errors for:\n{text}"),
        Err(es) => es,
    }
}

/// 1-based line where the first occurrence of `needle` starts.
pub fn line_of(text: &str, needle: &str) -> usize {
    let i = text
        .find(needle)
        .unwrap_or_else(|| panic!("`{needle}` not in text"));
    text[..i].matches('\n').count() + 1
}

/// A file in the repository (`rel` from the crate root).
pub fn repo_path(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// A per-process path in the temporary directory: `sparrow-test-PID-NAME`.
pub fn temp_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("sparrow-test-{}-{name}", std::process::id()))
}

/// A 64-bit mixing step (a fixed hash): reproducible pseudo-random numbers
/// for the benchmarks' synthetic tables.
pub fn mix(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x
}

/// An address literal.
pub fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// `peer`'s session as the RIB tests bring it up: its configured address
/// and ASN, identifier 1.1.1.`peer + 1`, local address 10.0.0.254, both
/// families, forwarding state preserved in both (Graceful Restart).
pub fn session_info(cfg: &Config, peer: PeerId) -> SessionInfo {
    let pc = &cfg.peers[peer as usize];
    SessionInfo {
        remote_as: pc.remote_asn,
        router_id: Ipv4Addr::new(1, 1, 1, peer as u8 + 1),
        remote_addr: pc.address,
        local_addr: ip("10.0.0.254"),
        afis: [true, true],
        gr_preserved: [true, true],
    }
}

/// `peer` up on `rib` with `info`; the receiving end of its session's
/// command channel.
pub fn peer_up(
    rib: &mut Rib,
    peer: PeerId,
    info: SessionInfo,
) -> mpsc::UnboundedReceiver<SessionCmd> {
    let (ctl, rx) = mpsc::unbounded_channel();
    rib.handle(RibMsg::PeerUp { peer, info, ctl });
    rx
}

/// A xorshift64 generator (shifts 13, 7, 17): reproducible random choices
/// for the randomized tests.
pub struct Xorshift(u64);

impl Xorshift {
    /// Starts from `seed` (not 0).
    pub fn new(seed: u64) -> Xorshift {
        Xorshift(seed)
    }

    /// The next number, reduced below `n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pop_and_peers_edit_their_sections() {
        let c = TestConfig::embedded_default()
            .pop("p", 65100)
            .peers(&["{name: a, address: 10.0.0.1, remote_asn: 65100, role: pop}"])
            .build();
        let pops: Vec<(&str, u32)> = c.pops.iter().map(|p| (p.name.as_str(), p.asn)).collect();
        assert_eq!(pops, [("local", 64999), ("p", 65100)]);
        assert_eq!(c.pop_index_by_asn(65100), Some(1));
        assert_eq!(c.peers.len(), 1);
        // `peers` replaces the list a config had.
        let c = TestConfig::two_pops()
            .peers(&["{name: u, address: 10.0.0.9, remote_asn: 64510, role: upstream}"])
            .build();
        let names: Vec<&str> = c.peers.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["u"]);
    }
}
