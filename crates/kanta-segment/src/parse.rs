//! Lexing, parsing and type checking.

use crate::{FIELDS, FUNCTIONS, SegmentError, Type};

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    /// `=`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

impl BinOp {
    /// The SQL operator.
    pub fn sql(self) -> &'static str {
        match self {
            BinOp::Eq => "=",
            BinOp::Ne => "<>",
            BinOp::Lt => "<",
            BinOp::Le => "<=",
            BinOp::Gt => ">",
            BinOp::Ge => ">=",
        }
    }
}

/// A parsed expression; `at` is the byte offset where each node starts in the text, the other
/// fields are what their names say.
#[derive(Debug, Clone, PartialEq)]
#[allow(missing_docs)]
pub enum Expr {
    /// A number literal.
    Number { value: f64, at: usize },
    /// A string literal.
    Text { value: String, at: usize },
    /// `true` / `false`.
    Bool { value: bool, at: usize },
    /// A duration literal in days (`90d`, `2w`).
    Duration { days: f64, at: usize },
    /// A catalogue field (`orders`, `consent.email`).
    Field { name: String, at: usize },
    /// `attributes.KEY`.
    Attribute { key: String, at: usize },
    /// A function call.
    Call { name: String, args: Vec<Expr>, at: usize },
    /// `not e`.
    Not { expr: Box<Expr>, at: usize },
    /// `a and b`.
    And(Box<Expr>, Box<Expr>),
    /// `a or b`.
    Or(Box<Expr>, Box<Expr>),
    /// `a OP b`.
    Compare { op: BinOp, left: Box<Expr>, right: Box<Expr> },
    /// `e in (v, …)`.
    In { expr: Box<Expr>, values: Vec<Expr> },
}

