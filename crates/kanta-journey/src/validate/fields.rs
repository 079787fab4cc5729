//! Reading a mapping's keys: each key is taken once, and the ones nobody took are reported as
//! unknown, with the closest known key suggested.

use crate::problem::Path;
use crate::tree::{Key, Node, Value};
use crate::validate::Checker;

/// The entries of a mapping node, with which ones have been read.
pub(crate) struct Fields<'n> {
    /// The mapping node itself (its position is where a missing key is reported).
    pub node: &'n Node,
    /// Its path.
    pub path: Path,
    entries: &'n [(Key, Node)],
    used: Vec<bool>,
}

impl<'n> Fields<'n> {
    /// The mapping at `node`, or a problem saying `expected` and what was found instead.
    pub fn of(ck: &mut Checker<'_>, node: &'n Node, path: &Path, expected: &str) -> Option<Fields<'n>> {
        match &node.value {
            Value::Map(entries) => Some(Fields { node, path: path.clone(), entries, used: vec![false; entries.len()] }),
            _ => {
                ck.report(node, path, format!("expected {expected}, found {}", node.describe()));
                None
            }
        }
    }

    /// The value of `key`, marking it read.
    pub fn get(&mut self, key: &str) -> Option<&'n Node> {
        let i = self.entries.iter().position(|(k, _)| k.name == key)?;
        self.used[i] = true;
        Some(&self.entries[i].1)
    }

    /// The value of `key`, or a problem at the mapping saying it is missing (`what` says what it
    /// is for).
    pub fn require(&mut self, ck: &mut Checker<'_>, key: &str, what: &str) -> Option<&'n Node> {
        let found = self.get(key);
        if found.is_none() {
            ck.report(self.node, &self.path, format!("missing key `{key}` ({what})"));
        }
        found
    }

    /// The key entry named `key` (for reporting at the key), without marking it read.
    pub fn key(&self, key: &str) -> Option<&'n Key> {
        self.entries.iter().find(|(k, _)| k.name == key).map(|(k, _)| k)
    }

    /// The keys present among `names`, in document order.
    pub fn present(&self, names: &[&str]) -> Vec<&'n Key> {
        self.entries.iter().filter(|(k, _)| names.contains(&k.name.as_str())).map(|(k, _)| k).collect()
    }

    /// Reports every key not read that is not in `known` as unknown in `context` (`send_email`,
    /// "a journey"), suggesting the closest of `known`. (A known key left unread was skipped
    /// because of a problem already reported, such as a second trigger kind.)
    pub fn finish(self, ck: &mut Checker<'_>, context: &str, known: &[&str]) {
        for ((key, _), used) in self.entries.iter().zip(&self.used) {
            if !used && !known.contains(&key.name.as_str()) {
                let message = match closest(&key.name, known) {
                    Some(best) => format!("unknown key `{}` in {context}; did you mean `{best}`?", key.name),
                    None => format!("unknown key `{}` in {context}; expected one of {}", key.name, list(known)),
                };
                ck.report_at(key.at, &self.path.key(&key.name), message);
            }
        }
    }
}

/// The one kind key of a mapping among `kinds`, reporting none or several.
pub(crate) fn one_kind<'n>(
    ck: &mut Checker<'_>,
    fields: &mut Fields<'n>,
    kinds: &[&str],
    what: &str,
) -> Option<(&'n str, &'n Node)> {
    let present = fields.present(kinds);
    match present.as_slice() {
        [] => {
            ck.report(fields.node, &fields.path, format!("{what} needs one of {}", list(kinds)));
            None
        }
        [key] => {
            let node = fields.get(&key.name)?;
            Some((key.name.as_str(), node))
        }
        [first, rest @ ..] => {
            for key in rest {
                ck.report_at(
                    key.at,
                    &fields.path.key(&key.name),
                    format!("{what} has one kind; this one has `{}` and `{}`", first.name, key.name),
                );
                fields.get(&key.name);
            }
            fields.get(&first.name);
            None
        }
    }
}

/// `a`, `b` and `c` as "`a`, `b`, `c`".
pub(crate) fn list(names: &[&str]) -> String {
    names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
}

/// The name in `known` closest to `given`, if it is close enough to be what was meant: within
/// two edits (a transposition counts as one), or a third of the name's length for long names.
pub(crate) fn closest<'k>(given: &str, known: &[&'k str]) -> Option<&'k str> {
    let limit = (given.chars().count() / 3).max(2);
    known
        .iter()
        .map(|k| (strsim::damerau_levenshtein(&given.to_lowercase(), k), *k))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// The text value of a node, or a problem saying `expected`.
pub(crate) fn text<'n>(ck: &mut Checker<'_>, node: &'n Node, path: &Path, expected: &str) -> Option<&'n str> {
    match &node.value {
        Value::Str(s) => Some(s),
        _ => {
            ck.report(node, path, format!("expected {expected}, found {}", node.describe()));
            None
        }
    }
}

/// A `true`/`false` value, or a problem.
pub(crate) fn boolean(ck: &mut Checker<'_>, node: &Node, path: &Path) -> Option<bool> {
    match node.value {
        Value::Bool(b) => Some(b),
        _ => {
            ck.report(node, path, format!("expected `true` or `false`, found {}", node.describe()));
            None
        }
    }
}

/// A whole number from 1 to `u32::MAX`, or a problem saying what it is for.
pub(crate) fn positive(ck: &mut Checker<'_>, node: &Node, path: &Path, what: &str) -> Option<u32> {
    match node.value {
        Value::Int(i) if i >= 1 => match u32::try_from(i) {
            Ok(n) => Some(n),
            Err(_) => {
                ck.report(node, path, format!("{what} must be at most {}, found {i}", u32::MAX));
                None
            }
        },
        _ => {
            ck.report(node, path, format!("{what} must be a positive whole number, found {}", node.describe()));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_closest_known_name_is_suggested_only_when_close() {
        let known = ["subject", "html", "template", "text", "transactional"];
        assert_eq!(closest("sujbect", &known), Some("subject"));
        assert_eq!(closest("templat", &known), Some("template"));
        assert_eq!(closest("Subject", &known), Some("subject"));
        assert_eq!(closest("htm", &known), Some("html"));
        assert_eq!(closest("body", &known), None);
        assert_eq!(closest("transactionl", &known), Some("transactional"));
    }
}
