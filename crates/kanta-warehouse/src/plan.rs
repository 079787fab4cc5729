//! Every statement of the push-down, written once over a [`Dialect`].
//!
//! The tables a run keeps (session tables, [`Dialect::keep`]):
//!
//! ```text
//! kanta_pd_orders     one row per order: customer, order id, day (days since 1970-01-01), amount (raw money units)
//! kanta_pd_days       one row per customer and purchase day up to --as-of: amount, orders, month, k (1st, 2nd, … day),
//!                     prev (day before), cohort (the first day's month), new_month (1 when the day opens a month)
//! kanta_pd_customers  one row per customer with a purchase: the per-customer summary of `kanta analyze`
//! kanta_pd_ranked     revenue, orders and the rank by revenue (descending; ties by more orders)
//! kanta_pd_histories  the predictions per distinct (x, t_x, T), written by kanta
//! kanta_pd_scored     customers with their RFM scores, rule stage and predictions
//! ```
//!
//! and the one it leaves: `kanta_scores` (`--into`), the columns of `customers.csv`.
//!
//! Definitions follow `kanta_core::analysis` exactly: an order is the sum of its lines (lines
//! share an order id; without an order column every row is an order) at the day of its
//! earliest line; an order whose sum is negative is a return, zero a dropped order unless
//! `keep_zero`; a purchase day is a day with a purchase; frequency = purchase days − 1, and
//! so on. `tests/equality.rs` runs both paths on the same data.

use kanta_core::lifecycle::Stage;
use kanta_core::rfm::Segment;
use kanta_core::tier::Tier;

use crate::dialect::{ColumnType, Dialect, Param, Sql, SqlType};

/// The source's columns, resolved and checked.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceColumns {
    /// Customer id (any type; compared as text).
    pub customer: String,
    /// Order id, if the source has one.
    pub order: Option<String>,
    /// The time column and its type (date or timestamp).
    pub time: (String, ColumnType),
    /// The amount: one column, or quantity × unit price, with types.
    pub amount: Amount,
}

/// Where an amount comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum Amount {
    /// One column.
    Column(String, ColumnType),
    /// quantity × unit price.
    Product((String, ColumnType), (String, ColumnType)),
}

/// The names of the session tables.
pub mod tables {
    /// Orders.
    pub const ORDERS: &str = "kanta_pd_orders";
    /// Purchase days.
    pub const DAYS: &str = "kanta_pd_days";
    /// The per-customer summary.
    pub const CUSTOMERS: &str = "kanta_pd_customers";
    /// Customers ranked by revenue.
    pub const RANKED: &str = "kanta_pd_ranked";
    /// Predictions per history.
    pub const HISTORIES: &str = "kanta_pd_histories";
    /// Customers with scores.
    pub const SCORED: &str = "kanta_pd_scored";
    /// All of them, in the order they are dropped.
    pub const ALL: [&str; 6] = [SCORED, HISTORIES, RANKED, CUSTOMERS, DAYS, ORDERS];
}

/// The statements of one run.
#[derive(Debug, Clone)]
pub struct Plan {
    d: Dialect,
    source: String,
    columns: SourceColumns,
    keep_zero: bool,
}

fn plain(text: String) -> Sql {
    Sql { text, params: Vec::new() }
}

/// Builds a statement whose values are bound as its text is written.
struct Builder {
    d: Dialect,
    sql: Sql,
}

impl Builder {
    fn new(d: Dialect) -> Builder {
        Builder { d, sql: Sql::default() }
    }
    fn int(&mut self, v: i64) -> String {
        self.d.bind(&mut self.sql, Param::Int(v))
    }
    fn float(&mut self, v: f64) -> String {
        self.d.bind(&mut self.sql, Param::Float(v))
    }
    fn finish(mut self, text: String) -> Sql {
        self.sql.text = text;
        self.sql
    }
}

/// RFM score edges ([`kanta_core::rfm::Quintiles`]): R counts the `lower` edges of days since
/// the last purchase above the customer's; F and M the `upper` edges of orders and revenue
/// below theirs.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RfmEdges {
    /// Days since the last purchase (`lower`).
    pub days: Vec<i64>,
    /// Orders (`upper`).
    pub orders: Vec<i64>,
    /// Revenue in raw units (`upper`).
    pub revenue: Vec<i64>,
}

impl Plan {
    /// The plan for `source` (a quoted table name or a parenthesised query with an alias).
    pub fn new(d: Dialect, source: String, columns: SourceColumns, keep_zero: bool) -> Plan {
        Plan { d, source, columns, keep_zero }
    }

