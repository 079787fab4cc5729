//! The command-line interface, declared with clap's derive API.

use std::path::PathBuf;

use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
use clap::{Args, Parser, Subcommand, ValueEnum};
use kanta_domain::ModelKind;

/// kanta: turn an order history into customer knowledge — RFM, lifecycle, cohorts, revenue at risk.
#[derive(Debug, Parser)]
#[command(name = "kanta", version, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,

    /// Log lines on stderr as text or json (one object per line); RUST_LOG filters them [default: text].
    #[arg(long, global = true, env = "KANTA_LOG_FORMAT", value_enum)]
    pub log_format: Option<crate::logging::LogFormat>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Analyse an order log (CSV, TSV, whitespace text, gzip, Parquet) and write a retention report.
    Analyze(Box<AnalyzeArgs>),
    /// Generate a realistic synthetic shop (order lines) as CSV or Parquet.
    Generate(GenerateArgs),
    /// Generate a demo shop and analyse it: the quickest way to see what kanta does.
    Demo(DemoArgs),
    /// Fit a customer model to a per-customer summary file (frequency, recency, T, …).
    Fit(FitArgs),
    /// Add model predictions (P(alive), expected purchases, CLV) to a summary file.
    Predict(PredictArgs),
    /// Fit the sBG retention model to a subscription cohort and project its survival.
    Retention(RetentionArgs),
    /// Run the HTTP API on the customer store (embedded SQLite by default, or PostgreSQL).
    Serve(ServeArgs),
    /// Score every customer in the store: RFM, lifecycle stage, P(alive), expected purchases, CLV, next purchase; records stage changes.
    Score(ScoreArgs),
    /// Manage API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// What the store's data says: `kanta insights feedback` (NPS and CSAT over time, by stage, value tier and topic; topics before lapse; valuable detractors to call).
    #[command(subcommand)]
    Insights(InsightsCommand),
    /// Outbound webhooks: endpoint health, the delivery log, resuming a paused endpoint, and a local receiver for trying them.
    #[command(subcommand)]
    Webhooks(WebhooksCommand),
    /// Email: a local SMTP receiver for trying journeys out.
    #[command(subcommand)]
    Mail(MailCommand),
    /// Journeys: check and apply journey files (YAML), list and inspect them, pause and resume, and the messages in doubt.
    #[command(subcommand)]
    Journeys(JourneysCommand),
    /// Import orders, customers, events or feedback from a file into the store (idempotent).
    #[command(subcommand)]
    Import(ImportCommand),
    /// Settings: print the defaults as a commented file, or the settings in effect.
    #[command(subcommand)]
    Config(ConfigCommand),
}

#[derive(Debug, Clone, Subcommand)]
pub enum ImportCommand {
    /// Import an order log: the formats, column detection and error messages of `kanta analyze`; lines of one order are summed.
    Orders(Box<ImportOrdersArgs>),
    /// Import customers from CSV: id, email, phone, name, timezone, locale, birthday, consent_email, consent_sms (granted|revoked); other columns become attributes.
    Customers(ImportRecordsArgs),
    /// Import events from CSV: id (optional), customer_id, name, time; other columns become properties.
    Events(ImportRecordsArgs),
    /// Import feedback from CSV: id, customer_id, time, nps, csat, text, topics (separated by `;`), channel, order_id.
    Feedback(ImportRecordsArgs),
}

#[derive(Debug, Clone, Args)]
pub struct ImportOrdersArgs {
    /// The order log, or `-` for standard input.
    pub input: String,

    #[command(flatten)]
    pub read: ReaderArgs,

    /// The product column of a line; lines are stored with their product when the file has one
    /// (default: detected: product_id, sku, StockCode, item_id, …).
    #[arg(long)]
    pub product_col: Option<String>,

    /// The product category column (default: detected: category, product_category, product_type, …).
    #[arg(long)]
    pub category_col: Option<String>,

