//! What is wrong with a journey document: every problem with its line, column (YAML) or JSON
//! pointer (JSON), the path of keys leading to it, and a message naming the offending value
//! and what was expected.

use std::fmt;

/// One step of a [`Path`]: a mapping key or a list index (0-based, like JSON pointers).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Segment {
    /// A mapping key.
    Key(String),
    /// A list index, 0-based.
    Index(usize),
}

/// Where in the document a value is: `steps[3].branch.if`, or as a JSON pointer
/// `/steps/3/branch/if`. The root is the empty path.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Path(Vec<Segment>);

impl Path {
    /// The document's root.
    pub fn root() -> Path {
        Path(Vec::new())
    }

    /// This path followed by a key.
    pub fn key(&self, key: &str) -> Path {
        let mut segments = self.0.clone();
        segments.push(Segment::Key(key.to_owned()));
        Path(segments)
    }

    /// This path followed by a list index.
    pub fn index(&self, index: usize) -> Path {
        let mut segments = self.0.clone();
        segments.push(Segment::Index(index));
        Path(segments)
    }

    /// The path of these segments.
    pub(crate) fn from_segments(segments: Vec<Segment>) -> Path {
        Path(segments)
    }

    /// The segments, root first.
    pub fn segments(&self) -> &[Segment] {
        &self.0
    }

    /// Whether this is the root.
    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    /// The path as an RFC 6901 JSON pointer (`/steps/3/branch/if`; the root is ``), as the API
    /// reports positions in a JSON document, which has no lines.
    pub fn pointer(&self) -> String {
        let mut out = String::new();
        for segment in &self.0 {
            out.push('/');
            match segment {
                Segment::Key(key) => out.push_str(&key.replace('~', "~0").replace('/', "~1")),
                Segment::Index(i) => out.push_str(&i.to_string()),
            }
        }
        out
    }
}

impl fmt::Display for Path {
    /// `steps[3].branch.if`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, segment) in self.0.iter().enumerate() {
            match segment {
                Segment::Key(key) if i == 0 => f.write_str(key)?,
                Segment::Key(key) => write!(f, ".{key}")?,
                Segment::Index(index) => write!(f, "[{index}]")?,
            }
        }
        Ok(())
    }
}

/// One problem of a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// 1-based line in the file; `None` for a JSON document (see [`Path::pointer`]).
    pub line: Option<usize>,
    /// 1-based column (in characters) in the file; `None` for a JSON document.
    pub column: Option<usize>,
    /// The value the problem is about.
    pub path: Path,
    /// What is wrong: the offending value and what was expected.
    pub message: String,
}

impl fmt::Display for Problem {
    /// `12:9: steps[3].branch.if: column 8: …` in a file; `/steps/3/branch/if: column 8: …` in
    /// a JSON document. A problem of the whole document leaves the path out.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.column) {
            (Some(line), Some(column)) => {
                write!(f, "{line}:{column}: ")?;
                if !self.path.is_root() {
                    write!(f, "{}: ", self.path)?;
                }
            }
            _ if self.path.is_root() => {}
            _ => write!(f, "{}: ", self.path.pointer())?,
        }
        f.write_str(&self.message)
    }
}

/// Every problem of a document, in document order, with the name of the file they are in (when
/// there is one) for messages.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct Problems {
    /// The file the document came from (`journeys/welcome.yaml`), prefixed to each line.
    pub file: Option<String>,
    /// The problems; never empty when returned as an error.
    pub problems: Vec<Problem>,
}

impl Problems {
    /// The same problems, attributed to `source` (a file name) in messages.
    pub fn in_file(mut self, file: impl Into<String>) -> Problems {
        self.file = Some(file.into());
        self
    }

    /// How many problems there are.
    pub fn len(&self) -> usize {
        self.problems.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.problems.is_empty()
    }

    /// The problems.
    pub fn iter(&self) -> std::slice::Iter<'_, Problem> {
        self.problems.iter()
    }
}

impl fmt::Display for Problems {
    /// One line per problem: `journeys/welcome.yaml:12:9: steps[3].branch.if: column 8: …`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, problem) in self.problems.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            if let Some(file) = &self.file {
                write!(f, "{file}:")?;
            }
            write!(f, "{problem}")?;
        }
        Ok(())
    }
}

impl<'a> IntoIterator for &'a Problems {
    type Item = &'a Problem;
    type IntoIter = std::slice::Iter<'a, Problem>;

    fn into_iter(self) -> Self::IntoIter {
        self.problems.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_print_as_dotted_keys_and_as_json_pointers() {
        let path = Path::root().key("steps").index(3).key("branch").key("if");
        assert_eq!(path.to_string(), "steps[3].branch.if");
        assert_eq!(path.pointer(), "/steps/3/branch/if");
        assert_eq!(Path::root().key("update").key("set").key("a/b~c").pointer(), "/update/set/a~1b~0c");
        assert_eq!(Path::root().pointer(), "");
    }

    #[test]
    fn problems_print_with_file_line_column_path_and_message() {
        let at = |line, column, path: Path, message: &str| Problem {
            line: Some(line),
            column: Some(column),
            path,
            message: message.into(),
        };
        let problems = Problems {
            file: None,
            problems: vec![
                at(12, 9, Path::root().key("steps").index(3).key("branch").key("if"), "column 8: expected a number"),
                at(1, 1, Path::root(), "missing key `steps`"),
            ],
        }
        .in_file("journeys/welcome.yaml");
        assert_eq!(
            problems.to_string(),
            "journeys/welcome.yaml:12:9: steps[3].branch.if: column 8: expected a number\n\
             journeys/welcome.yaml:1:1: missing key `steps`"
        );
        let json = Problem {
            line: None,
            column: None,
            path: Path::root().key("steps").index(0).key("wait"),
            message: "bad".into(),
        };
        assert_eq!(json.to_string(), "/steps/0/wait: bad");
    }
}