    fn t(&self, name: &str) -> String {
        self.d.ident(name)
    }

    fn day_expr(&self) -> String {
        let (name, ty) = &self.columns.time;
        // Checked when the columns were resolved (`run::resolve`).
        self.d.epoch_day(&self.d.ident(name), ty).unwrap_or_else(|| "NULL".into())
    }

    fn amount_expr(&self) -> String {
        let d = self.d;
        match &self.columns.amount {
            Amount::Column(name, ty) => d.money(&d.ident(name), ty),
            Amount::Product((q, qt), (p, pt)) => d.money_product((&d.ident(q), qt), (&d.ident(p), pt)),
        }
        .unwrap_or_else(|| "NULL".into())
    }

    /// Conditions that make a source row unusable, one per role: (role, column, condition).
    fn problems(&self) -> Vec<(&'static str, String, String)> {
        let d = self.d;
        let text = |c: &str| format!("({0} IS NULL OR {1} = '')", d.ident(c), d.cast(&d.ident(c), SqlType::Text));
        let mut out = vec![("customer", self.columns.customer.clone(), text(&self.columns.customer))];
        if let Some(o) = &self.columns.order {
            out.push(("order", o.clone(), text(o)));
        }
        let (time, _) = &self.columns.time;
        out.push(("time", time.clone(), format!("{} IS NULL", d.ident(time))));
        match &self.columns.amount {
            Amount::Column(a, _) => out.push(("amount", a.clone(), format!("{} IS NULL", d.ident(a)))),
            Amount::Product((q, _), (p, _)) => {
                out.push(("quantity", q.clone(), format!("{} IS NULL", d.ident(q))));
                out.push(("unit price", p.clone(), format!("{} IS NULL", d.ident(p))));
            }
        }
        out
    }

    /// The roles and columns [`Plan::source_rows`] counts problems of, in its column order.
    pub fn problem_columns(&self) -> Vec<(&'static str, String)> {
        self.problems().into_iter().map(|(role, column, _)| (role, column)).collect()
    }

    /// Rows of the source, the rows with any problem, then the rows with a problem in each of
    /// [`Plan::problem_columns`].
    pub fn source_rows(&self) -> Sql {
        let d = self.d;
        let problems = self.problems();
        let any: Vec<&str> = problems.iter().map(|(_, _, cond)| cond.as_str()).collect();
        let count = |cond: &str| d.cast(&format!("SUM(CASE WHEN {cond} THEN 1 ELSE 0 END)"), SqlType::BigInt);
        let counts: Vec<String> = problems.iter().map(|(_, _, cond)| count(cond)).collect();
        plain(format!(
            "SELECT {}, {}, {} FROM {}",
            d.cast("COUNT(*)", SqlType::BigInt),
            count(&any.join(" OR ")),
            counts.join(", "),
            self.source
        ))
    }

    /// `kanta_pd_orders`: the usable rows summed into orders.
    pub fn orders(&self) -> Sql {
        let d = self.d;
        let valid: Vec<String> = self.problems().into_iter().map(|(_, _, cond)| format!("NOT {cond}")).collect();
        let customer = d.cast(&d.ident(&self.columns.customer), SqlType::Text);
        let lines = match &self.columns.order {
            Some(o) => format!(
                "SELECT {customer} AS customer, {} AS order_id, {} AS d, {} AS amount FROM {} WHERE {}",
                d.cast(&d.ident(o), SqlType::Text),
                self.day_expr(),
                self.amount_expr(),
                self.source,
                valid.join(" AND ")
            ),
            None => format!(
                "SELECT {customer} AS customer, {} AS d, {} AS amount FROM {} WHERE {}",
                self.day_expr(),
                self.amount_expr(),
                self.source,
                valid.join(" AND ")
            ),
        };
        let select = match &self.columns.order {
            Some(_) => format!(
                "SELECT customer, order_id, MIN(d) AS d, {} AS amount FROM ({lines}) l GROUP BY customer, order_id",
                d.cast("SUM(amount)", SqlType::BigInt)
            ),
            None => format!("SELECT customer, d, amount FROM ({lines}) l"),
        };
        plain(d.keep(&self.t(tables::ORDERS), &select))
    }

    /// The last order day and the number of orders.
    pub fn order_facts(&self) -> Sql {
        let d = self.d;
        plain(format!(
            "SELECT {}, {} FROM {}",
            d.cast("MAX(d)", SqlType::BigInt),
            d.cast("COUNT(*)", SqlType::BigInt),
            self.t(tables::ORDERS)
        ))
    }

