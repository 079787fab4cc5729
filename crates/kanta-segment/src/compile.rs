//! Compilation of a checked [`Expr`] to a SQL condition over `customers c`.
//!
//! Every comparison is wrapped in `COALESCE(…, FALSE)`: a condition on a value a customer does
//! not have (no orders, no such attribute) is false, so `not` of it is true — two-valued logic,
//! as users read it, instead of SQL's NULL.

use kanta_domain::purchase::PURCHASE_SQL as PURCHASE;

use crate::parse::Expr;

/// The SQL dialect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// SQLite (JSON as text, `json_extract`).
    Sqlite,
    /// PostgreSQL (JSONB operators).
    Postgres,
}

/// A bound parameter.
#[derive(Debug, Clone, PartialEq)]
pub enum Param {
    /// Text.
    Text(String),
    /// A floating-point number.
    Number(f64),
    /// An integer (times in microseconds).
    Int(i64),
    /// A boolean.
    Bool(bool),
}

/// A SQL condition and its parameters, numbered `$first`, `$first+1`, ….
#[derive(Debug, Clone, PartialEq)]
pub struct Compiled {
    /// The condition, over the alias `c` for `customers`.
    pub sql: String,
    /// Values for the placeholders, in order.
    pub params: Vec<Param>,
}

/// The orders `o` of the customer `c`.
const OWN: &str = "o.customer_id = c.id";
const MICROS_PER_DAY: f64 = 86_400_000_000.0;

struct Writer {
    dialect: Dialect,
    now: i64,
    first: usize,
    params: Vec<Param>,
}

impl Writer {
    fn param(&mut self, p: Param) -> String {
        self.params.push(p);
        format!("${}", self.first + self.params.len() - 1)
    }

    fn since(&mut self, days: f64) -> String {
        let micros = (days * MICROS_PER_DAY).round() as i64;
        self.param(Param::Int(self.now.saturating_sub(micros)))
    }

    /// A condition (boolean context).
    fn condition(&mut self, e: &Expr) -> String {
        match e {
            Expr::And(a, b) => format!("({} AND {})", self.condition(a), self.condition(b)),
            Expr::Or(a, b) => format!("({} OR {})", self.condition(a), self.condition(b)),
            Expr::Not { expr, .. } => format!("(NOT {})", self.condition(expr)),
            Expr::Compare { op, left, right } => {
                let kind = value_kind(left, right);
                let (l, r) = (self.value(left, kind), self.value(right, kind));
                format!("COALESCE({l} {} {r}, FALSE)", op.sql())
            }
            Expr::In { expr, values } => {
                let kind = value_kind(expr, &values[0]);
                let l = self.value(expr, kind);
                let list: Vec<String> = values.iter().map(|v| self.value(v, kind)).collect();
                format!("COALESCE({l} IN ({}), FALSE)", list.join(", "))
            }
            Expr::Attribute { .. } => {
                let v = self.value(e, Kind::Bool);
                let t = self.param(Param::Bool(true));
                format!("COALESCE({v} = {t}, FALSE)")
            }
            Expr::Bool { value, .. } => if *value { "TRUE" } else { "FALSE" }.into(),
            other => format!("COALESCE({}, FALSE)", self.value(other, Kind::Bool)),
        }
    }

    /// A value of `kind` (number, text or boolean).
    fn value(&mut self, e: &Expr, kind: Kind) -> String {
        match e {
            Expr::Number { value, .. } => self.param(Param::Number(*value)),
            Expr::Text { value, .. } => self.param(Param::Text(value.clone())),
            Expr::Bool { value, .. } => self.param(Param::Bool(*value)),
            Expr::Duration { days, .. } => self.param(Param::Number(*days)),
            Expr::Field { name, .. } => self.field(name),
            Expr::Attribute { key, .. } => self.attribute(key, kind),
            Expr::Call { name, args, .. } => self.call(name, args),
            // Conditions used as values (`consent.email = (orders > 1)`).
            other => self.condition(other),
        }
    }

