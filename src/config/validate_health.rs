//! Semantic checks of `health` (the checks and their concurrency cap) and of
//! the load-source keys of `pops[].capacity` (url, file, interval, timeout,
//! smoothing, stale_after). Errors name file, line and key through the
//! shared [`Checker`].
//!
//! Called by `validate`; talks to `health_schema` (the types) only.

use super::health_schema::{CheckConfig, CheckKind};
use super::schema::RawConfig;
use super::validate::Checker;

/// The RCODE names a `dns` check may expect.
pub const RCODES: &[&str] = &[
    "NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED",
];

/// `interval` and `timeout` under `key`: positive and finite, timeout below interval.
fn timing(c: &mut Checker, key: &str, interval: f64, timeout: f64) {
    if !(interval.is_finite() && interval > 0.0) {
        c.err(
            format!("{key}.interval"),
            format!("must be a number of seconds above 0, not {interval}"),
        );
    }
    if !(timeout.is_finite() && timeout > 0.0) {
        c.err(
            format!("{key}.timeout"),
            format!("must be a number of seconds above 0, not {timeout}"),
        );
    } else if interval.is_finite() && interval > 0.0 && timeout >= interval {
        c.err(
            format!("{key}.timeout"),
            format!("must be below the interval ({timeout} >= {interval})"),
        );
    }
}

pub(super) fn check_health(c: &mut Checker, cfg: &RawConfig) {
    let h = &cfg.health;
    if h.concurrency < 1 {
        c.err("health.concurrency", "must be at least 1");
    }
    for (i, chk) in h.checks.iter().enumerate() {
        check_one(c, cfg, i, chk);
    }
    for (i, pop) in cfg.pops.iter().enumerate() {
        let cap = &pop.capacity;
        let key = format!("pops[{i}].capacity");
        if let Some(u) = &cap.url {
            if !super::validate::is_http_url(u) {
                c.err(
                    format!("{key}.url"),
                    format!("`{u}` is not an http:// or https:// URL with a host"),
                );
            }
            if cap.file.is_some() {
                c.err(
                    format!("{key}.file"),
                    "give either `url` or `file`, not both",
                );
            }
        }
        if cap.file.as_deref().is_some_and(|f| f.trim().is_empty()) {
            c.err(format!("{key}.file"), "must not be empty");
        }
        timing(c, &key, cap.interval, cap.timeout);
        if !(cap.smoothing > 0.0 && cap.smoothing <= 1.0) {
            c.err(
                format!("{key}.smoothing"),
                format!("must be above 0 and at most 1, not {}", cap.smoothing),
            );
        }
        if let Some(s) = cap.stale_after {
            if !(s.is_finite() && s > 0.0) {
                c.err(
                    format!("{key}.stale_after"),
                    format!("must be a number of seconds above 0, not {s}"),
                );
            }
        }
    }
}