    /// Order ids that appear with more than one customer: how many, and one of them.
    pub fn order_conflicts(&self) -> Option<Sql> {
        self.columns.order.as_ref()?;
        let d = self.d;
        Some(plain(format!(
            "SELECT {}, MIN(order_id) FROM (SELECT order_id FROM {} GROUP BY order_id HAVING COUNT(*) > 1) x",
            d.cast("COUNT(*)", SqlType::BigInt),
            self.t(tables::ORDERS)
        )))
    }

    fn is_purchase(&self, amount: &str) -> String {
        if self.keep_zero { format!("{amount} >= 0") } else { format!("{amount} > 0") }
    }

    /// Orders after `as_of`, zero-amount orders dropped, return orders and their amount.
    pub fn order_counts(&self, as_of: i64) -> Sql {
        let d = self.d;
        let mut b = Builder::new(d);
        let day = b.int(as_of);
        let zero = if self.keep_zero { "1 = 0".to_owned() } else { "amount = 0".to_owned() };
        let sum = |cond: &str, value: &str| {
            d.cast(&format!("SUM(CASE WHEN {cond} THEN {value} ELSE 0 END)"), SqlType::BigInt)
        };
        let text = format!(
            "SELECT {}, {}, {}, {} FROM {}",
            sum(&format!("d > {day}"), "1"),
            sum(&format!("d <= {day} AND {zero}"), "1"),
            sum(&format!("d <= {day} AND amount < 0"), "1"),
            sum(&format!("d <= {day} AND amount < 0"), "-amount"),
            self.t(tables::ORDERS)
        );
        b.finish(text)
    }

    /// `kanta_pd_days`: purchase days up to `as_of`.
    pub fn days(&self, as_of: i64) -> Sql {
        let d = self.d;
        let mut b = Builder::new(d);
        let day = b.int(as_of);
        let window = "PARTITION BY customer ORDER BY d";
        // `cohort` (the first day's month) and `new_month` (the day opens a month of activity)
        // come from the same sorted pass, so the cohort activity is one scan of this table.
        let select = format!(
            "SELECT customer, d, amount, orders, month, k, prev, FIRST_VALUE(month) OVER ({window}) AS cohort, \
             CASE WHEN LAG(month) OVER ({window}) = month THEN 0 ELSE 1 END AS new_month \
             FROM (SELECT customer, d, amount, orders, {month} AS month, ROW_NUMBER() OVER ({window}) AS k, LAG(d) OVER ({window}) AS prev \
             FROM (SELECT customer, d, {amount} AS amount, {orders} AS orders FROM {t} WHERE d <= {day} AND {purchase} GROUP BY customer, d) x) y",
            month = d.month_index("d"),
            amount = d.cast("SUM(amount)", SqlType::BigInt),
            orders = d.cast("COUNT(*)", SqlType::BigInt),
            t = self.t(tables::ORDERS),
            purchase = self.is_purchase("amount"),
        );
        b.finish(d.keep(&self.t(tables::DAYS), &select))
    }

    /// `kanta_pd_customers`: the per-customer summary (`CustomerSummary`), money in raw units.
    pub fn customers(&self, as_of: i64) -> Sql {
        let d = self.d;
        let mut b = Builder::new(d);
        let day = b.int(as_of);
        let window_start = b.int(as_of - 364);
        let big = |e: &str| d.cast(e, SqlType::BigInt);
        let select = format!(
            "SELECT c.customer, c.first_day, c.last_day, c.orders, c.revenue, c.frequency, c.repeat_value, c.revenue_12m, \
             c.first_repeat_gap, c.last_day - c.first_day AS recency, {day} - c.first_day AS t, {day} - c.last_day AS dsl, \
             {cohort} AS cohort, {returns} AS returns, {returned} AS returned \
             FROM (SELECT customer, MIN(d) AS first_day, MAX(d) AS last_day, {orders} AS orders, {revenue} AS revenue, \
             {frequency} AS frequency, {repeat} AS repeat_value, {r12} AS revenue_12m, \
             MAX(CASE WHEN k = 2 THEN d - prev END) AS first_repeat_gap FROM {days} GROUP BY customer) c \
             LEFT JOIN (SELECT customer, COUNT(*) AS returns, SUM(-amount) AS returned FROM {orders_t} \
             WHERE d <= {day} AND amount < 0 GROUP BY customer) r ON r.customer = c.customer",
            cohort = d.month_index("c.first_day"),
            returns = big("COALESCE(r.returns, 0)"),
            returned = big("COALESCE(r.returned, 0)"),
            orders = big("SUM(orders)"),
            revenue = big("SUM(amount)"),
            frequency = big("COUNT(*) - 1"),
            repeat = big("SUM(CASE WHEN k > 1 THEN amount ELSE 0 END)"),
            r12 = big(&format!("SUM(CASE WHEN d >= {window_start} THEN amount ELSE 0 END)")),
            days = self.t(tables::DAYS),
            orders_t = self.t(tables::ORDERS),
        );
        b.finish(d.keep(&self.t(tables::CUSTOMERS), &select))
    }

