//! Text rendering of admin replies for `sparrowctl` (the JSON is the API; this
//! is for people): peers like BIRD's `show protocols`, routes like FRR's
//! `show ip bgp <prefix>`; POP state, drains and steering explanations as
//! small tables.
//!
//! Pure functions from `serde_json::Value` to `String`.

use std::fmt::Write;

use serde_json::Value;

fn s(v: &Value, k: &str) -> String {
    match v.get(k) {
        Some(Value::String(x)) => x.clone(),
        Some(Value::Null) | None => "-".into(),
        Some(x) => x.to_string(),
    }
}

fn n(v: &Value, a: &str, b: &str) -> String {
    v.get(a)
        .and_then(|x| x.get(b))
        .map(|x| x.to_string())
        .unwrap_or_else(|| "0".into())
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

fn flag(v: &Value, k: &str) -> bool {
    v.get(k).and_then(|x| x.as_bool()) == Some(true)
}

fn yes_no(b: bool) -> String {
    if b { "yes" } else { "no" }.into()
}

/// `sparrowctl peers`.
pub fn peers(data: &Value) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<16} {:<24} {:>10} {:<8} {:<12} {:>9} {:>17} {:>17}  Last error",
        "Peer", "Address", "AS", "Role", "State", "Up", "v4 rcvd/accepted", "v6 rcvd/accepted"
    );
    for p in data
        .get("peers")
        .and_then(|p| p.as_array())
        .into_iter()
        .flatten()
    {
        let _ = writeln!(
            out,
            "{:<16} {:<24} {:>10} {:<8} {:<12} {:>9} {:>17} {:>17}  {}",
            s(p, "name"),
            s(p, "address"),
            s(p, "remote_asn"),
            s(p, "role"),
            s(p, "state"),
            duration(p.get("uptime_secs").and_then(|x| x.as_u64())),
            format!("{}/{}", n(p, "received", "ipv4"), n(p, "accepted", "ipv4")),
            format!("{}/{}", n(p, "received", "ipv6"), n(p, "accepted", "ipv6")),
            s(p, "last_error"),
        );
    }
    out
}

/// `sparrowctl route <ip|prefix>`.
pub fn route(data: &Value) -> String {
    let mut out = String::new();
    let prefix = match data.get("prefix") {
        Some(Value::String(p)) => p.clone(),
        _ => {
            let _ = writeln!(out, "% Network not in table: {}", s(data, "query"));
            return out;
        }
    };
    let paths = data
        .get("paths")
        .and_then(|p| p.as_array())
        .cloned()
        .unwrap_or_default();
    let best = paths
        .iter()
        .position(|p| p.get("best").and_then(|b| b.as_bool()) == Some(true));
    let _ = writeln!(out, "BGP routing table entry for {prefix}");
    let _ = writeln!(
        out,
        "Paths: ({} available{})",
        paths.len(),
        best.map(|b| format!(", best #{}", b + 1))
            .unwrap_or_default()
    );
    for p in &paths {
        let path = s(p, "as_path");
        let _ = writeln!(
            out,
            "  {}",
            if path.is_empty() {
                "Local".into()
            } else {
                path
            }
        );
        let _ = writeln!(
            out,
            "    {} from {} ({}) (router id {})",
            s(p, "next_hop"),
            s(p, "peer"),
            s(p, "peer_address"),
            s(p, "router_id")
        );
        let mut flags = vec!["valid"];
        flags.push(if p.get("ebgp").and_then(|x| x.as_bool()) == Some(false) {
            "internal"
        } else {
            "external"
        });
        if p.get("stale").and_then(|x| x.as_bool()) == Some(true) {
            flags.push("stale");
        }
        if p.get("best").and_then(|x| x.as_bool()) == Some(true) {
            flags.push("best");
        }
        let _ = writeln!(
            out,
            "      Origin {}, metric {}, localpref {}, {}",
            s(p, "origin").to_uppercase(),
            s(p, "med"),
            s(p, "local_pref"),
            flags.join(", ")
        );
        for (k, label) in [
            ("communities", "Community"),
            ("large_communities", "Large Community"),
        ] {
            if let Some(c) = p
                .get(k)
                .and_then(|c| c.as_array())
                .filter(|c| !c.is_empty())
            {
                let list: Vec<String> = c
                    .iter()
                    .map(|x| {
                        x.as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| x.to_string())
                    })
                    .collect();
                let _ = writeln!(out, "      {label}: {}", list.join(" "));
            }
        }
    }
    out
}

