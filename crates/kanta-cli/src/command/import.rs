//! `kanta import`: files into the store, through the same validation as the API.
//!
//! Orders are read by `kanta analyze`'s reader (formats, column detection, error messages),
//! summed per order, and written in batches of 10,000. When the file has a product column
//! (`product_id`, `sku`, `StockCode`, … or `--product-col`), each order keeps its lines with
//! product, category, quantity and unit price, which product groups and cross-sell hints read. Customers, events and feedback come from
//! CSV; each row becomes the JSON record the API accepts and is checked by the same code. A bad
//! row stops the import with its file, line, field and value, after the rows before it are
//! stored; importing the same file again changes nothing (records are idempotent by id).
//!
//! With `--api URL` the batches go to a running server's ingestion API instead (the same
//! records, validated here first and again by the server). Records are idempotent by id, so
//! re-running an interrupted import is safe and reports the re-sent records as unchanged.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, Read};

use anyhow::Context;
use kanta_core::money::Money;
use kanta_domain::{Clock, SystemClock, TimeRange};
use kanta_io::{Input, LineDetail};
use kanta_store::record::{MAX_BATCH, Record, parse_value};
use kanta_store::{Customer, Event, Feedback, Order, Storage, WriteBatch, WriteCounts};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::UsageError;
use crate::cli::{ApiArgs, ImportCommand, ImportOrdersArgs, ImportRecordsArgs, StoreArgs};
use crate::command::analyze::{read_options, read_order_log};
use crate::progress::counter;

pub fn run(command: &ImportCommand) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().context("starting the runtime")?;
    match command {
        ImportCommand::Orders(args) => orders(&runtime, args),
        ImportCommand::Customers(args) => records::<Customer>(&runtime, args, customer_field),
        ImportCommand::Events(args) => records::<Event>(&runtime, args, event_field),
        ImportCommand::Feedback(args) => records::<Feedback>(&runtime, args, feedback_field),
    }
}

/// Where imported records go.
enum Sink {
    /// Straight into a store.
    Store(std::sync::Arc<dyn Storage>),
    /// To a running server's ingestion API.
    Api { client: reqwest::Client, base: String, token: String },
}

impl Sink {
    fn keeps_json(&self) -> bool {
        matches!(self, Sink::Api { .. })
    }
}

/// The sink the flags name, how to show it in messages (passwords hidden), and the times the
/// records may carry: the settings' bounds for a store; for a server, every time (the server
/// checks against its own settings and names the record).
fn open_sink(
    runtime: &tokio::runtime::Runtime,
    store: &StoreArgs,
    api: &ApiArgs,
) -> anyhow::Result<(Sink, String, TimeRange)> {
    if let Some(base) = &api.api {
        let token =
            api.token.clone().ok_or_else(|| UsageError("--api needs a token: --token or KANTA_TOKEN".into()))?;
        let base = base.trim_end_matches('/').to_string();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(UsageError(format!("--api `{base}` must be an http:// or https:// URL")).into());
        }
        let client = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(300))
            .build()
            .context("starting the HTTP client")?;
        return Ok((Sink::Api { client, base: base.clone(), token }, base, TimeRange::ALL));
    }
    let settings = store.settings()?;
    let url = settings.database.url.clone();
    let opened = runtime.block_on(settings.database.open())?;
    Ok((Sink::Store(opened), url.to_string(), settings.ingest.bounds().at(SystemClock.now())))
}

/// A batch of records, with their JSON when it goes to the API.
struct Batch<T> {
    records: Vec<T>,
    json: Vec<Value>,
}

impl<T> Batch<T> {
    fn new() -> Batch<T> {
        Batch { records: Vec::with_capacity(MAX_BATCH), json: Vec::new() }
    }

    fn len(&self) -> usize {
        self.records.len()
    }
}

/// What the ingestion API answers.
#[derive(serde::Deserialize)]
struct Ingested {
    created: u64,
    updated: u64,
    unchanged: u64,
    customers_created: u64,
}

/// POST one batch.
async fn post(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    kind: &str,
    json: &[Value],
) -> anyhow::Result<WriteCounts> {
    let body = serde_json::to_vec(json).context("encoding the batch")?;
    let url = format!("{base}/v1/{kind}");
    let response = client
        .post(&url)
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .with_context(|| format!("sending {} {kind} to {url}", json.len()))?;
    let status = response.status();
    let text = response.text().await.with_context(|| format!("reading the answer of {url}"))?;
    if !status.is_success() {
        let message = serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| v["error"]["message"].as_str().map(str::to_string))
            .unwrap_or(text);
        return Err(anyhow::anyhow!("{url} refused {} {kind}: {status}: {message}", json.len()));
    }
    let c: Ingested = serde_json::from_str(&text).with_context(|| format!("{url} answered `{text}`"))?;
    Ok(WriteCounts {
        created: c.created,
        updated: c.updated,
        unchanged: c.unchanged,
        customers_created: c.customers_created,
    })
}