    /// Customers with a return up to `as_of`, and those of them without a purchase.
    pub fn return_customers(&self, as_of: i64) -> Sql {
        let d = self.d;
        let mut b = Builder::new(d);
        let day = b.int(as_of);
        let text = format!(
            "SELECT {}, {} FROM (SELECT DISTINCT customer FROM {} WHERE d <= {day} AND amount < 0) r \
             LEFT JOIN {} c ON c.customer = r.customer",
            d.cast("COUNT(*)", SqlType::BigInt),
            d.cast("SUM(CASE WHEN c.customer IS NULL THEN 1 ELSE 0 END)", SqlType::BigInt),
            self.t(tables::ORDERS),
            self.t(tables::CUSTOMERS)
        );
        b.finish(text)
    }

    /// Customers, orders, revenue, one-time buyers, and customers with at least 2…6 orders.
    pub fn totals(&self) -> Sql {
        let d = self.d;
        let big = |e: &str| d.cast(e, SqlType::BigInt);
        let mut columns = vec![
            big("COUNT(*)"),
            big("SUM(orders)"),
            big("SUM(revenue)"),
            big("SUM(CASE WHEN orders = 1 THEN 1 ELSE 0 END)"),
        ];
        columns.extend((2..=6).map(|k| big(&format!("SUM(CASE WHEN orders >= {k} THEN 1 ELSE 0 END)"))));
        plain(format!("SELECT {} FROM {}", columns.join(", "), self.t(tables::CUSTOMERS)))
    }

    fn histogram(&self, value: &str, table: &str, filter: &str) -> Sql {
        let d = self.d;
        plain(format!(
            "SELECT {}, {} FROM {} WHERE {filter} GROUP BY 1 ORDER BY 1",
            d.cast(value, SqlType::BigInt),
            d.cast("COUNT(*)", SqlType::BigInt),
            self.t(table)
        ))
    }

    /// Gaps between consecutive purchase days, the longest bucket holding the longer ones.
    pub fn gap_histogram(&self, longest: i64) -> Sql {
        self.histogram(&format!("LEAST(d - prev, {longest})"), tables::DAYS, "prev IS NOT NULL")
    }

    /// Customers by days from the first to the second purchase day.
    pub fn first_gaps(&self) -> Sql {
        self.histogram("first_repeat_gap", tables::CUSTOMERS, "first_repeat_gap IS NOT NULL")
    }

    /// Customers by cohort month.
    pub fn first_months(&self) -> Sql {
        self.histogram("cohort", tables::CUSTOMERS, "1 = 1")
    }

    /// Customers by days since the last purchase.
    pub fn days_since_last(&self) -> Sql {
        self.histogram("dsl", tables::CUSTOMERS, "1 = 1")
    }

    /// Customers by orders.
    pub fn orders_histogram(&self) -> Sql {
        self.histogram("orders", tables::CUSTOMERS, "1 = 1")
    }

    /// (cohort, months since, customers active): the purchase days that open a month.
    pub fn activity(&self) -> Sql {
        let d = self.d;
        plain(format!(
            "SELECT {}, {}, {} FROM {} WHERE new_month = 1 GROUP BY 1, 2",
            d.cast("cohort", SqlType::BigInt),
            d.cast("month - cohort", SqlType::BigInt),
            d.cast("COUNT(*)", SqlType::BigInt),
            self.t(tables::DAYS),
        ))
    }

    /// `kanta_pd_ranked`: customers ranked by revenue, descending, ties by more orders.
    pub fn ranked(&self) -> Sql {
        let d = self.d;
        let select = format!(
            "SELECT revenue, orders, ROW_NUMBER() OVER (ORDER BY revenue DESC, orders DESC) AS rd FROM {}",
            self.t(tables::CUSTOMERS)
        );
        plain(d.keep(&self.t(tables::RANKED), &select))
    }

    /// The revenues at ascending 0-based `ranks` among `n` customers: (rank, revenue).
    pub fn revenue_at(&self, n: u64, ranks: &[u64]) -> Sql {
        let d = self.d;
        let mut b = Builder::new(d);
        let n = b.int(n as i64);
        let list: Vec<String> = ranks.iter().map(|&r| b.int(r as i64)).collect();
        let text = format!(
            "SELECT {n} - rd, revenue FROM {} WHERE {n} - rd IN ({})",
            self.t(tables::RANKED),
            if list.is_empty() { "NULL".to_owned() } else { list.join(", ") }
        );
        b.finish(text)
    }

