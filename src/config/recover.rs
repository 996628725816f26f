//! Serde error recovery: serde stops at the first schema error (unknown key,
//! wrong type, missing key); to report every one, the text is parsed into a
//! YAML `Value`, the offending node dropped, and the result deserialized
//! again. Each error is located by the [`Locator`].
//!
//! Talks to `schema` (what is deserialized) and `locator`.

use super::error::ConfigError;
use super::locator::{join_path, split_path, Locator, Seg};
use super::schema::RawConfig;

/// A serde_norway error split into its parts.
struct SerdeMsg {
    /// Path serde was at (the parent map for unknown and missing fields).
    path: Vec<Seg>,
    msg: String,
    kind: SerdeKind,
}

enum SerdeKind {
    Unknown(String),
    Missing(String),
    Duplicate(String),
    Other,
}

/// serde_norway renders errors as `path: message at line L column C` (the path is
/// left out at the root). Take it apart.
fn split_serde_error(e: &serde_yaml::Error) -> SerdeMsg {
    let mut s = e.to_string();
    if let Some(i) = s.rfind(" at line ") {
        let tail = &s[i + " at line ".len()..];
        if tail
            .split(" column ")
            .all(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        {
            s.truncate(i);
        }
    }
    let mut path = Vec::new();
    if let Some(i) = s.find(": ") {
        let head = &s[..i];
        if !head.is_empty()
            && head
                .chars()
                .all(|c| c.is_alphanumeric() || "_-.[]?".contains(c))
        {
            path = split_path(head);
            s = s[i + 2..].to_string();
        }
    }
    let kind = if let Some(f) = backticked_after(&s, "unknown field `") {
        if let Some(best) = suggest(&f, &s) {
            s = format!("unknown key `{f}`; did you mean `{best}`?");
        }
        SerdeKind::Unknown(f)
    } else if let Some(f) = backticked_after(&s, "missing field `") {
        SerdeKind::Missing(f)
    } else if let Some(f) = backticked_after(&s, "duplicate field `") {
        SerdeKind::Duplicate(f)
    } else {
        SerdeKind::Other
    };
    SerdeMsg { path, msg: s, kind }
}

/// The expected name (from serde's "expected one of `a`, `b`" list) closest to
/// `got`, if it is close enough to be a typo.
fn suggest(got: &str, msg: &str) -> Option<String> {
    let list = &msg[msg.find("expected ")?..];
    list.split('`')
        .skip(1)
        .step_by(2)
        .map(|cand| (edit_distance(got, cand), cand))
        .filter(|&(d, cand)| d <= 2.max(cand.len() / 4) && d < cand.len())
        .min_by_key(|&(d, _)| d)
        .map(|(_, cand)| cand.to_string())
}

/// Levenshtein distance.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

fn backticked_after(s: &str, prefix: &str) -> Option<String> {
    let rest = s.strip_prefix(prefix)?;
    Some(rest[..rest.find('`')?].to_string())
}

/// Collect schema errors. serde stops at the first one; to find the rest we parse
/// the text into a YAML `Value`, drop what was wrong, and deserialize again (at most
/// a few dozen times). Lines after the first error come from the [`Locator`].
pub(super) fn schema_errors(text: &str, file: &str, first: serde_yaml::Error) -> Vec<ConfigError> {
    let loc = Locator::new(text);
    let mut errors = Vec::new();
    let mk = |line: usize, key: String, msg: String| ConfigError {
        file: file.to_string(),
        line,
        key,
        msg,
    };
    let Ok(mut value) = serde_yaml::from_str::<serde_yaml::Value>(text) else {
        // Not even YAML (or a duplicate key): report the first error alone.
        let mut line = first.location().map(|l| l.line()).unwrap_or(0);
        let m = split_serde_error(&first);
        let mut key = m.path;
        if let SerdeKind::Duplicate(f) = m.kind {
            key.push(Seg::Key(f));
            line = match loc.nth_line_of(&key, 1) {
                0 => line,
                l => l,
            };
        }
        errors.push(mk(line, join_path(&key), m.msg));
        return errors;
    };
    // Removed sequence elements, by the sequence's original path, so that later
    // paths (in the edited value) can be mapped back to the original text.
    let mut removed_idx: Vec<(Vec<Seg>, usize)> = Vec::new();
    let mut removed_keys: Vec<Vec<Seg>> = Vec::new();
    let mut err = first;
    for round in 0..64 {
        let m = split_serde_error(&err);
        let path = to_original(&m.path, &removed_idx);
        let serde_line = if round == 0 {
            err.location().map(|l| l.line())
        } else {
            None
        };
        // What to drop before trying again, in edited-value coordinates.
        let remove: Vec<Seg> = match &m.kind {
            SerdeKind::Unknown(f) => {
                let mut key = path.clone();
                key.push(Seg::Key(f.clone()));
                let line = serde_line.unwrap_or_else(|| loc.line_of(&key));
                errors.push(mk(line, join_path(&key), m.msg.clone()));
                [m.path.clone(), vec![Seg::Key(f.clone())]].concat()
            }
            SerdeKind::Missing(f) => {
                let mut key = path.clone();
                key.push(Seg::Key(f.clone()));
                if removed_keys.contains(&key) {
                    // We removed it (it was wrong, and reported). A required
                    // top-level key gets a placeholder so the rest can be checked.
                    if let (true, Some(v), serde_yaml::Value::Mapping(root)) =
                        (path.is_empty(), root_placeholder(f), &mut value)
                    {
                        root.insert(f.as_str().into(), v);
                        match reparse(&value) {
                            Some(e) => {
                                err = e;
                                continue;
                            }
                            None => break,
                        }
                    }
                } else {
                    // Point at the map that lacks the key.
                    let line = match loc.line_of(&path) {
                        0 => serde_line.unwrap_or(0),
                        l => l,
                    };
                    errors.push(mk(line, join_path(&key), m.msg.clone()));
                }
                m.path.clone()
            }
            SerdeKind::Duplicate(f) => {
                // Point at the second occurrence; keep the first when retrying.
                let mut key = path.clone();
                key.push(Seg::Key(f.clone()));
                let line = match loc.nth_line_of(&key, 1) {
                    0 => serde_line.unwrap_or(0),
                    l => l,
                };
                errors.push(mk(line, join_path(&key), m.msg.clone()));
                Vec::new()
            }
            SerdeKind::Other => {
                let line = serde_line.unwrap_or_else(|| loc.line_of(&path));
                errors.push(mk(line, join_path(&path), m.msg.clone()));
                m.path.clone()
            }
        };
        if remove.is_empty() || !remove_at(&mut value, &remove, &mut removed_idx, &mut removed_keys)
        {
            break;
        }
        match reparse(&value) {
            Some(e) => err = e,
            None => break,
        }
    }
    errors.sort_by_key(|e| e.line);
    errors
}

/// Deserialize an edited value again (through text, so errors carry paths);
/// the next error, if any.
fn reparse(value: &serde_yaml::Value) -> Option<serde_yaml::Error> {
    let text = serde_yaml::to_string(value).ok()?;
    serde_yaml::from_str::<RawConfig>(&text).err()
}

/// A stand-in for a required top-level key whose value was wrong.
fn root_placeholder(key: &str) -> Option<serde_yaml::Value> {
    use serde_yaml::Value;
    match key {
        "local_asn" => Some(Value::from(1u32)),
        "router_id" => Some(Value::from("0.0.0.1")),
        "pop" => Some(Value::from("")),
        _ => None,
    }
}

/// Map a path in the edited value back to the original text, given the sequence
/// elements removed so far.
fn to_original(path: &[Seg], removed_idx: &[(Vec<Seg>, usize)]) -> Vec<Seg> {
    let mut out: Vec<Seg> = Vec::with_capacity(path.len());
    for seg in path {
        match seg {
            Seg::Index(j) => {
                let mut gone: Vec<usize> = removed_idx
                    .iter()
                    .filter(|(p, _)| *p == out)
                    .map(|(_, i)| *i)
                    .collect();
                gone.sort_unstable();
                // The j-th original index that was not removed.
                let mut i = *j;
                for g in gone {
                    if g <= i {
                        i += 1;
                    }
                }
                out.push(Seg::Index(i));
            }
            k => out.push(k.clone()),
        }
    }
    out
}

/// Remove the node at `path` (edited-value coordinates) from `value`.
fn remove_at(
    value: &mut serde_yaml::Value,
    path: &[Seg],
    removed_idx: &mut Vec<(Vec<Seg>, usize)>,
    removed_keys: &mut Vec<Vec<Seg>>,
) -> bool {
    use serde_yaml::Value;
    let Some((last, parent)) = path.split_last() else {
        return false;
    };
    let orig = to_original(path, removed_idx);
    let mut node = &mut *value;
    for seg in parent {
        node = match (seg, node) {
            (Seg::Key(k), Value::Mapping(m)) => match m.get_mut(k.as_str()) {
                Some(v) => v,
                None => return false,
            },
            (Seg::Index(i), Value::Sequence(s)) => match s.get_mut(*i) {
                Some(v) => v,
                None => return false,
            },
            _ => return false,
        };
    }
    let done = match (last, node) {
        (Seg::Key(k), Value::Mapping(m)) => m.shift_remove(k.as_str()).is_some(),
        (Seg::Index(i), Value::Sequence(s)) if *i < s.len() => {
            s.remove(*i);
            true
        }
        _ => false,
    };
    if done {
        if let (Some(Seg::Index(i)), Some((_, seq))) = (orig.last(), orig.split_last()) {
            removed_idx.push((seq.to_vec(), *i));
        }
        removed_keys.push(orig);
    }
    done
}
