//! A segment expression split for projections (`kanta journeys simulate`): the conditions on
//! the fields a projection of the customer's purchases moves are evaluated here, day by day, on
//! the projected values; every other part of the expression is a sub-expression whose value per
//! customer the store computes once, today ([`Projection::fixed`]).
//!
//! Moved by the projection: `orders`, `days_since_last_order`, `days_since_first_order`,
//! `stage`, `p_alive`, `days_to_next_purchase` — compared with a literal (`orders >= 4`,
//! `stage in ("slipping", "lapsing")`). Fields that also change as days pass or orders come but
//! that a projection of purchase days cannot follow (`days_in_stage`, `orders_in_last(…)`,
//! `revenue_in_last(…)`, `events_in_last(…)`) make the expression [`Unsupported`]. Everything
//! else (consent, attributes, revenue, CLV, RFM scores, categories…) keeps today's value.
//!
//! A comparison here follows the SQL the expression compiles to: a customer without the value
//! (never scored: no `stage`, no `p_alive`) fails every comparison on it, `!=` included.

use crate::parse::{BinOp, Expr};

/// A field the projection moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Moving {
    /// Purchase orders.
    Orders,
    /// Days since the last purchase (fractional).
    DaysSinceLastOrder,
    /// Days since the first purchase (fractional).
    DaysSinceFirstOrder,
    /// The lifecycle stage.
    Stage,
    /// P(alive).
    PAlive,
    /// Days until the predicted next purchase.
    DaysToNextPurchase,
}

impl Moving {
    fn of(name: &str) -> Option<Moving> {
        Some(match name {
            "orders" => Moving::Orders,
            "days_since_last_order" => Moving::DaysSinceLastOrder,
            "days_since_first_order" => Moving::DaysSinceFirstOrder,
            "stage" => Moving::Stage,
            "p_alive" => Moving::PAlive,
            "days_to_next_purchase" => Moving::DaysToNextPurchase,
            _ => return None,
        })
    }
}

/// Fields and functions that move with time or orders in ways a projection cannot follow.
const UNFOLLOWED: &[&str] = &["days_in_stage", "orders_in_last", "revenue_in_last", "events_in_last"];

/// The projected customer on one day.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct State<'a> {
    /// Purchase orders.
    pub orders: f64,
    /// Days since the last purchase.
    pub days_since_last_order: f64,
    /// Days since the first purchase.
    pub days_since_first_order: f64,
    /// The stage, if scored.
    pub stage: Option<&'a str>,
    /// P(alive), if scored.
    pub p_alive: Option<f64>,
    /// Days until the predicted next purchase, if scored.
    pub days_to_next_purchase: Option<f64>,
}

/// Why an expression cannot be projected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` changes in ways a projection of purchases does not follow")]
pub struct Unsupported(pub String);

#[derive(Debug, Clone, PartialEq)]
enum Literal {
    Number(f64),
    Text(String),
}

#[derive(Debug, Clone, PartialEq)]
enum Node {
    And(Box<Node>, Box<Node>),
    Or(Box<Node>, Box<Node>),
    Not(Box<Node>),
    /// The value of `fixed[i]` for the customer.
    Fixed(usize),
    Compare {
        field: Moving,
        op: BinOp,
        value: Literal,
    },
    In {
        field: Moving,
        values: Vec<Literal>,
    },
}

/// An expression split into moving conditions and fixed sub-expressions.
#[derive(Debug, Clone, PartialEq)]
pub struct Projection {
    node: Node,
    /// The sub-expressions that keep today's value, in the order [`Projection::eval`] takes
    /// their per-customer values.
    pub fixed: Vec<Expr>,
    moving: Vec<Moving>,
}

impl Projection {
    /// Splits `expr` (a checked segment expression).
    pub fn split(expr: &Expr) -> Result<Projection, Unsupported> {
        let mut fixed = Vec::new();
        let mut moving = Vec::new();
        let node = split(expr, &mut fixed, &mut moving)?;
        Ok(Projection { node, fixed, moving })
    }

    /// Whether a condition reads `field`.
    pub fn reads(&self, field: Moving) -> bool {
        self.moving.contains(&field)
    }

    /// The expression's value for a customer in `state` whose fixed sub-expressions are
    /// `fixed` (indexed like [`Projection::fixed`]).
    pub fn eval(&self, state: &State<'_>, fixed: &dyn Fn(usize) -> bool) -> bool {
        eval(&self.node, state, fixed)
    }
}

