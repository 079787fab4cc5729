//! Rendering a journey step's message: subject, HTML part and text part, from templates.
//!
//! A step's message is inline (`subject`, `html`, optional `text`) or `template: NAME`, from
//! the templates a journey version carries ([`Templates::from_sources`], which the engine
//! builds per version) or a `templates/` folder ([`Templates::load`]), the same names either way:
//! `NAME.html` is the HTML part, `NAME.txt` the text part when it exists; otherwise the text is
//! derived from the final HTML ([`crate::text::html_to_text`]). The subject is a template too.
//!
//! **The layout wraps; messages do not extend it.** When the folder holds `layout.html`, every
//! HTML part (inline or from a file) is rendered first and then placed in the layout, which is
//! rendered with the message's context plus `content` (the rendered part, already escaped, so
//! `{{ content }}` prints it as HTML) and `subject`. `layout.txt` wraps text parts the same way
//! (a derived text part is derived from the wrapped HTML, so the layout's footer is in it
//! once). Wrapping rather than `{% extends %}` keeps inline messages in a journey file free of
//! template plumbing, and one layout cannot be forgotten by one message. The folder's other
//! files can be included or imported (`{% from "macros.html" import button %}`).
//!
//! **Escaping:** templates whose name ends in `.html` (files and inline HTML) escape every
//! printed value for HTML; subjects and text parts are not escaped (they are not HTML; the
//! subject is encoded for its header when the message is composed).
//!
//! **Undefined values:** a missing value renders empty and is falsy, so
//! `{{ customer.name | default('there') }}` and `{% if scores %}` work for sparse customers.
//! Typos: [`check`] (run by `kanta journeys validate` on every template) reports a top-level
//! name that is not in [`MessageContext`] (`{{ custmer.name }}`, which would also fail when
//! rendered, since it looks up an attribute of nothing); a misspelt attribute of a known name
//! (`{{ customer.nmae }}`) renders empty, because `customer.attributes` and the orders are
//! free-form and cannot be checked without the data.

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};

use minijinja::{Environment, Value, context};

use crate::context::{MessageContext, TOP_LEVEL_NAMES};
use crate::text::html_to_text;

/// The shared HTML layout's file name.
pub const LAYOUT_HTML: &str = "layout.html";
/// The shared text layout's file name.
pub const LAYOUT_TXT: &str = "layout.txt";

/// Names of inline templates in error messages.
const INLINE_HTML: &str = "(inline).html";
const INLINE_TXT: &str = "(inline).txt";
const SUBJECT: &str = "(subject)";
/// Texts of a webhook body: no extension, so no auto-escaping.
const WEBHOOK_BODY: &str = "(webhook body)";

/// A problem in one template's source: its 1-based line and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateProblem {
    /// 1-based line.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for TemplateProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// Why a message could not be rendered.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RenderError {
    /// The templates folder or one of its files cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The folder or file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A template file has a syntax error or an unknown name.
    #[error("{file}: {problem}")]
    Template {
        /// The file's name in the folder.
        file: String,
        /// Where and what.
        problem: TemplateProblem,
    },
    /// `template: NAME` names no `NAME.html` in the folder.
    #[error("no template `{name}`: expected {name}.html in the templates folder")]
    UnknownTemplate {
        /// The name asked for.
        name: String,
    },
    /// Rendering failed (a filter given the wrong type, an attribute of an undefined value…).
    #[error("{part}{}: {message}", line.map(|l| format!(" line {l}")).unwrap_or_default())]
    Render {
        /// `(subject)`, `(inline).html`, `(inline).txt` or a file name.
        part: String,
        /// 1-based line, when known.
        line: Option<usize>,
        /// What went wrong.
        message: String,
    },
}

/// A step's message as the journey document states it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageSpec {
    /// The subject template.
    pub subject: String,
    /// Where the body comes from.
    pub body: Body,
}

