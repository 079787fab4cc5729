//! One push-down run: the steps of `kanta analyze --engine`, and what moved.

use std::path::Path;
use std::time::{Duration, Instant};

use kanta_core::analysis::{AnalysisError, AnalysisOptions, BusinessSummary, CustomerSummary, GAP_HIST_DAYS, Returns};
use kanta_core::lifecycle::{Stage, lapse_threshold};
use kanta_core::money::Money;
use kanta_core::rfm::{Segment, quintile_ranks};
use kanta_core::summary::{ConcentrationSums, SummaryParts, TOP_SHARES, at_rank};
use kanta_core::time::{Day, Timestamp};
use kanta_io::ReadError;
use kanta_io::columns::{AmountSource, ColumnSpec, Columns};
use kanta_io::write::{CustomerCsv, ModelRow, PeriodUnit};
use kanta_score::{
    CLV_BINS, ClvParts, DayHistory, LogBins, ModelSummary, RiskBand, ScoreOptions, SpendKey, Sufficient, TARGETS,
    Target, fit_and_predict, model_summary,
};

use crate::plan::{Amount, Plan, RfmEdges, SourceColumns, tables};
use crate::{Cell, ColumnType, Dialect, Engine, EngineError, Sql, Values};

/// Where the orders are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A table or view, `name`, `schema.name` or `catalog.schema.name` (`--table`).
    Table(String),
    /// A query the user writes (`--query`).
    Query(String),
}

/// What a run does.
#[derive(Debug, Clone)]
pub struct Options {
    /// The orders.
    pub source: Source,
    /// Columns named by flags (the rest are detected from the names, as for files).
    pub columns: ColumnSpec,
    /// Rows with a missing value that may be skipped (`--max-errors`).
    pub max_errors: u64,
    /// As-of, zero amounts, lapse threshold, loyal orders.
    pub analysis: AnalysisOptions,
    /// The models, or `None` for `--model none`.
    pub score: Option<ScoreOptions>,
    /// Recency and T in weeks in the score table.
    pub week: bool,
    /// The score table to write (`--into`), as the user names it.
    pub into: String,
    /// A store's scoring run (`kanta score` on PostgreSQL): the score table is the session
    /// table [`kanta_store::PUSHED_SCORES`] instead of `into`, with the store's two more
    /// columns (see [`Plan::score_table`]), left for the store to write its scores from.
    pub store: bool,
}

/// What moved and how long each side took.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stats {
    /// Rows of the source the engine aggregated.
    pub source_rows: u64,
    /// Orders they summed into.
    pub orders: u64,
    /// Customers with a purchase.
    pub customers: u64,
    /// Distinct (x, t_x, T) histories pulled.
    pub histories: usize,
    /// Distinct (x, repeat value) spend keys pulled.
    pub spend_keys: usize,
    /// Bytes of result values received from the engine.
    pub bytes_received: u64,
    /// Statements run in the engine.
    pub statements: u32,
    /// Time waiting for the engine.
    pub engine_time: Duration,
    /// Time in kanta (fitting, predicting, building the summary).
    pub kanta_time: Duration,
    /// Time waiting for the engine per step, in the order the steps first ran (a step that
    /// runs several statements adds them up).
    pub steps: Vec<(String, Duration)>,
}

impl Stats {
    fn add(&mut self, step: &str, took: Duration) {
        self.engine_time += took;
        self.statements += 1;
        match self.steps.iter_mut().find(|(s, _)| s == step) {
            Some((_, total)) => *total += took,
            None => self.steps.push((step.to_owned(), took)),
        }
    }
}

