//! Semantic checks of `announce`, and the parsed [`Announcement`]s they
//! yield: prefixes, communities, peers, next hop, the gating check, the
//! hysteresis and hold-down figures, and `on_down`. Errors name file, line
//! and key through the shared [`Checker`].
//!
//! Called by `validate`; talks to `announce_schema` (the types) only.

use std::collections::HashMap;
use std::time::Duration;

use super::announce_schema::{AnnounceConfig, Announcement, OnDown};
use super::schema::RawConfig;
use super::validate::Checker;

/// Most extra ASNs a prepend may add.
const MAX_PREPEND: u8 = 32;
/// Longest graceful-shutdown period, seconds.
const MAX_GRACE: u64 = 3600;

/// Check every `announce` entry; the parsed ones (all of them when there is
/// no error).
pub(super) fn check_announce(c: &mut Checker, cfg: &RawConfig) -> Vec<Announcement> {
    let mut out = Vec::new();
    let mut seen = HashMap::new();
    for (i, a) in cfg.announce.iter().enumerate() {
        let key = format!("announce[{i}]");
        if let Some(ann) = check_one(c, cfg, &key, a) {
            if let Some(j) = seen.insert(ann.prefix, i) {
                c.err(
                    format!("{key}.prefix"),
                    format!("duplicate prefix {} (also announce[{j}])", ann.prefix),
                );
            }
            out.push(ann);
        }
    }
    out
}

fn check_one(
    c: &mut Checker,
    cfg: &RawConfig,
    key: &str,
    a: &AnnounceConfig,
) -> Option<Announcement> {
    let prefix = c.prefix(format!("{key}.prefix"), &a.prefix);
    let communities = parse_each(
        c,
        &format!("{key}.communities"),
        &a.communities,
        parse_community,
        "is not ASN:VALUE with each part 0..=65535",
    );
    let large_communities = parse_each(
        c,
        &format!("{key}.large_communities"),
        &a.large_communities,
        parse_large_community,
        "is not GLOBAL:DATA1:DATA2 with each part a 32-bit number",
    );
    if a.prepend > MAX_PREPEND {
        c.err(
            format!("{key}.prepend"),
            format!("must be 0..={MAX_PREPEND}"),
        );
    }
    let (to_upstream, to_pops) = check_to(c, key, &a.to);
    if let (Some(nh), Some(p)) = (a.next_hop, prefix) {
        if nh.is_ipv4() != p.addr().is_ipv4() || nh.is_unspecified() || nh.is_multicast() {
            c.err(
                format!("{key}.next_hop"),
                format!("{nh} is not a unicast address of the prefix's family"),
            );
        }
    }
    let check = check_gate(c, cfg, key, a);
    for (k, v) in [("rise", a.rise), ("fall", a.fall)] {
        if v < 1 {
            c.err(format!("{key}.{k}"), "must be at least 1");
        }
    }
    let interval = seconds(c, &format!("{key}.interval"), a.interval, false);
    let hold_down = seconds(c, &format!("{key}.hold_down"), a.hold_down, true);
    let on_down = match parse_on_down(&a.on_down) {
        Some(d) => Some(d),
        None => {
            c.err(
                format!("{key}.on_down"),
                format!(
                    "`{}` is not `withdraw`, `prepend N` (1..={MAX_PREPEND}) or \
                     `graceful_shutdown SECONDS` (1..={MAX_GRACE})",
                    a.on_down
                ),
            );
            None
        }
    };
    Some(Announcement {
        prefix: prefix?,
        communities,
        large_communities,
        prepend: a.prepend,
        to_upstream,
        to_pops,
        next_hop: a.next_hop,
        check: check?,
        rise: a.rise,
        fall: a.fall,
        interval: interval?,
        hold_down: hold_down?,
        on_down: on_down?,
        announce_before_rib: a.announce_before_rib,
    })
}

/// Parse every item of the list under `key` with `parse`; an item that does
/// not parse is an error at `key[j]`: "`ITEM` MSG".
fn parse_each<T>(
    c: &mut Checker,
    key: &str,
    items: &[String],
    parse: fn(&str) -> Option<T>,
    msg: &str,
) -> Vec<T> {
    let mut out = Vec::with_capacity(items.len());
    for (j, s) in items.iter().enumerate() {
        match parse(s) {
            Some(v) => out.push(v),
            None => c.err(format!("{key}[{j}]"), format!("`{s}` {msg}")),
        }
    }
    out
}