/// Running totals of the batches written.
#[derive(Default)]
struct Totals {
    records: u64,
    counts: WriteCounts,
}

impl Totals {
    fn add(&mut self, n: usize, c: WriteCounts) {
        self.records += n as u64;
        self.counts.created += c.created;
        self.counts.updated += c.updated;
        self.counts.unchanged += c.unchanged;
        self.counts.customers_created += c.customers_created;
    }

    fn report(&self, kind: &str, input: &str, db: &str) {
        let c = &self.counts;
        eprintln!(
            "imported {} {kind} from {input} into {db}: {} created, {} updated, {} unchanged; {} new customers",
            self.records, c.created, c.updated, c.unchanged, c.customers_created
        );
    }
}

fn write<T: WriteBatch>(
    runtime: &tokio::runtime::Runtime,
    sink: &Sink,
    batch: &mut Batch<T>,
    totals: &mut Totals,
) -> anyhow::Result<()> {
    if batch.records.is_empty() {
        return Ok(());
    }
    let n = batch.records.len();
    let counts = match sink {
        Sink::Store(store) => runtime
            .block_on(T::write_batch(store.as_ref(), &batch.records, SystemClock.now()))
            .with_context(|| format!("writing {n} {}", T::KIND))?,
        Sink::Api { client, base, token } => runtime.block_on(post(client, base, token, T::KIND, &batch.json))?,
    };
    totals.add(n, counts);
    batch.records.clear();
    batch.json.clear();
    Ok(())
}

/// A line's product as read, waiting for its order to be written. Products and categories are
/// indices into a [`Names`] table: a shop has far fewer of them than lines, and ten million
/// lines with two strings each took 1.9 GB.
struct ReadLine {
    /// The order's position in `Aggregator::for_each_order`.
    order: u32,
    product: u32,
    /// `u32::MAX` for none.
    category: u32,
    quantity: Money,
    unit_price: Money,
}

/// Distinct product and category names, each stored once.
#[derive(Default)]
struct Names {
    index: HashMap<String, u32>,
    names: Vec<String>,
}

impl Names {
    fn id(&mut self, name: &str) -> u32 {
        if let Some(&i) = self.index.get(name) {
            return i;
        }
        let i = u32::try_from(self.names.len()).unwrap_or(u32::MAX - 1);
        self.index.insert(name.to_owned(), i);
        self.names.push(name.to_owned());
        i
    }

    fn name(&self, id: u32) -> Option<&str> {
        self.names.get(id as usize).map(String::as_str)
    }
}