/// The result of a run: the report's contents (the score table stays in the engine).
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The business summary (`summary.json`'s `summary`).
    pub summary: BusinessSummary,
    /// The model summary, when the models ran.
    pub models: Option<ModelSummary>,
    /// Why there are no models.
    pub models_skipped: Option<String>,
    /// The observation end used.
    pub as_of: Day,
    /// The source in words (`table public.orders`).
    pub source_name: String,
    /// The columns used, as `kanta analyze` prints them.
    pub columns: String,
    /// Rows skipped and why, and other notes on the data.
    pub skipped: Vec<String>,
    /// Rows skipped.
    pub rows_skipped: u64,
    /// The score table, quoted.
    pub into: String,
    /// What moved.
    pub stats: Stats,
}

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
pub enum WarehouseError {
    /// The engine failed.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// A column could not be found (as for a file: what was looked for, what there is).
    #[error(transparent)]
    Columns(#[from] ReadError),
    /// A column has a type the push-down cannot use.
    #[error(transparent)]
    ColumnType(Box<WrongType>),
    /// More rows lack a value than `--max-errors` allows.
    #[error(
        "{count} rows of {source_name} on {engine} have no {role}: column `{column}` is NULL or empty there; --max-errors allows {max} bad rows (raise it to skip them)"
    )]
    BadRows {
        /// The engine.
        engine: String,
        /// The source in words.
        source_name: String,
        /// The role.
        role: &'static str,
        /// The column.
        column: String,
        /// Rows.
        count: u64,
        /// `--max-errors`.
        max: u64,
    },
    /// A flag or name that cannot be used.
    #[error("{0}")]
    Usage(String),
    /// The data has no orders or purchases.
    #[error("{source_name} on {engine}: {error}")]
    Analysis {
        /// The engine.
        engine: String,
        /// The source in words.
        source_name: String,
        /// What is missing.
        error: AnalysisError,
        /// The orders there are (all of them returns, dropped or after the as-of day when
        /// purchases are missing).
        orders: u64,
    },
    /// The engine answered something the push-down did not ask for (a bug, or an engine that
    /// does not follow its own types).
    #[error("{engine} returned an unexpected result while {step}: {message}")]
    Unexpected {
        /// The engine.
        engine: String,
        /// The step.
        step: String,
        /// What was wrong.
        message: String,
    },
    /// `--download` could not write its file.
    #[error("cannot write {path}: {message}")]
    Write {
        /// The file.
        path: String,
        /// Why.
        message: String,
    },
}

/// A column whose type the push-down cannot use.
#[derive(Debug, thiserror::Error)]
#[error("column `{column}` ({role}) of {source_name} on {engine} is {found}; kanta needs {wanted} there{hint}")]
pub struct WrongType {
    /// The engine.
    pub engine: String,
    /// The source in words.
    pub source_name: String,
    /// The column.
    pub column: String,
    /// Its role (`order time`, `amount`, …).
    pub role: &'static str,
    /// Its type in words.
    pub found: String,
    /// What would do.
    pub wanted: &'static str,
    /// How to get there.
    pub hint: &'static str,
}

/// The engine with the clock and counters of a run.
struct Session<'e> {
    engine: &'e mut dyn Engine,
    stats: Stats,
    progress: &'e (dyn Fn(&str) + Sync),
}

impl Session<'_> {
    fn name(&self) -> String {
        self.engine.name().to_owned()
    }

    async fn execute(&mut self, sql: &Sql, step: &str) -> Result<(), EngineError> {
        (self.progress)(step);
        let start = Instant::now();
        let result = self.engine.execute(sql, step).await;
        self.stats.add(step, start.elapsed());
        result
    }

    async fn query(&mut self, sql: &Sql, step: &str) -> Result<Vec<Vec<Cell>>, EngineError> {
        (self.progress)(step);
        let start = Instant::now();
        let result = crate::query(self.engine, sql, step).await;
        self.stats.add(step, start.elapsed());
        result
    }

    async fn load(&mut self, name: &str, columns: &[(&str, Values)], step: &str) -> Result<(), EngineError> {
        (self.progress)(step);
        let start = Instant::now();
        let result = self.engine.load(name, columns, step).await;
        self.stats.add(step, start.elapsed());
        result
    }

    fn unexpected(&self, step: &str, message: impl Into<String>) -> WarehouseError {
        WarehouseError::Unexpected { engine: self.name(), step: step.to_owned(), message: message.into() }
    }

    /// The one row of a query.
    async fn row(&mut self, sql: &Sql, step: &str) -> Result<Vec<Cell>, WarehouseError> {
        let mut rows = self.query(sql, step).await?;
        if rows.len() != 1 {
            return Err(self.unexpected(step, format!("{} rows where one was expected", rows.len())));
        }
        Ok(rows.pop().unwrap_or_default())
    }

    /// The one row of a query whose columns are all counts.
    async fn counts<const N: usize>(&mut self, sql: &Sql, step: &str) -> Result<[u64; N], WarehouseError> {
        let row = self.row(sql, step).await?;
        let mut out = [0u64; N];
        for (i, slot) in out.iter_mut().enumerate() {
            *slot = count(&row, i).map_err(|m| self.unexpected(step, m))?;
        }
        Ok(out)
    }

    /// (value, count) pairs of a histogram query.
    async fn pairs(&mut self, sql: &Sql, step: &str) -> Result<Vec<(i64, u64)>, WarehouseError> {
        let rows = self.query(sql, step).await?;
        rows.iter()
            .map(|r| {
                Ok((
                    int(r, 0).map_err(|m| self.unexpected(step, m))?,
                    count(r, 1).map_err(|m| self.unexpected(step, m))?,
                ))
            })
            .collect()
    }
}