/// Where a message's body comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    /// Written in the journey file.
    Inline {
        /// The HTML part's template.
        html: String,
        /// The text part's template; derived from the HTML when absent.
        text: Option<String>,
    },
    /// `NAME.html` (and `NAME.txt`, if present) in the templates folder.
    Template(String),
}

/// A rendered message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// One line: runs of white space (new lines included) collapsed to a space, trimmed.
    pub subject: String,
    /// The HTML part, wrapped in the layout.
    pub html: String,
    /// The text part.
    pub text: String,
}

/// The templates of one journey version or folder (or none, for inline messages only).
pub struct Templates {
    env: Environment<'static>,
    files: HashSet<String>,
}

impl fmt::Debug for Templates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut files: Vec<&String> = self.files.iter().collect();
        files.sort();
        f.debug_struct("Templates").field("files", &files).finish()
    }
}

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    // Text parts end with their last line's newline, as written in the file.
    env.set_keep_trailing_newline(true);
    // The default callback escapes names ending in .html/.htm/.xml, which covers the folder's
    // files and `(inline).html`; stated here so the rule is visible where it matters.
    env.set_auto_escape_callback(|name| {
        if name.ends_with(".html") { minijinja::AutoEscape::Html } else { minijinja::AutoEscape::None }
    });
    // minijinja's HTML escaping also writes `/` as `&#x2f;`, which turns every link printed
    // into an attribute into `https:&#x2f;&#x2f;…`: valid, but unreadable in the source and
    // a trap for link checkers and trackers. The five characters that matter are enough.
    env.set_formatter(|out, state, value| {
        let plain = !value.is_safe() && !value.is_undefined() && !value.is_none();
        if matches!(state.auto_escape(), minijinja::AutoEscape::Html) && plain {
            Ok(out.write_str(&escape_html(&value.to_string()))?)
        } else {
            minijinja::escape_formatter(out, state, value)
        }
    });
    env
}

/// `&`, `<`, `>`, `"` and `'` as character references.
fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

impl Templates {
    /// No folder: inline messages only, no layout.
    pub fn inline_only() -> Templates {
        Templates { env: environment(), files: HashSet::new() }
    }