    /// ISO 4217 currency of the amounts (e.g. EUR).
    #[arg(long)]
    pub currency: String,

    #[command(flatten)]
    pub api: ApiArgs,

    #[command(flatten)]
    pub store: StoreArgs,

    /// Print nothing but errors.
    #[arg(long, short)]
    pub quiet: bool,
}

#[derive(Debug, Clone, Args)]
pub struct ImportRecordsArgs {
    /// The CSV file (with a header line), or `-` for standard input.
    pub input: String,

    /// Field delimiter, one character (default `,`).
    #[arg(long, default_value = ",")]
    pub delimiter: String,

    #[command(flatten)]
    pub api: ApiArgs,

    #[command(flatten)]
    pub store: StoreArgs,

    /// Print nothing but errors.
    #[arg(long, short)]
    pub quiet: bool,
}

/// Importing through a running server's ingestion API instead of into a store.
#[derive(Debug, Clone, Args)]
pub struct ApiArgs {
    /// Send the records to the ingestion API of a running `kanta serve` at this base URL (e.g. http://127.0.0.1:8080) instead of writing to a store (--db and KANTA_DATABASE_URL are then unused).
    #[arg(long, env = "KANTA_API_URL")]
    pub api: Option<String>,

    /// The API token (scope `ingest` or `admin`) for --api.
    #[arg(long, env = "KANTA_TOKEN", hide_env_values = true, requires = "api")]
    pub token: Option<String>,
}

/// Where the store is and which settings file to read (flags and environment; the settings
/// file and the defaults fill in the rest, see `settings`).
#[derive(Debug, Clone, Args)]
pub struct StoreArgs {
    /// The store: sqlite://FILE (created on first use) or postgres://USER:PASSWORD@HOST/DB [default: sqlite://kanta.db].
    #[arg(long, env = "KANTA_DATABASE_URL", hide_env_values = true)]
    pub db: Option<String>,

    /// Settings file (TOML; see `kanta config default`) [default: ./kanta.toml if it exists].
    #[arg(long, env = "KANTA_CONFIG")]
    pub config: Option<PathBuf>,
}

impl StoreArgs {
    /// The settings with this command's flags applied.
    pub fn settings(&self) -> Result<kanta_server::Settings, kanta_server::SettingsError> {
        let mut settings = kanta_server::settings::load(self.config.as_deref())?;
        if let Some(db) = &self.db {
            settings.database.url = kanta_server::settings::DatabaseUrl::new(db.clone());
        }
        Ok(settings)
    }
}

#[derive(Debug, Clone, Subcommand)]
pub enum ConfigCommand {
    /// Print a commented settings file with every default.
    Default,
    /// Print the settings in effect (file, environment and flags applied; passwords hidden).
    Show(ConfigShowArgs),
}

#[derive(Debug, Clone, Args)]
pub struct ConfigShowArgs {
    #[command(flatten)]
    pub store: StoreArgs,

    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub store: StoreArgs,

    #[command(flatten)]
    pub server: ServerArgs,
}

/// The `[server]` settings as flags (`serve`, `config show`).
#[derive(Debug, Clone, Args)]
pub struct ServerArgs {
    /// Address to listen on, port 0 for a free one (the chosen address is printed) [default: 127.0.0.1:8080].
    #[arg(long, env = "KANTA_LISTEN")]
    pub listen: Option<String>,

    /// Seconds to let in-flight requests finish after SIGTERM or Ctrl-C [default: 30].
    #[arg(long, env = "KANTA_GRACE_SECONDS")]
    pub grace: Option<u64>,

    /// How often to rescore every customer: e.g. 30m, 6h, 1d, or off [default: 1h].
    #[arg(long, env = "KANTA_SCORE_EVERY", value_parser = kanta_server::settings::Every::parse)]
    pub score_every: Option<kanta_server::settings::Every>,
}

#[derive(Debug, Clone, Args)]
pub struct ScoreArgs {
    #[command(flatten)]
    pub store: StoreArgs,

