//! The text part of a message whose template has no `.txt`: derived from the HTML.
//!
//! Small and honest rather than faithful: paragraphs and headings become blank-line separated
//! blocks, `<br>`, `<div>`, `<tr>` and list items line breaks (items start with `- `), a link
//! becomes `text (url)` (just the URL when the text is the URL or empty), an image its `alt`
//! text, character references are decoded, `<head>`, `<style>`, `<script>` and comments are
//! dropped, runs of white space collapse to one space (except inside `<pre>`). No tag survives.
//! It reads any input without panicking: broken markup is read as text.

/// The plain text of `html`, ending with one newline (empty for an empty document).
pub fn html_to_text(html: &str) -> String {
    let mut out = Writer::default();
    let mut rest = html;
    // Elements whose content is not text; the count, so nested ones close correctly.
    let mut hidden = 0usize;
    let mut pre = 0usize;
    // Open links: (href, where the link's text starts in `out.text`).
    let mut links: Vec<(String, usize)> = Vec::new();
    while !rest.is_empty() {
        let Some(lt) = rest.find('<') else {
            if hidden == 0 {
                out.text(&decode_entities(rest), pre > 0);
            }
            break;
        };
        if hidden == 0 {
            out.text(&decode_entities(&rest[..lt]), pre > 0);
        }
        rest = &rest[lt..];
        if let Some(comment) = rest.strip_prefix("<!--") {
            rest = comment.find("-->").map_or("", |end| &comment[end + 3..]);
            continue;
        }
        let Some(tag) = Tag::parse(rest) else {
            // A `<` that starts no tag ("a < b"): text.
            if hidden == 0 {
                out.text("<", pre > 0);
            }
            rest = &rest[1..];
            continue;
        };
        rest = &rest[tag.len..];
        match (tag.name.as_str(), tag.closing) {
            ("head" | "style" | "script" | "title" | "template", false) if !tag.self_closing => hidden += 1,
            ("head" | "style" | "script" | "title" | "template", true) => hidden = hidden.saturating_sub(1),
            _ if hidden > 0 => {}
            ("pre", false) => {
                out.paragraph();
                pre += 1;
            }
            ("pre", true) => {
                pre = pre.saturating_sub(1);
                out.paragraph();
            }
            ("p" | "h1" | "h2" | "h3" | "h4" | "h5" | "h6" | "ul" | "ol" | "table" | "blockquote" | "hr", _) => {
                out.paragraph()
            }
            ("br", _) => out.hard_break(),
            ("div" | "tr" | "section" | "article" | "header" | "footer" | "dd" | "dt" | "center", _) => out.line(),
            ("li", false) => {
                out.line();
                out.text("- ", true);
            }
            ("td" | "th", false) => out.text(" ", false),
            ("img", _) => {
                if let Some(alt) = tag.attribute("alt") {
                    out.text(&alt, false);
                }
            }
            ("a", false) => links.push((tag.attribute("href").unwrap_or_default(), out.text.len())),
            ("a", true) => {
                if let Some((href, start)) = links.pop() {
                    let label = out.text.get(start..).unwrap_or("").trim().to_string();
                    let shown = href.trim();
                    if !shown.is_empty() && !shown.starts_with('#') && label != shown {
                        if label.is_empty() {
                            out.text(shown, false);
                        } else {
                            out.text(&format!(" ({shown})"), false);
                        }
                    }
                }
            }
            _ => {}
        }
    }
    out.finish()
}

/// The output being built: text with pending breaks, so blocks never produce more than one
/// blank line between them and none at the start.
#[derive(Default)]
struct Writer {
    text: String,
    /// Newlines owed before the next text: 1 for a line break, 2 for a paragraph.
    owed: usize,
    /// A collapsed space is owed before the next word.
    space: bool,
}

impl Writer {
    fn text(&mut self, text: &str, keep_white_space: bool) {
        if keep_white_space {
            if !text.is_empty() {
                self.flush_breaks();
                self.text.push_str(text);
            }
            return;
        }
        for (i, word) in text.split(|c: char| c.is_whitespace()).enumerate() {
            if i > 0 {
                self.space = true;
            }
            if word.is_empty() {
                continue;
            }
            let at_line_start = self.text.is_empty() || self.text.ends_with('\n');
            self.flush_breaks();
            if self.space && !at_line_start && self.owed == 0 && !self.text.ends_with([' ', '\n']) {
                self.text.push(' ');
            }
            self.space = false;
            self.text.push_str(word);
        }
    }

