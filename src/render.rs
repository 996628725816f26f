//! Text rendering of admin replies for `sparrowctl` (the JSON is the API; this
//! is for people): peers like BIRD's `show protocols`, routes like FRR's
//! `show ip bgp <prefix>`; POP state, drains and steering explanations as
//! small tables.
//!
//! Pure functions from the typed replies of `crate::admin::reply` (and the
//! reload `Report`) to `String`.

pub mod announce;

use std::fmt::{Display, Write};

use crate::admin::reply::{
    DrainReply, ExplainReply, ForceReply, HealthReply, LoadReply, PeersReply, PopsReply,
    RouteReply, SummaryReply,
};
use crate::pops::{Force, Reason};
use crate::reload::Report;

/// A value, or `-` when absent.
fn or_dash<T: Display>(v: Option<T>) -> String {
    v.map_or_else(|| "-".into(), |x| x.to_string())
}

fn duration(secs: Option<u64>) -> String {
    match secs {
        None => "-".into(),
        Some(t) if t >= 86400 => format!("{}d{:02}h", t / 86400, (t % 86400) / 3600),
        Some(t) => format!("{:02}:{:02}:{:02}", t / 3600, (t % 3600) / 60, t % 60),
    }
}

/// Left-aligned columns, each as wide as its widest cell, two spaces apart,
/// trailing spaces trimmed; every line prefixed with `indent`.
fn table(out: &mut String, indent: &str, header: &[&str], rows: &[Vec<String>]) {
    let mut width: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (w, c) in width.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut l = String::from(indent);
        for (c, w) in cells.zip(&width) {
            let _ = write!(l, "{c:<w$}  ");
        }
        let _ = writeln!(out, "{}", l.trim_end());
    };
    line(&mut header.iter().copied());
    for r in rows {
        line(&mut r.iter().map(String::as_str));
    }
}

fn yes_no(b: bool) -> String {
    if b { "yes" } else { "no" }.into()
}

/// `sparrowctl peers`.
pub fn peers(data: &PeersReply) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<16} {:<24} {:>10} {:<8} {:<12} {:>9} {:>5} {:>17} {:>17} {:>13}  Last error",
        "Peer",
        "Address",
        "AS",
        "Role",
        "State",
        "Up",
        "Flaps",
        "v4 rcvd/accepted",
        "v6 rcvd/accepted",
        "adv v4/v6"
    );
    for p in &data.peers {
        let _ = writeln!(
            out,
            "{:<16} {:<24} {:>10} {:<8} {:<12} {:>9} {:>5} {:>17} {:>17} {:>13}  {}",
            p.name,
            p.address,
            p.remote_asn,
            p.role,
            format!("{:?}", p.session.state),
            duration(p.uptime_secs),
            p.session.flaps,
            format!("{}/{}", p.routes.received.ipv4, p.routes.accepted.ipv4),
            format!("{}/{}", p.routes.received.ipv6, p.routes.accepted.ipv6),
            format!("{}/{}", p.advertised.ipv4, p.advertised.ipv6),
            or_dash(p.session.last_error.as_ref()),
        );
    }
    out
}

/// `sparrowctl route <ip|prefix>`.
pub fn route(data: &RouteReply) -> String {
    let mut out = String::new();
    let Some(prefix) = &data.prefix else {
        let _ = writeln!(out, "% Network not in table: {}", data.query);
        return out;
    };
    let paths = &data.paths;
    let best = paths.iter().position(|p| p.best);
    let _ = writeln!(out, "BGP routing table entry for {prefix}");
    let _ = writeln!(
        out,
        "Paths: ({} available{})",
        paths.len(),
        best.map(|b| format!(", best #{}", b + 1))
            .unwrap_or_default()
    );
    for p in paths {
        let _ = writeln!(
            out,
            "  {}",
            if p.as_path.is_empty() {
                "Local"
            } else {
                &p.as_path
            }
        );
        let _ = writeln!(
            out,
            "    {} from {} ({}) (router id {})",
            or_dash(p.next_hop.as_ref()),
            p.peer,
            p.peer_address,
            p.router_id
        );
        let mut flags = vec!["valid"];
        flags.push(if p.ebgp { "external" } else { "internal" });
        if p.stale {
            flags.push("stale");
        }
        if p.best {
            flags.push("best");
        }
        let _ = writeln!(
            out,
            "      Origin {}, metric {}, localpref {}, {}",
            p.origin.to_uppercase(),
            or_dash(p.med),
            p.local_pref,
            flags.join(", ")
        );
        for (list, label) in [
            (&p.communities, "Community"),
            (&p.large_communities, "Large Community"),
        ] {
            if !list.is_empty() {
                let _ = writeln!(out, "      {label}: {}", list.join(" "));
            }
        }
    }
    out
}

