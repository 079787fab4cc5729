//! The templates a journey version carries: which files a journey needs, embedding them, and
//! the files' names and sources for the mailer.
//!
//! A version is applied once and may run for months on a server that has no `templates/`
//! folder, while someone edits the files and applies again; so the version holds the text of
//! every template it renders ([`Journey::templates`], [`Journey::layout`]), and its digest
//! changes when a template does. The files are the source: [`Journey::embed_templates`] reads
//! them through a function the caller gives (this crate does no IO), starting from the steps'
//! `template: NAME`s and the layout and following the files they include or import.

use std::collections::BTreeSet;

use crate::document::{Body, Journey, StepKind, TemplateSource};

/// The layout's name: `layout.html` and `layout.txt` wrap every message.
pub const LAYOUT: &str = "layout";

/// The two parts of a template, as file extensions.
const PARTS: [&str; 2] = ["html", "txt"];

impl Journey {
    /// The names of the templates the steps name (`template: NAME`), sorted.
    pub fn template_names(&self) -> BTreeSet<&str> {
        self.all_steps()
            .into_iter()
            .filter_map(|step| match &step.kind {
                StepKind::SendEmail(email) => match &email.body {
                    Body::Template(name) => Some(name.as_str()),
                    Body::Inline { .. } => None,
                },
                _ => None,
            })
            .collect()
    }

    /// Embeds the templates the journey needs that it does not carry yet: `NAME.html` and
    /// `NAME.txt` of every step's template, `layout.html` and `layout.txt`, and the files those
    /// include, import or extend, each asked of `read` by file name (`thanks.html`). `read`
    /// answers `Ok(None)` for a file that does not exist (only the parts that exist are
    /// embedded) and `Err` when one cannot be read, which stops the embedding.
    pub fn embed_templates<E>(&mut self, mut read: impl FnMut(&str) -> Result<Option<String>, E>) -> Result<(), E> {
        let mut queue: Vec<(String, &str)> = Vec::new();
        for name in self.template_names().into_iter().chain([LAYOUT]) {
            for part in PARTS {
                queue.push((name.to_owned(), part));
            }
        }
        let mut seen = BTreeSet::new();
        while let Some((name, part)) = queue.pop() {
            if !seen.insert((name.clone(), part)) {
                continue;
            }
            let carried = self.source(&name, part).map(str::to_owned);
            let source = match carried {
                Some(source) => source,
                None => match read(&format!("{name}.{part}"))? {
                    Some(source) => {
                        self.set_source(&name, part, source.clone());
                        source
                    }
                    None => continue,
                },
            };
            for file in referenced_files(&source) {
                if let Some((name, part)) = split_file(&file) {
                    queue.push((name.to_owned(), part));
                }
            }
        }
        Ok(())
    }

    /// Every embedded template as a file name and its source (`thanks.html`, `layout.txt`), the
    /// way the mailer reads a folder.
    pub fn template_files(&self) -> Vec<(String, String)> {
        let mut files = Vec::new();
        let entries = self.templates.iter().map(|(name, source)| (name.as_str(), source));
        for (name, source) in entries.chain(self.layout.as_ref().map(|l| (LAYOUT, l))) {
            for (part, text) in [("html", &source.html), ("txt", &source.text)] {
                if let Some(text) = text {
                    files.push((format!("{name}.{part}"), text.clone()));
                }
            }
        }
        files
    }

    fn source(&self, name: &str, part: &str) -> Option<&str> {
        let entry = if name == LAYOUT { self.layout.as_ref() } else { self.templates.get(name) }?;
        if part == "html" { entry.html.as_deref() } else { entry.text.as_deref() }
    }

    fn set_source(&mut self, name: &str, part: &str, source: String) {
        let entry = if name == LAYOUT {
            self.layout.get_or_insert_with(TemplateSource::default)
        } else {
            self.templates.entry(name.to_owned()).or_default()
        };
        if part == "html" {
            entry.html = Some(source);
        } else {
            entry.text = Some(source);
        }
    }
}

