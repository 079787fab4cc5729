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
/// Segment expressions split for projections (`kanta journeys simulate`).
pub mod project;

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

/// Counts the conditions and calls of `expr`, refusing the first one past the budget.
fn budget(text: &str, expr: &Expr) -> Result<(), SegmentError> {
    fn walk(text: &str, e: &Expr, terms: &mut usize, calls: &mut usize) -> Result<(), SegmentError> {
        match e {
            Expr::And(a, b) | Expr::Or(a, b) => {
                walk(text, a, terms, calls)?;
                walk(text, b, terms, calls)
            }
            Expr::Not { expr, .. } => walk(text, expr, terms, calls),
            condition => {
                *terms += 1;
                if *terms > MAX_TERMS {
                    return Err(SegmentError::at(
                        text,
                        condition.start(),
                        format!("an expression combines at most {MAX_TERMS} conditions; this is one more"),
                    ));
                }
                count_calls(text, condition, calls)
            }
        }
    }
    fn count_calls(text: &str, e: &Expr, calls: &mut usize) -> Result<(), SegmentError> {
        match e {
            Expr::Call { args, at, .. } => {
                *calls += 1;
                if *calls > MAX_CALLS {
                    return Err(SegmentError::at(
                        text,
                        *at,
                        format!("an expression calls functions at most {MAX_CALLS} times; this is one more"),
                    ));
                }
                args.iter().try_for_each(|a| count_calls(text, a, calls))
            }
            Expr::Compare { left, right, .. } => {
                count_calls(text, left, calls)?;
                count_calls(text, right, calls)
            }
            Expr::In { expr, values } => {
                count_calls(text, expr, calls)?;
                values.iter().try_for_each(|v| count_calls(text, v, calls))
            }
            Expr::Not { expr, .. } => count_calls(text, expr, calls),
            Expr::And(a, b) | Expr::Or(a, b) => {
                count_calls(text, a, calls)?;
                count_calls(text, b, calls)
            }
            _ => Ok(()),
        }
    }
    let (mut terms, mut calls) = (0, 0);
    walk(text, expr, &mut terms, &mut calls)
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

/// The most conditions (comparisons, `in` lists, bare true/false fields and calls) an expression
/// may combine with `and`, `or` and `not`.
///
/// Why a budget: nearly every field is a correlated subquery per customer (orders, scores,
/// consent), so the cost of a segment grows with its terms times the customers; a 4 KB
/// expression of 150 `bought_product(…)` terms took 80 s of CPU on 10,000 customers (issue 16).
/// Thirty-two conditions is more than any segment the documentation or the example journeys
/// need.
pub const MAX_TERMS: usize = 32;

/// The most function calls (`bought_product`, `events_in_last`, …): each one scans the
/// customer's order lines or events.
pub const MAX_CALLS: usize = 8;

/// Type-check `expr` (as written in `text`, for error columns); the whole expression must be a
/// condition within [`MAX_TERMS`] and [`MAX_CALLS`].
pub fn check(text: &str, expr: &Expr) -> Result<(), SegmentError> {
    budget(text, expr)?;
    let t = parse::type_of(text, expr)?;
    if t == Type::Bool || t == Type::Attribute {
        Ok(())
    } else {
        Err(SegmentError::at(text, expr.start(), format!("a segment must be a condition, but this is {t}")))
    }
}