/// Column `i` of `row` as an integer (NULL is an error).
fn int(row: &[Cell], i: usize) -> Result<i64, String> {
    match row.get(i) {
        Some(Cell::Int(v)) => Ok(*v),
        other => Err(format!("column {} is {other:?}, not an integer", i + 1)),
    }
}

/// Column `i` as a count (NULL, as SUM of no rows gives, is 0).
fn count(row: &[Cell], i: usize) -> Result<u64, String> {
    match row.get(i) {
        Some(Cell::Int(v)) => u64::try_from(*v).map_err(|_| format!("column {} is negative: {v}", i + 1)),
        Some(Cell::Null) => Ok(0),
        other => Err(format!("column {} is {other:?}, not a count", i + 1)),
    }
}

fn float(row: &[Cell], i: usize) -> Result<Option<f64>, String> {
    match row.get(i) {
        Some(Cell::Float(v)) => Ok(Some(*v)),
        Some(Cell::Null) => Ok(None),
        other => Err(format!("column {} is {other:?}, not a double", i + 1)),
    }
}

fn text(row: &[Cell], i: usize) -> Result<&str, String> {
    match row.get(i) {
        Some(Cell::Text(v)) => Ok(v),
        other => Err(format!("column {} is {other:?}, not text", i + 1)),
    }
}

/// The SQL of the source and its name in messages.
fn source_sql(d: Dialect, source: &Source) -> Result<(String, String), WarehouseError> {
    match source {
        Source::Table(name) => {
            let quoted = d.table_name(name).map_err(|e| WarehouseError::Usage(format!("--table {e}")))?;
            Ok((quoted, format!("table `{name}`")))
        }
        Source::Query(query) => Ok((format!("({query}) kanta_source"), "the --query".to_owned())),
    }
}

/// Resolves the columns by name as for a file, then checks their types.
fn resolve(
    engine: &str,
    source_name: &str,
    described: &[(String, ColumnType)],
    spec: &ColumnSpec,
) -> Result<(SourceColumns, String), WarehouseError> {
    let names: Vec<String> = described.iter().map(|(n, _)| n.clone()).collect();
    let columns = Columns::resolve(&format!("{source_name} on {engine}"), names, spec)?;
    let typed = |index: usize,
                 role: &'static str,
                 wanted: &'static str,
                 ok: &dyn Fn(&ColumnType) -> bool,
                 hint: &'static str| {
        let (name, ty) = &described[index];
        if ok(ty) {
            Ok((name.clone(), ty.clone()))
        } else {
            Err(WarehouseError::ColumnType(Box::new(WrongType {
                engine: engine.to_owned(),
                source_name: source_name.to_owned(),
                column: name.clone(),
                role,
                found: ty.describe(),
                wanted,
                hint,
            })))
        }
    };
    let id = |t: &ColumnType| matches!(t, ColumnType::Text | ColumnType::Integer);
    let number = |t: &ColumnType| matches!(t, ColumnType::Integer | ColumnType::Decimal | ColumnType::Float);
    let time = |t: &ColumnType| matches!(t, ColumnType::Date | ColumnType::Timestamp | ColumnType::TimestampTz);
    let number_hint = " (cast it in --query, e.g. CAST(amount AS NUMERIC))";
    let customer = typed(columns.customer, "customer id", "text or an integer", &id, "")?.0;
    let order = match columns.order {
        Some(o) => Some(typed(o, "order id", "text or an integer", &id, "")?.0),
        None => None,
    };
    let time = typed(
        columns.time,
        "order time",
        "a date or a timestamp",
        &time,
        " (parse it in --query, e.g. CAST(order_date AS DATE) or to_timestamp(order_date, 'YYYY-MM-DD HH24:MI:SS'))",
    )?;
    let amount = match columns.amount {
        AmountSource::Column(a) => {
            let (name, ty) = typed(a, "amount", "a number", &number, number_hint)?;
            Amount::Column(name, ty)
        }
        AmountSource::Product { quantity, unit_price } => Amount::Product(
            typed(quantity, "quantity", "a number", &number, number_hint)?,
            typed(unit_price, "unit price", "a number", &number, number_hint)?,
        ),
    };
    Ok((SourceColumns { customer, order, time, amount }, columns.to_string()))
}