/// The moving field or unfollowed name `expr` mentions first, if any.
fn mentions(expr: &Expr) -> (bool, Option<String>) {
    match expr {
        Expr::Field { name, .. } if UNFOLLOWED.contains(&name.as_str()) => (true, Some(name.clone())),
        Expr::Field { name, .. } => (Moving::of(name).is_some(), None),
        Expr::Call { name, args, .. } => {
            if UNFOLLOWED.contains(&name.as_str()) {
                return (true, Some(format!("{name}(…)")));
            }
            args.iter().map(mentions).fold((false, None), |a, b| (a.0 || b.0, a.1.or(b.1)))
        }
        Expr::Not { expr, .. } => mentions(expr),
        Expr::And(a, b) | Expr::Or(a, b) | Expr::Compare { left: a, right: b, .. } => {
            let (x, y) = (mentions(a), mentions(b));
            (x.0 || y.0, x.1.or(y.1))
        }
        Expr::In { expr, values } => {
            std::iter::once(&**expr).chain(values).map(mentions).fold((false, None), |a, b| (a.0 || b.0, a.1.or(b.1)))
        }
        _ => (false, None),
    }
}

fn literal(expr: &Expr) -> Option<Literal> {
    match expr {
        Expr::Number { value, .. } => Some(Literal::Number(*value)),
        Expr::Duration { days, .. } => Some(Literal::Number(*days)),
        Expr::Text { value, .. } => Some(Literal::Text(value.clone())),
        _ => None,
    }
}

fn moving_field(expr: &Expr) -> Option<Moving> {
    match expr {
        Expr::Field { name, .. } => Moving::of(name),
        _ => None,
    }
}

/// `op` with its sides swapped (`3 < orders` is `orders > 3`).
fn flipped(op: BinOp) -> BinOp {
    match op {
        BinOp::Lt => BinOp::Gt,
        BinOp::Le => BinOp::Ge,
        BinOp::Gt => BinOp::Lt,
        BinOp::Ge => BinOp::Le,
        other => other,
    }
}

fn split(expr: &Expr, fixed: &mut Vec<Expr>, moving: &mut Vec<Moving>) -> Result<Node, Unsupported> {
    let (moves, unfollowed) = mentions(expr);
    if let Some(name) = unfollowed {
        return Err(Unsupported(name));
    }
    if !moves {
        fixed.push(expr.clone());
        return Ok(Node::Fixed(fixed.len() - 1));
    }
    let mut note = |field| {
        if !moving.contains(&field) {
            moving.push(field);
        }
        field
    };
    Ok(match expr {
        Expr::And(a, b) => Node::And(Box::new(split(a, fixed, moving)?), Box::new(split(b, fixed, moving)?)),
        Expr::Or(a, b) => Node::Or(Box::new(split(a, fixed, moving)?), Box::new(split(b, fixed, moving)?)),
        Expr::Not { expr, .. } => Node::Not(Box::new(split(expr, fixed, moving)?)),
        Expr::Compare { op, left, right } => {
            match (moving_field(left), literal(right), moving_field(right), literal(left)) {
                (Some(field), Some(value), _, _) => Node::Compare { field: note(field), op: *op, value },
                (_, _, Some(field), Some(value)) => Node::Compare { field: note(field), op: flipped(*op), value },
                _ => return Err(Unsupported(format!("a comparison at column {}", expr.start() + 1))),
            }
        }
        Expr::In { expr: inner, values } => {
            let field =
                moving_field(inner).ok_or_else(|| Unsupported(format!("`in` at column {}", inner.start() + 1)))?;
            let values = values
                .iter()
                .map(|v| literal(v).ok_or_else(|| Unsupported(format!("`in` at column {}", v.start() + 1))))
                .collect::<Result<Vec<_>, _>>()?;
            Node::In { field: note(field), values }
        }
        other => return Err(Unsupported(format!("the condition at column {}", other.start() + 1))),
    })
}

/// A moving field's value: a number or text; `None` when the customer has none.
enum Value<'a> {
    Number(f64),
    Text(&'a str),
}

fn value<'a>(field: Moving, s: &State<'a>) -> Option<Value<'a>> {
    Some(match field {
        Moving::Orders => Value::Number(s.orders),
        Moving::DaysSinceLastOrder => Value::Number(s.days_since_last_order),
        Moving::DaysSinceFirstOrder => Value::Number(s.days_since_first_order),
        Moving::Stage => Value::Text(s.stage?),
        Moving::PAlive => Value::Number(s.p_alive?),
        Moving::DaysToNextPurchase => Value::Number(s.days_to_next_purchase?),
    })
}