    fn flush_breaks(&mut self) {
        if self.owed > 0 && !self.text.is_empty() {
            let have = self.text.len() - self.text.trim_end_matches('\n').len();
            for _ in have..self.owed {
                self.text.push('\n');
            }
            self.space = false;
        }
        self.owed = 0;
    }

    fn line(&mut self) {
        self.owed = self.owed.max(1);
    }

    fn paragraph(&mut self) {
        self.owed = 2;
    }

    /// `<br>`: a line break even when one is already owed (two `<br>` make an empty line).
    fn hard_break(&mut self) {
        if self.owed > 0 {
            self.flush_breaks();
        }
        self.text.push('\n');
        self.space = false;
    }

    fn finish(self) -> String {
        let mut out: String = self.text.lines().map(str::trim_end).collect::<Vec<_>>().join("\n");
        let trimmed = out.trim_matches('\n').len();
        if trimmed == 0 {
            return String::new();
        }
        out = out.trim_matches('\n').to_string();
        out.push('\n');
        out
    }
}

/// A start or end tag.
struct Tag<'a> {
    name: String,
    closing: bool,
    self_closing: bool,
    /// The text between the name and `>`.
    attributes: &'a str,
    /// Bytes from `<` to `>` inclusive.
    len: usize,
}

impl<'a> Tag<'a> {
    /// The tag at the start of `text` (which starts with `<`), if there is one.
    fn parse(text: &'a str) -> Option<Tag<'a>> {
        let body = text.get(1..)?;
        let (closing, body) = match body.strip_prefix('/') {
            Some(b) => (true, b),
            None => (false, body),
        };
        if body.starts_with('!') || body.starts_with('?') {
            // <!DOCTYPE …>, <?xml …?>: skipped like a tag with no effect.
            let end = body.find('>')?;
            let len = text.len() - body.len() + end + 1;
            return Some(Tag { name: String::new(), closing, self_closing: true, attributes: "", len });
        }
        let name_len = body.find(|c: char| !c.is_ascii_alphanumeric()).unwrap_or(body.len());
        if name_len == 0 || !body.starts_with(|c: char| c.is_ascii_alphabetic()) {
            return None;
        }
        // The end is the first `>` outside quotes.
        let mut quote = None;
        let mut end = None;
        for (i, c) in body[name_len..].char_indices() {
            match (quote, c) {
                (None, '"' | '\'') => quote = Some(c),
                (Some(q), c) if c == q => quote = None,
                (None, '>') => {
                    end = Some(name_len + i);
                    break;
                }
                _ => {}
            }
        }
        let end = end?;
        let attributes = &body[name_len..end];
        Some(Tag {
            name: body[..name_len].to_ascii_lowercase(),
            closing,
            self_closing: attributes.trim_end().ends_with('/'),
            attributes,
            len: text.len() - body.len() + end + 1,
        })
    }

    /// The decoded value of attribute `name` (quoted or not).
    fn attribute(&self, name: &str) -> Option<String> {
        let mut rest = self.attributes;
        loop {
            rest = rest.trim_start_matches(|c: char| c.is_whitespace() || c == '/');
            if rest.is_empty() {
                return None;
            }
            let key_len = rest.find(|c: char| c.is_whitespace() || c == '=' || c == '/').unwrap_or(rest.len());
            let key = &rest[..key_len];
            rest = rest[key_len..].trim_start();
            let mut value = None;
            if let Some(after) = rest.strip_prefix('=') {
                let after = after.trim_start();
                let (v, remaining) = match after.chars().next() {
                    Some(q @ ('"' | '\'')) => {
                        let inner = &after[1..];
                        let close = inner.find(q).unwrap_or(inner.len());
                        (&inner[..close], inner.get(close + 1..).unwrap_or(""))
                    }
                    _ => {
                        let stop = after.find(char::is_whitespace).unwrap_or(after.len());
                        (&after[..stop], &after[stop..])
                    }
                };
                value = Some(v);
                rest = remaining;
            }
            if key.eq_ignore_ascii_case(name) {
                return Some(decode_entities(value.unwrap_or("")));
            }
        }
    }
}

/// `text` with character references (`&amp;`, `&#233;`, `&#xE9;` and the common named ones)
/// decoded; anything else that starts with `&` is kept as written.
pub fn decode_entities(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        let end = rest[1..].find(|c: char| !(c.is_ascii_alphanumeric() || c == '#')).map(|i| i + 1);
        let decoded = match end {
            Some(semi) if rest[semi..].starts_with(';') => {
                let name = &rest[1..semi];
                entity(name).map(|c| (c, semi + 1))
            }
            _ => None,
        };
        match decoded {
            Some((c, len)) => {
                if let Some(c) = c {
                    out.push(c);
                }
                rest = &rest[len..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The character a reference names: `Some(None)` for those that print nothing.
fn entity(name: &str) -> Option<Option<char>> {
    if let Some(number) = name.strip_prefix('#') {
        let code = match number.strip_prefix(['x', 'X']) {
            Some(hex) => u32::from_str_radix(hex, 16).ok()?,
            None => number.parse().ok()?,
        };
        // NUL and surrogates become U+FFFD, as the HTML standard says.
        return Some(Some(char::from_u32(code).filter(|&c| c != '\0').unwrap_or('\u{FFFD}')));
    }
    let c = match name {
        "amp" => '&',
        "lt" => '<',
        "gt" => '>',
        "quot" => '"',
        "apos" => '\'',
        // A plain space: the text part has no layout to keep a word from breaking in.
        "nbsp" => ' ',
        "copy" => '©',
        "reg" => '®',
        "trade" => '™',
        "hellip" => '…',
        "mdash" => '—',
        "ndash" => '–',
        "lsquo" => '‘',
        "rsquo" => '’',
        "ldquo" => '“',
        "rdquo" => '”',
        "laquo" => '«',
        "raquo" => '»',
        "middot" => '·',
        "bull" => '•',
        "euro" => '€',
        "pound" => '£',
        "yen" => '¥',
        "cent" => '¢',
        "deg" => '°',
        "times" => '×',
        "zwnj" | "zwj" | "shy" => return Some(None),
        _ => return None,
    };
    Some(Some(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paragraphs_breaks_lists_and_links() {
        let html = r#"<!DOCTYPE html><html><head><title>T</title><style>p { color: red }</style></head>
<body>
  <h1>Thanks,   Ana!</h1>
  <p>Your order <b>#42</b> is on its way.<br>It ships today.</p>
  <!-- a comment -->
  <ul><li>Tea &amp; cups</li><li>Caf&eacute;? &#233;t&#xE9;</li></ul>
  <p>See <a href="https://shop.example/o/42?a=1&amp;b=2">your order</a>, or
     <a href="https://shop.example/">https://shop.example/</a>.
     <a href="https://shop.example/x"><img src="x.png" alt=""></a></p>
  <script>alert("no")</script>
  <p>a < b &unknown; &amp</p>
</body></html>"#;
        assert_eq!(
            html_to_text(html),
            "Thanks, Ana!\n\nYour order #42 is on its way.\nIt ships today.\n\n- Tea & cups\n- Caf&eacute;? été\n\n\
             See your order (https://shop.example/o/42?a=1&b=2), or https://shop.example/. https://shop.example/x\n\n\
             a < b &unknown; &amp\n"
        );
    }

    #[test]
    fn tables_and_preformatted_text() {
        let html = "<table><tr><td>Tea</td><td>2</td></tr><tr><td>Cups</td><td>1</td></tr></table><pre>a\n  b</pre>";
        assert_eq!(html_to_text(html), "Tea 2\nCups 1\n\na\n  b\n");
        assert_eq!(html_to_text(""), "");
        assert_eq!(html_to_text("<p></p><br>"), "");
        assert_eq!(html_to_text("one<br><br>two"), "one\n\ntwo\n");
    }

    #[test]
    fn any_input_reads_without_panicking_and_leaves_no_tag() {
        // Broken markup is text; complete tags never survive.
        for input in ["<", "<a", "<a href='x", "&#xFFFFFFFF;", "&#0;", "<<<>>>", "</>", "<!--", "<p", "é<é>é"] {
            html_to_text(input);
        }
        for input in
            ["<a href=\"x\">é</a>", "<p class='a>b'>x</p>", "<img alt=\"&lt;hi&gt;\"/>", "<div><span>y</span></div>"]
        {
            let text = html_to_text(input);
            assert!(!text.contains("<a") && !text.contains("<p") && !text.contains("span"), "{input:?} → {text:?}");
        }
        assert_eq!(html_to_text("<img alt=\"&lt;hi&gt;\"/>"), "<hi>\n");
        assert_eq!(html_to_text("&#0;&#xD800;"), "\u{FFFD}\u{FFFD}\n");
    }
}