fn orders(runtime: &tokio::runtime::Runtime, args: &ImportOrdersArgs) -> anyhow::Result<()> {
    let mut options = read_options(&args.read)?;
    options.columns.product = args.product_col.clone();
    options.columns.category = args.category_col.clone();
    let input = Input::parse(&args.input);
    let name = input.display_name();
    let mut lines: Vec<ReadLine> = Vec::new();
    let mut names = Names::default();
    let mut keep = |order: u32, d: LineDetail<'_>| {
        lines.push(ReadLine {
            order,
            product: names.id(d.product),
            category: d.category.map_or(u32::MAX, |c| names.id(c)),
            quantity: d.quantity,
            unit_price: d.unit_price,
        });
    };
    let (aggregator, _) = read_order_log(&input, &options, args.quiet, !args.quiet, Some(&mut keep))?;
    // Lines arrive in file order; an order's lines need not be adjacent.
    lines.sort_by_key(|l| l.order);
    let mut lines = lines.into_iter().peekable();
    let mut order_index = 0u32;
    let (sink, db, times) = open_sink(runtime, &args.store, &args.api)?;
    let keep_json = sink.keeps_json();
    let bar = counter(Some(aggregator.orders() as u64), "storing orders", args.quiet);
    let mut totals = Totals::default();
    let mut batch: Batch<Order> = Batch::new();
    // Orders without an id get one from their content and the count of identical orders
    // before them, so importing the same file twice finds the same ids.
    let mut seen: HashMap<[u8; 16], u32> = HashMap::new();
    let mut failure: Option<anyhow::Error> = None;
    aggregator.for_each_order(|customer, id, time, amount| {
        let index = order_index;
        order_index += 1;
        let mut order_lines = Vec::new();
        while let Some(l) = lines.next_if(|l| l.order == index) {
            order_lines.push(serde_json::json!({
                "product": names.name(l.product), "category": names.name(l.category),
                "quantity": kanta_io::write::money_exact(l.quantity),
                "price": kanta_io::write::money_exact(l.unit_price),
            }));
        }
        if failure.is_some() {
            return;
        }
        let customer = String::from_utf8_lossy(customer);
        let id = match id {
            Some(id) => String::from_utf8_lossy(id).into_owned(),
            None => derived_id(&mut seen, &customer, time.0, amount.raw()),
        };
        let time = chrono::DateTime::from_timestamp(time.0, 0)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            .unwrap_or_default();
        let mut record = serde_json::json!({
            "id": id, "customer_id": customer, "time": time,
            "amount": kanta_io::write::money_exact(amount), "currency": args.currency,
        });
        if !order_lines.is_empty() {
            record["lines"] = Value::Array(order_lines);
        }
        if keep_json {
            batch.json.push(record.clone());
        }
        match parse_value::<Order>(record, times) {
            Ok(order) => batch.records.push(order),
            Err(problems) => {
                failure = Some(UsageError(format!("{name}: order `{id}`: {}", describe(&problems))).into());
                return;
            }
        }
        if batch.len() == MAX_BATCH {
            bar.inc(batch.len() as u64);
            if let Err(e) = write(runtime, &sink, &mut batch, &mut totals) {
                failure = Some(e);
            }
        }
    });
    // What was accepted before a bad order is stored, not lost.
    let flushed = write(runtime, &sink, &mut batch, &mut totals);
    bar.finish_and_clear();
    if let Some(e) = failure {
        totals.report("orders", &name, &db);
        return Err(e);
    }
    flushed?;
    if !args.quiet {
        totals.report("orders", &name, &db);
    }
    Ok(())
}

fn derived_id(seen: &mut HashMap<[u8; 16], u32>, customer: &str, time: i64, amount: i64) -> String {
    let mut h = Sha256::new();
    h.update(customer.as_bytes());
    h.update([0]);
    h.update(time.to_le_bytes());
    h.update(amount.to_le_bytes());
    let digest = h.finalize();
    let mut key = [0u8; 16];
    key.copy_from_slice(&digest[..16]);
    let n = seen.entry(key).or_insert(0);
    *n += 1;
    format!("row:{}:{}", kanta_store::token::hex(&key), n)
}