    /// The transaction model: auto (the lowest BIC), bgnbd, mbgnbd or paretonbd [default: the settings' scoring.model, auto].
    #[arg(long, value_parser = model_parser())]
    pub model: Option<ModelKind>,

    /// Read every order into memory even on PostgreSQL, which otherwise aggregates them itself and sends out only the distinct purchase histories [default: the settings' scoring.push_down].
    #[arg(long)]
    pub in_memory: bool,

    /// Print the run as JSON (id, counts, model, parameters and diagnostics) instead of the summary.
    #[arg(long)]
    pub json: bool,

    /// Print nothing but errors.
    #[arg(long, short)]
    pub quiet: bool,
}

#[derive(Debug, Clone, Subcommand)]
pub enum InsightsCommand {
    /// Feedback: NPS and CSAT by month, stage, value tier and topic; the topics lapsed customers raised in their last 90 active days against active ones; valuable detractors to call.
    Feedback(InsightsFeedbackArgs),
}

#[derive(Debug, Clone, Args)]
pub struct InsightsFeedbackArgs {
    /// Months in the time series, ending with the current one.
    #[arg(long, default_value_t = 12, value_parser = clap::value_parser!(u32).range(1..=120))]
    pub months: u32,

    /// Longest call list.
    #[arg(long, default_value_t = 20)]
    pub limit: usize,

    /// Print the insights as JSON (the body of GET /v1/insights/feedback).
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Debug, Clone, Subcommand)]
pub enum WebhooksCommand {
    /// The configured endpoints with their state: pending, delivered and failed deliveries, failures in a row, paused.
    List(WebhooksListArgs),
    /// The delivery log, oldest first: event, state, attempts, the last status or error.
    Deliveries(WebhooksDeliveriesArgs),
    /// Unpause an endpoint and clear its backoff; `--retry-failed` also queues its failed deliveries again.
    Resume(WebhooksResumeArgs),
    /// Receive webhooks locally: verify each signature and print the event as one JSON line (for trying kanta out and for tests).
    Listen(WebhooksListenArgs),
}

#[derive(Debug, Clone, Args)]
pub struct WebhooksListArgs {
    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Debug, Clone, Args)]
pub struct WebhooksDeliveriesArgs {
    /// Only this endpoint's deliveries.
    #[arg(long)]
    pub endpoint: Option<String>,

    /// Start after this delivery id (the last id of the previous page).
    #[arg(long)]
    pub after: Option<i64>,

    /// How many to print.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub limit: u32,

    /// Print JSON lines (with the bodies) instead of a table.
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Debug, Clone, Args)]
pub struct WebhooksResumeArgs {
    /// The endpoint's name.
    pub name: String,

    /// Also queue the deliveries that were given up on again.
    #[arg(long)]
    pub retry_failed: bool,

    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Debug, Clone, Args)]
pub struct WebhooksListenArgs {
    /// Address to listen on; port 0 picks a free one (printed on the first line).
    #[arg(long, default_value = "127.0.0.1:9000")]
    pub listen: String,

    /// The environment variable holding the shared secret.
    #[arg(long, default_value = "KANTA_WEBHOOK_SECRET")]
    pub secret_env: String,

    /// Largest accepted distance between the signature's timestamp and now, in seconds.
    #[arg(long, default_value_t = 300)]
    pub tolerance: i64,

    /// Stop after this many verified events.
    #[arg(long)]
    pub count: Option<u64>,
}