fn compare(left: &Value<'_>, op: BinOp, right: &Literal) -> bool {
    let ordering = match (left, right) {
        (Value::Number(a), Literal::Number(b)) => a.partial_cmp(b),
        (Value::Text(a), Literal::Text(b)) => Some((*a).cmp(b.as_str())),
        _ => None,
    };
    let Some(o) = ordering else { return false };
    match op {
        BinOp::Eq => o.is_eq(),
        BinOp::Ne => o.is_ne(),
        BinOp::Lt => o.is_lt(),
        BinOp::Le => o.is_le(),
        BinOp::Gt => o.is_gt(),
        BinOp::Ge => o.is_ge(),
    }
}

fn eval(node: &Node, state: &State<'_>, fixed: &dyn Fn(usize) -> bool) -> bool {
    match node {
        Node::And(a, b) => eval(a, state, fixed) && eval(b, state, fixed),
        Node::Or(a, b) => eval(a, state, fixed) || eval(b, state, fixed),
        Node::Not(a) => !eval(a, state, fixed),
        Node::Fixed(i) => fixed(*i),
        Node::Compare { field, op, value: literal } => value(*field, state).is_some_and(|v| compare(&v, *op, literal)),
        Node::In { field, values } => {
            value(*field, state).is_some_and(|v| values.iter().any(|l| compare(&v, BinOp::Eq, l)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse;

    fn state(orders: f64, since: f64, stage: Option<&str>, p_alive: Option<f64>) -> State<'_> {
        State {
            orders,
            days_since_last_order: since,
            days_since_first_order: since + 100.0,
            stage,
            p_alive,
            days_to_next_purchase: None,
        }
    }

    #[test]
    fn moving_conditions_are_evaluated_on_the_state_and_the_rest_is_fixed() {
        let expr =
            parse(r#"orders >= 4 and consent.email and (stage in ("slipping", "lapsing") or 0.3 > p_alive)"#).unwrap();
        let p = Projection::split(&expr).unwrap();
        assert_eq!(p.fixed.len(), 1);
        assert!(matches!(&p.fixed[0], Expr::Field { name, .. } if name == "consent.email"), "{:?}", p.fixed);
        assert!(p.reads(Moving::Orders) && p.reads(Moving::Stage) && p.reads(Moving::PAlive));
        assert!(!p.reads(Moving::DaysSinceLastOrder));
        let yes = |_| true;
        let no = |_| false;
        assert!(p.eval(&state(4.0, 3.0, Some("slipping"), Some(0.9)), &yes));
        assert!(!p.eval(&state(4.0, 3.0, Some("slipping"), Some(0.9)), &no), "without consent");
        assert!(!p.eval(&state(3.0, 3.0, Some("slipping"), Some(0.9)), &yes), "too few orders");
        assert!(p.eval(&state(9.0, 3.0, Some("loyal"), Some(0.2)), &yes), "0.3 > p_alive, flipped");
        assert!(!p.eval(&state(9.0, 3.0, Some("loyal"), Some(0.3)), &yes));
        // Not scored: the stage and P(alive) comparisons are false, `!=` too (as in SQL).
        assert!(!p.eval(&state(9.0, 3.0, None, None), &yes));
        let ne = Projection::split(&parse(r#"stage != "lost""#).unwrap()).unwrap();
        assert!(ne.eval(&state(1.0, 1.0, Some("new"), None), &no));
        assert!(!ne.eval(&state(1.0, 1.0, None, None), &no));
        let not = Projection::split(&parse("not (days_since_last_order > 90)").unwrap()).unwrap();
        assert!(not.eval(&state(1.0, 90.0, None, None), &no) && !not.eval(&state(1.0, 90.5, None, None), &no));
    }

    #[test]
    fn an_expression_without_moving_fields_is_one_fixed_part() {
        let expr = parse(r#"consent.email and attributes.tier = "gold""#).unwrap();
        let p = Projection::split(&expr).unwrap();
        assert_eq!(p.fixed, [expr]);
        assert!(p.eval(&state(0.0, 0.0, None, None), &|i| i == 0));
    }

    #[test]
    fn what_a_projection_cannot_follow_is_refused_by_name() {
        for (text, name) in [
            ("orders_in_last(90d) >= 2", "orders_in_last(…)"),
            ("days_in_stage > 30 and orders > 1", "days_in_stage"),
            ("orders > 1 and revenue_in_last(30d) > 100", "revenue_in_last(…)"),
        ] {
            assert_eq!(Projection::split(&parse(text).unwrap()), Err(Unsupported(name.into())), "{text}");
        }
        // A moving field compared with another field, not a literal.
        assert!(Projection::split(&parse("orders > days_since_last_order").unwrap()).is_err());
    }
}