fn describe(problems: &[(String, String)]) -> String {
    problems
        .iter()
        .map(|(field, reason)| if field.is_empty() { reason.clone() } else { format!("field `{field}`: {reason}") })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Where a CSV cell goes in the record.
enum Cell {
    /// A top-level field, with its JSON value.
    Field(Value),
    /// A free-form attribute or property.
    Extra,
    /// A consent change for a channel.
    Consent(&'static str),
}

fn customer_field(column: &str, cell: &str) -> Result<Cell, String> {
    Ok(match column {
        "id" | "email" | "phone" | "name" | "timezone" | "locale" | "birthday" => Cell::Field(Value::from(cell)),
        "consent_email" => Cell::Consent("email"),
        "consent_sms" => Cell::Consent("sms"),
        _ => Cell::Extra,
    })
}

fn event_field(column: &str, cell: &str) -> Result<Cell, String> {
    Ok(match column {
        "id" | "customer_id" | "name" | "time" => Cell::Field(Value::from(cell)),
        _ => Cell::Extra,
    })
}

fn feedback_field(column: &str, cell: &str) -> Result<Cell, String> {
    Ok(match column {
        "id" | "customer_id" | "time" | "text" | "channel" | "order_id" => Cell::Field(Value::from(cell)),
        // A cell that is not an integer stays a string, and validation says what is wrong.
        "nps" | "csat" => Cell::Field(cell.trim().parse::<i64>().map_or_else(|_| Value::from(cell), Value::from)),
        "topics" => Cell::Field(Value::Array(
            cell.split([';', '|']).map(str::trim).filter(|t| !t.is_empty()).map(Value::from).collect(),
        )),
        other => return Err(format!("unknown column `{other}` (feedback has no free-form fields)")),
    })
}

fn records<T: WriteBatch>(
    runtime: &tokio::runtime::Runtime,
    args: &ImportRecordsArgs,
    place: fn(&str, &str) -> Result<Cell, String>,
) -> anyhow::Result<()> {
    let delimiter = match args.delimiter.as_bytes() {
        [d] => *d,
        _ if args.delimiter == "tab" => b'\t',
        _ => return Err(UsageError(format!("--delimiter `{}` must be one character or `tab`", args.delimiter)).into()),
    };
    let input = Input::parse(&args.input);
    let name = input.display_name();
    let source: Box<dyn Read> = match &input {
        Input::Path(p) => Box::new(
            File::open(p).with_context(|| format!("opening {name}")).map_err(|e| UsageError(format!("{e:#}")))?,
        ),
        Input::Stdin => Box::new(std::io::stdin()),
    };
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .flexible(false)
        .from_reader(BufReader::with_capacity(1 << 16, source));
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| UsageError(format!("{name}: {e}")))?
        .iter()
        .map(|h| h.trim().trim_start_matches('\u{feff}').to_string())
        .collect();
    let extra_key = if T::KIND == "customers" { "attributes" } else { "properties" };
    let (sink, db, times) = open_sink(runtime, &args.store, &args.api)?;
    let keep_json = sink.keeps_json();
    let bar = counter(None, &format!("importing {}", T::KIND), args.quiet);
    let mut totals = Totals::default();
    let mut batch: Batch<T> = Batch::new();
    let mut failure: Option<anyhow::Error> = None;
    let mut row = csv::StringRecord::new();
    loop {
        match reader.read_record(&mut row) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => {
                failure = Some(UsageError(format!("{name}: {e}")).into());
                break;
            }
        }
        let line = row.position().map_or(0, csv::Position::line);
        match row_record::<T>(&headers, &row, place, extra_key, keep_json, times) {
            Ok((record, json)) => {
                batch.records.push(record);
                batch.json.extend(json);
            }
            Err(message) => {
                failure = Some(UsageError(format!("{name}:{line}: {message}")).into());
                break;
            }
        }
        if batch.len() == MAX_BATCH {
            bar.inc(batch.len() as u64);
            write(runtime, &sink, &mut batch, &mut totals)?;
        }
    }
    write(runtime, &sink, &mut batch, &mut totals)?;
    bar.finish_and_clear();
    if let Some(e) = failure {
        totals.report(T::KIND, &name, &db);
        return Err(e);
    }
    if !args.quiet {
        totals.report(T::KIND, &name, &db);
    }
    Ok(())
}

/// One CSV row as the record the API accepts, checked by the API's code.
fn row_record<T: Record>(
    headers: &[String],
    row: &csv::StringRecord,
    place: fn(&str, &str) -> Result<Cell, String>,
    extra_key: &str,
    keep_json: bool,
    times: TimeRange,
) -> Result<(T, Option<Value>), String> {
    let mut object = Map::new();
    let mut extra = Map::new();
    let mut consent = Vec::new();
    for (column, cell) in headers.iter().zip(row.iter()) {
        if cell.is_empty() {
            continue;
        }
        match place(column, cell).map_err(|e| format!("column `{column}`: {e}"))? {
            Cell::Field(value) => {
                object.insert(column.clone(), value);
            }
            Cell::Extra => {
                extra.insert(column.clone(), Value::from(cell));
            }
            Cell::Consent(channel) => {
                consent.push(serde_json::json!({"channel": channel, "status": cell.trim(), "source": "import"}));
            }
        }
    }
    if !extra.is_empty() {
        object.insert(extra_key.to_string(), Value::Object(extra));
    }
    if !consent.is_empty() {
        object.insert("consent".into(), Value::Array(consent));
    }
    let shown: HashMap<&str, &str> = headers.iter().map(String::as_str).zip(row.iter()).collect();
    let object = Value::Object(object);
    let json = keep_json.then(|| object.clone());
    let record = parse_value::<T>(object, times).map_err(|problems| {
        problems
            .iter()
            .map(|(field, reason)| {
                // Name the column and its value, as `kanta analyze` does.
                let column = field.split(['[', '.']).next().unwrap_or(field);
                match shown.get(column) {
                    Some(value) if !field.is_empty() && !reason.contains(&format!("`{value}`")) => {
                        format!("column `{column}`: {reason} (value `{value}`)")
                    }
                    Some(_) if !field.is_empty() => format!("column `{column}`: {reason}"),
                    _ if field.is_empty() => reason.clone(),
                    _ => format!("field `{field}`: {reason}"),
                }
            })
            .collect::<Vec<_>>()
            .join("; ")
    })?;
    Ok((record, json))
}
