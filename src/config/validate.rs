//! Semantic validation: one `check_*` function per section of a
//! [`RawConfig`], each error located in the text by the [`Locator`] from its
//! key path; a config with no error becomes the validated [`Config`].
//! Zones are checked by `zones::parse_zone`, after their zone files are read
//! (relative to the config file).
//!
//! Talks to `schema`, `zones`, `locator`; uses `crate::types::Prefix` and
//! `crate::wire::AS_TRANS`.

use std::net::IpAddr;

use super::error::ConfigError;
use super::locator::Locator;
use super::schema::{
    pop_index, pop_index_by_asn, PeerConfig, RawConfig, Role, RrlConfig, RRL_MAX_RATE,
    RRL_MAX_SLIP, RRL_MAX_TABLE_SIZE,
};
use super::validated::Config;
use super::zones;
use crate::wire::AS_TRANS;

/// TCP-MD5 (RFC 2385) keys are at most 80 bytes (TCP_MD5SIG_MAXKEYLEN).
const MAX_PASSWORD_LEN: usize = 80;
/// The graceful-restart capability carries Restart Time in 12 bits.
const MAX_RESTART_TIME: u16 = 4095;
/// Longest selection deferral (RFC 4724 §4.1 leaves it to the implementation).
const MAX_SELECTION_DEFERRAL: u16 = 3600;

/// Collects semantic errors, locating each key in the text.
pub(super) struct Checker<'a> {
    file: &'a str,
    loc: Locator,
    errors: Vec<ConfigError>,
}

impl Checker<'_> {
    pub(super) fn err(&mut self, key: impl Into<String>, msg: impl Into<String>) {
        let key = key.into();
        let line = self.loc.line(&key);
        self.errors.push(ConfigError {
            file: self.file.to_string(),
            line,
            key,
            msg: msg.into(),
        });
    }

    /// Parse `text` as `ADDRESS/LENGTH` with host bits clear; errors go to `key`.
    pub(super) fn prefix(&mut self, key: String, text: &str) -> Option<crate::types::Prefix> {
        let given = text.split_once('/').map_or(text, |(a, _)| a);
        match text.parse::<crate::types::Prefix>() {
            Err(_) => {
                self.err(key, format!("`{text}` is not a prefix (ADDRESS/LENGTH)"));
                None
            }
            Ok(p) if given.trim().parse::<IpAddr>().ok() != Some(p.addr()) => {
                self.err(
                    key,
                    format!("`{text}` has host bits set (did you mean {p}?)"),
                );
                None
            }
            Ok(p) => Some(p),
        }
    }

    fn asn(&mut self, key: String, asn: u32) {
        if asn == 0 {
            self.err(key, "ASN 0 is reserved (RFC 7607)");
        } else if asn == AS_TRANS {
            self.err(key, "ASN 23456 is AS_TRANS (RFC 6793), not a real ASN");
        }
    }
}

/// Check a deserialized config: the validated [`Config`], or every error found
/// (sorted by line).
pub(super) fn validate(
    mut raw: RawConfig,
    text: &str,
    file: &str,
) -> Result<Config, Vec<ConfigError>> {
    let mut c = Checker {
        file,
        loc: Locator::new(text),
        errors: Vec::new(),
    };
    read_zone_files(&mut c, &mut raw);
    let cfg = &raw;
    check_top(&mut c, cfg);
    let admin_mode = check_listen_admin_logging(&mut c, cfg);
    for (i, peer) in cfg.peers.iter().enumerate() {
        check_peer(&mut c, cfg, i, peer);
    }
    check_steering(&mut c, cfg);
    check_dns(&mut c, cfg);
    check_http(&mut c, cfg);
    check_availability(&mut c, cfg);
    super::validate_health::check_health(&mut c, cfg);
    let announcements = super::validate_announce::check_announce(&mut c, cfg);
    match admin_mode {
        Some(mode) if c.errors.is_empty() => Ok(Config::new(raw, mode, announcements)),
        _ => {
            // The config file's errors first, then each zone file's; by line.
            c.errors.sort_by(|a, b| {
                (a.file != file, &a.file, a.line).cmp(&(b.file != file, &b.file, b.line))
            });
            Err(c.errors)
        }
    }
}