/// `NAME` and the part of `NAME.html` or `NAME.txt`, when NAME is a plain file name (the mailer
/// reads only the folder's own files, not subfolders).
fn split_file(file: &str) -> Option<(&str, &'static str)> {
    let (name, ext) = file.rsplit_once('.')?;
    let part = PARTS.into_iter().find(|p| *p == ext)?;
    let plain = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    plain.then_some((name, part))
}

/// The file names a template source includes, imports or extends: the quoted strings of its
/// `{% include %}`, `{% import %}`, `{% from %}` and `{% extends %}` tags. A name computed at
/// render time cannot be known here; such a template fails when it is rendered, as a missing
/// file would.
pub fn referenced_files(source: &str) -> Vec<String> {
    const TAGS: [&str; 4] = ["include", "import", "from", "extends"];
    let mut files = Vec::new();
    let mut rest = source;
    while let Some(start) = rest.find("{%") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("%}") else { break };
        let tag = after[..end].trim_matches(|c: char| c == '-' || c == '+' || c.is_whitespace());
        if TAGS.iter().any(|t| tag.split_whitespace().next() == Some(t)) {
            files.extend(quoted(tag));
        }
        rest = &after[end + 2..];
    }
    files
}

/// The contents of the quoted strings in `text` (`"a.html"`, `'b.html'`).
fn quoted(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find(['"', '\'']) {
        let quote = &rest[open..=open];
        let inner = &rest[open + 1..];
        let Some(len) = inner.find(quote) else { break };
        out.push(inner[..len].to_owned());
        rest = &inner[len + 1..];
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::validate::{AnyTemplate, validate_yaml};

    #[test]
    fn referenced_files_are_the_quoted_names_of_include_import_from_and_extends() {
        let source = "{% from \"macros.html\" import button %}{%- include 'footer.txt' -%}\n\
                      {% if x %}{{ \"not.html\" }}{% endif %}{% import \"a.html\" as a %}{% extends \"base.html\" %}";
        assert_eq!(referenced_files(source), ["macros.html", "footer.txt", "a.html", "base.html"]);
        assert!(referenced_files("{% include").is_empty());
        assert_eq!(split_file("macros.html"), Some(("macros", "html")));
        assert_eq!(split_file("dir/x.html"), None);
        assert_eq!(split_file("x.md"), None);
    }

    #[test]
    fn embedding_reads_the_steps_templates_the_layout_and_what_they_include() {
        let yaml = "name: j\ntrigger: { event: e }\nsteps:\n  - send_email: { subject: s, template: thanks }\n  \
                    - send_email: { subject: s, html: '<p>x</p>' }\n";
        let mut journey = validate_yaml(yaml, &AnyTemplate).unwrap();
        let folder: BTreeMap<&str, &str> = [
            ("thanks.html", "{% from \"macros.html\" import b %}<p>{{ b() }}</p>"),
            ("thanks.txt", "Thanks"),
            ("macros.html", "{% macro b() %}B{% endmacro %}"),
            ("layout.html", "<body>{{ content }}</body>"),
            ("unused.html", "<p>unused</p>"),
        ]
        .into();
        let mut asked = Vec::new();
        journey
            .embed_templates(|file| {
                asked.push(file.to_owned());
                Ok::<_, ()>(folder.get(file).map(|s| (*s).to_owned()))
            })
            .unwrap();
        let source = |html: &str, text: Option<&str>| TemplateSource {
            html: Some(html.to_owned()),
            text: text.map(str::to_owned),
        };
        assert_eq!(journey.templates["thanks"], source(folder["thanks.html"], Some("Thanks")));
        assert_eq!(journey.templates["macros"], source(folder["macros.html"], None));
        assert_eq!(journey.templates.len(), 2);
        assert_eq!(journey.layout, Some(source("<body>{{ content }}</body>", None)));
        assert!(!asked.contains(&"unused.html".to_owned()), "{asked:?}");
        let files: Vec<String> = journey.template_files().into_iter().map(|(f, _)| f).collect();
        assert_eq!(files, ["macros.html", "thanks.html", "thanks.txt", "layout.html"]);
        // Embedded once, a second embedding reads nothing it carries.
        let mut again = Vec::new();
        journey
            .embed_templates(|file| {
                again.push(file.to_owned());
                Ok::<_, ()>(None)
            })
            .unwrap();
        assert_eq!(again, ["layout.txt"]);
    }
}