/// `sparrowctl summary`.
pub fn summary(data: &SummaryReply) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "sparrowd POP {} AS {} router id {}, up {}",
        data.pop,
        data.local_asn,
        data.router_id,
        duration(Some(data.uptime_secs))
    );
    let _ = writeln!(
        out,
        "Peers: {} configured, {} established",
        data.peers.configured, data.peers.established
    );
    let r = &data.rib;
    let _ = writeln!(
        out,
        "IPv4: {} prefixes, {} paths",
        r.prefixes.ipv4, r.paths.ipv4
    );
    let _ = writeln!(
        out,
        "IPv6: {} prefixes, {} paths",
        r.prefixes.ipv6, r.paths.ipv6
    );
    let _ = writeln!(out, "Attribute sets: {}", r.attr_sets);
    let st = &data.steering;
    let _ = writeln!(
        out,
        "Steering: generation {}, from {} (IPv4) / {} (IPv6), {} + {} leaves in {} + {} nodes, {} rankings, {:.1} MiB",
        st.generation,
        st.source_v4.as_str(),
        st.source_v6.as_str(),
        st.stats.leaves_v4,
        st.stats.leaves_v6,
        st.stats.nodes_v4,
        st.stats.nodes_v6,
        st.stats.rankings,
        st.stats.bytes as f64 / (1u64 << 20) as f64
    );
    for (k, v) in r.memory.entries() {
        let mb = v as f64 / 1048576.0;
        let _ = writeln!(out, "Memory {k}: {mb:.1} MiB");
    }
    out
}

/// `sparrowctl explain`.
pub fn explain(data: &ExplainReply) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "Address:    {}", data.address);
    let _ = writeln!(
        out,
        "Snapshot:   generation {}, source {}, matched {} (answer scope /{})",
        data.generation,
        data.source.as_str(),
        or_dash(data.prefix.as_ref()),
        data.scope
    );
    let ranking = if data.ranking_state.is_empty() {
        data.ranking.join(" > ")
    } else {
        data.ranking_state
            .iter()
            .map(|p| {
                let mut marks = Vec::new();
                if !p.up {
                    marks.push("down");
                }
                if p.drained {
                    marks.push("drained");
                }
                let pop = or_dash(p.pop.as_ref());
                if marks.is_empty() {
                    pop
                } else {
                    format!("{pop} [{}]", marks.join(", "))
                }
            })
            .collect::<Vec<_>>()
            .join(" > ")
    };
    let _ = writeln!(out, "Ranking:    {ranking}");
    let _ = writeln!(out, "RIB match:  {}", or_dash(data.rib_prefix.as_ref()));
    match &data.best_path {
        Some(b) => {
            let _ = writeln!(
                out,
                "Best path:  {} (from {}, next hop {})",
                b.as_path,
                b.peer,
                or_dash(b.next_hop.as_ref())
            );
        }
        None => {
            let _ = writeln!(out, "Best path:  none");
        }
    }
    let rule = if data.rule.is_empty() {
        "-"
    } else {
        &data.rule
    };
    let _ = writeln!(out, "Rule:       {rule}");
    answers(&mut out, &data.answers);
    out
}