impl Expr {
    /// Byte offset where the expression starts.
    pub fn start(&self) -> usize {
        match self {
            Expr::Number { at, .. }
            | Expr::Text { at, .. }
            | Expr::Bool { at, .. }
            | Expr::Duration { at, .. }
            | Expr::Field { at, .. }
            | Expr::Attribute { at, .. }
            | Expr::Call { at, .. }
            | Expr::Not { at, .. } => *at,
            Expr::And(a, _) | Expr::Or(a, _) => a.start(),
            Expr::Compare { left, .. } => left.start(),
            Expr::In { expr, .. } => expr.start(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Number(f64),
    Duration(f64),
    Text(String),
    Ident(String),
    Op(BinOp),
    LParen,
    RParen,
    Comma,
    Dot,
    End,
}

fn describe(t: &Tok) -> String {
    match t {
        Tok::Number(n) => format!("the number {n}"),
        Tok::Duration(d) => format!("the duration {d}d"),
        Tok::Text(s) => format!("the string \"{s}\""),
        Tok::Ident(s) => format!("`{s}`"),
        Tok::Op(op) => format!("`{}`", op_text(*op)),
        Tok::LParen => "`(`".into(),
        Tok::RParen => "`)`".into(),
        Tok::Comma => "`,`".into(),
        Tok::Dot => "`.`".into(),
        Tok::End => "the end of the expression".into(),
    }
}

fn op_text(op: BinOp) -> &'static str {
    match op {
        BinOp::Eq => "=",
        BinOp::Ne => "!=",
        BinOp::Lt => "<",
        BinOp::Le => "<=",
        BinOp::Gt => ">",
        BinOp::Ge => ">=",
    }
}

/// Longest expression accepted, in bytes.
const MAX_LEN: usize = 4_096;

fn lex(text: &str) -> Result<Vec<(Tok, usize)>, SegmentError> {
    if text.len() > MAX_LEN {
        return Err(SegmentError::at(text, MAX_LEN, format!("an expression has at most {MAX_LEN} bytes")));
    }
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let start = i;
        match c {
            b' ' | b'\t' | b'\n' | b'\r' => {
                i += 1;
                continue;
            }
            b'(' => out.push((Tok::LParen, start)),
            b')' => out.push((Tok::RParen, start)),
            b',' => out.push((Tok::Comma, start)),
            b'.' => out.push((Tok::Dot, start)),
            b'=' => out.push((Tok::Op(BinOp::Eq), start)),
            b'!' if bytes.get(i + 1) == Some(&b'=') => {
                out.push((Tok::Op(BinOp::Ne), start));
                i += 1;
            }
            b'<' | b'>' => {
                let eq = bytes.get(i + 1) == Some(&b'=');
                let op = match (c, eq) {
                    (b'<', true) => BinOp::Le,
                    (b'<', false) => BinOp::Lt,
                    (_, true) => BinOp::Ge,
                    _ => BinOp::Gt,
                };
                out.push((Tok::Op(op), start));
                i += usize::from(eq);
            }
            b'"' => {
                let mut value = String::new();
                let mut j = i + 1;
                let mut closed = false;
                while let Some(ch) = text[j..].chars().next() {
                    j += ch.len_utf8();
                    match ch {
                        '"' => {
                            closed = true;
                            break;
                        }
                        '\\' => match text[j..].chars().next() {
                            Some(e @ ('"' | '\\')) => {
                                value.push(e);
                                j += 1;
                            }
                            _ => {
                                return Err(SegmentError::at(text, j - 1, "only \\\" and \\\\ may follow a backslash"));
                            }
                        },
                        _ => value.push(ch),
                    }
                }
                if !closed {
                    return Err(SegmentError::at(text, start, "this string has no closing `\"`"));
                }
                out.push((Tok::Text(value), start));
                i = j;
                continue;
            }
            b'0'..=b'9' => {
                let mut j = i;
                while j < bytes.len() && (bytes[j].is_ascii_digit() || bytes[j] == b'.') {
                    j += 1;
                }
                let number: f64 = text[i..j]
                    .parse()
                    .map_err(|_| SegmentError::at(text, start, format!("`{}` is not a number", &text[i..j])))?;
                // A unit letter right after the digits makes a duration.
                let unit = bytes.get(j).copied().filter(u8::is_ascii_alphabetic);
                let tok = match unit {
                    Some(b'd') => Tok::Duration(number),
                    Some(b'w') => Tok::Duration(number * 7.0),
                    Some(_) => {
                        return Err(SegmentError::at(
                            text,
                            j,
                            "a duration ends in `d` (days) or `w` (weeks), e.g. `90d`",
                        ));
                    }
                    None => Tok::Number(number),
                };
                if unit.is_some() {
                    j += 1;
                    if bytes.get(j).is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_') {
                        return Err(SegmentError::at(text, j, "a duration ends in `d` or `w`, e.g. `90d`"));
                    }
                }
                out.push((tok, start));
                i = j;
                continue;
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let mut j = i;
                while j < bytes.len() && (bytes[j].is_ascii_alphanumeric() || bytes[j] == b'_') {
                    j += 1;
                }
                out.push((Tok::Ident(text[i..j].to_string()), start));
                i = j;
                continue;
            }
            _ => {
                let ch = text[i..].chars().next().unwrap_or('?');
                return Err(SegmentError::at(text, start, format!("unexpected character `{ch}`")));
            }
        }
        i += 1;
    }
    out.push((Tok::End, text.len()));
    Ok(out)
}

struct Parser<'a> {
    text: &'a str,
    toks: Vec<(Tok, usize)>,
    pos: usize,
    depth: usize,
}

/// Deepest nesting of parentheses and `not` accepted.
const MAX_DEPTH: usize = 64;

