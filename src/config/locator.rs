//! The YAML line locator: finds the line of a key path such as
//! `peers[1].hold_time` in the config text, so that every error (schema or
//! semantic) names its line. Also the key-path type ([`Seg`]) that the serde
//! error recovery in `recover` walks with.
//!
//! Pure text processing; talks to nobody.

/// One step of a key path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Seg {
    Key(String),
    Index(usize),
}

pub(super) fn split_path(path: &str) -> Vec<Seg> {
    let mut out = Vec::new();
    if path == "." || path.is_empty() {
        return out;
    }
    for part in path.split('.') {
        let (name, mut rest) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if !name.is_empty() {
            out.push(Seg::Key(name.to_string()));
        }
        while let Some(r) = rest.strip_prefix('[') {
            let Some(end) = r.find(']') else { break };
            if let Ok(i) = r[..end].parse() {
                out.push(Seg::Index(i));
            }
            rest = &r[end + 1..];
        }
    }
    out
}

pub(super) fn join_path(segs: &[Seg]) -> String {
    let mut s = String::new();
    for seg in segs {
        match seg {
            Seg::Key(k) => {
                if !s.is_empty() {
                    s.push('.');
                }
                s.push_str(k);
            }
            Seg::Index(i) => {
                s.push_str(&format!("[{i}]"));
            }
        }
    }
    s
}

/// Finds the line of a key path such as `peers[1].hold_time` in block-style YAML
/// by walking indentation and `- ` list items. Flow collections, multi-line
/// scalars, anchors and the like are not understood: a path that cannot be
/// followed to its end yields the line of the deepest key found on the way.
pub struct Locator {
    entries: Vec<Entry>,
}

#[derive(Debug)]
struct Entry {
    /// 1-based line.
    line: usize,
    /// Column where the entry starts.
    indent: usize,
    kind: EntryKind,
}

#[derive(Debug, PartialEq, Eq)]
enum EntryKind {
    /// `- ` introducing a list item.
    Dash,
    /// `key:` of a mapping.
    Key(String),
    /// Anything else (scalar list item, continuation line).
    Other,
}

impl Locator {
    pub fn new(text: &str) -> Locator {
        let mut entries = Vec::new();
        for (n, raw) in text.lines().enumerate() {
            let line = strip_comment(raw).trim_end();
            let trimmed = line.trim_start_matches(' ');
            if trimmed.is_empty() || trimmed == "---" || trimmed == "..." {
                continue;
            }
            let mut indent = line.len() - trimmed.len();
            let mut rest = trimmed;
            loop {
                if rest == "-" || rest.starts_with("- ") {
                    entries.push(Entry {
                        line: n + 1,
                        indent,
                        kind: EntryKind::Dash,
                    });
                    let after = &rest[1..];
                    let content = after.trim_start_matches(' ');
                    indent += 1 + after.len() - content.len();
                    rest = content;
                    if rest.is_empty() {
                        break;
                    }
                    continue;
                }
                let kind = match mapping_key(rest) {
                    Some(k) => EntryKind::Key(k),
                    None => EntryKind::Other,
                };
                entries.push(Entry {
                    line: n + 1,
                    indent,
                    kind,
                });
                break;
            }
        }
        Locator { entries }
    }

    /// 1-based line of `path` (dotted, with `[i]` indexes), or of its deepest
    /// ancestor found; 0 if not even the first key is found.
    pub fn line(&self, path: &str) -> usize {
        self.line_of(&split_path(path))
    }

    pub(super) fn line_of(&self, path: &[Seg]) -> usize {
        self.nth_line_of(path, 0)
    }

    /// Like `line_of`, but take the `nth` (0-based) match of the last key (for
    /// duplicate keys); 0 if there is no such match.
    pub(super) fn nth_line_of(&self, path: &[Seg], nth: usize) -> usize {
        let e = &self.entries;
        let (mut lo, mut hi) = (0, e.len());
        let mut line = 0;
        for (n, seg) in path.iter().enumerate() {
            if lo >= hi {
                break;
            }
            let ind = e[lo].indent;
            let mut at = (lo..hi).filter(|&j| e[j].indent == ind);
            let found = match seg {
                Seg::Key(k) if n + 1 == path.len() && nth > 0 => at
                    .filter(|&j| e[j].kind == EntryKind::Key(k.clone()))
                    .nth(nth),
                Seg::Key(k) => at.find(|&j| e[j].kind == EntryKind::Key(k.clone())),
                Seg::Index(i) => at.filter(|&j| e[j].kind == EntryKind::Dash).nth(*i),
            };
            let Some(j) = found else { break };
            line = e[j].line;
            // Children: deeper entries, or for `key:` a list written at the same
            // indentation as the key ("compact" sequences).
            let mut end = j + 1;
            let compact = matches!(e[j].kind, EntryKind::Key(_))
                && end < hi
                && e[end].indent == ind
                && e[end].kind == EntryKind::Dash;
            while end < hi
                && (e[end].indent > ind
                    || (compact && e[end].indent == ind && e[end].kind == EntryKind::Dash))
            {
                end += 1;
            }
            lo = j + 1;
            hi = end;
        }
        line
    }
}

/// Cut a trailing `# comment` (not inside quotes).
fn strip_comment(line: &str) -> &str {
    let mut quote: Option<char> = None;
    let mut prev = ' ';
    for (i, c) in line.char_indices() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '"' || c == '\'' => quote = Some(c),
            None if c == '#' && prev.is_whitespace() => return &line[..i],
            None => {}
        }
        prev = c;
    }
    line
}

/// The key of a `key: value` or `key:` line.
fn mapping_key(s: &str) -> Option<String> {
    if let Some(q) = s.chars().next().filter(|c| *c == '"' || *c == '\'') {
        let end = s[1..].find(q)? + 1;
        let after = &s[end + 1..];
        return (after == ":" || after.starts_with(": ")).then(|| s[1..end].to_string());
    }
    if s.starts_with(['[', '{', '|', '>', '&', '*', '!']) {
        return None;
    }
    let i = s
        .find(": ")
        .or_else(|| s.strip_suffix(':').map(|t| t.len()))?;
    Some(s[..i].trim_end().to_string())
}