/// The `answers` part of `explain`: what each steered name answers.
fn answers(out: &mut String, list: &[crate::dns::SteeredAnswer]) {
    if list.is_empty() {
        let _ = writeln!(out, "Answers:    no steered names configured");
        return;
    }
    let _ = writeln!(out, "Answers:");
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|a| {
            let addrs: Vec<String> = a.addresses.iter().map(|x| x.to_string()).collect();
            let skipped: Vec<String> = a
                .skipped
                .iter()
                .map(|(pop, why)| format!("{pop}: {why}"))
                .collect();
            vec![
                match &a.wildcard {
                    Some(w) => format!("{} ({w})", a.name),
                    None => a.name.clone(),
                },
                a.rtype.clone(),
                a.pop.clone().unwrap_or_else(|| "none".into()),
                match a.reason {
                    Some(Reason::Closest) => "closest".into(),
                    Some(Reason::Failover) => "failover".into(),
                    Some(Reason::Shed) => "shed".into(),
                    Some(Reason::AllDown) if a.pop.is_some() => "all down".into(),
                    Some(Reason::AllDown) => "all down: NODATA".into(),
                    None => "-".into(),
                },
                a.ttl.to_string(),
                if addrs.is_empty() {
                    "(no records)".into()
                } else {
                    addrs.join(" ")
                },
                if skipped.is_empty() {
                    "-".into()
                } else {
                    skipped.join("; ")
                },
            ]
        })
        .collect();
    table(
        out,
        "  ",
        &[
            "Name",
            "Type",
            "POP",
            "Why",
            "TTL",
            "Addresses",
            "Passed over",
        ],
        &rows,
    );
}

/// `sparrowctl pops`.
pub fn pops(data: &PopsReply) -> String {
    let mut out = String::new();
    let rows: Vec<Vec<String>> = data
        .pops
        .iter()
        .map(|p| {
            let forced = match p.forced {
                Force::Auto => "-".to_string(),
                Force::Up => "up".into(),
                Force::Down => "down".into(),
            };
            let load = match p.manual_load {
                Some(l) => format!("{l:.2} (manual)"),
                None => format!("{:.2}", p.load),
            };
            vec![
                p.name.clone(),
                or_dash(p.asn),
                yes_no(p.local),
                yes_no(p.up),
                forced,
                yes_no(p.drained),
                load,
                format!("{:.2}-{:.2}", p.low, p.high),
                yes_no(p.usable),
            ]
        })
        .collect();
    table(
        &mut out,
        "",
        &[
            "POP", "ASN", "Local", "Up", "Forced", "Drained", "Load", "Low-High", "Answers",
        ],
        &rows,
    );
    for p in &data.pops {
        for (addr, f) in &p.forced_addresses {
            let _ = writeln!(out, "{}/{addr} forced {}", p.name, force_word(*f));
        }
    }
    out
}

fn force_word(f: Force) -> &'static str {
    match f {
        Force::Auto => "auto",
        Force::Up => "up",
        Force::Down => "down",
    }
}

/// The state-file part of an operator command's reply.
fn saved_note(out: &mut String, saved: bool, err: &Option<String>) {
    if let (false, Some(e)) = (saved, err) {
        let _ = writeln!(
            out,
            "warning: not saved ({e}): the change is lost at the next restart"
        );
    }
}

/// `sparrowctl force`: the new forced state and the one before.
pub fn force(data: &ForceReply) -> String {
    let target = match &data.address {
        Some(a) => format!("{}/{a}", data.pop),
        None => format!("POP {}", data.pop),
    };
    let mut out = format!(
        "{target}: forced {} (was {}{})\n",
        force_word(data.state),
        if data.changed { "" } else { "already " },
        force_word(data.was)
    );
    let _ = writeln!(
        out,
        "POP {} is {}{}",
        data.pop,
        if data.up { "up" } else { "down" },
        if data.usable {
            ""
        } else {
            ", not used for answers"
        }
    );
    saved_note(&mut out, data.saved, &data.save_error);
    out
}

/// `sparrowctl load`: the operator's figure, the one before, the one in use.
pub fn load(data: &LoadReply) -> String {
    let show = |v: Option<f64>| v.map_or("auto".to_string(), |l| format!("{l:.2}"));
    let mut out = format!(
        "POP {}: load {} (was {}); in use {:.2}, low {:.2}, high {:.2}",
        data.pop,
        show(data.manual),
        show(data.was),
        data.load,
        data.low,
        data.high
    );
    if data.load >= data.high {
        out.push_str(": drained by load");
    } else if data.load >= data.low {
        let f = crate::pops::shed_fraction(data.load, data.low, data.high);
        let _ = write!(out, ": shedding {:.0}% of its clients", f * 100.0);
    }
    out.push('\n');
    saved_note(&mut out, data.saved, &data.save_error);
    out
}