    fn field(&mut self, name: &str) -> String {
        let purchase_time = |agg: &str, w: &mut Writer| {
            let now = w.param(Param::Int(w.now));
            format!(
                "(CAST({now} - (SELECT {agg}(o.time) FROM orders o WHERE {OWN} AND {PURCHASE}) AS DOUBLE PRECISION) / {MICROS_PER_DAY:.1})"
            )
        };
        match name {
            "email" | "phone" | "name" | "timezone" | "locale" => format!("c.{name}"),
            "orders" => format!("(SELECT COUNT(*) FROM orders o WHERE {OWN} AND {PURCHASE})"),
            "revenue" => revenue(""),
            "average_order_value" => {
                format!("({} / NULLIF((SELECT COUNT(*) FROM orders o WHERE {OWN} AND {PURCHASE}), 0))", revenue(""))
            }
            "days_since_last_order" => purchase_time("MAX", self),
            "days_since_first_order" => purchase_time("MIN", self),
            "consent.email" | "consent.sms" => {
                let channel = if name == "consent.email" { "email" } else { "sms" };
                // The latest change wins; on a tie, `revoked` (as the 360 view shows it).
                format!(
                    "((SELECT k.status FROM consent k WHERE k.customer_id = c.id AND k.channel = '{channel}' \
                     ORDER BY k.time DESC, k.status DESC LIMIT 1) = 'granted')"
                )
            }
            "stage" | "rfm_segment" | "value_tier" | "main_category" | "next_category" | "p_alive"
            | "expected_spend" | "clv_12m" | "p_purchase_30d" => score(name),
            "r_score" => score("r"),
            "f_score" => score("f"),
            "m_score" => score("m"),
            "expected_purchases_30d" => score("expected_30d"),
            "expected_purchases_90d" => score("expected_90d"),
            "expected_purchases_365d" => score("expected_365d"),
            "days_in_stage" => {
                let now = self.param(Param::Int(self.now));
                format!("(CAST({now} - {} AS DOUBLE PRECISION) / {MICROS_PER_DAY:.1})", score("stage_since"))
            }
            "days_to_next_purchase" => {
                let now = self.param(Param::Int(self.now));
                format!("(CAST({} - {now} AS DOUBLE PRECISION) / {MICROS_PER_DAY:.1})", score("next_purchase_at"))
            }
            // `check` admits only the catalogue; an unknown name compiles to a constant.
            _ => "NULL".into(),
        }
    }

    fn call(&mut self, name: &str, args: &[Expr]) -> String {
        let text = |i: usize| match args.get(i) {
            Some(Expr::Text { value, .. }) => value.clone(),
            _ => String::new(),
        };
        let days = |i: usize| match args.get(i) {
            Some(Expr::Duration { days, .. }) => *days,
            _ => 0.0,
        };
        match name {
            "bought_category" | "bought_product" => {
                let column = if name == "bought_category" { "category" } else { "product" };
                let p = self.param(Param::Text(text(0)));
                format!(
                    "EXISTS (SELECT 1 FROM order_lines l JOIN orders o ON o.id = l.order_id \
                     WHERE {OWN} AND {PURCHASE} AND l.{column} = {p})"
                )
            }
            "orders_in_last" => {
                let since = self.since(days(0));
                format!("(SELECT COUNT(*) FROM orders o WHERE {OWN} AND {PURCHASE} AND o.time >= {since})")
            }
            "revenue_in_last" => {
                let since = self.since(days(0));
                revenue(&format!(" AND o.time >= {since}"))
            }
            "did_event" => {
                let p = self.param(Param::Text(text(0)));
                format!("EXISTS (SELECT 1 FROM events e WHERE e.customer_id = c.id AND e.name = {p})")
            }
            "events_in_last" => {
                let p = self.param(Param::Text(text(0)));
                let since = self.since(days(1));
                format!(
                    "(SELECT COUNT(*) FROM events e WHERE e.customer_id = c.id AND e.name = {p} AND e.time >= {since})"
                )
            }
            _ => "NULL".into(),
        }
    }

    /// `attributes.KEY` as a value of `kind`; NULL where the stored JSON has another type.
    fn attribute(&mut self, key: &str, kind: Kind) -> String {
        match self.dialect {
            Dialect::Sqlite => {
                // Keys are identifiers ([A-Za-z0-9_]), so the quoted path needs no escaping.
                let path = self.param(Param::Text(format!("$.\"{key}\"")));
                let types = match kind {
                    Kind::Number => "'integer', 'real'",
                    Kind::Text => "'text'",
                    Kind::Bool => "'true', 'false'",
                };
                format!(
                    "(CASE WHEN json_type(c.attributes, {path}) IN ({types}) THEN json_extract(c.attributes, {path}) END)"
                )
            }
            Dialect::Postgres => {
                let k = self.param(Param::Text(key.to_string()));
                let (json_type, cast) = match kind {
                    Kind::Number => ("number", "::DOUBLE PRECISION"),
                    Kind::Text => ("string", ""),
                    Kind::Bool => ("boolean", "::BOOLEAN"),
                };
                format!(
                    "(CASE WHEN jsonb_typeof(c.attributes -> {k}) = '{json_type}' THEN (c.attributes ->> {k}){cast} END)"
                )
            }
        }
    }
}

/// Purchase revenue in currency units (money is stored in 1/10,000), with an extra filter.
/// A column of the customer's row in `scores` (a name from this file, never from the input).
fn score(column: &str) -> String {
    format!("(SELECT s.{column} FROM scores s WHERE s.customer_id = c.id)")
}

fn revenue(filter: &str) -> String {
    format!(
        "(CAST((SELECT COALESCE(SUM(o.amount), 0) FROM orders o WHERE {OWN} AND {PURCHASE}{filter}) AS DOUBLE PRECISION) / 10000.0)"
    )
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Number,
    Text,
    Bool,
}