    /// Every `*.html` and `*.txt` file directly in `dir`, as [`Templates::from_sources`] reads
    /// them.
    pub fn load(dir: &Path) -> Result<Templates, RenderError> {
        let read = |path: &Path, source: std::io::Error| RenderError::Read { path: path.to_path_buf(), source };
        let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|e| read(dir, e))?
            .map(|entry| entry.map(|e| e.path()))
            .collect::<Result<_, _>>()
            .map_err(|e| read(dir, e))?;
        entries.sort();
        let mut sources = Vec::new();
        for path in entries {
            let is_template = matches!(path.extension().and_then(|e| e.to_str()), Some("html" | "txt"));
            let Some(name) = path.file_name().and_then(|n| n.to_str()).map(str::to_string) else { continue };
            if !is_template || !path.is_file() {
                continue;
            }
            let source = std::fs::read_to_string(&path).map_err(|e| read(&path, e))?;
            sources.push((name, source));
        }
        Templates::from_sources(sources)
    }

    /// Templates held in memory, by file name (`thanks.html`, `thanks.txt`, `layout.html`,
    /// `macros.html`), as a journey version carries them; each checked like [`check`] does.
    /// The names mean what they mean in a folder.
    pub fn from_sources(sources: impl IntoIterator<Item = (String, String)>) -> Result<Templates, RenderError> {
        let mut env = environment();
        let mut files = HashSet::new();
        for (name, source) in sources {
            check(&source).map_err(|problem| RenderError::Template { file: name.clone(), problem })?;
            env.add_template_owned(name.clone(), source).map_err(|e| RenderError::Template {
                file: name.clone(),
                problem: TemplateProblem { line: e.line().unwrap_or(1), message: message_of(&e) },
            })?;
            files.insert(name);
        }
        Ok(Templates { env, files })
    }

    /// Whether `template: NAME` can be rendered.
    pub fn has(&self, name: &str) -> bool {
        self.files.contains(&format!("{name}.html"))
    }

    /// The message `spec` for `context`.
    pub fn render(&self, spec: &MessageSpec, context: &MessageContext) -> Result<Rendered, RenderError> {
        let ctx = Value::from_serialize(context);
        let subject = self.render_str(SUBJECT, &spec.subject, &ctx)?;
        let subject = subject.split_whitespace().collect::<Vec<_>>().join(" ");
        let (html, text) = match &spec.body {
            Body::Inline { html, text } => {
                let html = self.render_str(INLINE_HTML, html, &ctx)?;
                let text = text.as_ref().map(|t| self.render_str(INLINE_TXT, t, &ctx)).transpose()?;
                (html, text)
            }
            Body::Template(name) => {
                let html_file = format!("{name}.html");
                if name.contains(['/', '\\']) || !self.files.contains(&html_file) {
                    return Err(RenderError::UnknownTemplate { name: name.clone() });
                }
                let html = self.render_file(&html_file, ctx.clone())?;
                let text_file = format!("{name}.txt");
                let text =
                    self.files.contains(&text_file).then(|| self.render_file(&text_file, ctx.clone())).transpose()?;
                (html, text)
            }
        };
        let html = self.wrap(LAYOUT_HTML, html, &subject, &ctx)?;
        let text = match text {
            Some(text) => self.wrap(LAYOUT_TXT, text, &subject, &ctx)?,
            None => html_to_text(&html),
        };
        Ok(Rendered { subject, html, text })
    }

    /// A webhook body for `context`: every text in it rendered as a template (no escaping:
    /// the texts go into JSON strings, which serde escapes), everything else as it is.
    pub fn render_json(
        &self,
        body: &serde_json::Value,
        context: &MessageContext,
    ) -> Result<serde_json::Value, RenderError> {
        let ctx = Value::from_serialize(context);
        self.render_json_with(body, &ctx)
    }

    fn render_json_with(&self, body: &serde_json::Value, ctx: &Value) -> Result<serde_json::Value, RenderError> {
        use serde_json::Value as Json;
        Ok(match body {
            Json::String(source) => Json::String(self.render_str(WEBHOOK_BODY, source, ctx)?),
            Json::Array(items) => {
                Json::Array(items.iter().map(|item| self.render_json_with(item, ctx)).collect::<Result<_, _>>()?)
            }
            Json::Object(fields) => Json::Object(
                fields
                    .iter()
                    .map(|(k, v)| Ok((k.clone(), self.render_json_with(v, ctx)?)))
                    .collect::<Result<_, RenderError>>()?,
            ),
            other => other.clone(),
        })
    }

    fn render_str(&self, part: &str, source: &str, ctx: &Value) -> Result<String, RenderError> {
        self.env.render_named_str(part, source, ctx).map_err(|e| render_error(part, &e))
    }

    fn render_file(&self, file: &str, ctx: Value) -> Result<String, RenderError> {
        let template = self.env.get_template(file).map_err(|e| render_error(file, &e))?;
        template.render(ctx).map_err(|e| render_error(file, &e))
    }

    /// `content` placed in `layout`, when the folder has it.
    fn wrap(&self, layout: &str, content: String, subject: &str, ctx: &Value) -> Result<String, RenderError> {
        if !self.files.contains(layout) {
            return Ok(content);
        }
        let content = if layout.ends_with(".html") { Value::from_safe_string(content) } else { Value::from(content) };
        self.render_file(layout, context! { content => content, subject => subject, ..ctx.clone() })
    }
}