#[derive(Debug, Clone, Subcommand)]
pub enum JourneysCommand {
    /// Check journey files: every problem as FILE:LINE:COLUMN, with the templates in the `templates/` folder beside each file; exits 1 if any has a problem.
    Validate(JourneysValidateArgs),
    /// Check journey files as `validate` does, then store each as its journey's new version with the templates it uses embedded from `templates/` (unchanged documents and templates keep their version); a file with problems applies nothing.
    Apply(JourneysApplyArgs),
    /// The journeys in the store: current version, paused, active runs.
    List(JourneysListArgs),
    /// One journey: its versions and, per version and step, the active runs and messages by status.
    Show(JourneysShowArgs),
    /// Pause a journey: its runs and messages wait until it is resumed.
    Pause(JourneysNameArgs),
    /// Resume a paused journey.
    Resume(JourneysNameArgs),
    /// Messages in doubt (a worker died while sending them; they may or may not have gone): never resent unless an operator asks with `resend`.
    Doubts(JourneysListArgs),
    /// Send a message in doubt again (the operator's explicit decision; recorded in the audit log).
    Resend(JourneysResendArgs),
    /// Render a send_email step of a journey's current version for one customer, as a run would now: headers, text and HTML (or one of them, or the whole message as a file); sends nothing.
    Preview(JourneysPreviewArgs),
    /// Evaluate the date, predicted-purchase and schedule triggers once, up to now (or --now), and print per journey how many customers entered (a journey's first evaluation only starts its cursor); for running them from cron instead of `kanta serve`.
    Triggers(JourneysTriggersArgs),
    /// The journey's uplift: treatment against its holdout (control) on the goal and on revenue per customer, with 95 % intervals (Wald and Newcombe; Welch and a seeded bootstrap; CUPED on the year before entry), the smallest effect the sizes can detect, and a verdict or "too early to tell".
    Report(JourneysReportArgs),
    /// Run the journey engine without the HTTP API (the settings' [email], [guardrails] and [journeys]): until SIGTERM or Ctrl-C, or with --until-idle until nothing is due, then print what was done.
    Run(JourneysRunArgs),
    /// Project a journey file over the next days against the current store, entering and sending nothing: who would enter (stage and predicted-purchase triggers by drawing each customer's purchases from the fitted model, dates from the calendar, events and segments replaying the last days), the runs per step, emails per customer per week, sends per day, and how many the frequency cap would skip or quiet hours delay.
    Simulate(JourneysSimulateArgs),
}

#[derive(Debug, Clone, Args)]
pub struct JourneysSimulateArgs {
    /// The journey file (YAML), checked as `kanta journeys validate` does.
    pub file: PathBuf,

    /// Days to project.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=366))]
    pub days: u32,

    /// Print the result as JSON (every count and series).
    #[arg(long)]
    pub json: bool,

    /// Also write the result as a self-contained HTML page with charts to FILE.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,

    /// The seed of the purchase draws: the same seed, store and file give the same numbers.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,

    /// Independent draws of every customer's future whose counts are averaged (where the customer model is used): one draw's entries vary by several per cent.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub draws: u32,

    /// Simulate from this time (RFC 3339) [default: now].
    #[arg(long, value_name = "RFC3339")]
    pub now: Option<String>,

    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Debug, Clone, Args)]
pub struct JourneysRunArgs {
    /// Stop as soon as a pass finds nothing due now (no journey feed rows, runs or messages), print a one-line summary and exit: for cron-driven deployments. Waits that end later, messages deferred by quiet hours and retries are left for the next run.
    #[arg(long)]
    pub until_idle: bool,

    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Debug, Clone, Args)]
pub struct JourneysPreviewArgs {
    /// The journey's name.
    pub journey: String,

    /// The send_email step's id (its `id`, or its path such as `0` or `3.then.0`).
    pub step: String,

    /// The customer's id.
    #[arg(long)]
    pub customer: String,

    /// Print only the HTML part.
    #[arg(long, conflicts_with_all = ["text", "eml"])]
    pub html: bool,

    /// Print only the text part.
    #[arg(long, conflicts_with = "eml")]
    pub text: bool,

    /// Write the whole message as it would be sent (RFC 5322, needs `[email]` settings) to FILE, to open in a mail client.
    #[arg(long, value_name = "FILE")]
    pub eml: Option<PathBuf>,

    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Debug, Clone, Args)]