fn check_one(c: &mut Checker, cfg: &RawConfig, i: usize, chk: &CheckConfig) {
    let key = format!("health.checks[{i}]");
    if chk.name.trim().is_empty() {
        c.err(format!("{key}.name"), "must not be empty");
    } else if let Some(j) = cfg.health.checks[..i]
        .iter()
        .position(|o| o.name == chk.name)
    {
        c.err(
            format!("{key}.name"),
            format!(
                "duplicate check name `{}` (also health.checks[{j}])",
                chk.name
            ),
        );
    }
    for (j, p) in chk.pops.iter().enumerate() {
        if !cfg.pops.iter().any(|q| q.name == *p) {
            let names: Vec<&str> = cfg.pops.iter().map(|q| q.name.as_str()).collect();
            c.err(
                format!("{key}.pops[{j}]"),
                format!(
                    "`{p}` is not one of the POPs in `pops` ({})",
                    names.join(", ")
                ),
            );
        }
    }
    timing(c, &key, chk.interval, chk.timeout);
    if chk.rise < 1 {
        c.err(format!("{key}.rise"), "must be at least 1");
    }
    if chk.fall < 1 {
        c.err(format!("{key}.fall"), "must be at least 1");
    }
    if !(0.0..1.0).contains(&chk.jitter) {
        c.err(
            format!("{key}.jitter"),
            format!("must be at least 0 and below 1, not {}", chk.jitter),
        );
    }
    if chk.port == Some(0) {
        c.err(format!("{key}.port"), "must not be 0");
    }
    let kind = chk.kind;
    let http = matches!(kind, CheckKind::Http | CheckKind::Https);
    // Keys that only one kind of check reads.
    let only: [(&str, bool, bool, &str); 11] = [
        (
            "port",
            chk.port.is_some(),
            kind != CheckKind::File,
            "network",
        ),
        ("path", chk.path.is_some(), http, "http/https"),
        ("host", chk.host.is_some(), http, "http/https"),
        ("body", chk.body.is_some(), http, "http/https"),
        ("status", chk.status != [200], http, "http/https"),
        (
            "tls_verify",
            chk.tls_verify,
            kind == CheckKind::Https,
            "https",
        ),
        ("qname", chk.qname.is_some(), kind == CheckKind::Dns, "dns"),
        ("qtype", chk.qtype.is_some(), kind == CheckKind::Dns, "dns"),
        ("rcode", chk.rcode.is_some(), kind == CheckKind::Dns, "dns"),
        (
            "answer",
            chk.answer.is_some(),
            kind == CheckKind::Dns,
            "dns",
        ),
        ("file", chk.file.is_some(), kind == CheckKind::File, "file"),
    ];
    for (k, present, allowed, which) in only {
        if present && !allowed {
            c.err(
                format!("{key}.{k}"),
                format!("only {which} checks read `{k}`"),
            );
        }
    }
    match kind {
        CheckKind::Tcp if chk.port.is_none() => {
            c.err(format!("{key}.port"), "a tcp check needs `port`")
        }
        CheckKind::Dns => {
            match chk.qname.as_deref() {
                None => c.err(format!("{key}.qname"), "a dns check needs `qname`"),
                Some(q) if q.is_empty() || q.len() > 253 || q.contains(char::is_whitespace) => c
                    .err(
                        format!("{key}.qname"),
                        format!("`{q}` is not a domain name"),
                    ),
                Some(_) => {}
            }
            if let Some(t) = &chk.qtype {
                if t.parse::<hickory_proto::rr::RecordType>().is_err()
                    && t.to_ascii_uppercase()
                        .parse::<hickory_proto::rr::RecordType>()
                        .is_err()
                {
                    c.err(
                        format!("{key}.qtype"),
                        format!("`{t}` is not a record type"),
                    );
                }
            }
            if let Some(r) = &chk.rcode {
                if !RCODES.contains(&r.to_ascii_uppercase().as_str()) {
                    c.err(
                        format!("{key}.rcode"),
                        format!("`{r}` is not one of {}", RCODES.join(", ")),
                    );
                }
            }
        }
        CheckKind::File if chk.file.as_deref().is_none_or(|f| f.trim().is_empty()) => {
            c.err(format!("{key}.file"), "a file check needs `file` (a path)")
        }
        CheckKind::Http | CheckKind::Https => {
            if let Some(p) = &chk.path {
                if !p.starts_with('/') || !p.bytes().all(|b| b.is_ascii_graphic()) {
                    c.err(
                        format!("{key}.path"),
                        format!("`{p}` must start with / (printable ASCII, no spaces)"),
                    );
                }
            }
            if let Some(h) = &chk.host {
                if h.is_empty() || !h.bytes().all(|b| b.is_ascii_graphic()) {
                    c.err(format!("{key}.host"), format!("`{h}` is not a host name"));
                }
            }
            if chk.status.is_empty() {
                c.err(
                    format!("{key}.status"),
                    "must list at least one status code",
                );
            }
            for (j, s) in chk.status.iter().enumerate() {
                if !(100..=599).contains(s) {
                    c.err(
                        format!("{key}.status[{j}]"),
                        format!("{s} is not an HTTP status (100-599)"),
                    );
                }
            }
        }
        _ => {}
    }
}