/// `sparrowctl summary`.
pub fn summary(data: &Value) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "sparrowd POP {} AS {} router id {}, up {}",
        s(data, "pop"),
        s(data, "local_asn"),
        s(data, "router_id"),
        duration(data.get("uptime_secs").and_then(|x| x.as_u64()))
    );
    let _ = writeln!(
        out,
        "Peers: {} configured, {} established",
        n(data, "peers", "configured"),
        n(data, "peers", "established")
    );
    let _ = writeln!(
        out,
        "IPv4: {} prefixes, {} paths",
        n(data, "prefixes", "ipv4"),
        n(data, "paths", "ipv4")
    );
    let _ = writeln!(
        out,
        "IPv6: {} prefixes, {} paths",
        n(data, "prefixes", "ipv6"),
        n(data, "paths", "ipv6")
    );
    let _ = writeln!(out, "Attribute sets: {}", s(data, "attr_sets"));
    if let Some(st) = data.get("steering") {
        let st_n = |k: &str| st["stats"][k].as_u64().unwrap_or(0);
        let _ = writeln!(
            out,
            "Steering: generation {}, from {} (IPv4) / {} (IPv6), {} + {} ranges, {} rankings, {:.1} MiB",
            st["generation"],
            st["source_v4"].as_str().unwrap_or("?"),
            st["source_v6"].as_str().unwrap_or("?"),
            st_n("ranges_v4"),
            st_n("ranges_v6"),
            st_n("rankings"),
            st_n("bytes") as f64 / (1u64 << 20) as f64
        );
    }
    if let Some(m) = data.get("memory").and_then(|m| m.as_object()) {
        for (k, v) in m {
            let mb = v.as_f64().map(|b| b / 1048576.0).unwrap_or(0.0);
            let _ = writeln!(out, "Memory {k}: {mb:.1} MiB");
        }
    }
    out
}

/// `sparrowctl explain`.
pub fn explain(data: &Value) -> String {
    let mut out = String::new();
    let list = |k: &str| -> String {
        data.get(k)
            .and_then(|r| r.as_array())
            .map(|r| {
                r.iter()
                    .filter_map(|x| x.as_str())
                    .collect::<Vec<_>>()
                    .join(" > ")
            })
            .unwrap_or_default()
    };
    let _ = writeln!(out, "Address:    {}", s(data, "address"));
    let _ = writeln!(
        out,
        "Snapshot:   generation {}, source {}, matched {} (answer scope /{})",
        s(data, "generation"),
        s(data, "source"),
        s(data, "prefix"),
        s(data, "scope")
    );
    let ranking = match data.get("ranking_state").and_then(|r| r.as_array()) {
        Some(st) if !st.is_empty() => st
            .iter()
            .map(|p| {
                let mut marks = Vec::new();
                if !flag(p, "up") {
                    marks.push("down");
                }
                if flag(p, "drained") {
                    marks.push("drained");
                }
                if marks.is_empty() {
                    s(p, "pop")
                } else {
                    format!("{} [{}]", s(p, "pop"), marks.join(", "))
                }
            })
            .collect::<Vec<_>>()
            .join(" > "),
        _ => list("ranking"),
    };
    let _ = writeln!(out, "Ranking:    {ranking}");
    let _ = writeln!(out, "RIB match:  {}", s(data, "rib_prefix"));
    match data.get("best_path") {
        Some(b) if !b.is_null() => {
            let _ = writeln!(
                out,
                "Best path:  {} (from {}, next hop {})",
                s(b, "as_path"),
                s(b, "peer"),
                s(b, "next_hop")
            );
        }
        _ => {
            let _ = writeln!(out, "Best path:  none");
        }
    }
    let _ = writeln!(out, "Rule:       {}", s(data, "rule"));
    answers(&mut out, data.get("answers"));
    out
}