pub struct JourneysReportArgs {
    /// The journey's name.
    pub name: String,

    /// Print the report as JSON (every figure, the curves included).
    #[arg(long)]
    pub json: bool,

    /// Also write the report as a self-contained HTML page with the conversion curves to FILE.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,

    /// The bootstrap's seed: the same seed gives the same interval to the last digit.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,

    /// Bootstrap resamples.
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u32).range(100..=100_000))]
    pub resamples: u32,

    /// Compute as if the time were this (RFC 3339) [default: now].
    #[arg(long, value_name = "RFC3339")]
    pub now: Option<String>,

    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Debug, Clone, Args)]
pub struct JourneysTriggersArgs {
    /// Evaluate as if the time were this (RFC 3339, such as 2026-12-04T00:00:00Z) [default: now].
    #[arg(long, value_name = "RFC3339")]
    pub now: Option<String>,

    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Debug, Clone, Args)]
pub struct JourneysApplyArgs {
    /// The journey files.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,

    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Debug, Clone, Args)]
pub struct JourneysListArgs {
    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Debug, Clone, Args)]
pub struct JourneysShowArgs {
    /// The journey's name.
    pub name: String,

    /// Print the report as JSON instead of tables.
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Debug, Clone, Args)]
pub struct JourneysNameArgs {
    /// The journey's name.
    pub name: String,

    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Debug, Clone, Args)]
pub struct JourneysResendArgs {
    /// The message's id (the first column of `kanta journeys doubts`).
    pub id: i64,

    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Debug, Clone, Args)]
pub struct JourneysValidateArgs {
    /// The journey files.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

#[derive(Debug, Clone, Subcommand)]
pub enum MailCommand {
    /// Receive email locally: a small SMTP server that prints each message's key headers and writes it to DIR/NNNN.eml (for trying journeys out and for tests).
    Listen(MailListenArgs),
}

#[derive(Debug, Clone, Args)]
pub struct MailListenArgs {
    /// Address to listen on; port 0 picks a free one (printed on standard error).
    #[arg(long, default_value = "127.0.0.1:2525")]
    pub listen: String,

    /// Write each message to this folder as NNNN.eml (numbered after the files already there).
    #[arg(long)]
    pub dir: Option<PathBuf>,

    /// Stop after exactly this many messages (later ones are refused with 451).
    #[arg(long)]
    pub count: Option<u64>,

    /// Largest accepted message, in bytes.
    #[arg(long, default_value_t = 10 * 1024 * 1024)]
    pub max_size: usize,
}

#[derive(Debug, Clone, Subcommand)]
pub enum TokenCommand {
    /// Create a token; it is printed once, alone on the last line of standard output.
    Create(TokenCreateArgs),
    /// List tokens: id, scope, name, created, revoked (the tokens themselves are not stored).
    List(TokenListArgs),
    /// Revoke a token by id; it is refused from then on.
    Revoke(TokenRevokeArgs),
}

#[derive(Debug, Clone, Args)]
pub struct TokenListArgs {
    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Debug, Clone, Args)]
pub struct TokenRevokeArgs {
    /// The token's id (from `kanta token list`).
    pub id: i64,

    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Debug, Clone, Args)]
pub struct TokenCreateArgs {
    /// What the token may do: ingest (write records), read (customers, metrics) or admin (all,
    /// including export and erasure).
    #[arg(long, value_parser = ["ingest", "read", "admin"])]
    pub scope: String,

    /// A name to recognise the token by (e.g. the shop or service using it).
    #[arg(long)]
    pub name: Option<String>,

    #[command(flatten)]
    pub store: StoreArgs,
}

/// The unit of recency and T.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum Period {
    /// Days.
    #[default]
    Day,
    /// Weeks (days / 7).
    Week,
}

#[derive(Debug, Clone, Args)]
pub struct AnalyzeArgs {
    /// The order log, or `-` for standard input (not with --engine).
    #[arg(required_unless_present = "engine", conflicts_with = "engine")]
    pub input: Option<String>,