fn check_top(c: &mut Checker, cfg: &RawConfig) {
    c.asn("local_asn".into(), cfg.local_asn);
    if cfg.router_id.is_unspecified() {
        c.err("router_id", "must not be 0.0.0.0 (RFC 6286)");
    }
    if cfg.pops.is_empty() {
        c.err("pops", "must list at least this POP");
    }
    for (i, pop) in cfg.pops.iter().enumerate() {
        if pop.name.trim().is_empty() {
            c.err(format!("pops[{i}].name"), "must not be empty");
        }
        if let Some(j) = cfg.pops[..i].iter().position(|p| p.name == pop.name) {
            c.err(
                format!("pops[{i}].name"),
                format!("duplicate POP name `{}` (also pops[{j}])", pop.name),
            );
        }
        c.asn(format!("pops[{i}].asn"), pop.asn);
        if let Some(j) = cfg.pops[..i].iter().position(|p| p.asn == pop.asn) {
            c.err(
                format!("pops[{i}].asn"),
                format!("duplicate POP ASN {} (also pops[{j}])", pop.asn),
            );
        }
    }
    match pop_index(&cfg.pops, &cfg.pop) {
        None if !cfg.pops.is_empty() => {
            let names: Vec<&str> = cfg.pops.iter().map(|p| p.name.as_str()).collect();
            c.err(
                "pop",
                format!(
                    "`{}` is not one of the POPs in `pops` ({})",
                    cfg.pop,
                    names.join(", ")
                ),
            );
        }
        None => c.err("pop", format!("`{}` is not listed in `pops`", cfg.pop)),
        // (A reserved local_asn is reported above; do not report it twice.)
        Some(i)
            if cfg.pops[i].asn != cfg.local_asn
                && cfg.local_asn != 0
                && cfg.local_asn != AS_TRANS =>
        {
            c.err(
                format!("pops[{i}].asn"),
                format!(
                    "this POP (`{}`) has ASN {} but local_asn is {}",
                    cfg.pop, cfg.pops[i].asn, cfg.local_asn
                ),
            )
        }
        Some(_) => {}
    }
}

/// Also returns `admin.mode` parsed (`None` when it is not a valid mode).
fn check_listen_admin_logging(c: &mut Checker, cfg: &RawConfig) -> Option<u32> {
    let l = &cfg.listen;
    if l.enabled && l.addresses.is_empty() {
        c.err(
            "listen.addresses",
            "listen is enabled but no address is given",
        );
    }
    for (i, a) in l.addresses.iter().enumerate() {
        if l.addresses[..i].contains(a) {
            c.err(
                format!("listen.addresses[{i}]"),
                format!("duplicate address {a}"),
            );
        }
        if a.is_multicast() {
            c.err(
                format!("listen.addresses[{i}]"),
                "must not be a multicast address",
            );
        }
    }
    if l.port == 0 {
        c.err("listen.port", "must be 1..=65535");
    }
    if cfg.selection_deferral > MAX_SELECTION_DEFERRAL {
        c.err(
            "selection_deferral",
            format!("must be 0 (no wait) to {MAX_SELECTION_DEFERRAL} seconds"),
        );
    }
    if cfg.admin.socket.trim().is_empty() {
        c.err("admin.socket", "must not be empty");
    }
    let mode = parse_mode(&cfg.admin.mode);
    if mode.is_none() {
        c.err(
            "admin.mode",
            format!(
                "`{}` is not an octal file mode <= 0777 (e.g. \"0600\")",
                cfg.admin.mode
            ),
        );
    }
    let level = &cfg.logging.level;
    if level.trim().is_empty() {
        c.err("logging.level", "must not be empty (e.g. \"info\")");
    } else if level.chars().any(char::is_whitespace) {
        c.err(
            "logging.level",
            format!("`{level}` contains whitespace; use comma-separated directives like \"info,sparrow=debug\""),
        );
    } else if let Err(e) = tracing_subscriber::EnvFilter::builder().parse(level) {
        c.err(
            "logging.level",
            format!("`{level}` is not a valid filter: {e}"),
        );
    }
    mode
}