    /// The revenue and orders of the top `top[i]` customers, and Σ ascending rank × revenue.
    pub fn concentration_top(&self, n: u64, top: [u64; 3]) -> Sql {
        let d = self.d;
        let mut b = Builder::new(d);
        let mut columns = Vec::new();
        for k in top {
            let k = b.int(k as i64);
            for value in ["revenue", "orders"] {
                columns.push(d.cast(&format!("SUM(CASE WHEN rd <= {k} THEN {value} ELSE 0 END)"), SqlType::BigInt));
            }
        }
        let n = b.int(n as i64);
        let double = |e: &str| d.cast(e, SqlType::Double);
        columns.push(format!("SUM({} * {})", double(&format!("{n} - rd + 1")), double("revenue")));
        columns.push(d.cast("SUM(revenue)", SqlType::BigInt));
        columns.push(d.cast("SUM(orders)", SqlType::BigInt));
        let text = format!("SELECT {} FROM {}", columns.join(", "), self.t(tables::RANKED));
        b.finish(text)
    }

    /// Revenue by Lorenz point (`ConcentrationSums::lorenz_point` of the ascending rank).
    pub fn lorenz(&self, n: u64) -> Sql {
        let d = self.d;
        let mut b = Builder::new(d);
        let n1 = b.int(n as i64);
        let n2 = b.int(n.max(1) as i64);
        let point = format!("{} + 1", d.div(&format!("100 * ({n1} - rd)"), &n2));
        let text = format!(
            "SELECT {}, {} FROM {} GROUP BY 1",
            d.cast(&point, SqlType::BigInt),
            d.cast("SUM(revenue)", SqlType::BigInt),
            self.t(tables::RANKED)
        );
        b.finish(text)
    }

    /// The distinct (x, recency, T) with their customers, ascending.
    pub fn histories(&self) -> Sql {
        let d = self.d;
        let big = |e: &str| d.cast(e, SqlType::BigInt);
        plain(format!(
            "SELECT {}, {}, {}, {} FROM {} GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
            big("frequency"),
            big("recency"),
            big("t"),
            big("COUNT(*)"),
            self.t(tables::CUSTOMERS)
        ))
    }

    /// The distinct (x, repeat value) with their customers, ascending.
    pub fn spends(&self) -> Sql {
        let d = self.d;
        let big = |e: &str| d.cast(e, SqlType::BigInt);
        plain(format!(
            "SELECT {}, {}, {} FROM {} GROUP BY 1, 2 ORDER BY 1, 2",
            big("frequency"),
            big("repeat_value"),
            big("COUNT(*)"),
            self.t(tables::CUSTOMERS)
        ))
    }