    #[command(flatten)]
    pub engine: EngineArgs,

    /// Folder for customers.csv, customers.parquet, summary.json and report.html.
    #[arg(long, short, default_value = "kanta-report")]
    pub out: PathBuf,

    #[command(flatten)]
    pub read: ReaderArgs,

    /// Currency code shown with amounts in the report (e.g. EUR).
    #[arg(long)]
    pub currency: Option<String>,

    /// Observation end, YYYY-MM-DD (default: the day of the last order). Later orders are ignored.
    #[arg(long)]
    pub as_of: Option<String>,

    /// Unit of recency and T in customers.csv.
    #[arg(long, value_enum, default_value_t = Period::Day)]
    pub period: Period,

    /// Count zero-amount orders as purchases (by default they are dropped).
    #[arg(long)]
    pub keep_zero: bool,

    /// Days without a purchase after which a customer is lapsing (default: the 90th percentile of gaps between purchases, 30–365).
    #[arg(long)]
    pub lapse_days: Option<u32>,

    /// Orders from which a recent customer is loyal.
    #[arg(long, default_value_t = 4)]
    pub loyal_orders: u32,

    /// Customer model for P(alive), expected purchases and CLV: auto picks the lowest BIC of bgnbd, mbgnbd and paretonbd; none skips the models.
    #[arg(long, value_parser = analyze_model_parser(), default_value = "auto")]
    pub model: AnalyzeModel,

    /// Validate the models: calibrate on orders before this date (YYYY-MM-DD), predict the rest, report accuracy and write holdout.csv; with --model auto the most accurate model is used.
    #[arg(long)]
    pub holdout_from: Option<String>,

    /// Print nothing but errors (no progress, no summary).
    #[arg(long, short)]
    pub quiet: bool,

    /// Print summary.json to standard output instead of the table.
    #[arg(long)]
    pub json: bool,
}

/// Where the orders are when they stay in a database (`kanta analyze --engine`).
#[derive(Debug, Clone, Default, Args)]
pub struct EngineArgs {
    /// Push the analysis down to this engine instead of reading a file: postgres://user@host/db (PostgreSQL, Citus, or the kanta store) or sc://host:port (Spark Connect). Only distinct histories and small aggregates leave it.
    #[arg(long, value_name = "URL", env = "KANTA_ENGINE", hide_env_values = true)]
    pub engine: Option<String>,

    /// The orders table or view in the engine: name, schema.name or catalog.schema.name.
    #[arg(long, requires = "engine", conflicts_with = "query", required_unless_present_any = ["query", "input"])]
    pub table: Option<String>,

    /// A query whose rows are the order lines, instead of --table (e.g. to cast a text date).
    #[arg(long, value_name = "SQL", requires = "engine")]
    pub query: Option<String>,

    /// The table the per-customer scores are written to in the engine (replaced if it exists); same columns as customers.csv.
    #[arg(long, value_name = "NAME", default_value = "kanta_scores", requires = "engine")]
    pub into: String,

    /// Also download the score table into customers.csv (as large as the customer base).
    #[arg(long, requires = "engine")]
    pub download: bool,
}

/// How to read an order log (shared by `analyze` and `import orders`).
#[derive(Debug, Clone, Default, Args)]
pub struct ReaderArgs {
    /// Field delimiter: one character, `tab` or `whitespace` (default: detected from the first line).
    #[arg(long)]
    pub delimiter: Option<String>,

    /// Column names for a file without a header line, comma-separated (the file's first line is then data).
    #[arg(long, value_delimiter = ',')]
    pub columns: Option<Vec<String>>,

    /// The customer id column (default: detected: customer_id, CustomerID, email, …).
    #[arg(long)]
    pub customer_col: Option<String>,

    /// The order id column; `none` when every row is an order (default: detected: order_id, InvoiceNo, …).
    #[arg(long)]
    pub order_col: Option<String>,