/// `to`: a non-empty list of `upstream` and `pop`.
fn check_to(c: &mut Checker, key: &str, to: &[String]) -> (bool, bool) {
    let (mut up, mut pop) = (false, false);
    if to.is_empty() {
        c.err(format!("{key}.to"), "must list `upstream`, `pop` or both");
    }
    for (j, t) in to.iter().enumerate() {
        match t.as_str() {
            "upstream" => up = true,
            "pop" => pop = true,
            other => c.err(
                format!("{key}.to[{j}]"),
                format!("`{other}` is not `upstream` or `pop`"),
            ),
        }
    }
    (up, pop)
}

/// The gating check: a `health.checks` name covering this POP, or (none)
/// the self-query, which needs a DNS listener and a zone.
fn check_gate(
    c: &mut Checker,
    cfg: &RawConfig,
    key: &str,
    a: &AnnounceConfig,
) -> Option<Option<usize>> {
    match &a.check {
        Some(name) => {
            let Some(ci) = cfg.health.checks.iter().position(|h| &h.name == name) else {
                c.err(
                    format!("{key}.check"),
                    format!("`{name}` is not the name of a `health.checks` entry"),
                );
                return None;
            };
            let h = &cfg.health.checks[ci];
            if !h.pops.is_empty() && !h.pops.contains(&cfg.pop) {
                c.err(
                    format!("{key}.check"),
                    format!("check `{name}` does not cover this POP (`{}`)", cfg.pop),
                );
                return None;
            }
            if super::zones::pop_targets(&cfg.zones, &cfg.pop).is_empty() {
                c.err(
                    format!("{key}.check"),
                    format!(
                        "check `{name}` runs against this POP's steered addresses, and POP `{}` \
                         has none: it would never pass (omit `check` for the DNS self-query)",
                        cfg.pop
                    ),
                );
                return None;
            }
            Some(Some(ci))
        }
        None if cfg.dns.listen.is_empty() || cfg.zones.is_empty() => {
            c.err(
                format!("{key}.check"),
                "without `check`, the prefix follows a DNS query of our own listener, \
                 which needs `dns.listen` and a zone: name a `health.checks` entry",
            );
            None
        }
        None => Some(None),
    }
}

/// A number of seconds under `key`: finite, above 0 (or at least 0).
fn seconds(c: &mut Checker, key: &str, v: f64, zero_ok: bool) -> Option<Duration> {
    let ok = v.is_finite() && (v > 0.0 || (zero_ok && v == 0.0)) && v <= 86400.0;
    if !ok {
        let least = if zero_ok { "0" } else { "above 0" };
        c.err(
            key,
            format!("must be a number of seconds, {least} and at most 86400, not {v}"),
        );
        return None;
    }
    Some(Duration::from_secs_f64(v))
}

/// `ASN:VALUE` as a 32-bit community.
pub fn parse_community(s: &str) -> Option<u32> {
    let (a, b) = s.trim().split_once(':')?;
    Some((a.parse::<u16>().ok()? as u32) << 16 | b.parse::<u16>().ok()? as u32)
}

/// `GLOBAL:DATA1:DATA2` as a large community.
pub fn parse_large_community(s: &str) -> Option<[u32; 3]> {
    let mut it = s.trim().split(':').map(|x| x.parse::<u32>().ok());
    let v = [it.next()??, it.next()??, it.next()??];
    it.next().is_none().then_some(v)
}

/// `withdraw`, `prepend N` or `graceful_shutdown SECONDS`.
pub fn parse_on_down(s: &str) -> Option<OnDown> {
    let mut words = s.split_whitespace();
    let d = match (words.next()?, words.next()) {
        ("withdraw", None) => OnDown::Withdraw,
        ("prepend", Some(n)) => {
            let n: u8 = n.parse().ok()?;
            if n == 0 || n > MAX_PREPEND {
                return None;
            }
            OnDown::Prepend(n)
        }
        ("graceful_shutdown", Some(n)) => {
            let n: u64 = n.parse().ok()?;
            if n == 0 || n > MAX_GRACE {
                return None;
            }
            OnDown::GracefulShutdown(Duration::from_secs(n))
        }
        _ => return None,
    };
    words.next().is_none().then_some(d)
}
