//! A document as a tree whose nodes remember where they were written: built from YAML parser
//! events (line and column of every node) or from a JSON value (no lines: problems are then
//! placed by their path alone), so one validator serves both.
//!
//! YAML scalars are typed by the YAML 1.2 core schema (plain `true`, `42`, `null`; anything
//! quoted is a string), which is what readers of the file expect: `10:00` is text, not the
//! sexagesimal number YAML 1.1 made of it, and `no` is the string "no".
//!
//! Refused while building, each as a problem at its position: a syntax error (the only problem
//! reported then, as the parser stops), aliases (`*name`: a journey is small enough to write out,
//! and an alias bomb could otherwise expand a few lines into gigabytes), tags other than `!!str`,
//! a second document in the stream, mapping keys that are not scalars, duplicate keys, and
//! nesting deeper than [`MAX_DEPTH`] (so that neither the validator's recursion nor dropping the
//! tree can exhaust the stack).

use saphyr_parser::{Event, Parser, ScalarStyle, Span};

use crate::problem::{Path, Problem};

/// The deepest nesting of lists and mappings a document may have. The deepest real journey
/// (branches in splits in timeouts) needs about 12.
pub const MAX_DEPTH: usize = 64;

/// How a scalar was written, for mapping a character of its value back to the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Style {
    /// Unquoted.
    Plain,
    /// `'…'`.
    SingleQuoted,
    /// `"…"`.
    DoubleQuoted,
    /// `|`.
    Literal,
    /// `>`.
    Folded,
    /// A list or a mapping.
    Collection,
}

/// Where a node starts in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct At {
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
    /// The line the node ends on (a scalar spread over lines is not mapped character by
    /// character, except literal blocks).
    pub end_line: usize,
    /// How it was written.
    pub style: Style,
}

/// A node of the document.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Node {
    /// Where it was written; `None` in a JSON document.
    pub at: Option<At>,
    /// What it is.
    pub value: Value,
}

/// A mapping key with its position.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Key {
    /// The key's text.
    pub name: String,
    /// Where it was written.
    pub at: Option<At>,
}

/// The value of a node.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    /// `null`, `~` or nothing.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A whole number.
    Int(i64),
    /// Any other number.
    Float(f64),
    /// Text.
    Str(String),
    /// A list.
    Seq(Vec<Node>),
    /// A mapping, in document order.
    Map(Vec<(Key, Node)>),
}

impl Node {
    /// A short description of the value for messages: "the text `3 days`", "a list".
    pub fn describe(&self) -> String {
        match &self.value {
            Value::Null => "nothing (null)".to_owned(),
            Value::Bool(b) => format!("`{b}`"),
            Value::Int(i) => format!("the number {i}"),
            Value::Float(x) => format!("the number {x}"),
            Value::Str(s) => format!("the text `{}`", shorten(s)),
            Value::Seq(_) => "a list".to_owned(),
            Value::Map(_) => "a mapping".to_owned(),
        }
    }

    /// The node as a JSON value (webhook bodies and attribute values are free-form JSON).
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match &self.value {
            Value::Null => J::Null,
            Value::Bool(b) => J::Bool(*b),
            Value::Int(i) => J::from(*i),
            Value::Float(x) => serde_json::Number::from_f64(*x).map_or(J::Null, J::Number),
            Value::Str(s) => J::String(s.clone()),
            Value::Seq(items) => J::Array(items.iter().map(Node::to_json).collect()),
            Value::Map(entries) => J::Object(entries.iter().map(|(k, v)| (k.name.clone(), v.to_json())).collect()),
        }
    }
}

/// At most 60 characters of `text`, for quoting a value in a message.
pub(crate) fn shorten(text: &str) -> String {
    const MAX: usize = 60;
    if text.chars().count() <= MAX {
        text.to_owned()
    } else {
        format!("{}…", text.chars().take(MAX).collect::<String>())
    }
}

/// A problem at a position, while building the tree.
fn problem_at(at: At, path: &Path, message: impl Into<String>) -> Problem {
    Problem { line: Some(at.line), column: Some(at.column), path: path.clone(), message: message.into() }
}

