//! `sparrowctl announcements`: one row per anycast prefix.

use super::{or_dash, table};
use crate::admin::reply::AnnouncementsReply;

/// Prefix, state, time since the last change, changes, peers that have it, reason.
pub fn announcements(data: &AnnouncementsReply) -> String {
    let mut out = String::new();
    if data.announcements.is_empty() {
        out.push_str("no announce prefixes configured\n");
        return out;
    }
    let rows: Vec<Vec<String>> = data
        .announcements
        .iter()
        .map(|a| {
            vec![
                a.prefix.to_string(),
                a.state.clone(),
                or_dash(a.since_change.map(|s| format!("{s:.1}s"))),
                a.changes.to_string(),
                if a.peers.is_empty() {
                    "-".into()
                } else {
                    a.peers.join(",")
                },
                a.reason.clone(),
            ]
        })
        .collect();
    table(
        &mut out,
        "",
        &["Prefix", "State", "Since", "Changes", "Peers", "Reason"],
        &rows,
    );
    out
}