fn check_peer(c: &mut Checker, cfg: &RawConfig, i: usize, p: &PeerConfig) {
    let k = |field: &str| format!("peers[{i}].{field}");
    let ebgp = p.is_ebgp(cfg.local_asn);

    if p.name.trim().is_empty() {
        c.err(k("name"), "must not be empty");
    }
    if let Some(j) = cfg.peers[..i].iter().position(|q| q.name == p.name) {
        c.err(
            k("name"),
            format!("duplicate peer name `{}` (also peers[{j}])", p.name),
        );
    }
    if let Some(j) = cfg.peers[..i].iter().position(|q| q.address == p.address) {
        c.err(
            k("address"),
            format!("duplicate peer address {} (also peers[{j}])", p.address),
        );
    }
    if p.address.is_unspecified() || p.address.is_multicast() {
        c.err(
            k("address"),
            format!("{} is not a unicast address", p.address),
        );
    }
    c.asn(k("remote_asn"), p.remote_asn);
    if p.role == Role::Pop {
        if p.remote_asn == cfg.local_asn {
            c.err(
                k("remote_asn"),
                "a `pop` peer is another POP's sparrowd: its ASN must differ from local_asn",
            );
        } else if pop_index_by_asn(&cfg.pops, p.remote_asn).is_none() {
            c.err(
                k("remote_asn"),
                format!(
                    "a `pop` peer's ASN must be one of the `pops` ASNs; {} is not",
                    p.remote_asn
                ),
            );
        }
    }
    if p.port == 0 {
        c.err(k("port"), "must be 1..=65535");
    }
    if p.passive && !cfg.listen.enabled {
        c.err(
            k("passive"),
            "a passive peer never connects, but listen.enabled is false",
        );
    }
    if let Some(la) = p.local_address {
        if la.is_ipv4() != p.address.is_ipv4() {
            c.err(
                k("local_address"),
                format!(
                    "{la} is not the same address family as address {}",
                    p.address
                ),
            );
        } else if la.is_multicast() {
            c.err(k("local_address"), format!("{la} is not a unicast address"));
        }
    }
    if p.multihop == Some(0) {
        c.err(k("multihop"), "must be 1..=255");
    }
    if p.gtsm {
        if !ebgp {
            c.err(
                k("gtsm"),
                "GTSM is only for eBGP peers (remote_asn != local_asn)",
            );
        }
        if let Some(m) = p.multihop.filter(|&m| m > 1) {
            c.err(
                k("gtsm"),
                format!(
                    "gtsm and multihop {m} are mutually exclusive (GTSM means directly connected)"
                ),
            );
        }
    }
    if p.hold_time != 0 && p.hold_time < 3 {
        c.err(
            k("hold_time"),
            "must be 0 (no keepalives) or at least 3 seconds (RFC 4271)",
        );
    }
    if p.connect_retry == 0 {
        c.err(k("connect_retry"), "must be at least 1 second");
    }
    if let Some(pw) = &p.password {
        if pw.is_empty() || pw.len() > MAX_PASSWORD_LEN {
            c.err(
                k("password"),
                format!(
                    "TCP-MD5 key must be 1..={MAX_PASSWORD_LEN} bytes, this one is {}",
                    pw.len()
                ),
            );
        }
    }
    for (afi, lim) in [("ipv4", &p.max_prefix.ipv4), ("ipv6", &p.max_prefix.ipv6)] {
        if let Some(lim) = lim {
            if lim.limit == 0 {
                c.err(
                    k(&format!("max_prefix.{afi}.limit")),
                    "must be > 0 (leave max_prefix.{afi} out for no limit)".replace("{afi}", afi),
                );
            }
        }
    }
    if p.restart_time > MAX_RESTART_TIME {
        c.err(
            k("restart_time"),
            format!("must be <= {MAX_RESTART_TIME} (12-bit field, RFC 4724)"),
        );
    }
    if p.families.is_empty() {
        c.err(k("families"), "must list at least one of ipv4, ipv6");
    }
    for (j, f) in p.families.iter().enumerate() {
        if p.families[..j].contains(f) {
            c.err(
                k(&format!("families[{j}]")),
                format!("duplicate family {f}"),
            );
        }
    }
}

/// Most POPs steering can rank. POP indices are two bytes
/// (`types::PopIdx`); the bound keeps each stored ranking (two bytes per POP,
/// `steer::rank`) and the per-POP tables small.
pub const MAX_POPS: usize = 1024;