fn at(span: Span, style: Style) -> At {
    At { line: span.start.line(), column: span.start.col() + 1, end_line: span.end.line(), style }
}

/// A collection being built.
enum Open {
    Seq { at: At, items: Vec<Node> },
    Map { at: At, entries: Vec<(Key, Node)>, pending: Option<Key> },
}

/// Builds the tree of a YAML document; the problems found on the way (the tree is `None` only
/// when the text is not YAML at all or holds no document).
pub(crate) fn from_yaml(text: &str) -> (Option<Node>, Vec<Problem>) {
    let mut problems = Vec::new();
    let mut stack: Vec<Open> = Vec::new();
    let mut root: Option<Node> = None;
    let mut documents = 0;
    for event in Parser::new_from_str(text) {
        let (event, span) = match event {
            Ok(event) => event,
            Err(e) => {
                let mark = e.marker();
                // The parser stops at its first error; what was built so far would only yield
                // problems caused by the truncation.
                return (
                    None,
                    vec![Problem {
                        line: Some(mark.line()),
                        column: Some(mark.col() + 1),
                        path: Path::root(),
                        message: format!("this is not valid YAML: {}", e.info()),
                    }],
                );
            }
        };
        let node = match event {
            Event::DocumentStart(_) => {
                documents += 1;
                if documents == 2 {
                    let at = at(span, Style::Collection);
                    problems.push(problem_at(at, &Path::root(), "a journey file holds one document; this is a second"));
                }
                continue;
            }
            Event::Scalar(value, style, _, tag) => {
                let style = match style {
                    ScalarStyle::Plain => Style::Plain,
                    ScalarStyle::SingleQuoted => Style::SingleQuoted,
                    ScalarStyle::DoubleQuoted => Style::DoubleQuoted,
                    ScalarStyle::Literal => Style::Literal,
                    ScalarStyle::Folded => Style::Folded,
                };
                let at = at(span, style);
                let explicit_string = match &tag {
                    None => false,
                    Some(tag) if tag.is_yaml_core_schema() && tag.suffix == "str" => true,
                    Some(tag) => {
                        let path = path_of(&stack);
                        // The parser resolves `!!` to the core schema's prefix; print it as written.
                        let handle = if tag.is_yaml_core_schema() { "!!" } else { tag.handle.as_str() };
                        problems.push(problem_at(
                            at,
                            &path,
                            format!("the tag `{handle}{}` is not supported; write the value plainly", tag.suffix),
                        ));
                        false
                    }
                };
                let value = if style == Style::Plain && !explicit_string {
                    resolve_plain(&value)
                } else {
                    Value::Str(value.into_owned())
                };
                Node { at: Some(at), value }
            }
            Event::Alias(_) => {
                let at = at(span, Style::Plain);
                problems.push(problem_at(
                    at,
                    &path_of(&stack),
                    "aliases (`*name`) are not supported in journeys; write the value out",
                ));
                Node { at: Some(at), value: Value::Null }
            }
            Event::SequenceStart(..) | Event::MappingStart(..) => {
                let at = at(span, Style::Collection);
                if stack.len() >= MAX_DEPTH {
                    return (
                        None,
                        vec![problem_at(
                            at,
                            &path_of(&stack),
                            format!("the document nests lists and mappings more than {MAX_DEPTH} deep"),
                        )],
                    );
                }
                stack.push(if matches!(event, Event::SequenceStart(..)) {
                    Open::Seq { at, items: Vec::new() }
                } else {
                    Open::Map { at, entries: Vec::new(), pending: None }
                });
                continue;
            }
            Event::SequenceEnd | Event::MappingEnd => match stack.pop() {
                Some(Open::Seq { at, items }) => Node { at: Some(at), value: Value::Seq(items) },
                Some(Open::Map { at, entries, .. }) => Node { at: Some(at), value: Value::Map(entries) },
                None => continue,
            },
            _ => continue,
        };
        // Hand the finished node to its parent.
        let path = path_of(&stack);
        match stack.last_mut() {
            None if documents <= 1 => root = Some(node),
            None => {}
            Some(Open::Seq { items, .. }) => items.push(node),
            Some(Open::Map { entries, pending, .. }) => match pending.take() {
                Some(key) => entries.push((key, node)),
                None => {
                    let at = node.at.unwrap_or(At { line: 1, column: 1, end_line: 1, style: Style::Plain });
                    let name = match node.value {
                        Value::Str(s) => s,
                        Value::Null => "null".to_owned(),
                        Value::Bool(b) => b.to_string(),
                        Value::Int(i) => i.to_string(),
                        Value::Float(x) => x.to_string(),
                        Value::Seq(_) | Value::Map(_) => {
                            problems.push(problem_at(at, &path, "a key must be a plain name, not a list or a mapping"));
                            String::new()
                        }
                    };
                    if entries.iter().any(|(k, _)| k.name == name) {
                        problems.push(problem_at(
                            at,
                            &path.key(&name),
                            format!("the key `{name}` appears twice in this mapping"),
                        ));
                    }
                    *pending = Some(Key { name, at: Some(at) });
                }
            },
        }
    }
    (root, problems)
}