impl Parser<'_> {
    fn peek(&self) -> &Tok {
        &self.toks[self.pos.min(self.toks.len() - 1)].0
    }

    fn at(&self) -> usize {
        self.toks[self.pos.min(self.toks.len() - 1)].1
    }

    fn bump(&mut self) -> (Tok, usize) {
        let t = self.toks[self.pos.min(self.toks.len() - 1)].clone();
        self.pos += 1;
        t
    }

    fn keyword(&self, word: &str) -> bool {
        matches!(self.peek(), Tok::Ident(s) if s.eq_ignore_ascii_case(word))
    }

    fn fail<T>(&self, expected: &str) -> Result<T, SegmentError> {
        Err(SegmentError::at(self.text, self.at(), format!("expected {expected}, found {}", describe(self.peek()))))
    }

    fn expect(&mut self, tok: Tok, what: &str) -> Result<(), SegmentError> {
        if *self.peek() == tok {
            self.pos += 1;
            Ok(())
        } else {
            self.fail(what)
        }
    }

    fn nested<T>(&mut self, f: impl FnOnce(&mut Self) -> Result<T, SegmentError>) -> Result<T, SegmentError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(SegmentError::at(self.text, self.at(), format!("nested deeper than {MAX_DEPTH} levels")));
        }
        let out = f(self);
        self.depth -= 1;
        out
    }

    fn expr(&mut self) -> Result<Expr, SegmentError> {
        let mut left = self.and()?;
        while self.keyword("or") {
            self.pos += 1;
            let right = self.and()?;
            left = Expr::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, SegmentError> {
        let mut left = self.unary()?;
        while self.keyword("and") {
            self.pos += 1;
            let right = self.unary()?;
            left = Expr::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Expr, SegmentError> {
        if self.keyword("not") {
            let at = self.at();
            self.pos += 1;
            let expr = self.nested(Self::unary)?;
            return Ok(Expr::Not { expr: Box::new(expr), at });
        }
        self.compare()
    }

    fn compare(&mut self) -> Result<Expr, SegmentError> {
        let left = self.operand()?;
        if let Tok::Op(op) = *self.peek() {
            self.pos += 1;
            let right = self.operand()?;
            return Ok(Expr::Compare { op, left: Box::new(left), right: Box::new(right) });
        }
        if self.keyword("in") {
            self.pos += 1;
            self.expect(Tok::LParen, "`(` after `in`")?;
            let mut values = vec![self.literal()?];
            while *self.peek() == Tok::Comma {
                self.pos += 1;
                values.push(self.literal()?);
            }
            self.expect(Tok::RParen, "`,` or `)`")?;
            return Ok(Expr::In { expr: Box::new(left), values });
        }
        Ok(left)
    }

    fn literal(&mut self) -> Result<Expr, SegmentError> {
        match self.peek() {
            Tok::Number(_) | Tok::Text(_) | Tok::Duration(_) => self.operand(),
            Tok::Ident(s) if s == "true" || s == "false" => self.operand(),
            _ => self.fail("a number, a string, a duration, `true` or `false`"),
        }
    }

    fn operand(&mut self) -> Result<Expr, SegmentError> {
        let (tok, at) = self.bump();
        match tok {
            Tok::Number(value) => Ok(Expr::Number { value, at }),
            Tok::Duration(days) => Ok(Expr::Duration { days, at }),
            Tok::Text(value) => Ok(Expr::Text { value, at }),
            Tok::LParen => {
                let inner = self.nested(Self::expr)?;
                self.expect(Tok::RParen, "`)`")?;
                Ok(inner)
            }
            Tok::Ident(name) => {
                if name == "true" || name == "false" {
                    return Ok(Expr::Bool { value: name == "true", at });
                }
                if ["and", "or", "not", "in"].iter().any(|k| name.eq_ignore_ascii_case(k)) {
                    self.pos -= 1;
                    return self.fail("a field, a function, a value or `(`");
                }
                if *self.peek() == Tok::LParen {
                    self.pos += 1;
                    let mut args = Vec::new();
                    if *self.peek() != Tok::RParen {
                        args.push(self.nested(Self::expr)?);
                        while *self.peek() == Tok::Comma {
                            self.pos += 1;
                            args.push(self.nested(Self::expr)?);
                        }
                    }
                    self.expect(Tok::RParen, "`,` or `)`")?;
                    return Ok(Expr::Call { name, args, at });
                }
                let mut path = name;
                while *self.peek() == Tok::Dot {
                    self.pos += 1;
                    match self.bump() {
                        (Tok::Ident(part), _) => {
                            path.push('.');
                            path.push_str(&part);
                        }
                        (_, _) => {
                            self.pos -= 1;
                            return self.fail("a name after `.`");
                        }
                    }
                }
                if let Some(key) = path.strip_prefix("attributes.") {
                    return Ok(Expr::Attribute { key: key.to_string(), at });
                }
                Ok(Expr::Field { name: path, at })
            }
            _ => {
                self.pos -= 1;
                self.fail("a field, a function, a value or `(`")
            }
        }
    }
}

/// Parse and type-check `text`.
pub fn parse(text: &str) -> Result<Expr, SegmentError> {
    let toks = lex(text)?;
    let mut p = Parser { text, toks, pos: 0, depth: 0 };
    if *p.peek() == Tok::End {
        return p.fail("an expression");
    }
    let expr = p.expr()?;
    if *p.peek() != Tok::End {
        return p.fail("`and`, `or` or the end of the expression");
    }
    crate::check(text, &expr)?;
    Ok(expr)
}

/// The type of `expr`, or the first type error.
pub(crate) fn type_of(text: &str, expr: &Expr) -> Result<Type, SegmentError> {
    let err = |e: &Expr, message: String| Err(SegmentError::at(text, e.start(), message));
    match expr {
        Expr::Number { .. } => Ok(Type::Number),
        Expr::Text { .. } => Ok(Type::Text),
        Expr::Bool { .. } => Ok(Type::Bool),
        Expr::Duration { .. } => Ok(Type::Duration),
        Expr::Attribute { key, .. } if key.is_empty() || key.contains('.') => {
            err(expr, "an attribute is `attributes.NAME` with one name".into())
        }
        Expr::Attribute { .. } => Ok(Type::Attribute),
        Expr::Field { name, .. } => match FIELDS.iter().find(|(f, _)| f == name) {
            Some((_, t)) => Ok(*t),
            None => {
                let names: Vec<&str> = FIELDS.iter().map(|(f, _)| *f).collect();
                err(expr, format!("unknown field `{name}`; fields are {}, attributes.NAME", names.join(", ")))
            }
        },
        Expr::Call { name, args, .. } => {
            let Some((_, params, result)) = FUNCTIONS.iter().find(|(f, _, _)| f == name) else {
                let names: Vec<&str> = FUNCTIONS.iter().map(|(f, _, _)| *f).collect();
                return err(expr, format!("unknown function `{name}`; functions are {}", names.join(", ")));
            };
            if args.len() != params.len() {
                return err(expr, format!("`{name}` takes {} argument(s), not {}", params.len(), args.len()));
            }
            for (arg, want) in args.iter().zip(*params) {
                // Arguments are values, not expressions over the customer.
                let literal = matches!(arg, Expr::Text { .. } | Expr::Duration { .. } | Expr::Number { .. });
                let got = type_of(text, arg)?;
                if !literal || got != *want {
                    return err(arg, format!("`{name}` expects {want} here, as a literal"));
                }
            }
            Ok(*result)
        }
        Expr::Not { expr: inner, .. } => {
            expect_condition(text, inner)?;
            Ok(Type::Bool)
        }
        Expr::And(a, b) | Expr::Or(a, b) => {
            expect_condition(text, a)?;
            expect_condition(text, b)?;
            Ok(Type::Bool)
        }
        Expr::Compare { op, left, right } => {
            let (l, r) = (type_of(text, left)?, type_of(text, right)?);
            let resolved = match (l, r) {
                (Type::Attribute, Type::Attribute) => return err(right, "compare an attribute with a value".into()),
                (Type::Attribute, t) | (t, Type::Attribute) => t,
                (a, b) if a == b => a,
                (a, b) => return err(right, format!("cannot compare {a} with {b}")),
            };
            match resolved {
                Type::Number => Ok(Type::Bool),
                Type::Text | Type::Bool if matches!(op, BinOp::Eq | BinOp::Ne) => Ok(Type::Bool),
                Type::Duration => err(left, "durations are arguments of functions such as orders_in_last(90d)".into()),
                t => err(right, format!("{t} can only be compared with `=` or `!=`")),
            }
        }
        Expr::In { expr: inner, values } => {
            let t = type_of(text, inner)?;
            for v in values {
                let vt = type_of(text, v)?;
                if t != Type::Attribute && vt != t {
                    return err(v, format!("cannot compare {t} with {vt}"));
                }
            }
            let first = type_of(text, &values[0])?;
            if values.iter().any(|v| type_of(text, v).ok() != Some(first)) {
                return err(&values[0], "the values in `in (…)` must have one type".into());
            }
            Ok(Type::Bool)
        }
    }
}

fn expect_condition(text: &str, e: &Expr) -> Result<(), SegmentError> {
    match type_of(text, e)? {
        Type::Bool | Type::Attribute => Ok(()),
        t => Err(SegmentError::at(text, e.start(), format!("expected a condition, but this is {t}"))),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn expressions_have_a_budget_of_terms_and_calls() {
        // Regression (issue 16): 150 `bought_product` terms took 80 s of CPU on 10,000 customers.
        let products: Vec<String> = (0..150).map(|i| format!("bought_product(\"p{i}\")")).collect();
        let text = products.join(" or ");
        let err = parse(&text).expect_err("over budget");
        assert_eq!(err.message, "an expression calls functions at most 8 times; this is one more");
        assert_eq!(err.column, text.find("bought_product(\"p8\")").expect("present") + 1);
        let eight = products[..8].join(" or ");
        assert!(parse(&eight).is_ok());

        let terms: Vec<String> = (0..33).map(|i| format!("orders >= {i}")).collect();
        let err = parse(&terms.join(" and ")).expect_err("33 conditions");
        assert_eq!(err.message, "an expression combines at most 32 conditions; this is one more");
        assert_eq!(err.column, terms[..32].join(" and ").len() + " and ".len() + 1);
        assert!(parse(&terms[..32].join(" and ")).is_ok());
        // `not` and parentheses do not make a condition cost less…
        let nested = format!("not ({})", terms.join(" or "));
        assert!(parse(&nested).is_err());
        // …and calls inside comparisons count too.
        let counts: Vec<String> = (0..9).map(|i| format!("events_in_last(\"e{i}\", 30d) > 0")).collect();
        assert!(parse(&counts.join(" or ")).is_err());
        assert!(parse(&counts[..8].join(" or ")).is_ok());
    }

    use super::*;

    fn error(text: &str) -> (usize, String) {
        let e = parse(text).expect_err(text);
        (e.column, e.message)
    }

    #[test]
    fn the_issue_examples_parse() {
        for text in [
            "orders >= 2 and days_since_last_order > 60 and consent.email",
            "bought_category(\"coffee\") and not bought_category(\"grinders\")",
            "orders_in_last(90d) >= 2",
            "attributes.tier in (\"gold\", \"platinum\") or (revenue > 500 and not consent.sms)",
            "events_in_last(\"login\", 2w) = 0 AND NOT did_event(\"email_open\")",
        ] {
            assert!(parse(text).is_ok(), "{text}: {:?}", parse(text));
        }
    }

    #[test]
    fn precedence_is_not_then_and_then_or() {
        let e = parse("consent.email or orders > 1 and not consent.sms").expect("valid");
        let Expr::Or(_, right) = e else { panic!("or at the top: {e:?}") };
        assert!(matches!(*right, Expr::And(_, ref r) if matches!(**r, Expr::Not { .. })));
    }

    #[test]
    fn errors_name_the_column_and_what_was_expected() {
        assert_eq!(
            error("orders >"),
            (9, "expected a field, a function, a value or `(`, found the end of the expression".into())
        );
        assert_eq!(
            error("orders > 2 and"),
            (15, "expected a field, a function, a value or `(`, found the end of the expression".into())
        );
        assert_eq!(
            error("orders > 2 revenue"),
            (12, "expected `and`, `or` or the end of the expression, found `revenue`".into())
        );
        assert_eq!(error("(orders > 2"), (12, "expected `)`, found the end of the expression".into()));
        assert_eq!(error("bought_category(\"coffee)"), (17, "this string has no closing `\"`".into()));
        assert_eq!(
            error("orders_in_last(90x) > 1"),
            (18, "a duration ends in `d` (days) or `w` (weeks), e.g. `90d`".into())
        );
        assert_eq!(error("orders ; 1"), (8, "unexpected character `;`".into()));
        let (col, msg) = error("ordrs > 1");
        assert_eq!(col, 1);
        assert!(msg.starts_with("unknown field `ordrs`; fields are email"), "{msg}");
        assert_eq!(error("orders > \"x\""), (10, "cannot compare a number with text".into()));
        assert_eq!(error("email > \"a\""), (9, "text can only be compared with `=` or `!=`".into()));
        assert_eq!(error("orders"), (1, "a segment must be a condition, but this is a number".into()));
        assert_eq!(
            error("orders_in_last(\"90\") > 1"),
            (16, "`orders_in_last` expects a duration here, as a literal".into())
        );
        assert_eq!(error("bought_category(email)"), (17, "`bought_category` expects text here, as a literal".into()));
        assert_eq!(error("revenue > 1 and orders"), (17, "expected a condition, but this is a number".into()));
        assert_eq!(error("é = 1"), (1, "unexpected character `é`".into()));
        assert_eq!(error(""), (1, "expected an expression, found the end of the expression".into()));
    }

    #[test]
    fn deep_nesting_and_long_input_are_refused_without_overflowing() {
        let deep = format!("{}consent.email{}", "(".repeat(1_000), ")".repeat(1_000));
        assert!(error(&deep).1.contains("nested deeper than 64"));
        let nots = format!("{}consent.email", "not ".repeat(1_000));
        assert!(error(&nots).1.contains("nested deeper than 64"));
        assert!(error(&"x".repeat(5_000)).1.contains("at most 4096 bytes"));
    }
}