fn check_steering(c: &mut Checker, cfg: &RawConfig) {
    let st = &cfg.steering;
    let names = || {
        cfg.pops
            .iter()
            .map(|p| p.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    if cfg.pops.len() > MAX_POPS {
        // On the first POP too many, so the line points into the list.
        c.err(
            format!("pops[{MAX_POPS}]"),
            format!(
                "{} POPs configured, at most {MAX_POPS} are supported",
                cfg.pops.len()
            ),
        );
    }
    if let Some(d) = &st.default_pop {
        if pop_index(&cfg.pops, d).is_none() {
            c.err(
                "steering.default_pop",
                format!("`{d}` is not one of the POPs in `pops` ({})", names()),
            );
        }
    }
    let mut seen = std::collections::HashMap::with_capacity(st.fallback.len());
    for (i, e) in st.fallback.iter().enumerate() {
        let k = |f: &str| format!("steering.fallback[{i}].{f}");
        if pop_index(&cfg.pops, &e.pop).is_none() {
            c.err(
                k("pop"),
                format!("`{}` is not one of the POPs in `pops` ({})", e.pop, names()),
            );
        }
        if let Some(p) = c.prefix(k("prefix"), &e.prefix) {
            if let Some(j) = seen.insert(p, i) {
                c.err(
                    k("prefix"),
                    format!("duplicate fallback prefix {p} (also steering.fallback[{j}])"),
                );
            }
        }
    }
}

fn check_dns(c: &mut Checker, cfg: &RawConfig) {
    let d = &cfg.dns;
    if d.udp_workers == 0 || d.udp_workers > 64 {
        c.err("dns.udp_workers", "must be 1 to 64");
    }
    match d.udp_engine.as_deref() {
        None | Some("fast") => {}
        Some("hickory") => c.err(
            "dns.udp_engine",
            "`hickory` was removed (its replies differed from the fast path); `fast` is the only engine: drop the key",
        ),
        Some(e) => c.err(
            "dns.udp_engine",
            format!("unknown engine `{e}`; `fast` is the only one"),
        ),
    }
    if d.max_in_flight.is_some() {
        c.err(
            "dns.max_in_flight",
            "was removed with hickory-server; TCP is limited by dns.tcp_max_connections and dns.tcp_max_per_client",
        );
    }
    if d.tcp_idle_timeout == 0 {
        c.err("dns.tcp_idle_timeout", "must be at least 1 second");
    }
    if d.tcp_max_connections == 0 {
        c.err("dns.tcp_max_connections", "must be at least 1");
    }
    if d.tcp_max_per_client == 0 {
        c.err("dns.tcp_max_per_client", "must be at least 1");
    }
    if d.max_udp_payload < 512 {
        c.err("dns.max_udp_payload", "must be at least 512 (RFC 1035)");
    }
    for (i, a) in d.listen.iter().enumerate() {
        if let Some(j) = d.listen[..i].iter().position(|b| b == a) {
            c.err(
                format!("dns.listen[{i}]"),
                format!("duplicate address {a} (also dns.listen[{j}])"),
            );
        }
    }
    if let Some(id) = &d.identity {
        if id.len() > 255 {
            c.err("dns.identity", "must be at most 255 bytes (one TXT string)");
        }
    }
    if let Some(r) = &d.rrl {
        check_rrl(c, r);
    }
    let mut origins: Vec<(String, usize)> = Vec::new();
    for (i, z) in cfg.zones.iter().enumerate() {
        if let Err(errs) = zones::parse_zone(z, &cfg.pops) {
            for e in errs {
                let key = format!("zones[{i}]{}", e.key);
                match e.at {
                    // In a zone file: its path and line.
                    Some((file, line)) => c.errors.push(ConfigError {
                        file,
                        line,
                        key,
                        msg: e.msg,
                    }),
                    None => c.err(key, e.msg),
                }
            }
        }
        let o = z.origin.trim_end_matches('.').to_ascii_lowercase();
        if let Some((_, j)) = origins.iter().find(|(x, _)| *x == o) {
            c.err(
                format!("zones[{i}].origin"),
                format!("duplicate zone `{o}` (also zones[{j}])"),
            );
        }
        origins.push((o, i));
    }
}

/// Read every `zones[].file` (relative to the config file) into the zone's
/// `source`, for `zones::parse_zone` and for reload to compare.
fn read_zone_files(c: &mut Checker, cfg: &mut RawConfig) {
    for (i, z) in cfg.zones.iter_mut().enumerate() {
        if let Some(f) = &z.file {
            match zones::ZoneFile::read(c.file, f) {
                Ok(zf) => z.source = Some(zf),
                Err(m) => c.err(format!("zones[{i}].file"), m),
            }
        }
    }
}

fn check_rrl(c: &mut Checker, r: &RrlConfig) {
    if r.rate == 0 || r.rate > RRL_MAX_RATE {
        c.err(
            "dns.rrl.rate",
            format!("must be 1 to {RRL_MAX_RATE} responses per second"),
        );
    }
    if r.slip > RRL_MAX_SLIP {
        c.err(
            "dns.rrl.slip",
            format!("must be 0 (drop all) to {RRL_MAX_SLIP}"),
        );
    }
    if r.ipv4_prefix == 0 || r.ipv4_prefix > 32 {
        c.err("dns.rrl.ipv4_prefix", "must be 1 to 32");
    }
    if r.ipv6_prefix == 0 || r.ipv6_prefix > 128 {
        c.err("dns.rrl.ipv6_prefix", "must be 1 to 128");
    }
    if r.table_size == 0 || r.table_size > RRL_MAX_TABLE_SIZE {
        c.err(
            "dns.rrl.table_size",
            format!("must be 1 to {RRL_MAX_TABLE_SIZE}"),
        );
    }
    for (i, e) in r.exempt.iter().enumerate() {
        c.prefix(format!("dns.rrl.exempt[{i}]"), e);
    }
}

/// An `http://` or `https://` URL with a host, in printable ASCII.
pub(super) fn is_http_url(u: &str) -> bool {
    let rest = u
        .strip_prefix("http://")
        .or_else(|| u.strip_prefix("https://"));
    rest.is_some_and(|r| {
        !r.is_empty() && !r.starts_with(['/', ':']) && u.bytes().all(|b| b.is_ascii_graphic())
    })
}

fn check_http(c: &mut Checker, cfg: &RawConfig) {
    for (i, p) in cfg.http.trusted_proxies.iter().enumerate() {
        c.prefix(format!("http.trusted_proxies[{i}]"), p);
    }
    for (i, pop) in cfg.pops.iter().enumerate() {
        if let Some(u) = &pop.url {
            if !is_http_url(u) || u.contains(['?', '#']) {
                c.err(
                    format!("pops[{i}].url"),
                    format!("`{u}` is not an http:// or https:// base URL (printable ASCII, no spaces, no query or fragment)"),
                );
            }
        }
    }
    if !cfg.http.listen.is_empty() && cfg.pops.iter().all(|p| p.url.is_none()) {
        c.err(
            "http.listen",
            "the HTTP redirector needs a `url` on at least one POP",
        );
    }
}

/// Parse an octal file mode: "0600", "600" or "0o600".
pub(super) fn parse_mode(s: &str) -> Option<u32> {
    let s = s.trim();
    let digits = s.strip_prefix("0o").unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
        return None;
    }
    u32::from_str_radix(digits, 8).ok().filter(|&m| m <= 0o777)
}

/// The keys the POP pick and the operator state use: `pops[].min_up_fraction`,
/// `pops[].capacity.low` / `.high` and `admin.state_file` (`health.all_down`
/// is an enum: serde checks it).
fn check_availability(c: &mut Checker, cfg: &RawConfig) {
    for (i, pop) in cfg.pops.iter().enumerate() {
        let f = pop.min_up_fraction;
        if !(f.is_finite() && f > 0.0 && f <= 1.0) {
            c.err(
                format!("pops[{i}].min_up_fraction"),
                format!(
                    "must be above 0 and at most 1 (a fraction of the POP's addresses), not {f}"
                ),
            );
        }
        let cap = &pop.capacity;
        let (low, high) = (cap.low, cap.high);
        let fraction = |v: f64| v.is_finite() && (0.0..=1.0).contains(&v);
        if !fraction(low) {
            c.err(
                format!("pops[{i}].capacity.low"),
                format!("must be a load figure from 0 to 1, not {low}"),
            );
        }
        if !fraction(high) {
            c.err(
                format!("pops[{i}].capacity.high"),
                format!("must be a load figure from 0 to 1, not {high}"),
            );
        } else if fraction(low) && high < low {
            c.err(
                format!("pops[{i}].capacity.high"),
                format!("must not be below capacity.low ({low}), not {high}"),
            );
        }
    }
    let sf = &cfg.admin.state_file;
    if sf.trim().is_empty() {
        c.err("admin.state_file", "must not be empty");
    } else if sf.ends_with('/') {
        c.err(
            "admin.state_file",
            format!("`{sf}` names a directory; give a file"),
        );
    } else if sf == &cfg.admin.socket {
        c.err("admin.state_file", "must not be the admin socket's path");
    }
}