/// The path of the node about to be added under the open collections (for problems found while
/// building).
fn path_of(stack: &[Open]) -> Path {
    let mut path = Path::root();
    for open in stack {
        path = match open {
            Open::Seq { items, .. } => path.index(items.len()),
            Open::Map { pending: Some(key), .. } => path.key(&key.name),
            Open::Map { .. } => path,
        };
    }
    path
}

/// The YAML 1.2 core schema's reading of an unquoted scalar.
fn resolve_plain(text: &str) -> Value {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => return Value::Float(f64::INFINITY),
        "-.inf" | "-.Inf" | "-.INF" => return Value::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Value::Float(f64::NAN),
        _ => {}
    }
    let unsigned = text.strip_prefix(['-', '+']).unwrap_or(text);
    if !unsigned.is_empty() && unsigned.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse().map_or_else(|_| Value::Float(text.parse().unwrap_or(f64::NAN)), Value::Int);
    }
    if let Some(hex) = text.strip_prefix("0x")
        && let Ok(i) = i64::from_str_radix(hex, 16)
    {
        return Value::Int(i);
    }
    if let Some(octal) = text.strip_prefix("0o")
        && let Ok(i) = i64::from_str_radix(octal, 8)
    {
        return Value::Int(i);
    }
    if is_float(unsigned)
        && let Ok(x) = text.parse()
    {
        return Value::Float(x);
    }
    Value::Str(text.to_owned())
}

/// `(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?`, the core schema's float (sign removed).
fn is_float(text: &str) -> bool {
    let (mantissa, exponent) = match text.find(['e', 'E']) {
        Some(i) => (&text[..i], Some(&text[i + 1..])),
        None => (text, None),
    };
    let (int, frac) = match mantissa.split_once('.') {
        Some((int, frac)) => (int, Some(frac)),
        None => (mantissa, None),
    };
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok = match frac {
        Some(frac) => digits(int) && digits(frac) && !(int.is_empty() && frac.is_empty()),
        None => !int.is_empty() && digits(int),
    };
    let exponent_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['-', '+']).unwrap_or(e);
        !e.is_empty() && digits(e)
    });
    mantissa_ok && exponent_ok
}

/// The tree of a JSON value: no positions.
pub(crate) fn from_json(value: &serde_json::Value) -> Node {
    use serde_json::Value as J;
    let value = match value {
        J::Null => Value::Null,
        J::Bool(b) => Value::Bool(*b),
        J::Number(n) => n.as_i64().map_or_else(|| Value::Float(n.as_f64().unwrap_or(f64::NAN)), Value::Int),
        J::String(s) => Value::Str(s.clone()),
        J::Array(items) => Value::Seq(items.iter().map(from_json).collect()),
        J::Object(entries) => {
            Value::Map(entries.iter().map(|(k, v)| (Key { name: k.clone(), at: None }, from_json(v))).collect())
        }
    };
    Node { at: None, value }
}