/// `sparrowctl health`: one row per (target, check), then the load figures.
pub fn health(data: &HealthReply) -> String {
    let force = |f: crate::pops::Force| match f {
        crate::pops::Force::Auto => "-".to_string(),
        crate::pops::Force::Up => "up".into(),
        crate::pops::Force::Down => "down".into(),
    };
    let mut out = String::new();
    let mut rows = Vec::new();
    for t in &data.targets {
        let target = vec![
            t.pop.clone(),
            t.address.clone(),
            if t.up { "up" } else { "down" }.into(),
            format!(
                "{}{}",
                force(t.forced),
                if t.pop_forced == crate::pops::Force::Auto {
                    String::new()
                } else {
                    format!(" (POP {})", force(t.pop_forced))
                }
            ),
        ];
        if t.checks.is_empty() {
            rows.push([target.clone(), vec!["-".into(); 4]].concat());
        }
        for (i, c) in t.checks.iter().enumerate() {
            let lead = if i == 0 {
                target.clone()
            } else {
                vec![String::new(); 4]
            };
            rows.push(
                [
                    lead,
                    vec![
                        format!("{} ({})", c.name, c.kind),
                        or_dash(c.last.as_deref()),
                        format!("{} x{}", or_dash(c.state.as_deref()), c.consecutive),
                        c.since_change_secs
                            .map_or_else(|| "-".into(), |s| format!("{s:.1}s")),
                    ],
                ]
                .concat(),
            );
        }
    }
    if rows.is_empty() {
        out.push_str("no health checks configured\n");
    } else {
        table(
            &mut out,
            "",
            &[
                "POP",
                "Target",
                "State",
                "Forced",
                "Check",
                "Last",
                "Check state",
                "Since change",
            ],
            &rows,
        );
    }
    let fig = |v: Option<f64>| v.map_or_else(|| "-".into(), |v| format!("{v:.3}"));
    let rows: Vec<Vec<String>> = data
        .loads
        .iter()
        .map(|l| {
            vec![
                l.pop.clone(),
                format!("{:.3}", l.load),
                fig(l.manual),
                fig(l.measured),
                l.age_secs
                    .map_or_else(|| "-".into(), |a| format!("{a:.1}s")),
                format!("{:.2}-{:.2}", l.low, l.high),
                match (&l.source, &l.error) {
                    (None, _) => "-".into(),
                    (Some(s), None) => s.clone(),
                    (Some(s), Some(e)) => format!("{s} (error: {e})"),
                },
            ]
        })
        .collect();
    out.push('\n');
    table(
        &mut out,
        "",
        &[
            "POP", "Load", "Manual", "Measured", "Age", "Low-high", "Source",
        ],
        &rows,
    );
    out
}

/// `sparrowctl drain|undrain`: the new state and the one before.
pub fn drain(data: &DrainReply) -> String {
    let state = |d: bool| if d { "drained" } else { "not drained" };
    let mut out = format!(
        "POP {}: {} (was {}{})\n",
        data.pop,
        state(data.drained),
        if data.changed { "" } else { "already " },
        state(data.was_drained),
    );
    if !data.up {
        let _ = writeln!(out, "note: POP {} is down", data.pop);
    }
    saved_note(&mut out, data.saved, &data.save_error);
    out
}