    /// `kanta_pd_scored`: customers with R, F, M, segment, rule stage and, when `models`, the
    /// predictions of their history; with `spend` (Gamma-Gamma's p, q, γ) their expected spend,
    /// computed here in the closed form `kanta_models::GammaGamma::conditional_expected_spend`
    /// evaluates — p(γ + x·z̄)/(p·x + q − 1), NULL when the denominator is not positive, with
    /// z̄ = (repeat value / 10,000) / x as `kanta_score::SpendKey::monetary` — operation for
    /// operation, so it has the same bits; and the CLV, `expected_spend × p_alive × clv_unit`.
    pub fn scored(
        &self,
        edges: &RfmEdges,
        lapse_days: u32,
        loyal_orders: u32,
        models: bool,
        spend: Option<[f64; 3]>,
    ) -> Sql {
        let d = self.d;
        let mut b = Builder::new(d);
        let mut count = |value: &str, edges: &[i64], op: &str| -> String {
            let terms: Vec<String> =
                edges.iter().map(|&e| format!("CASE WHEN {value} {op} {} THEN 1 ELSE 0 END", b.int(e))).collect();
            if terms.is_empty() { "1".to_owned() } else { format!("(1 + {})", terms.join(" + ")) }
        };
        let r = count("c.dsl", &edges.days, "<");
        let f = count("c.orders", &edges.orders, ">");
        let m = count("c.revenue", &edges.revenue, ">");
        let g = i64::from(lapse_days);
        let (g1, g2, loyal) = (b.int(g), b.int(2 * g), b.int(i64::from(loyal_orders)));
        let stage = format!(
            "CASE WHEN c.dsl > {g2} THEN {lost} WHEN c.dsl > {g1} THEN {lapsing} WHEN c.orders <= 1 THEN {new} \
             WHEN c.orders >= {loyal} THEN {loyal_name} ELSE {repeat} END",
            lost = d.string(Stage::Lost.name()),
            lapsing = d.string(Stage::Lapsing.name()),
            new = d.string(Stage::New.name()),
            loyal_name = d.string(Stage::Loyal.name()),
            repeat = d.string(Stage::Repeat.name()),
        );
        let double = |e: &str| d.cast(e, SqlType::Double);
        let expected_spend = match spend {
            Some([p, q, gamma]) => {
                let (p, q, gamma) = (b.float(p), b.float(q), b.float(gamma));
                let x = double("c.frequency");
                let mean = format!(
                    "CASE WHEN c.frequency = 0 THEN {} ELSE ({} / {}) / {x} END",
                    double("0"),
                    double("c.repeat_value"),
                    double("10000")
                );
                let denominator = format!("({p} * {x} + {q} - {})", double("1"));
                format!("CASE WHEN {denominator} > 0 THEN {p} * ({gamma} + {x} * ({mean})) / {denominator} END")
            }
            None => double("NULL"),
        };
        let scores = format!(
            "SELECT c.*, {r} AS r, {f} AS f, {m} AS m, {stage} AS rule_stage, {expected_spend} AS expected_spend FROM {} c",
            self.t(tables::CUSTOMERS)
        );
        let segment = segment_case(d, "s.r", &d.div("s.f + s.m + 1", "2"));
        let select = if models {
            format!(
                "SELECT s.*, {segment} AS segment, h.p_alive, h.e30, h.e90, h.e365, h.pp30, h.pp90, h.next_day, h.next_at, h.churn_risk, \
                 s.expected_spend * h.p_alive * h.clv_unit AS clv \
                 FROM ({scores}) s JOIN {hist} h ON h.x = s.frequency AND h.recency = s.recency AND h.t = s.t",
                hist = self.t(tables::HISTORIES),
            )
        } else {
            let null = d.cast("NULL", SqlType::Double);
            let day = d.cast("NULL", SqlType::BigInt);
            let text = d.cast("NULL", SqlType::Text);
            format!(
                "SELECT s.*, {segment} AS segment, {null} AS p_alive, {null} AS e30, {null} AS e90, {null} AS e365, \
                 {null} AS pp30, {null} AS pp90, {day} AS next_day, {day} AS next_at, {text} AS churn_risk, {null} AS clv \
                 FROM ({scores}) s"
            )
        };
        b.finish(d.keep(&self.t(tables::SCORED), &select))
    }

    /// Customers with a CLV, those with a positive one, the largest and the sum.
    pub fn clv_stats(&self) -> Sql {
        let d = self.d;
        plain(format!(
            "SELECT {}, {}, MAX(clv), SUM(clv) FROM {}",
            d.cast("COUNT(clv)", SqlType::BigInt),
            d.cast("SUM(CASE WHEN clv > 0 THEN 1 ELSE 0 END)", SqlType::BigInt),
            self.t(tables::SCORED)
        ))
    }

    /// The `k`-th smallest CLV (from 0), among the positive ones when `positive`.
    pub fn clv_at(&self, k: u64, positive: bool) -> Sql {
        let d = self.d;
        let mut b = Builder::new(d);
        let offset = b.int(k as i64);
        let filter = if positive { "clv > 0" } else { "clv IS NOT NULL" };
        let text = match d {
            Dialect::Postgres => {
                format!(
                    "SELECT clv FROM {} WHERE {filter} ORDER BY clv LIMIT 1 OFFSET {offset}",
                    self.t(tables::SCORED)
                )
            }
            // Spark's OFFSET takes a literal only.
            Dialect::Spark => {
                format!("SELECT clv FROM {} WHERE {filter} ORDER BY clv LIMIT 1 OFFSET {k}", self.t(tables::SCORED))
            }
        };
        b.finish(text)
    }