/// What a comparison compares: decided by its non-attribute side (both sides have one type
/// after checking).
fn value_kind(a: &Expr, b: &Expr) -> Kind {
    let of = |e: &Expr| match e {
        Expr::Number { .. } | Expr::Duration { .. } => Some(Kind::Number),
        Expr::Text { .. } => Some(Kind::Text),
        Expr::Bool { .. } => Some(Kind::Bool),
        Expr::Field { name, .. } => crate::FIELDS.iter().find(|(f, _)| f == name).map(|(_, t)| match t {
            crate::Type::Number => Kind::Number,
            crate::Type::Text => Kind::Text,
            _ => Kind::Bool,
        }),
        Expr::Call { name, .. } => crate::FUNCTIONS.iter().find(|(f, _, _)| f == name).map(|(_, _, t)| match t {
            crate::Type::Number => Kind::Number,
            _ => Kind::Bool,
        }),
        Expr::Attribute { .. } => None,
        _ => Some(Kind::Bool),
    };
    of(a).or_else(|| of(b)).unwrap_or(Kind::Text)
}

/// Compile a checked expression (from [`crate::parse`]) for `dialect`; `now` (microseconds since
/// the epoch) anchors `days_since_…` and `…_in_last`; placeholders start at `$first`.
pub fn compile(expr: &Expr, dialect: Dialect, now: i64, first: usize) -> Compiled {
    let mut w = Writer { dialect, now, first, params: Vec::new() };
    let sql = w.condition(expr);
    Compiled { sql, params: w.params }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse;

    const NOW: i64 = 1_730_000_000_000_000;

    #[test]
    fn values_become_parameters_and_the_sql_has_only_the_vocabulary() {
        let e = parse("bought_category(\"coffee\") and not bought_category(\"grinders\") and orders_in_last(90d) >= 2")
            .expect("valid");
        let c = compile(&e, Dialect::Postgres, NOW, 1);
        assert_eq!(
            c.params,
            [
                Param::Text("coffee".into()),
                Param::Text("grinders".into()),
                Param::Int(NOW - 90 * 86_400_000_000),
                Param::Number(2.0)
            ]
        );
        assert!(!c.sql.contains("coffee") && !c.sql.contains("grinders"));
        assert!(
            c.sql.contains("l.category = $1") && c.sql.contains("o.time >= $3") && c.sql.contains(">= $4"),
            "{}",
            c.sql
        );
    }

    #[test]
    fn score_fields_read_the_latest_scores_row() {
        let e = parse("clv_12m > 500 and p_alive < 0.4 and stage = \"slipping\" and days_to_next_purchase < 30")
            .expect("valid");
        let c = compile(&e, Dialect::Sqlite, NOW, 1);
        for column in ["s.clv_12m", "s.p_alive", "s.stage", "s.next_purchase_at"] {
            assert!(
                c.sql.contains(&format!("(SELECT {column} FROM scores s WHERE s.customer_id = c.id)")),
                "{}",
                c.sql
            );
        }
        assert_eq!(
            c.params,
            [
                Param::Number(500.0),
                Param::Number(0.4),
                Param::Text("slipping".into()),
                Param::Int(NOW),
                Param::Number(30.0)
            ]
        );
        let err = parse("stage > 3").expect_err("text vs number");
        assert_eq!((err.column, err.message.as_str()), (9, "cannot compare text with a number"), "{err}");
    }

    #[test]
    fn placeholders_start_where_asked() {
        let e = parse("revenue > 500 and email = \"a@b.fi\"").expect("valid");
        let c = compile(&e, Dialect::Sqlite, NOW, 3);
        assert!(c.sql.contains("> $3") && c.sql.contains("c.email = $4"), "{}", c.sql);
    }

    #[test]
    fn attributes_are_typed_per_dialect_with_the_key_bound() {
        let e = parse("attributes.tier = \"gold\" and attributes.visits > 3").expect("valid");
        let lite = compile(&e, Dialect::Sqlite, NOW, 1);
        assert_eq!(lite.params[0], Param::Text("$.\"tier\"".into()));
        assert!(lite.sql.contains("json_type(c.attributes, $1) IN ('text')"), "{}", lite.sql);
        assert!(lite.sql.contains("IN ('integer', 'real')"), "{}", lite.sql);
        let pg = compile(&e, Dialect::Postgres, NOW, 1);
        assert_eq!(pg.params[0], Param::Text("tier".into()));
        assert!(pg.sql.contains("jsonb_typeof(c.attributes -> $3) = 'number'"), "{}", pg.sql);
    }

    #[test]
    fn injection_attempts_stay_data_or_are_refused() {
        let nasty = r#"x'); DROP TABLE customers; --"#;
        let e = parse(&format!("bought_product(\"{nasty}\")")).expect("a string is a string");
        for dialect in [Dialect::Sqlite, Dialect::Postgres] {
            let c = compile(&e, dialect, NOW, 1);
            assert!(!c.sql.contains("DROP"), "{}", c.sql);
            assert_eq!(c.params, [Param::Text(nasty.into())]);
        }
        for text in [
            "orders > 1; DROP TABLE customers",
            "orders > 1 -- comment",
            "pg_sleep(10)",
            "customers.id > 0",
            "tokens.hash = \"x\"",
            "attributes.a.b = 1",
            "email = 'x'",
            "orders > 1 union select 1",
            "lower(email) = \"x\"",
        ] {
            assert!(parse(text).is_err(), "{text} must be refused");
        }
    }
}