/// The `answers` part of `explain`: what each steered name answers.
fn answers(out: &mut String, answers: Option<&Value>) {
    let list = answers.and_then(|a| a.as_array()).filter(|a| !a.is_empty());
    let Some(list) = list else {
        let _ = writeln!(out, "Answers:    no steered names configured");
        return;
    };
    let _ = writeln!(out, "Answers:");
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|a| {
            let addrs: Vec<String> = a
                .get("addresses")
                .and_then(|x| x.as_array())
                .into_iter()
                .flatten()
                .map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_string))
                .collect();
            let skipped: Vec<String> = a
                .get("skipped")
                .and_then(|x| x.as_array())
                .into_iter()
                .flatten()
                .map(|x| match x.as_array().map(Vec::as_slice) {
                    Some([pop, why]) => format!(
                        "{} ({})",
                        pop.as_str().unwrap_or("?"),
                        why.as_str().unwrap_or("?")
                    ),
                    _ => x.to_string(),
                })
                .collect();
            let pop = match a.get("pop") {
                Some(Value::String(p)) => p.clone(),
                _ => "none".into(),
            };
            vec![
                s(a, "name"),
                s(a, "rtype"),
                pop,
                s(a, "ttl"),
                if addrs.is_empty() {
                    "(no records)".into()
                } else {
                    addrs.join(" ")
                },
                if skipped.is_empty() {
                    "-".into()
                } else {
                    skipped.join(", ")
                },
            ]
        })
        .collect();
    table(
        out,
        "  ",
        &["Name", "Type", "POP", "TTL", "Addresses", "Skipped"],
        &rows,
    );
}

/// `sparrowctl pops`.
pub fn pops(data: &Value) -> String {
    let mut out = String::new();
    let rows: Vec<Vec<String>> = data
        .get("pops")
        .and_then(|p| p.as_array())
        .into_iter()
        .flatten()
        .map(|p| {
            vec![
                s(p, "name"),
                s(p, "asn"),
                yes_no(flag(p, "local")),
                yes_no(flag(p, "up")),
                yes_no(flag(p, "drained")),
                yes_no(flag(p, "up") && !flag(p, "drained")),
            ]
        })
        .collect();
    table(
        &mut out,
        "",
        &["POP", "ASN", "Local", "Up", "Drained", "Answers"],
        &rows,
    );
    out
}

/// `sparrowctl drain|undrain`: the new state and the one before.
pub fn drain(data: &Value) -> String {
    let state = |k: &str| {
        if flag(data, k) {
            "drained"
        } else {
            "not drained"
        }
    };
    let mut out = format!(
        "POP {}: {} (was {}{})\n",
        s(data, "pop"),
        state("drained"),
        if flag(data, "changed") {
            ""
        } else {
            "already "
        },
        state("was_drained"),
    );
    if data.get("up").is_some() && !flag(data, "up") {
        let _ = writeln!(out, "note: POP {} is down", s(data, "pop"));
    }
    out
}