    /// The statements that write the score table `into` (quoted): the columns of
    /// `customers.csv`, the final stage with slipping (valuable: Champions or Loyal, or a
    /// positive CLV at or above `threshold`; P(alive) below `slipping_below`; new, repeat or
    /// loyal by the rules). `week` writes recency and T in weeks.
    ///
    /// With `store` (the number of customers), the table is the session table of a store's
    /// scoring run ([`Dialect::keep`]) and has two more columns: `value_tier`
    /// (`kanta_core::tier::tiers`: the rank by net revenue, ties sharing the best, cut at
    /// ⌈0.1 n⌉, ⌈0.3 n⌉ and ⌈0.6 n⌉) and `next_purchase_at` (µs since the epoch,
    /// `kanta_score::next_purchase_micros`).
    pub fn score_table(
        &self,
        into: &str,
        threshold: Option<f64>,
        slipping_below: f64,
        week: bool,
        store: Option<u64>,
    ) -> Vec<Sql> {
        let d = self.d;
        let mut b = Builder::new(d);
        let double = |e: &str| d.cast(e, SqlType::Double);
        let money = |e: &str| d.cast(&format!("{} / 10000", d.cast(e, SqlType::Money)), SqlType::Money);
        let valuable = match threshold {
            Some(t) => format!(
                "(segment IN ({}, {}) OR (clv IS NOT NULL AND clv >= {} AND clv > 0))",
                d.string(Segment::Champions.name()),
                d.string(Segment::Loyal.name()),
                b.float(t)
            ),
            None => {
                format!("segment IN ({}, {})", d.string(Segment::Champions.name()), d.string(Segment::Loyal.name()))
            }
        };
        let below = b.float(slipping_below);
        let stage = format!(
            "CASE WHEN {valuable} AND p_alive < {below} AND rule_stage IN ({}, {}, {}) THEN {} ELSE rule_stage END",
            d.string(Stage::New.name()),
            d.string(Stage::Repeat.name()),
            d.string(Stage::Loyal.name()),
            d.string(Stage::Slipping.name()),
        );
        let period = |e: &str| if week { format!("{} / 7", double(e)) } else { d.cast(e, SqlType::BigInt) };
        let scale = d.cast("10000", SqlType::Double);
        let columns = [
            format!("customer AS {}", d.ident("customer_id")),
            format!("{} AS first_purchase", d.date_of("first_day")),
            format!("{} AS last_purchase", d.date_of("last_day")),
            "orders".to_owned(),
            format!("{} AS revenue", money("revenue")),
            "frequency".to_owned(),
            format!("{} AS recency", period("recency")),
            format!("{} AS {}", period("t"), d.ident("T")),
            format!(
                "CASE WHEN frequency = 0 THEN {} ELSE ({} / {scale}) / {} END AS monetary",
                double("0"),
                double("repeat_value"),
                double("frequency")
            ),
            "returns".to_owned(),
            format!("{} AS returned", money("returned")),
            format!("{} AS revenue_12m", money("revenue_12m")),
            "dsl AS days_since_last".to_owned(),
            format!("({} / {scale}) / {} AS average_order_value", double("revenue"), double("GREATEST(orders, 1)")),
            "r AS r_score".to_owned(),
            "f AS f_score".to_owned(),
            "m AS m_score".to_owned(),
            format!("{} AS rfm", d.cast("r * 100 + f * 10 + m", SqlType::Text)),
            "segment".to_owned(),
            format!("{stage} AS stage"),
            "p_alive".to_owned(),
            "e30 AS expected_purchases_30d".to_owned(),
            "e90 AS expected_purchases_90d".to_owned(),
            "e365 AS expected_purchases_365d".to_owned(),
            "pp30 AS p_purchase_30d".to_owned(),
            "pp90 AS p_purchase_90d".to_owned(),
            "expected_spend".to_owned(),
            "clv AS clv_12m".to_owned(),
            format!("{} AS next_purchase_date", d.date_of("next_day")),
            "churn_risk".to_owned(),
        ];
        let Some(n) = store else {
            let select = format!("SELECT {} FROM {}", columns.join(", "), self.t(tables::SCORED));
            return vec![plain(format!("DROP TABLE IF EXISTS {into}")), b.finish(d.create_table(into, &select))];
        };
        let mut columns = columns.to_vec();
        let mut cut = |percent: u64| b.int((percent * n).div_ceil(100) as i64);
        let (top, high, mid) = (cut(10), cut(30), cut(60));
        columns.push(format!(
            "CASE WHEN rk < {top} THEN {} WHEN rk < {high} THEN {} WHEN rk < {mid} THEN {} ELSE {} END AS value_tier",
            d.string(Tier::Top.name()),
            d.string(Tier::High.name()),
            d.string(Tier::Mid.name()),
            d.string(Tier::Low.name()),
        ));
        columns.push("next_at AS next_purchase_at".to_owned());
        // RANK() − 1 counts the customers with more: equal revenue shares the best rank.
        let select = format!(
            "SELECT {} FROM (SELECT *, RANK() OVER (ORDER BY revenue - returned DESC) - 1 AS rk FROM {}) x",
            columns.join(", "),
            self.t(tables::SCORED)
        );
        vec![plain(d.drop_kept(into)), b.finish(d.keep(into, &select))]
    }