/// Runs the analysis in the engine; see the crate docs. `progress` hears each step's name.
pub async fn analyze(
    engine: &mut dyn Engine,
    options: &Options,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<Outcome, WarehouseError> {
    let d = engine.dialect();
    let mut s = Session { engine, stats: Stats::default(), progress };
    let engine_name = s.name();
    let (source, source_name) = source_sql(d, &options.source)?;
    let into = match options.store {
        true => d.ident(kanta_store::PUSHED_SCORES),
        false => d.table_name(&options.into).map_err(|e| WarehouseError::Usage(format!("--into {e}")))?,
    };
    (s.progress)("reading the columns");
    let start = Instant::now();
    let described = s.engine.columns(&source, &source_name).await?;
    s.stats.add("reading the columns", start.elapsed());
    let (columns, columns_text) = resolve(&engine_name, &source_name, &described, &options.columns)?;
    let plan = Plan::new(d, source, columns, options.analysis.keep_zero);
    let analysis_error = |error, orders| WarehouseError::Analysis {
        engine: engine_name.clone(),
        source_name: source_name.clone(),
        error,
        orders,
    };

    // Rows with a missing value are skipped within --max-errors, like bad rows of a file.
    let step = "counting the rows";
    let row = s.row(&plan.source_rows(), step).await?;
    let source_rows = count(&row, 0).map_err(|m| s.unexpected(step, m))?;
    let rows_skipped = count(&row, 1).map_err(|m| s.unexpected(step, m))?;
    let mut skipped = Vec::new();
    for (i, (role, column)) in plan.problem_columns().into_iter().enumerate() {
        let bad = count(&row, i + 2).map_err(|m| s.unexpected(step, m))?;
        if bad == 0 {
            continue;
        }
        if rows_skipped > options.max_errors {
            return Err(WarehouseError::BadRows {
                engine: engine_name,
                source_name,
                role,
                column,
                count: bad,
                max: options.max_errors,
            });
        }
        skipped.push(format!("{bad} rows with no {role} (column `{column}` is NULL or empty)"));
    }
    s.stats.source_rows = source_rows;

    for name in tables::ALL {
        s.execute(&Sql { text: d.drop_kept(&d.ident(name)), params: vec![] }, "clearing an earlier run").await?;
    }
    s.execute(&plan.orders(), "summing lines into orders").await?;
    let step = "reading the order facts";
    let row = s.row(&plan.order_facts(), step).await?;
    let orders = count(&row, 1).map_err(|m| s.unexpected(step, m))?;
    s.stats.orders = orders;
    let Some(Cell::Int(last_day)) = row.first() else {
        return Err(analysis_error(AnalysisError::NoOrders, orders));
    };
    let as_of = match options.analysis.as_of {
        Some(day) => i64::from(day.0),
        None => *last_day,
    };
    let as_of_day = Day(i32::try_from(as_of).map_err(|_| s.unexpected(step, format!("day {as_of} is out of range")))?);
    if let Some(sql) = plan.order_conflicts() {
        let step = "checking order ids";
        let row = s.row(&sql, step).await?;
        let conflicts = count(&row, 0).map_err(|m| s.unexpected(step, m))?;
        if conflicts > 0 {
            let example = text(&row, 1).unwrap_or("?").to_owned();
            skipped.push(format!(
                "{conflicts} order ids belong to more than one customer (e.g. `{example}`); each customer's lines were kept as an order of their own"
            ));
        }
    }
    let [after, zero, return_orders, returned] =
        s.counts(&plan.order_counts(as_of), "counting returns and dropped orders").await?;
    s.execute(&plan.days(as_of), "finding purchase days").await?;
    s.execute(&plan.customers(as_of), "summarising customers").await?;
    let [return_customers, without_purchases] =
        s.counts(&plan.return_customers(as_of), "counting customers with returns").await?;

    let t: [u64; 9] = s.counts(&plan.totals(), "adding up customers").await?;
    let n = t[0];
    if n == 0 {
        return Err(analysis_error(AnalysisError::NoPurchases(as_of_day), orders));
    }
    s.stats.customers = n;
    let revenue = Money::from_raw(i64::try_from(t[2]).unwrap_or(i64::MAX));
    let mut orders_at_least = [0u64; 7];
    orders_at_least[1] = n;
    orders_at_least[2..7].copy_from_slice(&t[4..9]);

    let gap_pairs = s.pairs(&plan.gap_histogram(GAP_HIST_DAYS as i64), "histogram of gaps").await?;
    let mut gap_hist = vec![0u64; GAP_HIST_DAYS + 1];
    for (g, k) in gap_pairs {
        if let Some(slot) = usize::try_from(g).ok().and_then(|g| gap_hist.get_mut(g)) {
            *slot += k;
        }
    }
    let first_gaps: Vec<(i32, u64)> =
        s.pairs(&plan.first_gaps(), "first repeat gaps").await?.into_iter().map(|(g, k)| (g as i32, k)).collect();
    let first_months: Vec<(i32, u64)> =
        s.pairs(&plan.first_months(), "cohort sizes").await?.into_iter().map(|(m, k)| (m as i32, k)).collect();
    let step = "cohort activity";
    let activity = s
        .query(&plan.activity(), step)
        .await?
        .iter()
        .map(|r| Ok((int(r, 0)? as i32, int(r, 1)? as u32, count(r, 2)?)))
        .collect::<Result<Vec<_>, String>>()
        .map_err(|m| s.unexpected(step, m))?;
    let dsl = s.pairs(&plan.days_since_last(), "days since the last purchase").await?;
    let orders_hist = s.pairs(&plan.orders_histogram(), "orders per customer").await?;

    let kanta_start = Instant::now();
    let lapse_days = options.analysis.lapse_days.unwrap_or_else(|| lapse_threshold(&gap_hist));
    let ranks = quintile_ranks(n as usize);
    let mut edges = RfmEdges {
        days: ranks.iter().map(|&(_, lower)| at_rank(&dsl, lower as u64).unwrap_or(0)).collect(),
        orders: ranks.iter().map(|&(upper, _)| at_rank(&orders_hist, upper as u64).unwrap_or(0)).collect(),
        revenue: Vec::new(),
    };
    let mut kanta_time = kanta_start.elapsed();

    s.execute(&plan.ranked(), "ranking customers by revenue").await?;
    let wanted: Vec<u64> = ranks.iter().map(|&(upper, _)| upper as u64).collect();
    let step = "revenue quintiles";
    let at = s.query(&plan.revenue_at(n, &wanted), step).await?;
    for &rank in &wanted {
        let value = at
            .iter()
            .find(|r| int(r, 0).ok() == Some(rank as i64))
            .map(|r| int(r, 1))
            .transpose()
            .map_err(|m| s.unexpected(step, m))?
            .ok_or_else(|| s.unexpected(step, format!("no customer at rank {rank}")))?;
        edges.revenue.push(value);
    }
    let top = TOP_SHARES.map(|share| ConcentrationSums::top_count(n, share));
    let step = "revenue concentration";
    let row = s.row(&plan.concentration_top(n, top), step).await?;
    let mut concentration = ConcentrationSums { n, lorenz: vec![0; 100], ..ConcentrationSums::default() };
    for i in 0..3 {
        let revenue = int(&row, 2 * i).map_err(|m| s.unexpected(step, m))?;
        concentration.top[i] = (i128::from(revenue), count(&row, 2 * i + 1).map_err(|m| s.unexpected(step, m))?);
    }
    concentration.weighted = float(&row, 6).map_err(|m| s.unexpected(step, m))?.unwrap_or(0.0);
    concentration.total = i128::from(int(&row, 7).map_err(|m| s.unexpected(step, m))?);
    concentration.total_orders = count(&row, 8).map_err(|m| s.unexpected(step, m))?;
    for (p, r) in s.pairs(&plan.lorenz(n), "the Lorenz curve").await? {
        if let Some(slot) = usize::try_from(p - 1).ok().and_then(|p| concentration.lorenz.get_mut(p)) {
            *slot += i128::from(r as i64);
        }
    }

    // The models: pull the distinct histories and spend keys, fit and predict here.
    let step = "pulling the distinct histories";
    let histories = s
        .query(&plan.histories(), step)
        .await?
        .iter()
        .map(|r| {
            Ok((DayHistory { x: int(r, 0)? as u32, recency: int(r, 1)? as i32, t: int(r, 2)? as i32 }, count(r, 3)?))
        })
        .collect::<Result<Vec<_>, String>>()
        .map_err(|m| s.unexpected(step, m))?;
    let step = "pulling the distinct spend keys";
    let spends = s
        .query(&plan.spends(), step)
        .await?
        .iter()
        .map(|r| Ok((SpendKey { x: int(r, 0)? as u32, repeat_value: Money::from_raw(int(r, 1)?) }, count(r, 2)?)))
        .collect::<Result<Vec<_>, String>>()
        .map_err(|m| s.unexpected(step, m))?;
    s.stats.histories = histories.len();
    s.stats.spend_keys = spends.len();
    let data = Sufficient::from_counts(histories, spends);
    let fit_start = Instant::now();
    (s.progress)("fitting the models");
    let predictions = match &options.score {
        None => Err("not fitted (--model none)".to_owned()),
        Some(score) => fit_and_predict(&data, score).map_err(|e| e.to_string()),
    };
    kanta_time += fit_start.elapsed();
    let (predictions, models_skipped) = match predictions {
        Ok(p) => (Some(p), None),
        Err(e) => (None, Some(e)),
    };
    if let Some(p) = &predictions {
        let next_day = |days: f64| i64::from(as_of_day.0.saturating_add(days.round().clamp(0.0, 1e6) as i32));
        let column = |f: &dyn Fn(&kanta_score::HistoryScore) -> f64| -> Values {
            Values::Float(p.histories.iter().map(|h| Some(f(h))).collect())
        };
        let keys = &data.histories;
        let history_columns = [
            ("x", Values::Int(keys.iter().map(|(h, _)| Some(i64::from(h.x))).collect())),
            ("recency", Values::Int(keys.iter().map(|(h, _)| Some(i64::from(h.recency))).collect())),
            ("t", Values::Int(keys.iter().map(|(h, _)| Some(i64::from(h.t))).collect())),
            ("p_alive", column(&|h| h.p_alive)),
            ("e30", column(&|h| h.expected_purchases[0])),
            ("e90", column(&|h| h.expected_purchases[1])),
            ("e365", column(&|h| h.expected_purchases[2])),
            ("pp30", column(&|h| h.p_purchase[0])),
            ("pp90", column(&|h| h.p_purchase[1])),
            ("clv_unit", column(&|h| h.clv_unit)),
            ("next_day", Values::Int(p.histories.iter().map(|h| Some(next_day(h.next_purchase_days))).collect())),
            (
                "next_at",
                Values::Int(
                    p.histories
                        .iter()
                        .map(|h| kanta_score::next_purchase_micros(as_of_day, h.next_purchase_days))
                        .collect(),
                ),
            ),
            ("churn_risk", Values::Text(p.histories.iter().map(|h| h.risk.name().to_owned()).collect())),
        ];
        s.load(tables::HISTORIES, &history_columns, "writing the scores per history").await?;
    }
    // The expected spend is a closed form of Gamma-Gamma's three parameters: the engine
    // computes it per customer (`Plan::scored`), so the spend keys travel one way only.
    let spend = predictions.as_ref().and_then(|p| p.fitted.spend_model.as_ref()).map(|m| [m.p, m.q, m.gamma]);
    let loyal = options.analysis.loyal_orders;
    s.execute(&plan.scored(&edges, lapse_days, loyal, predictions.is_some(), spend), "scoring customers").await?;

    // The CLV parts (`kanta_score::clv_parts`): the sum, the top fifth's threshold for
    // "valuable", and the histogram's bins, from the CLVs where the customers are.
    let mut threshold = None;
    let mut clv_total = None;
    let mut clv_histogram = Vec::new();
    let mut log_bins = None;
    if predictions.is_some() {
        let step = "CLV statistics";
        let row = s.row(&plan.clv_stats(), step).await?;
        let clv_count = count(&row, 0).map_err(|m| s.unexpected(step, m))?;
        let positive = count(&row, 1).map_err(|m| s.unexpected(step, m))?;
        let max = float(&row, 2).map_err(|m| s.unexpected(step, m))?.unwrap_or(0.0).max(0.0);
        if clv_count > 0 {
            clv_total = float(&row, 3).map_err(|m| s.unexpected(step, m))?;
            let k = (clv_count * 4 / 5).min(clv_count - 1);
            let step = "the top fifth's CLV";
            let row = s.row(&plan.clv_at(k, false), step).await?;
            threshold = float(&row, 0).map_err(|m| s.unexpected(step, m))?;
            if max > 0.0 {
                let step = "the CLV histogram's low edge";
                let row = s.row(&plan.clv_at(positive / 20, true), step).await?;
                let p5 = float(&row, 0).map_err(|m| s.unexpected(step, m))?.unwrap_or(max);
                log_bins = Some(LogBins::new(max, p5, CLV_BINS));
            } else {
                // No positive CLV: one bin [0, max], as `log_histogram` makes.
                clv_histogram = vec![kanta_score::Bin { from: 0.0, to: max, customers: clv_count }];
            }
        }
    }
    let slipping_below = options.score.map_or(0.5, |o| o.slipping_below);
    for sql in plan.score_table(&into, threshold, slipping_below, options.week, options.store.then_some(n)) {
        s.execute(&sql, "writing the score table").await?;
    }

    let group_counts = |rows: Vec<Vec<Cell>>, names: &[&str]| -> Result<Vec<(u64, Money)>, String> {
        let mut acc = vec![(0u64, Money::ZERO); names.len()];
        for r in &rows {
            let name = text(r, 0)?;
            let i = names.iter().position(|n| *n == name).ok_or_else(|| format!("unknown group `{name}`"))?;
            acc[i] = (count(r, 1)?, Money::from_raw(int(r, 2)?));
        }
        Ok(acc)
    };
    let step = "customers per segment";
    let rows = s.query(&plan.groups(&into, "segment"), step).await?;
    let segments = group_counts(rows, &Segment::ALL.map(Segment::name)).map_err(|m| s.unexpected(step, m))?;
    let step = "customers per stage";
    let rows = s.query(&plan.groups(&into, "stage"), step).await?;
    let stages = group_counts(rows, &Stage::ALL.map(Stage::name)).map_err(|m| s.unexpected(step, m))?;
    let step = "revenue at risk";
    let rows = s.query(&plan.at_risk(&into), step).await?;
    let risk = group_counts(rows, &[Stage::Lapsing.name(), Stage::Lost.name()]).map_err(|m| s.unexpected(step, m))?;

    let models = match predictions {
        None => None,
        Some(predictions) => {
            let histogram = match &log_bins {
                Some(bins) => {
                    let mut counts = vec![0u64; bins.edges.len()];
                    for (bin, k) in s.pairs(&plan.clv_bins(&into, &bins.edges), "the CLV histogram").await? {
                        if let Some(slot) = usize::try_from(bin).ok().and_then(|b| counts.get_mut(b)) {
                            *slot += k;
                        }
                    }
                    bins.histogram(&counts)
                }
                None => clv_histogram,
            };
            let step = "the customers most worth a retention action";
            let targets = s
                .query(&plan.targets(&into, TARGETS), step)
                .await?
                .iter()
                .map(|r| {
                    let stage = text(r, 4)?;
                    Ok(Target {
                        index: 0,
                        customer_id: text(r, 0)?.to_owned(),
                        clv_12m: float(r, 1)?.unwrap_or(0.0),
                        p_alive: float(r, 2)?.unwrap_or(0.0),
                        revenue: Money::from_raw(int(r, 3)?).to_f64(),
                        stage: Stage::ALL.iter().map(|s| s.name()).find(|n| *n == stage).ok_or("unknown stage")?,
                    })
                })
                .collect::<Result<Vec<_>, String>>()
                .map_err(|m| s.unexpected(step, m))?;
            let slipping = stages[Stage::Slipping as usize].0;
            let clv = ClvParts { total: clv_total, histogram, slipping, targets };
            let start = Instant::now();
            let clv_options = options.score.map(|o| o.clv).unwrap_or_default();
            let summary = model_summary(&data, predictions, clv, &clv_options);
            kanta_time += start.elapsed();
            Some(summary)
        }
    };

    let start = Instant::now();
    let summary = BusinessSummary::from_parts(SummaryParts {
        as_of: as_of_day,
        customers: n,
        orders: t[1],
        revenue,
        one_time: t[3],
        returns: Returns {
            orders: return_orders,
            amount: Money::from_raw(returned as i64),
            customers: return_customers,
            customers_without_purchases: without_purchases,
            share_of_revenue: 0.0,
        },
        zero_amount_orders_dropped: zero,
        orders_after_as_of: after,
        orders_at_least,
        concentration,
        first_months,
        activity,
        first_gaps,
        gap_hist,
        at_risk: [risk[0], risk[1]],
        segments,
        stages,
        lapse_days,
    });
    kanta_time += start.elapsed();
    for name in tables::ALL {
        s.execute(&Sql { text: d.drop_kept(&d.ident(name)), params: vec![] }, "dropping the session tables").await?;
    }
    s.stats.bytes_received = s.engine.bytes_received();
    s.stats.kanta_time = kanta_time;
    Ok(Outcome {
        summary,
        models,
        models_skipped,
        as_of: as_of_day,
        source_name,
        columns: columns_text,
        skipped,
        rows_skipped,
        into,
        stats: s.stats,
    })
}

/// Writes the score table `into` (quoted) to `path` as `customers.csv`, in the same format as
/// `kanta analyze` on a file, ordered by customer id. Returns the rows written.
pub async fn download(
    engine: &mut dyn Engine,
    into: &str,
    as_of: Day,
    unit: PeriodUnit,
    path: &Path,
) -> Result<u64, WarehouseError> {
    let d = engine.dialect();
    let sql = crate::plan::download(d, into);
    let write_err = |e: ReadError| WarehouseError::Write { path: path.display().to_string(), message: e.to_string() };
    let mut csv = CustomerCsv::create(path, as_of, unit).map_err(write_err)?;
    let mut rows = 0u64;
    let mut failed: Option<ReadError> = None;
    let step = "downloading the score table";
    engine
        .for_each(&sql, step, &mut |r| {
            let (summary, model) = download_row(&r, as_of)?;
            rows += 1;
            if let Err(e) = csv.push(text(&r, 0)?.as_bytes(), &summary, model.as_ref()) {
                failed = Some(e);
                return Err("the file could not be written".into());
            }
            Ok(())
        })
        .await
        .map_err(|e| match failed.take() {
            Some(write) => write_err(write),
            None => WarehouseError::Engine(e),
        })?;
    csv.finish().map_err(write_err)?;
    Ok(rows)
}

/// One downloaded row as the CSV writer's customer and model row.
fn download_row(r: &[Cell], as_of: Day) -> Result<(CustomerSummary, Option<ModelRow>), String> {
    let day = |i| int(r, i).map(|d| Day(d as i32));
    let first = day(1)?;
    let last = day(2)?;
    let small = |i| int(r, i).map(|v| v as u8);
    let segment = text(r, 14)?;
    let stage = text(r, 15)?;
    let summary = CustomerSummary {
        customer: 0,
        first_purchase: Timestamp::start_of(first),
        last_purchase: Timestamp::start_of(last),
        orders: int(r, 3)? as u32,
        revenue: Money::from_raw(int(r, 4)?),
        frequency: int(r, 5)? as u32,
        recency_days: last.0 - first.0,
        t_days: as_of.0 - first.0,
        monetary: float(r, 6)?.unwrap_or(0.0),
        repeat_value: Money::ZERO,
        returns: int(r, 7)? as u32,
        returned: Money::from_raw(int(r, 8)?),
        revenue_12m: Money::from_raw(int(r, 9)?),
        days_since_last: int(r, 10)? as i32,
        first_repeat_gap: None,
        r: small(11)?,
        f: small(12)?,
        m: small(13)?,
        segment: *Segment::ALL.iter().find(|s| s.name() == segment).ok_or("unknown segment")?,
        stage: *Stage::ALL.iter().find(|s| s.name() == stage).ok_or("unknown stage")?,
    };
    let model = match float(r, 16)? {
        None => None,
        Some(p_alive) => {
            let risk = text(r, 25)?;
            Some(ModelRow {
                p_alive,
                expected_purchases: [
                    float(r, 17)?.unwrap_or(0.0),
                    float(r, 18)?.unwrap_or(0.0),
                    float(r, 19)?.unwrap_or(0.0),
                ],
                p_purchase_30d: float(r, 20)?.unwrap_or(0.0),
                p_purchase_90d: float(r, 21)?.unwrap_or(0.0),
                expected_spend: float(r, 22)?,
                clv_12m: float(r, 23)?,
                next_purchase_days: f64::from(day(24)?.0 - as_of.0),
                churn_risk: [RiskBand::Low, RiskBand::Medium, RiskBand::High, RiskBand::VeryHigh]
                    .iter()
                    .map(|b| b.name())
                    .find(|n| *n == risk)
                    .ok_or("unknown churn risk")?,
            })
        }
    };
    Ok((summary, model))
}