/// `sparrowctl reload`.
pub fn reload(v: &Report) -> String {
    let list = |items: &[std::borrow::Cow<'static, str>]| {
        if items.is_empty() {
            "nothing".to_string()
        } else {
            items.join(", ")
        }
    };
    format!(
        "reloaded {}: applied {}; {} zone(s)\nneeds a restart: {}\n",
        v.file,
        list(&v.applied),
        v.zones,
        list(&v.needs_restart)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    /// A reply as a client reads it from the socket's JSON.
    fn typed<T: serde::de::DeserializeOwned>(v: Value) -> T {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn route_marks_best_and_not_found() {
        let v = json!({"query":"10.0.0.1","prefix":"10.0.0.0/8","paths":[
            {"peer":"a","peer_address":"192.0.2.1","best":true,"as_path":"1 2","origin":"igp","next_hop":"192.0.2.1","local_pref":100,"med":null,"ebgp":true,"router_id":"1.1.1.1","communities":["1:2"]},
            {"peer":"b","peer_address":"192.0.2.2","best":false,"as_path":"3 4 5","origin":"igp","next_hop":"192.0.2.2","local_pref":100,"med":5,"ebgp":true,"router_id":"2.2.2.2"}]});
        let t = route(&typed(v));
        assert!(t.contains("BGP routing table entry for 10.0.0.0/8"));
        assert!(t.contains("Paths: (2 available, best #1)"));
        assert!(t.contains("Community: 1:2"));
        assert_eq!(t.matches(", best").count(), 2); // header + one path
        let t = route(&typed(json!({"query":"10.0.0.1","prefix":null,"paths":[]})));
        assert!(t.contains("Network not in table"));
    }

    #[test]
    fn explain_shows_rule_and_ranking() {
        let v = json!({"address":"192.0.2.1","generation":7,"source":"rib","prefix":"192.0.2.0/24","scope":24,
            "ranking":["y","x"],"rib_prefix":"192.0.2.0/24",
            "best_path":{"peer":"pop-y","as_path":"65002 64500","next_hop":"10.0.0.2"},
            "rule":"POP ASN 65002 (y) is the last POP ASN in the best path, at position 0 of 2"});
        let t = explain(&typed(v));
        assert!(t.contains("Ranking:    y > x"));
        assert!(t.contains("generation 7"));
        assert!(t.contains("65002 64500"));
        assert!(t.contains("position 0 of 2"));
    }

    #[test]
    fn explain_marks_down_and_drained_pops() {
        let v = json!({"address":"192.0.2.1","ranking":["y","x","z"],
            "ranking_state":[{"pop":"y","up":true,"drained":true},{"pop":"x","up":true,"drained":false},
                             {"pop":"z","up":false,"drained":true}]});
        let t = explain(&typed(v));
        assert!(
            t.contains("Ranking:    y [drained] > x > z [down, drained]"),
            "{t}"
        );
    }

    #[test]
    fn explain_without_steered_names() {
        for v in [
            json!({"address":"192.0.2.1","answers":[]}),
            json!({"address":"192.0.2.1"}),
        ] {
            let t = explain(&typed(v));
            assert!(t.contains("Answers:    no steered names configured"), "{t}");
        }
    }

    #[test]
    fn explain_answers_table_from_steered_answers() {
        use crate::dns::SteeredAnswer;
        let answers = vec![
            SteeredAnswer {
                name: "www.example.net.".into(),
                rtype: "A".into(),
                pop: Some("x".into()),
                addresses: vec!["192.0.2.20".parse().unwrap(), "192.0.2.21".parse().unwrap()],
                ttl: 30,
                skipped: vec![("y".into(), "drained".into()), ("z".into(), "down".into())],
                ..SteeredAnswer::default()
            },
            SteeredAnswer {
                name: "www.example.net.".into(),
                rtype: "AAAA".into(),
                pop: None,
                addresses: vec![],
                ttl: 30,
                skipped: vec![("y".into(), "no records".into())],
                ..SteeredAnswer::default()
            },
            SteeredAnswer {
                name: "cdn.example.net.".into(),
                rtype: "AAAA".into(),
                pop: Some("y".into()),
                addresses: vec!["2001:db8::1".parse().unwrap()],
                ttl: 300,
                skipped: vec![],
                ..SteeredAnswer::default()
            },
        ];
        let v = json!({"address":"192.0.2.1","ranking":["y","x"],
            "answers": serde_json::to_value(&answers).unwrap()});
        let t = explain(&typed(v));
        let lines: Vec<&str> = t.lines().collect();
        let at = lines.iter().position(|l| *l == "Answers:").expect(&t);
        let header = lines[at + 1];
        assert!(header.starts_with("  Name"), "{t}");
        let col = |h: &str| header.find(h).unwrap();
        let row = |i: usize| lines[at + 2 + i];
        // Columns line up under their headers.
        let cell = |i: usize, h: &str| row(i)[col(h)..].split_whitespace().next();
        assert_eq!(
            [cell(0, "Type"), cell(1, "Type"), cell(2, "Type")],
            [Some("A"), Some("AAAA"), Some("AAAA")]
        );
        assert!(row(0).contains("192.0.2.20 192.0.2.21"), "{t}");
        assert!(row(0).contains("y: drained; z: down"), "{t}");
        assert_eq!(cell(0, "POP"), Some("x"));
        assert_eq!(cell(0, "TTL"), Some("30"));
        assert_eq!(cell(2, "TTL"), Some("300"));
        assert_eq!(cell(1, "POP"), Some("none"));
        assert!(row(1).contains("(no records)") && row(1).contains("y: no records"));
        assert!(row(2).contains("2001:db8::1") && row(2).trim_end().ends_with('-'));
        assert_eq!(lines.len(), at + 5, "{t}");
    }

    #[test]
    fn pops_table_and_drain_reply() {
        let v = json!({"pops":[
            {"name":"x","asn":65001,"local":true,"up":true,"drained":false,"usable":true,"low":0.8,"high":1.0},
            {"name":"yy","asn":65002,"local":false,"up":true,"drained":true,"low":0.8,"high":1.0,"load":0.5},
            {"name":"z","asn":65003,"local":false,"up":false,"drained":false,"forced":"down","manual_load":0.9,"load":0.9,
             "low":0.7,"high":0.95,"forced_addresses":[["192.0.2.1","up"]]}]});
        let t = pops(&typed(v));
        let lines: Vec<Vec<&str>> = t.lines().map(|l| l.split_whitespace().collect()).collect();
        assert_eq!(
            lines[0],
            ["POP", "ASN", "Local", "Up", "Forced", "Drained", "Load", "Low-High", "Answers"]
        );
        assert_eq!(
            lines[1],
            [
                "x",
                "65001",
                "yes",
                "yes",
                "-",
                "no",
                "0.00",
                "0.80-1.00",
                "yes"
            ]
        );
        assert_eq!(
            lines[2],
            [
                "yy",
                "65002",
                "no",
                "yes",
                "-",
                "yes",
                "0.50",
                "0.80-1.00",
                "no"
            ]
        );
        assert_eq!(
            lines[3],
            [
                "z",
                "65003",
                "no",
                "no",
                "down",
                "no",
                "0.90",
                "(manual)",
                "0.70-0.95",
                "no"
            ]
        );
        assert_eq!(lines[4], ["z/192.0.2.1", "forced", "up"]);
        let t = force(&typed(
            json!({"pop":"y","state":"down","was":"auto","changed":true,
            "up":false,"usable":false,"saved":false,"save_error":"state file /x: denied"}),
        ));
        assert!(t.starts_with("POP y: forced down (was auto)\nPOP y is down, not used for answers\nwarning: not saved (state file /x: denied)"), "{t}");
        let t = load(&typed(
            json!({"pop":"x","manual":0.9,"was":null,"load":0.9,"low":0.8,"high":1.0,"saved":true}),
        ));
        assert_eq!(t, "POP x: load 0.90 (was auto); in use 0.90, low 0.80, high 1.00: shedding 50% of its clients\n");
        let t = drain(&typed(
            json!({"pop":"x","was_drained":false,"drained":true,"changed":true,"up":true}),
        ));
        assert_eq!(t, "POP x: drained (was not drained)\n");
        let t = drain(&typed(
            json!({"pop":"x","was_drained":false,"drained":false,"changed":false,"up":false}),
        ));
        assert_eq!(
            t,
            "POP x: not drained (was already not drained)\nnote: POP x is down\n"
        );
    }

    #[test]
    fn peers_table_has_counts() {
        let v = json!({"peers":[{"name":"up1","address":"192.0.2.1","remote_asn":64500,"role":"upstream","state":"Established","uptime_secs":3661,
            "received":{"ipv4":10,"ipv6":2},"accepted":{"ipv4":9,"ipv6":2},"last_error":null,
            "advertised":{"ipv4":1,"ipv6":3},"flaps":7}]});
        let t = peers(&typed(v));
        assert!(t.contains("up1"));
        assert!(t.contains("10/9"));
        assert!(t.contains(" 1/3 "), "{t}");
        assert!(t.contains("    7 "), "{t}");
        assert!(t.contains("01:01:01"));
    }
}