/// The source of template file `file` (`thanks.html`) in folder `dir`; `None` when there is no
/// such file. What `kanta journeys apply` passes to
/// [`Journey::embed_templates`](https://docs.rs/kanta-journey) to embed a journey's templates.
pub fn read_source(dir: &Path, file: &str) -> Result<Option<String>, RenderError> {
    let path = dir.join(file);
    match std::fs::read_to_string(&path) {
        Ok(source) => Ok(Some(source)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(RenderError::Read { path, source }),
    }
}

fn message_of(e: &minijinja::Error) -> String {
    match e.detail() {
        Some(detail) => format!("{}: {detail}", e.kind()),
        None => e.kind().to_string(),
    }
}

fn render_error(part: &str, e: &minijinja::Error) -> RenderError {
    // An error inside an included file names that file.
    let part = e.name().filter(|n| *n != part).map_or_else(|| part.to_string(), |n| format!("{part} → {n}"));
    RenderError::Render { part, line: e.line(), message: message_of(e) }
}

/// Checks one template's source, as `kanta journeys validate` does for subjects, inline parts
/// and every file of the folder: its syntax, and that every top-level name it reads is one
/// [`MessageContext`] provides (or a built-in function such as `range`).
pub fn check(source: &str) -> Result<(), TemplateProblem> {
    let env = environment();
    let template = env
        .template_from_str(source)
        .map_err(|e| TemplateProblem { line: e.line().unwrap_or(1), message: message_of(&e) })?;
    let globals: HashSet<&str> = env.globals().map(|(name, _)| name).collect();
    let mut unknown: Vec<String> = template
        .undeclared_variables(false)
        .into_iter()
        .filter(|name| !TOP_LEVEL_NAMES.contains(&name.as_str()) && !globals.contains(name.as_str()))
        .collect();
    unknown.sort_by_key(|name| (line_of(source, name), name.clone()));
    match unknown.first() {
        None => Ok(()),
        Some(name) => Err(TemplateProblem {
            line: line_of(source, name),
            message: format!("unknown name `{name}`: a message can use {}", TOP_LEVEL_NAMES.join(", ")),
        }),
    }
}

/// The first line where `name` appears as a whole word (1 when it cannot be found).
fn line_of(source: &str, name: &str) -> usize {
    let word = |c: char| c.is_alphanumeric() || c == '_';
    for (i, line) in source.lines().enumerate() {
        let mut from = 0;
        while let Some(at) = line[from..].find(name) {
            let start = from + at;
            let end = start + name.len();
            let before = line[..start].chars().next_back().is_none_or(|c| !word(c));
            let after = line[end..].chars().next().is_none_or(|c| !word(c));
            if before && after {
                return i + 1;
            }
            from = end;
        }
    }
    1
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::{CustomerContext, LineContext, OrderContext};

    fn ana() -> MessageContext {
        MessageContext {
            customer: CustomerContext {
                id: "c-1".into(),
                name: Some("Ana <3".into()),
                email: Some("ana@example.com".into()),
                ..CustomerContext::default()
            },
            orders: vec![OrderContext {
                id: "o-1".into(),
                amount: 42.5,
                currency: "EUR".into(),
                lines: vec![LineContext { product: "Tea".into(), quantity: 2.0, price: 5.0, ..LineContext::default() }],
                ..OrderContext::default()
            }],
            next_category: Some("cups".into()),
            unsubscribe_url: Some("https://shop.example/unsubscribe/t.k".into()),
            ..MessageContext::default()
        }
    }

    fn inline(subject: &str, html: &str, text: Option<&str>) -> MessageSpec {
        MessageSpec {
            subject: subject.into(),
            body: Body::Inline { html: html.into(), text: text.map(str::to_string) },
        }
    }

    #[test]
    fn inline_messages_escape_html_but_not_the_subject_or_text() {
        let spec = inline(
            "Thanks for your first order, {{ customer.name | default('there') }}\n",
            "<p>Hi {{ customer.name }}, try {{ next_category }}.</p>",
            Some("Hi {{ customer.name }}\n"),
        );
        let out = Templates::inline_only().render(&spec, &ana()).unwrap();
        assert_eq!(out.subject, "Thanks for your first order, Ana <3");
        assert_eq!(out.html, "<p>Hi Ana &lt;3, try cups.</p>");
        assert_eq!(out.text, "Hi Ana <3\n");
        let anonymous = Templates::inline_only().render(&spec, &MessageContext::default()).unwrap();
        assert_eq!(anonymous.subject, "Thanks for your first order, there");
        assert_eq!((anonymous.html.as_str(), anonymous.text.as_str()), ("<p>Hi , try .</p>", "Hi \n"));
        // No text template: derived from the HTML.
        let derived = inline("s", "<p>Hi {{ customer.name }} &amp; {{ customer.email }}</p>", None);
        assert_eq!(Templates::inline_only().render(&derived, &ana()).unwrap().text, "Hi Ana <3 & ana@example.com\n");
        let quotes = inline("s", "<a title=\"{{ customer.name }}\" href=\"{{ unsubscribe_url }}\">x</a>", None);
        let mut quoted = ana();
        quoted.customer.name = Some("\"O'Brien\" & co".into());
        assert_eq!(
            Templates::inline_only().render(&quotes, &quoted).unwrap().html,
            "<a title=\"&quot;O&#39;Brien&quot; &amp; co\" href=\"https://shop.example/unsubscribe/t.k\">x</a>"
        );
    }

    #[test]
    fn a_webhook_body_renders_every_text_unescaped_and_keeps_the_rest() {
        let body = serde_json::json!({
            "who": "{{ customer.name }}",
            "next": ["{{ next_category | upper }}", 3, true, null],
            "nested": {"order": "{{ orders[0].id }}: {{ orders[0].amount }}"},
        });
        let out = Templates::inline_only().render_json(&body, &ana()).unwrap();
        assert_eq!(
            out,
            serde_json::json!({
                "who": "Ana <3",
                "next": ["CUPS", 3, true, null],
                "nested": {"order": "o-1: 42.5"},
            })
        );
        let bad = serde_json::json!({"x": "{{ customer.name "});
        assert!(Templates::inline_only().render_json(&bad, &ana()).is_err());
    }

    #[test]
    fn folder_templates_are_wrapped_in_the_layout_and_text_is_derived_when_absent() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, body: &str| std::fs::write(dir.path().join(name), body).unwrap();
        write(
            "layout.html",
            "<html><head><title>{{ subject }}</title></head><body>{{ content }}\
             <p><a href=\"{{ unsubscribe_url }}\">Unsubscribe</a></p></body></html>",
        );
        write("macros.html", "{% macro line(l) %}<li>{{ l.quantity | int }} × {{ l.product }}</li>{% endmacro %}");
        write(
            "thanks.html",
            "{% from \"macros.html\" import line %}<p>Order {{ orders[0].id }}:</p><ul>{% for l in orders[0].lines %}{{ line(l) }}{% endfor %}</ul>",
        );
        write("receipt.html", "<p>Receipt</p>");
        write("receipt.txt", "Receipt for {{ customer.name }}\n");
        write("notes.md", "{{ not a template");
        let templates = Templates::load(dir.path()).unwrap();
        assert!(templates.has("thanks") && templates.has("receipt") && !templates.has("notes"));
        let spec = MessageSpec { subject: "Your order".into(), body: Body::Template("thanks".into()) };
        let out = templates.render(&spec, &ana()).unwrap();
        assert_eq!(
            out.html,
            "<html><head><title>Your order</title></head><body><p>Order o-1:</p><ul><li>2 × Tea</li></ul>\
             <p><a href=\"https://shop.example/unsubscribe/t.k\">Unsubscribe</a></p></body></html>"
        );
        assert_eq!(out.text, "Order o-1:\n\n- 2 × Tea\n\nUnsubscribe (https://shop.example/unsubscribe/t.k)\n");
        let receipt = MessageSpec { subject: "R".into(), body: Body::Template("receipt".into()) };
        assert_eq!(templates.render(&receipt, &ana()).unwrap().text, "Receipt for Ana <3\n");
        for missing in ["nope", "../thanks", "macros/x"] {
            let spec = MessageSpec { subject: "x".into(), body: Body::Template(missing.into()) };
            assert!(matches!(templates.render(&spec, &ana()), Err(RenderError::UnknownTemplate { .. })), "{missing}");
        }
    }

    #[test]
    fn templates_from_sources_render_as_the_same_files_in_a_folder_would() {
        let sources = [
            ("layout.html", "<body>{{ content }}</body>"),
            ("macros.html", "{% macro hi(n) %}Hi {{ n }}{% endmacro %}"),
            ("thanks.html", "{% from \"macros.html\" import hi %}<p>{{ hi(customer.name) }}</p>"),
            ("thanks.txt", "Thanks, {{ customer.name }}\n"),
        ];
        let dir = tempfile::tempdir().unwrap();
        for (name, source) in sources {
            std::fs::write(dir.path().join(name), source).unwrap();
        }
        let spec = MessageSpec { subject: "S".into(), body: Body::Template("thanks".into()) };
        let memory = Templates::from_sources(sources.map(|(n, s)| (n.to_owned(), s.to_owned()))).unwrap();
        let out = memory.render(&spec, &ana()).unwrap();
        assert_eq!(out.html, "<body><p>Hi Ana &lt;3</p></body>");
        assert_eq!(out.text, "Thanks, Ana <3\n");
        assert_eq!(Templates::load(dir.path()).unwrap().render(&spec, &ana()).unwrap(), out);
        let broken = Templates::from_sources([("x.html".to_owned(), "{{ custmer }}".to_owned())]).unwrap_err();
        assert!(broken.to_string().starts_with("x.html: line 1: unknown name `custmer`"), "{broken}");
    }

    #[test]
    fn a_broken_file_is_reported_with_its_name_and_line() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("bad.html"), "<p>\n{% if customer %}\n{{ customer.name }</p>").unwrap();
        let err = Templates::load(dir.path()).unwrap_err();
        let RenderError::Template { file, problem } = &err else { panic!("{err}") };
        assert_eq!((file.as_str(), problem.line), ("bad.html", 3));
        assert!(err.to_string().starts_with("bad.html: line 3: syntax error"), "{err}");
    }

    #[test]
    fn check_reports_syntax_errors_and_unknown_names_with_their_line() {
        assert_eq!(check("Hi {{ customer.name | default('there') }}"), Ok(()));
        assert_eq!(
            check("{% for o in orders %}{{ o.id }}{% endfor %}{% for i in range(3) %}{{ i }}{% endfor %}"),
            Ok(())
        );
        assert_eq!(check("{% set n = scores.stage %}{{ n }} {{ unsubscribe_url }} {{ next_category }}"), Ok(()));
        let syntax = check("line one\n{% if x %}\nno end").unwrap_err();
        assert!(syntax.message.starts_with("syntax error"), "{syntax}");
        let typo = check("Hello\n\n{{ custmer.name }}").unwrap_err();
        assert_eq!(typo.line, 3);
        assert!(typo.message.starts_with("unknown name `custmer`: a message can use customer, scores"), "{typo}");
        // A misspelt attribute is not caught (attributes are free-form) and renders empty.
        assert_eq!(check("{{ customer.nmae }}"), Ok(()));
        let out = Templates::inline_only().render(&inline("{{ customer.nmae }}x", "", None), &ana()).unwrap();
        assert_eq!(out.subject, "x");
    }

    #[test]
    fn a_render_error_names_the_part() {
        let err = Templates::inline_only().render(&inline("ok", "{{ custmer.name }}", None), &ana()).unwrap_err();
        assert!(err.to_string().starts_with("(inline).html line 1: undefined value"), "{err}");
    }
}
