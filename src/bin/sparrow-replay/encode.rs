//! Encoding each peer's routes as UPDATE messages, ahead of the session so
//! the send phase is a few large writes. Uses the library's encoder
//! ([`sparrow::wire::encode_announce`]); reads [`crate::mrt::Group`]s from the
//! [`crate::plan::PeerPlan`]s; [`crate::client`] writes the result.

use std::sync::Arc;

use anyhow::{anyhow, bail, Result};
use sparrow::wire::{self, EncodeCtx};

use crate::mrt::Group;
use crate::par::par_map;
use crate::plan::PeerPlan;

/// All UPDATEs for one peer, ready to write.
#[derive(Debug)]
pub struct Encoded {
    pub buf: Vec<u8>,
    pub updates: usize,
    pub prefixes: usize,
    /// The session parameters this was encoded for.
    pub as4: bool,
    pub max_len: usize,
    pub afis: [bool; 2],
}

/// Walk complete BGP messages in `buf`; returns how many, or an error if the
/// framing is broken.
fn count_messages(buf: &[u8]) -> Result<usize> {
    let mut pos = 0;
    let mut n = 0;
    while pos < buf.len() {
        let (_, len) = wire::check_header(&buf[pos..], wire::MAX_EXT_MSG_LEN)
            .map_err(|e| anyhow!("encoder output has a bad message header at byte {pos}: {e}"))?;
        if pos + len > buf.len() {
            bail!("encoder output ends inside a message of {len} bytes at byte {pos}");
        }
        pos += len;
        n += 1;
    }
    Ok(n)
}

/// The announcements of `groups` in the families `afis` for a session with
/// the 4-octet AS capability `as4` and messages up to `max_len` bytes.
pub fn encode_groups(
    groups: &[Group],
    as4: bool,
    max_len: usize,
    afis: [bool; 2],
) -> Result<Encoded> {
    let ctx = EncodeCtx { as4, max_len };
    let prefixes: usize = groups
        .iter()
        .filter(|g| afis[g.afi.index()])
        .map(|g| g.prefixes.len())
        .sum();
    let mut buf = Vec::with_capacity(prefixes * 6 + groups.len() * 96);
    for g in groups.iter().filter(|g| afis[g.afi.index()]) {
        wire::encode_announce(&ctx, g.afi, &g.prefixes, &g.attrs, &mut buf);
    }
    let updates = count_messages(&buf)?;
    Ok(Encoded {
        buf,
        updates,
        prefixes,
        as4,
        max_len,
        afis,
    })
}

/// Pre-encode every plan in parallel for the likely negotiation: 4-octet AS,
/// both families, messages up to `max_len`. A session that negotiates
/// something else re-encodes ([`crate::client`]).
pub fn encode_all(plans: &[Arc<PeerPlan>], max_len: usize) -> Result<Vec<Arc<Encoded>>> {
    par_map(plans, "encoder", |p| {
        encode_groups(&p.groups, true, max_len, [true, true])
    })?
    .into_iter()
    .map(|r| r.map(Arc::new))
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn count_messages_framing() {
        let mut buf = vec![0xffu8; 16];
        buf.extend_from_slice(&[0, 19, 4]);
        let one = buf.clone();
        buf.extend_from_slice(&one);
        assert_eq!(count_messages(&buf).unwrap(), 2);
        assert!(count_messages(&buf[..30]).is_err());
    }
}