    /// The order time column (default: detected: order_date, InvoiceDate, created_at, date, timestamp, …).
    #[arg(long)]
    pub time_col: Option<String>,

    /// The amount column (default: detected: amount, total, revenue, …; else quantity × unit price).
    #[arg(long)]
    pub amount_col: Option<String>,

    /// The quantity column, for amount = quantity × unit price.
    #[arg(long)]
    pub quantity_col: Option<String>,

    /// The unit price column, for amount = quantity × unit price.
    #[arg(long)]
    pub price_col: Option<String>,

    /// A strftime pattern for times, e.g. `%d/%m/%Y %H:%M` (default: ISO 8601, YYYYMMDD, epoch seconds).
    #[arg(long)]
    pub time_format: Option<String>,

    /// Amounts use a decimal comma (`12,50`; `.` then groups thousands).
    #[arg(long)]
    pub decimal_comma: bool,

    /// Skip up to N bad rows (each is listed) instead of stopping at the first.
    #[arg(long, default_value_t = 0)]
    pub max_errors: u64,
}

/// `kanta analyze --model`: a model, or none (`None`: the model columns stay empty).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnalyzeModel(pub Option<ModelKind>);

/// The `--model` values with their help, from [`ModelKind`] (the one place models are named),
/// plus `none` for `kanta analyze`.
fn model_values(with_none: bool) -> Vec<PossibleValue> {
    let mut values: Vec<PossibleValue> =
        ModelKind::ALL.iter().map(|k| PossibleValue::new(k.name()).help(k.description())).collect();
    if with_none {
        values.push(PossibleValue::new("none").help("No models: the per-customer model columns stay empty"));
    }
    values
}

fn model_parser() -> impl TypedValueParser<Value = ModelKind> {
    PossibleValuesParser::new(model_values(false)).try_map(|name| ModelKind::parse(&name))
}

fn analyze_model_parser() -> impl TypedValueParser<Value = AnalyzeModel> {
    PossibleValuesParser::new(model_values(true)).try_map(|name| match name.as_str() {
        "none" => Ok(AnalyzeModel(None)),
        _ => ModelKind::parse(&name).map(|k| AnalyzeModel(Some(k))),
    })
}

#[derive(Debug, Clone, Args)]
pub struct GenerateArgs {
    /// Number of customers.
    #[arg(long, default_value_t = 10_000, conflicts_with = "rows")]
    pub customers: u64,

    /// Generate customers until at least this many order lines exist (instead of --customers).
    #[arg(long)]
    pub rows: Option<u64>,

    /// Random seed; the same seed gives the same file.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,

    /// Output file; `.parquet` writes Parquet, anything else CSV.
    #[arg(long, short)]
    pub out: PathBuf,

    /// First day of the shop's history (YYYY-MM-DD).
    #[arg(long, default_value = "2023-01-01")]
    pub start: String,

    /// Last day of the shop's history (YYYY-MM-DD).
    #[arg(long, default_value = "2024-12-31")]
    pub end: String,

    /// Instead of a simulated shop, write a degenerate base for testing: new-shop (76,400 one-time buyers, 500 repeat), one-time, same-day, one-customer, one-repeat, long-history (since 1975), heavy-buyer (one customer with 500 orders), ancient-order (one order in year 1), returns-only.
    #[arg(long, value_parser = parse_shape, conflicts_with_all = ["rows", "feedback"])]
    pub shape: Option<kanta_gen::degenerate::Shape>,

    /// Also write survey answers (NPS, CSAT, topics, text) after about a quarter of the orders to this CSV, for `kanta import feedback`; answers before a customer lapses complain more, mostly about delivery.
    #[arg(long)]
    pub feedback: Option<PathBuf>,

    /// Print nothing but errors.
    #[arg(long, short)]
    pub quiet: bool,
}