/// The line and column in the file of character `index` (0-based) of a scalar's value, where
/// the scalar's writing allows knowing it: single-line plain, single- and double-quoted
/// scalars, and literal blocks (`|`). Otherwise the scalar's own start.
///
/// `source` is the whole file.
pub(crate) fn position_in_file(source: &str, at: At, index: usize) -> (usize, usize) {
    let start = (at.line, at.column);
    let Some(line_text) = source.lines().nth(at.line.saturating_sub(1)) else {
        return start;
    };
    let single_line = at.line == at.end_line;
    match at.style {
        Style::Plain if single_line => (at.line, at.column + index),
        Style::SingleQuoted | Style::DoubleQuoted if single_line => {
            // Characters of the file from the opening quote on.
            let raw: Vec<char> = line_text.chars().skip(at.column - 1).collect();
            let offset = if at.style == Style::SingleQuoted {
                single_quoted_offset(&raw, index)
            } else {
                double_quoted_offset(&raw, index)
            };
            offset.map_or(start, |offset| (at.line, at.column + offset))
        }
        Style::Literal => {
            // The block's lines follow one another from its first content line, each starting at
            // the block's indentation, so character `index` is on line `at.line + newlines
            // before it`.
            let Some(value_prefix) = literal_prefix(source, at, index) else {
                return start;
            };
            value_prefix
        }
        _ => start,
    }
}

/// The offset from the opening quote of character `index` of a single-quoted scalar (`''` is
/// one quote).
fn single_quoted_offset(raw: &[char], index: usize) -> Option<usize> {
    let mut i = 1; // after the quote
    let mut decoded = 0;
    while i < raw.len() {
        if decoded == index {
            return Some(i);
        }
        if raw[i] == '\'' {
            if raw.get(i + 1) == Some(&'\'') {
                i += 2;
            } else {
                return None;
            }
        } else {
            i += 1;
        }
        decoded += 1;
    }
    None
}

/// The offset from the opening quote of character `index` of a double-quoted scalar (an escape
/// such as `\"`, `\x41` or `\u00e9` is one character).
fn double_quoted_offset(raw: &[char], index: usize) -> Option<usize> {
    let mut i = 1;
    let mut decoded = 0;
    while i < raw.len() {
        if decoded == index {
            return Some(i);
        }
        match raw[i] {
            '"' => return None,
            '\\' => {
                i += match raw.get(i + 1) {
                    Some('x') => 4,
                    Some('u') => 6,
                    Some('U') => 10,
                    _ => 2,
                };
            }
            _ => i += 1,
        }
        decoded += 1;
    }
    None
}

