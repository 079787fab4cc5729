//! Segments: a small, safe expression language over customers, compiled to SQL.
//!
//! ```text
//! orders >= 2 and days_since_last_order > 60 and consent.email
//! bought_category("coffee") and not bought_category("grinders")
//! orders_in_last(90d) >= 2 or attributes.tier = "gold"
//! clv_12m > 500 and p_alive < 0.4 and days_since_last_order > 60 and consent.email
//! stage in ("slipping", "lapsing") and rfm_segment = "Champions"
//! ```
//!
//! Pure and IO-free: [`parse`] turns text into an [`Expr`] (errors carry the column and what was
//! expected), [`check`] types it against the field and function catalogue, and [`compile`]
//! writes a SQL boolean condition over `customers c` for a [`Dialect`], with every value from
//! the expression — strings, numbers, attribute names, dates — as a bound parameter. The SQL
//! text is assembled only from this crate's fixed vocabulary, so an expression can never name a
//! table, column or function outside the language (tests try).
//!
//! Grammar (lowest precedence first):
//!
//! ```text
//! expr    := and ("or" and)*
//! and     := unary ("and" unary)*
//! unary   := "not" unary | compare
//! compare := operand (("=" | "!=" | "<" | "<=" | ">" | ">=") operand | "in" "(" literal ("," literal)* ")")?
//! operand := number | string | duration | "true" | "false" | name ("." name)* | name "(" args ")" | "(" expr ")"
//! ```

mod compile;
mod parse;

pub use compile::{Compiled, Dialect, Param, compile};
pub use parse::{BinOp, Expr, parse};

use std::fmt;

/// Why an expression was refused, with the 1-based column of the problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("column {column}: {message}")]
pub struct SegmentError {
    /// 1-based column (in characters) where the problem starts.
    pub column: usize,
    /// What was expected and what was found.
    pub message: String,
}

impl SegmentError {
    pub(crate) fn at(text: &str, byte: usize, message: impl Into<String>) -> SegmentError {
        let column = text.get(..byte).map_or(byte, |prefix| prefix.chars().count()) + 1;
        SegmentError { column, message: message.into() }
    }
}

/// The type of an expression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Type {
    /// true / false.
    Bool,
    /// A number.
    Number,
    /// Text.
    Text,
    /// A duration (`90d`, `12w`).
    Duration,
    /// A customer attribute: its JSON type is known only per customer; it takes the type of
    /// what it is compared with (and is false where the stored value has another type).
    Attribute,
}

impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Type::Bool => "a condition",
            Type::Number => "a number",
            Type::Text => "text",
            Type::Duration => "a duration",
            Type::Attribute => "an attribute",
        })
    }
}

/// The fields an expression can name, with their types; `attributes.NAME` is any attribute.
pub const FIELDS: &[(&str, Type)] = &[
    ("email", Type::Text),
    ("phone", Type::Text),
    ("name", Type::Text),
    ("timezone", Type::Text),
    ("locale", Type::Text),
    ("orders", Type::Number),
    ("revenue", Type::Number),
    ("average_order_value", Type::Number),
    ("days_since_last_order", Type::Number),
    ("days_since_first_order", Type::Number),
    ("consent.email", Type::Bool),
    ("consent.sms", Type::Bool),
    // From the latest scoring run (`kanta score` or the server's schedule); a customer not
    // scored yet has none of them, so every comparison on them is false.
    ("stage", Type::Text),
    ("days_in_stage", Type::Number),
    ("rfm_segment", Type::Text),
    ("r_score", Type::Number),
    ("f_score", Type::Number),
    ("m_score", Type::Number),
    ("p_alive", Type::Number),
    ("expected_purchases_30d", Type::Number),
    ("expected_purchases_90d", Type::Number),
    ("expected_purchases_365d", Type::Number),
    ("p_purchase_30d", Type::Number),
    ("expected_spend", Type::Number),
    ("clv_12m", Type::Number),
    ("days_to_next_purchase", Type::Number),
    ("value_tier", Type::Text),
    ("main_category", Type::Text),
    ("next_category", Type::Text),
];

/// The functions, with their argument types and result type.
pub const FUNCTIONS: &[(&str, &[Type], Type)] = &[
    ("bought_category", &[Type::Text], Type::Bool),
    ("bought_product", &[Type::Text], Type::Bool),
    ("orders_in_last", &[Type::Duration], Type::Number),
    ("revenue_in_last", &[Type::Duration], Type::Number),
    ("did_event", &[Type::Text], Type::Bool),
    ("events_in_last", &[Type::Text, Type::Duration], Type::Number),
];

/// Type-check `expr` (as written in `text`, for error columns); the whole expression must be a
/// condition.
pub fn check(text: &str, expr: &Expr) -> Result<(), SegmentError> {
    let t = parse::type_of(text, expr)?;
    if t == Type::Bool || t == Type::Attribute {
        Ok(())
    } else {
        Err(SegmentError::at(text, expr.start(), format!("a segment must be a condition, but this is {t}")))
    }
}
