//! Checking a document: YAML text or a JSON value in, a [`Journey`] or **every** problem out.
//!
//! One walk over the position-carrying tree (`crate::tree`) builds the typed journey and
//! reports each problem where it is; a part with a problem yields `None` and its siblings are
//! still checked, so one run lists everything to fix. Which template names exist is the caller's
//! to say ([`Templates`]): the crate reads no files.

mod fields;
mod steps;
mod top;
mod values;

use std::collections::{BTreeSet, HashMap, HashSet};

use crate::document::{Journey, StepId};
use crate::problem::{Path, Problem, Problems};
use crate::tree::{self, At, Node};

/// Which email templates exist, for checking `template: NAME` (besides those the document
/// embeds), and the template language's check of every template source in the document.
pub trait Templates {
    /// Whether a template named `name` exists (`templates/NAME.html` beside a journey file).
    fn contains(&self, name: &str) -> bool;

    /// The names that exist, for "did you mean …?" (may be empty).
    fn names(&self) -> Vec<String> {
        Vec::new()
    }

    /// Checks the source of a template written in the document (a subject, an inline HTML or
    /// text part, an embedded template): why it cannot be rendered, if it cannot. The template language is the
    /// mailer's (`kanta-mail`), so the caller plugs its check in; by default nothing is checked.
    fn check(&self, _source: &str) -> Result<(), String> {
        Ok(())
    }
}

/// Every template name exists: for documents whose templates are checked elsewhere (reading a
/// stored journey back, an API client that uploads templates separately).
#[derive(Debug, Clone, Copy, Default)]
pub struct AnyTemplate;

impl Templates for AnyTemplate {
    fn contains(&self, _name: &str) -> bool {
        true
    }
}

impl Templates for BTreeSet<String> {
    fn contains(&self, name: &str) -> bool {
        BTreeSet::contains(self, name)
    }

    fn names(&self) -> Vec<String> {
        self.iter().cloned().collect()
    }
}

impl Templates for HashSet<String> {
    fn contains(&self, name: &str) -> bool {
        HashSet::contains(self, name)
    }

    fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.iter().cloned().collect();
        names.sort();
        names
    }
}

impl<const N: usize> Templates for [&str; N] {
    fn contains(&self, name: &str) -> bool {
        self.as_slice().contains(&name)
    }

    fn names(&self) -> Vec<String> {
        self.iter().map(|n| (*n).to_owned()).collect()
    }
}

/// Checks a YAML journey document; the journey, or every problem with its line and column.
pub fn validate_yaml(text: &str, templates: &dyn Templates) -> Result<Journey, Problems> {
    let (root, mut problems) = tree::from_yaml(text);
    let Some(root) = root else {
        if problems.is_empty() {
            problems.push(Problem {
                line: Some(1),
                column: Some(1),
                path: Path::root(),
                message: "the file is empty; expected a journey (a mapping with `name`, `trigger` and `steps`)".into(),
            });
        }
        return Err(Problems { file: None, problems });
    };
    let mut checker = Checker::new(Some(text), templates);
    checker.problems = problems;
    let journey = top::journey(&mut checker, &root);
    checker.finish(journey)
}

/// Checks a JSON journey document (the API's form: the same keys as YAML); problems are placed
/// by their path ([`Path::pointer`]).
pub fn validate_json(value: &serde_json::Value, templates: &dyn Templates) -> Result<Journey, Problems> {
    let root = tree::from_json(value);
    let mut checker = Checker::new(None, templates);
    let journey = top::journey(&mut checker, &root);
    checker.finish(journey)
}

/// The state of one check: where problems go and what the steps need to know of the rest of the
/// document.
pub(crate) struct Checker<'a> {
    /// The YAML text, to place a character of a scalar (a segment expression's error column).
    source: Option<&'a str>,
    templates: &'a dyn Templates,
    problems: Vec<Problem>,
    /// The trigger's `key`, which `match_key` needs (`None` also when the trigger is broken).
    trigger_key: Option<String>,
    /// Whether the trigger failed to check (then `match_key` is not judged against it).
    trigger_broken: bool,
    /// The ids given in the document so far, with where.
    ids: HashMap<StepId, Path>,
    /// The names of the templates embedded in the document with an HTML part.
    embedded: BTreeSet<String>,
}

impl<'a> Checker<'a> {
    fn new(source: Option<&'a str>, templates: &'a dyn Templates) -> Checker<'a> {
        Checker {
            source,
            templates,
            problems: Vec::new(),
            trigger_key: None,
            trigger_broken: false,
            ids: HashMap::new(),
            embedded: BTreeSet::new(),
        }
    }

    /// A problem at a position.
    pub(crate) fn report_at(&mut self, at: Option<At>, path: &Path, message: impl Into<String>) {
        self.problems.push(Problem {
            line: at.map(|a| a.line),
            column: at.map(|a| a.column),
            path: path.clone(),
            message: message.into(),
        });
    }

    /// A problem with a node, at its start.
    pub(crate) fn report(&mut self, node: &Node, path: &Path, message: impl Into<String>) {
        self.report_at(node.at, path, message);
    }

    /// A problem at character `index` (0-based) of a text node's value.
    pub(crate) fn report_inside(&mut self, node: &Node, index: usize, path: &Path, message: impl Into<String>) {
        let (line, column) = match (self.source, node.at) {
            (Some(source), Some(at)) => {
                let (line, column) = tree::position_in_file(source, at, index);
                (Some(line), Some(column))
            }
            _ => (None, None),
        };
        self.problems.push(Problem { line, column, path: path.clone(), message: message.into() });
    }

    /// Records a step id given in the document, reporting one given before.
    pub(crate) fn claim_id(&mut self, id: &StepId, node: &Node, path: &Path) {
        if let Some(first) = self.ids.get(id) {
            let message = format!("the step id `{id}` is already used by `{first}`; step ids are unique in a journey");
            self.report(node, path, message);
        } else {
            // The step's path, without the trailing `.id`.
            let mut step = path.segments().to_vec();
            step.pop();
            self.ids.insert(id.clone(), Path::from_segments(step));
        }
    }

    fn finish(mut self, journey: Option<Journey>) -> Result<Journey, Problems> {
        match journey {
            Some(journey) if self.problems.is_empty() => Ok(journey),
            None if self.problems.is_empty() => {
                // Every `None` comes with a problem; should one not, refuse loudly all the same.
                self.report_at(None, &Path::root(), "the document was refused without a reason (a bug in kanta)");
                Err(Problems { file: None, problems: self.problems })
            }
            _ => {
                // Document order; problems without a line (JSON) keep the order found, which
                // is the document's too.
                self.problems.sort_by_key(|p| (p.line, p.column));
                Err(Problems { file: None, problems: self.problems })
            }
        }
    }
}

#[cfg(test)]
mod tests;