/// `sparrowctl reload`.
pub fn reload(v: &Value) -> String {
    let list = |k: &str| {
        let items: Vec<&str> = v[k]
            .as_array()
            .map(|a| a.iter().filter_map(|x| x.as_str()).collect())
            .unwrap_or_default();
        if items.is_empty() {
            "nothing".to_string()
        } else {
            items.join(", ")
        }
    };
    format!(
        "reloaded {}: applied {}; {} zone(s)\nneeds a restart: {}\n",
        v["file"].as_str().unwrap_or("?"),
        list("applied"),
        v["zones"],
        list("needs_restart")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn route_marks_best_and_not_found() {
        let v = json!({"query":"10.0.0.1","prefix":"10.0.0.0/8","paths":[
            {"peer":"a","peer_address":"192.0.2.1","best":true,"as_path":"1 2","origin":"igp","next_hop":"192.0.2.1","local_pref":100,"med":null,"ebgp":true,"router_id":"1.1.1.1","communities":["1:2"]},
            {"peer":"b","peer_address":"192.0.2.2","best":false,"as_path":"3 4 5","origin":"igp","next_hop":"192.0.2.2","local_pref":100,"med":5,"ebgp":true,"router_id":"2.2.2.2"}]});
        let t = route(&v);
        assert!(t.contains("BGP routing table entry for 10.0.0.0/8"));
        assert!(t.contains("Paths: (2 available, best #1)"));
        assert!(t.contains("Community: 1:2"));
        assert_eq!(t.matches(", best").count(), 2); // header + one path
        let t = route(&json!({"query":"10.0.0.1","prefix":null,"paths":[]}));
        assert!(t.contains("Network not in table"));
    }

    #[test]
    fn explain_shows_rule_and_ranking() {
        let v = json!({"address":"192.0.2.1","generation":7,"source":"rib","prefix":"192.0.2.0/24","scope":24,
            "ranking":["y","x"],"rib_prefix":"192.0.2.0/24",
            "best_path":{"peer":"pop-y","as_path":"65002 64500","next_hop":"10.0.0.2"},
            "rule":"POP ASN 65002 (y) is the last POP ASN in the best path, at position 0 of 2"});
        let t = explain(&v);
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
        let t = explain(&v);
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
            let t = explain(&v);
            assert!(t.contains("Answers:    no steered names configured"), "{t}");
        }
    }

    #[test]
    fn explain_answers_table_from_steered_answers() {
        use crate::dns::SteeredAnswer;
        let answers = vec![
            SteeredAnswer {
                name: "www.example.net.".into(),
                rtype: "A",
                pop: Some("x".into()),
                addresses: vec!["192.0.2.20".parse().unwrap(), "192.0.2.21".parse().unwrap()],
                ttl: 30,
                skipped: vec![("y".into(), "drained"), ("z".into(), "down")],
            },
            SteeredAnswer {
                name: "www.example.net.".into(),
                rtype: "AAAA",
                pop: None,
                addresses: vec![],
                ttl: 30,
                skipped: vec![("y".into(), "no records")],
            },
            SteeredAnswer {
                name: "cdn.example.net.".into(),
                rtype: "AAAA",
                pop: Some("y".into()),
                addresses: vec!["2001:db8::1".parse().unwrap()],
                ttl: 300,
                skipped: vec![],
            },
        ];
        let v = json!({"address":"192.0.2.1","ranking":["y","x"],
            "answers": serde_json::to_value(&answers).unwrap()});
        let t = explain(&v);
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
        assert!(row(0).contains("y (drained), z (down)"), "{t}");
        assert_eq!(cell(0, "POP"), Some("x"));
        assert_eq!(cell(0, "TTL"), Some("30"));
        assert_eq!(cell(2, "TTL"), Some("300"));
        assert_eq!(cell(1, "POP"), Some("none"));
        assert!(row(1).contains("(no records)") && row(1).contains("y (no records)"));
        assert!(row(2).contains("2001:db8::1") && row(2).trim_end().ends_with('-'));
        assert_eq!(lines.len(), at + 5, "{t}");
    }

    #[test]
    fn pops_table_and_drain_reply() {
        let v = json!({"pops":[
            {"name":"x","asn":65001,"local":true,"up":true,"drained":false},
            {"name":"yy","asn":65002,"local":false,"up":true,"drained":true},
            {"name":"z","asn":65003,"local":false,"up":false,"drained":false}]});
        let t = pops(&v);
        let lines: Vec<Vec<&str>> = t.lines().map(|l| l.split_whitespace().collect()).collect();
        assert_eq!(
            lines[0],
            ["POP", "ASN", "Local", "Up", "Drained", "Answers"]
        );
        assert_eq!(lines[1], ["x", "65001", "yes", "yes", "no", "yes"]);
        assert_eq!(lines[2], ["yy", "65002", "no", "yes", "yes", "no"]);
        assert_eq!(lines[3], ["z", "65003", "no", "no", "no", "no"]);
        let t =
            drain(&json!({"pop":"x","was_drained":false,"drained":true,"changed":true,"up":true}));
        assert_eq!(t, "POP x: drained (was not drained)\n");
        let t = drain(
            &json!({"pop":"x","was_drained":false,"drained":false,"changed":false,"up":false}),
        );
        assert_eq!(
            t,
            "POP x: not drained (was already not drained)\nnote: POP x is down\n"
        );
    }

    #[test]
    fn peers_table_has_counts() {
        let v = json!({"peers":[{"name":"up1","address":"192.0.2.1","remote_asn":64500,"role":"upstream","state":"Established","uptime_secs":3661,
            "received":{"ipv4":10,"ipv6":2},"accepted":{"ipv4":9,"ipv6":2},"last_error":null}]});
        let t = peers(&v);
        assert!(t.contains("up1"));
        assert!(t.contains("10/9"));
        assert!(t.contains("01:01:01"));
    }
}