/// Line and column of character `index` of a literal block starting at `at`.
fn literal_prefix(source: &str, at: At, index: usize) -> Option<(usize, usize)> {
    let mut line = at.line;
    let mut column = at.column;
    let mut lines = source.lines().skip(at.line - 1);
    let mut current: Vec<char> = lines.next()?.chars().collect();
    let mut decoded = 0;
    loop {
        if decoded == index {
            return Some((line, column));
        }
        if column > current.len() {
            // The end of this source line is the value's newline.
            line += 1;
            column = at.column;
            current = lines.next()?.chars().collect();
        } else {
            column += 1;
        }
        decoded += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml(text: &str) -> Node {
        let (node, problems) = from_yaml(text);
        assert_eq!(problems, []);
        node.unwrap()
    }

    fn map(node: &Node) -> &[(Key, Node)] {
        match &node.value {
            Value::Map(entries) => entries,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn scalars_are_typed_by_the_core_schema() {
        let node = yaml("a: 3\nb: '3'\nc: true\nd: no\ne: 10:00\nf:\ng: -1.5e3\nh: 3d\ni: ~\nj: 0x1F\n");
        let values: Vec<_> = map(&node).iter().map(|(k, v)| (k.name.as_str(), v.value.clone())).collect();
        assert_eq!(
            values,
            [
                ("a", Value::Int(3)),
                ("b", Value::Str("3".into())),
                ("c", Value::Bool(true)),
                ("d", Value::Str("no".into())),
                ("e", Value::Str("10:00".into())),
                ("f", Value::Null),
                ("g", Value::Float(-1500.0)),
                ("h", Value::Str("3d".into())),
                ("i", Value::Null),
                ("j", Value::Int(31)),
            ]
        );
        assert_eq!(resolve_plain("1.2.3"), Value::Str("1.2.3".into()));
        assert_eq!(resolve_plain("."), Value::Str(".".into()));
        assert_eq!(resolve_plain("99999999999999999999"), Value::Float(1e20));
    }

    #[test]
    fn nodes_and_keys_carry_one_based_lines_and_columns() {
        let node = yaml("name: x\nsteps:\n  - wait: 3d\n");
        let entries = map(&node);
        let (key, steps) = &entries[1];
        assert_eq!((key.name.as_str(), key.at.unwrap().line, key.at.unwrap().column), ("steps", 2, 1));
        let Value::Seq(items) = &steps.value else { panic!() };
        let (wait_key, wait) = &map(&items[0])[0];
        assert_eq!((wait_key.at.unwrap().line, wait_key.at.unwrap().column), (3, 5));
        assert_eq!((wait.at.unwrap().line, wait.at.unwrap().column), (3, 11));
    }

    #[test]
    fn structural_problems_are_reported_at_their_position() {
        let (_, problems) = from_yaml("a: 1\nb: &x 2\nc: *x\na: 3\nd: !!int 4\n");
        let found: Vec<_> = problems.iter().map(ToString::to_string).collect();
        assert_eq!(
            found,
            [
                "3:4: c: aliases (`*name`) are not supported in journeys; write the value out",
                "4:1: a: the key `a` appears twice in this mapping",
                "5:4: d: the tag `!!int` is not supported; write the value plainly",
            ]
        );
        let (node, problems) = from_yaml("a: [1, 2\n");
        assert_eq!(node, None);
        assert_eq!(problems.len(), 1);
        assert!(problems[0].message.starts_with("this is not valid YAML: "), "{}", problems[0]);
        let (_, problems) = from_yaml("a: 1\n---\nb: 2\n");
        assert_eq!(problems[0].to_string(), "2:1: a journey file holds one document; this is a second");
    }

    #[test]
    fn deep_nesting_is_refused_without_recursion() {
        let text = format!("{}{}", "[".repeat(100), "]".repeat(100));
        let (node, problems) = from_yaml(&text);
        assert_eq!(node, None);
        assert_eq!(problems[0].message, format!("the document nests lists and mappings more than {MAX_DEPTH} deep"));
        assert_eq!(problems[0].column, Some(MAX_DEPTH + 1));
    }

    #[test]
    fn characters_of_a_scalar_map_back_to_the_file() {
        let source = "a: x >= 2\nb: \"a\\\"b c\"\nc: 'it''s x'\nd: |\n  one\n  two x\ne: >\n  folded x\n";
        let node = yaml(source);
        let at_of = |i: usize| map(&node)[i].1.at.unwrap();
        // Plain: `>=` is character 2 of the value, column 6 of the file.
        assert_eq!(position_in_file(source, at_of(0), 2), (1, 6));
        // Double-quoted `a\"b c`: the value's `c` (index 4) is at column 10.
        assert_eq!(position_in_file(source, at_of(1), 4), (2, 10));
        // Single-quoted `it''s x`: the value's `x` (index 5) is at column 11.
        assert_eq!(position_in_file(source, at_of(2), 5), (3, 11));
        // Literal: `x` (index 8: "one\ntwo x") is on line 6, column 7.
        assert_eq!(position_in_file(source, at_of(3), 8), (6, 7));
        // Folded: the block's start.
        assert_eq!(position_in_file(source, at_of(4), 7), (8, 3));
    }

    #[test]
    fn json_values_become_nodes_without_positions() {
        let node = from_json(&serde_json::json!({"a": [1, 2.5, "x", null, true]}));
        assert_eq!(node.at, None);
        assert_eq!(node.to_json(), serde_json::json!({"a": [1, 2.5, "x", null, true]}));
    }
}