fn parse_shape(name: &str) -> Result<kanta_gen::degenerate::Shape, String> {
    kanta_gen::degenerate::Shape::parse(name).ok_or_else(|| {
        let names: Vec<&str> = kanta_gen::degenerate::Shape::ALL.iter().map(|s| s.name()).collect();
        format!("`{name}` is not a shape; one of {}", names.join(", "))
    })
}

#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    /// Folder for the demo shop and its report.
    #[arg(long, short, default_value = "kanta-demo")]
    pub out: PathBuf,

    /// Customers in the demo shop.
    #[arg(long, default_value_t = 20_000)]
    pub customers: u64,

    /// Random seed.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,

    /// Then serve the dashboard on a live copy of the shop: history up to today with survey
    /// answers, imported into OUT/kanta.db (made anew), scored, with a win-back journey; prints
    /// the address and an admin token to log in with.
    #[arg(long)]
    pub serve: bool,

    /// Address for --serve.
    #[arg(long, default_value = "127.0.0.1:8080", requires = "serve")]
    pub listen: String,
}

/// A model `kanta fit` can fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FitModel {
    /// BG/NBD (Fader, Hardie & Lee 2005): frequency, recency, T.
    Bgnbd,
    /// MBG/NBD (Batislam et al. 2007): frequency, recency, T.
    Mbgnbd,
    /// Pareto/NBD (Schmittlein et al. 1987): frequency, recency, T.
    Paretonbd,
    /// Gamma-Gamma spend model: frequency and monetary value of repeat customers.
    Gammagamma,
    /// BG/BB (Fader, Hardie & Shang 2010), discrete time: frequency, recency, periods, weights.
    Bgbb,
}

#[derive(Debug, Clone, Args)]
pub struct FitArgs {
    /// Per-customer summary CSV with lifetimes' column names (frequency, recency, T, monetary_value; periods and weights for BG/BB) or kanta's customers.csv.
    pub input: String,

    /// The model to fit.
    #[arg(long, value_enum)]
    pub model: FitModel,

    /// Print the fit as JSON (the format `kanta predict --params` reads).
    #[arg(long)]
    pub json: bool,

    /// Also write the JSON to this file.
    #[arg(long, short)]
    pub out: Option<PathBuf>,

    /// Maximum optimiser iterations.
    #[arg(long, default_value_t = 500)]
    pub max_iterations: usize,
}

#[derive(Debug, Clone, Args)]
pub struct PredictArgs {
    /// Per-customer summary CSV (as for `kanta fit`).
    pub input: String,

    /// Fit JSON from `kanta fit --json`: a transaction model, optionally a second one for Gamma-Gamma spend (adds expected_spend and clv).
    #[arg(long, required = true, num_args = 1..=2, action = clap::ArgAction::Append)]
    pub params: Vec<PathBuf>,

    /// Prediction horizon in the summary's time unit (periods for BG/BB).
    #[arg(long)]
    pub horizon: f64,

    /// Output CSV (default: standard output).
    #[arg(long, short)]
    pub out: Option<PathBuf>,

    /// CLV: number of periods summed.
    #[arg(long, default_value_t = 12)]
    pub clv_periods: u32,

    /// CLV: length of one period in the summary's time unit (30 for months of daily data, 4.345 for weekly).
    #[arg(long, default_value_t = 30.0)]
    pub period_length: f64,

    /// CLV: discount rate per period.
    #[arg(long, default_value_t = 0.01)]
    pub discount: f64,
}

#[derive(Debug, Clone, Args)]
pub struct RetentionArgs {
    /// CSV with columns `period` (0, 1, 2, …) and `customers` still active at the start of each period.
    pub input: String,

    /// Project survival up to this period.
    #[arg(long, default_value_t = 12)]
    pub project: u32,

    /// Discount rate per period for the discounted expected residual lifetime (DERL).
    #[arg(long, default_value_t = 0.1)]
    pub discount: f64,

    /// Folder for retention.svg and retention.json.
    #[arg(long, short, default_value = "kanta-retention")]
    pub out: PathBuf,

    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}