    /// Customers and revenue (raw units) by `column` of the score table.
    pub fn groups(&self, into: &str, column: &str) -> Sql {
        let d = self.d;
        plain(format!(
            "SELECT {column}, {}, {} FROM {into} GROUP BY 1",
            d.cast("COUNT(*)", SqlType::BigInt),
            d.cast("SUM(revenue) * 10000", SqlType::BigInt)
        ))
    }

    /// Lapsing and lost customers with their revenue of the last 12 months (raw units).
    pub fn at_risk(&self, into: &str) -> Sql {
        let d = self.d;
        plain(format!(
            "SELECT stage, {}, {} FROM {into} WHERE stage IN ({}, {}) GROUP BY 1",
            d.cast("COUNT(*)", SqlType::BigInt),
            d.cast("SUM(revenue_12m) * 10000", SqlType::BigInt),
            d.string(Stage::Lapsing.name()),
            d.string(Stage::Lost.name())
        ))
    }

    /// Customers per CLV bin (`kanta_score::LogBins::bin`: 0 below `edges[0]`, else 1 + the
    /// inner edges at or below).
    pub fn clv_bins(&self, into: &str, edges: &[f64]) -> Sql {
        let d = self.d;
        let mut b = Builder::new(d);
        let bins = edges.len() - 1;
        let mut case = format!("CASE WHEN clv_12m < {} THEN 0", b.float(edges[0]));
        // The bin is 1 + #{inner edges ≤ v}: the first inner edge above v decides.
        for (i, &e) in edges.iter().enumerate().take(bins).skip(1) {
            case.push_str(&format!(" WHEN clv_12m < {} THEN {i}", b.float(e)));
        }
        case.push_str(&format!(" ELSE {bins} END"));
        let text = format!(
            "SELECT {}, {} FROM {into} WHERE clv_12m IS NOT NULL GROUP BY 1",
            d.cast(&case, SqlType::BigInt),
            d.cast("COUNT(*)", SqlType::BigInt)
        );
        b.finish(text)
    }

    /// The `limit` customers with the highest CLV × (1 − P(alive)): id, CLV, P(alive), revenue
    /// (raw units), stage.
    pub fn targets(&self, into: &str, limit: usize) -> Sql {
        let d = self.d;
        plain(format!(
            "SELECT {id}, clv_12m, p_alive, {}, stage FROM {into} WHERE clv_12m IS NOT NULL \
             ORDER BY clv_12m * (1 - p_alive) DESC, {id} LIMIT {limit}",
            d.cast("revenue * 10000", SqlType::BigInt),
            id = d.ident("customer_id"),
        ))
    }
}

/// Every row of the score table `into`, by customer id, in a form the CSV writer reads back:
/// days as day numbers, money in raw units.
pub fn download(d: Dialect, into: &str) -> Sql {
    let big = |e: &str| d.cast(e, SqlType::BigInt);
    let day = |c: &str| big(&d.day_number(c));
    let columns = [
        d.ident("customer_id"),
        day("first_purchase"),
        day("last_purchase"),
        big("orders"),
        big("revenue * 10000"),
        big("frequency"),
        "monetary".to_owned(),
        big("returns"),
        big("returned * 10000"),
        big("revenue_12m * 10000"),
        big("days_since_last"),
        big("r_score"),
        big("f_score"),
        big("m_score"),
        "segment".to_owned(),
        "stage".to_owned(),
        "p_alive".to_owned(),
        "expected_purchases_30d".to_owned(),
        "expected_purchases_90d".to_owned(),
        "expected_purchases_365d".to_owned(),
        "p_purchase_30d".to_owned(),
        "p_purchase_90d".to_owned(),
        "expected_spend".to_owned(),
        "clv_12m".to_owned(),
        day("next_purchase_date"),
        "churn_risk".to_owned(),
    ];
    plain(format!("SELECT {} FROM {into} ORDER BY {}", columns.join(", "), d.ident("customer_id")))
}

/// The segment grid of `kanta_core::rfm::Segment::from_scores` as a CASE over R and FM.
fn segment_case(d: Dialect, r: &str, fm: &str) -> String {
    let mut case = String::from("CASE");
    for rv in 1..=5u8 {
        for fmv in 1..=5u8 {
            let name = Segment::from_scores(rv, fmv).name();
            case.push_str(&format!(" WHEN {r} = {rv} AND {fm} = {fmv} THEN {}", d.string(name)));
        }
    }
    case.push_str(" END");
    case
}
