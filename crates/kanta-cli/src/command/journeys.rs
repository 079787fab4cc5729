//! `kanta journeys validate|apply|list|show|pause|resume|doubts|resend|preview|triggers`, and
//! `run` (in [`run`]).
//!
//! `validate FILE…` checks journey documents and the templates beside them. Each file is checked with `kanta_journey::validate_yaml`; its `template: NAME`s are looked up
//! as `templates/NAME.html` in the file's folder, and subjects and inline parts are checked by
//! the mailer's template language (`kanta_mail::check`). Every file of each `templates/` folder
//! is checked too, once. Valid files are listed on standard output (`FILE: ok (N steps)`),
//! every problem goes to standard error as `FILE:LINE:COLUMN: message`, and the command fails
//! (exit code 1) when there is any. `apply` checks the same way and then stores every journey
//! (nothing when any file has a problem) with the templates it uses embedded (the steps'
//! `NAME.html` and `NAME.txt`, `layout.html` and `layout.txt`, and what they include), so the
//! version carries them to whichever server runs it and an edited template is a new version;
//! `preview` renders a step for a customer through the engine (`kanta_engine::Engine::preview`);
//! the rest read and change the store's journeys (`kanta_store::JourneyStore`), opened from the
//! settings as the other store commands do; `triggers` runs `kanta_engine::Engine::evaluate_triggers` once, with the settings' default
//! zone, for users who run the calendar triggers from cron (and for `bench/journeys.sh`).

pub mod report;
pub mod run;
pub mod simulate;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use kanta_journey::{Journey, Templates};

use super::{with_shared_store, with_store};
use crate::UsageError;
use crate::cli::{
    JourneysApplyArgs, JourneysListArgs, JourneysNameArgs, JourneysPreviewArgs, JourneysResendArgs, JourneysShowArgs,
    JourneysTriggersArgs, JourneysValidateArgs,
};

/// The instant of a `--now` flag (RFC 3339), or the system clock's without one.
pub(crate) fn now_or(flag: Option<&str>) -> Result<kanta_domain::Timestamp, UsageError> {
    match flag {
        Some(text) => kanta_domain::Timestamp::parse_rfc3339(text)
            .map_err(|e| UsageError(format!("--now `{text}` is not an RFC 3339 time: {e}"))),
        None => Ok(kanta_domain::Clock::now(&kanta_domain::SystemClock)),
    }
}

/// The templates of one folder, as the validator asks about them.
struct Folder {
    /// The names `NAME` of the folder's `NAME.html` files.
    names: BTreeSet<String>,
}

impl Templates for Folder {
    fn contains(&self, name: &str) -> bool {
        self.names.contains(name)
    }

    fn names(&self) -> Vec<String> {
        self.names.iter().cloned().collect()
    }

    fn check(&self, source: &str) -> Result<(), String> {
        kanta_mail::check(source).map_err(|problem| problem.to_string())
    }
}

/// Checks every file; fails when any file or template has a problem.
pub fn validate(args: &JourneysValidateArgs) -> anyhow::Result<()> {
    let (checked, failed) = check_files(&args.files);
    for (shown, journey) in &checked {
        let steps = journey.compile().len();
        outln!("{shown}: ok ({steps} step{})", if steps == 1 { "" } else { "s" })?;
    }
    if failed > 0 {
        anyhow::bail!("{failed} file{} with problems", if failed == 1 { "" } else { "s" });
    }
    Ok(())
}

/// Checks `files` as `validate` does, printing every problem to standard error: the valid
/// journeys with their shown names, and how many files or templates had a problem.
pub(crate) fn check_files(files: &[PathBuf]) -> (Vec<(String, Journey)>, usize) {
    let mut checked_folders = BTreeSet::new();
    let mut failed = 0usize;
    let mut valid = Vec::new();
    for file in files {
        let shown = file.display().to_string();
        let folder = file.parent().unwrap_or(Path::new("")).join("templates");
        let names = match template_files(&folder) {
            Ok(files) => {
                // Each folder's files are checked once, however many journeys share it.
                if checked_folders.insert(folder.clone()) {
                    failed += check_templates(&files);
                }
                files.iter().filter_map(|f| html_name(f)).collect()
            }
            Err(e) => {
                eprintln!("{}: cannot read: {e}", folder.display());
                failed += 1;
                BTreeSet::new()
            }
        };
        let text = match std::fs::read_to_string(file) {
            Ok(text) => text,
            Err(e) => {
                eprintln!("{shown}: cannot read: {e}");
                failed += 1;
                continue;
            }
        };
        match kanta_journey::validate_yaml(&text, &Folder { names }) {
            Ok(mut journey) => match journey.embed_templates(|file| kanta_mail::read_source(&folder, file)) {
                Ok(()) => valid.push((shown, journey)),
                Err(e) => {
                    eprintln!("{shown}: {e}");
                    failed += 1;
                }
            },
            Err(problems) => {
                eprintln!("{}", problems.in_file(shown));
                failed += 1;
            }
        }
    }
    (valid, failed)
}

/// Checks every file, then stores each journey (its canonical JSON and digest) as a new version
/// unless unchanged. Nothing is applied when any file or template has a problem, so a
/// half-applied set of journeys that refer to each other's segments or templates cannot happen
/// by accident.
pub fn apply(args: &JourneysApplyArgs) -> anyhow::Result<()> {
    let (checked, failed) = check_files(&args.files);
    if failed > 0 {
        anyhow::bail!("{failed} file{} with problems; nothing was applied", if failed == 1 { "" } else { "s" });
    }
    let mut names = BTreeSet::new();
    for (shown, journey) in &checked {
        if !names.insert(journey.name.as_str()) {
            return Err(UsageError(format!(
                "{shown}: journey `{}` is named by two files; nothing was applied",
                journey.name
            ))
            .into());
        }
    }
    let now = kanta_domain::Clock::now(&kanta_domain::SystemClock);
    let applied = with_store(&args.store, async |store| {
        let mut applied = Vec::new();
        for (_, journey) in &checked {
            let result = store.apply_journey(&journey.name, &journey.canonical_json(), &journey.digest(), now).await?;
            applied.push((journey.name.clone(), result));
        }
        Ok(applied)
    })?;
    for (name, result) in applied {
        outln!("{name}: version {} ({})", result.version, if result.created { "new" } else { "unchanged" })?;
    }
    Ok(())
}

/// `kanta journeys list`.
pub fn list(args: &JourneysListArgs) -> anyhow::Result<()> {
    let journeys = with_store(&args.store, async |store| Ok(store.journeys().await?))?;
    outln!("{:<24} {:>7} {:<7} {:>11}  updated", "name", "version", "paused", "active runs")?;
    for j in &journeys {
        outln!(
            "{:<24} {:>7} {:<7} {:>11}  {}",
            j.name,
            j.version,
            if j.paused { "yes" } else { "no" },
            j.active_runs,
            kanta_store::rfc3339(j.updated_at.micros())
        )?;
    }
    Ok(())
}

/// `kanta journeys show NAME`.
pub fn show(args: &JourneysShowArgs) -> anyhow::Result<()> {
    let name = &args.name;
    let report = with_store(&args.store, async |store| Ok(store.journey_report(name).await?))?
        .ok_or_else(|| UsageError(format!("no journey `{name}` in the store (see `kanta journeys list`)")))?;
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&report)?)?;
        return Ok(());
    }
    let s = &report.summary;
    outln!(
        "{}: version {}{}, {} active run{}",
        s.name,
        s.version,
        if s.paused { " (paused)" } else { "" },
        s.active_runs,
        if s.active_runs == 1 { "" } else { "s" }
    )?;
    outln!()?;
    outln!("{:>7}  {:<20} {:>6} {:>9} {:>6}  digest", "version", "applied", "active", "completed", "exited")?;
    for v in &report.versions {
        outln!(
            "{:>7}  {:<20} {:>6} {:>9} {:>6}  {}",
            v.version,
            kanta_store::rfc3339(v.created_at.micros()),
            v.active_runs,
            v.completed_runs,
            v.exited_runs,
            v.digest.get(..12).unwrap_or(&v.digest)
        )?;
    }
    outln!()?;
    outln!("{:>7}  {:<24} {:>6}  messages", "version", "step", "active")?;
    for step in &report.steps {
        let messages: Vec<String> = step.messages.iter().map(|(status, n)| format!("{status} {n}")).collect();
        let messages = if messages.is_empty() { "-".to_string() } else { messages.join(", ") };
        outln!("{:>7}  {:<24} {:>6}  {messages}", step.version, step.step, step.active_runs)?;
    }
    Ok(())
}

/// `kanta journeys pause|resume NAME`.
pub fn set_paused(args: &JourneysNameArgs, paused: bool) -> anyhow::Result<()> {
    let name = &args.name;
    let now = kanta_domain::Clock::now(&kanta_domain::SystemClock);
    if with_store(&args.store, async |store| Ok(store.set_journey_paused(name, paused, now).await?))? {
        outln!("{name}: {}", if paused { "paused" } else { "resumed" })?;
        Ok(())
    } else {
        Err(UsageError(format!("no journey `{name}` in the store (see `kanta journeys list`)")).into())
    }
}

/// `kanta journeys doubts`.
pub fn doubts(args: &JourneysListArgs) -> anyhow::Result<()> {
    let messages = with_store(&args.store, async |store| Ok(store.in_doubt_messages().await?))?;
    outln!("{:>8}  {:<20} {:<16} {:<20} {:<32} claimed at", "id", "journey", "step", "customer", "recipient")?;
    for m in &messages {
        let claimed = m.claimed_at.map_or_else(|| "-".to_string(), |t| kanta_store::rfc3339(t.micros()));
        outln!(
            "{:>8}  {:<20} {:<16} {:<20} {:<32} {claimed}",
            m.id,
            format!("{} v{}", m.journey, m.version),
            m.step,
            m.customer,
            m.recipient
        )?;
    }
    if !messages.is_empty() {
        eprintln!("resend one with `kanta journeys resend ID` only once you know it did not arrive");
    }
    Ok(())
}

/// `kanta journeys resend ID`: the operator's explicit decision to send a message in doubt again.
pub fn resend(args: &JourneysResendArgs) -> anyhow::Result<()> {
    let id = kanta_store::journey::MessageId(args.id);
    let now = kanta_domain::Clock::now(&kanta_domain::SystemClock);
    let message = with_store(&args.store, async |store| {
        let message = store.in_doubt_messages().await?.into_iter().find(|m| m.id == id);
        if message.is_some() && !store.resend_message(id, None, now).await? {
            // Completed by its worker between the two calls: no longer in doubt.
            return Ok(None);
        }
        Ok(message)
    })?;
    let message = message.ok_or_else(|| {
        UsageError(format!("message {id} is not in doubt (see `kanta journeys doubts`); nothing was changed"))
    })?;
    outln!(
        "message {id} ({} v{}, step {}, to {}) queued to be sent again",
        message.journey,
        message.version,
        message.step,
        message.recipient
    )?;
    Ok(())
}

/// The message headers a preview leaves out: MIME plumbing, not what a reader wants to check.
const MIME_HEADERS: &[&str] = &["MIME-Version", "Content-Type", "Content-Transfer-Encoding"];

/// `kanta journeys preview JOURNEY STEP --customer ID`: the step of the journey's current
/// version rendered for the customer by the engine, as a run reaching it now would render it.
/// Prints the headers a real send would carry (all of them with `[email]` settings: From,
/// Message-ID, List-Unsubscribe…; otherwise To and Subject), then the text part and the HTML
/// part; `--text` or `--html` prints one part alone, `--eml FILE` writes the whole message.
pub fn preview(args: &JourneysPreviewArgs) -> anyhow::Result<()> {
    let settings = args.store.settings()?;
    let email = settings.email_config()?;
    if args.eml.is_some() && email.is_none() {
        return Err(UsageError(
            "--eml needs the [email] settings (the sender and the unsubscribe links of a real message)".into(),
        )
        .into());
    }
    let has_email = email.is_some();
    let mut config = kanta_engine::EngineConfig::new("kanta-journeys-preview");
    // A preview claims nothing; the lease only has to satisfy the engine's check against the
    // SMTP timeout, whatever the settings say.
    if let Some(email) = &email {
        config.message_lease = config.message_lease.max(email.timeout * 2);
    }
    config.email = email;
    let clock = std::sync::Arc::new(kanta_domain::SystemClock);
    let now = kanta_domain::Clock::now(&kanta_domain::SystemClock);
    let preview = with_shared_store(&args.store, async |store| {
        let engine = kanta_engine::Engine::new(store, config, clock)?;
        match engine.preview(&args.journey, &args.step, &args.customer, now).await {
            Ok(preview) => Ok(preview),
            Err(e) => Err(preview_error(e, &args.journey)),
        }
    })?;
    let rendered = &preview.rendered;
    if args.html {
        out!("{}", rendered.html)?;
        return Ok(());
    }
    if args.text {
        out!("{}", rendered.text)?;
        return Ok(());
    }
    if let Some(file) = &args.eml {
        let message = preview.message.as_ref().ok_or_else(|| {
            UsageError(format!("customer `{}` has no email address: there is no message to write", args.customer))
        })?;
        std::fs::write(file, message).map_err(|e| anyhow::anyhow!("cannot write {}: {e}", file.display()))?;
        outln!("{}: {} bytes", file.display(), message.len())?;
        return Ok(());
    }
    let kind = if preview.transactional { "transactional" } else { "marketing" };
    outln!(
        "# {} version {}, step {} ({kind}), customer {}",
        preview.journey,
        preview.version,
        preview.step,
        args.customer
    )?;
    match &preview.message {
        Some(message) => {
            for (name, value) in kanta_mail::headers::headers(message) {
                if !MIME_HEADERS.iter().any(|h| h.eq_ignore_ascii_case(&name)) {
                    outln!("{name}: {}", kanta_mail::headers::decode_encoded_words(&value))?;
                }
            }
        }
        None => {
            let to = match (&preview.to, &preview.to_name) {
                (Some(to), Some(name)) => format!("{name} <{to}>"),
                (Some(to), None) => to.clone(),
                (None, _) => "(no email address: a run would record `no_address` and send nothing)".into(),
            };
            outln!("To: {to}")?;
            outln!("Subject: {}", rendered.subject)?;
            if !has_email {
                eprintln!(
                    "no [email] settings: From, Message-ID and List-Unsubscribe are left out (see `kanta config default`)"
                );
            }
        }
    }
    outln!()?;
    outln!("--- text ---")?;
    out!("{}", with_newline(&rendered.text))?;
    outln!("--- html ---")?;
    out!("{}", with_newline(&rendered.html))?;
    Ok(())
}

/// The engine's answer as the user's mistake (exit code 2) when it is one.
fn preview_error(e: kanta_engine::EngineError, journey: &str) -> anyhow::Error {
    use kanta_engine::EngineError;
    match e {
        EngineError::UnknownJourney(name) => {
            UsageError(format!("no journey `{name}` in the store (see `kanta journeys list`)")).into()
        }
        EngineError::UnknownCustomer(id) => UsageError(format!("no customer `{id}` in the store")).into(),
        e @ EngineError::NotAnEmailStep { .. } => UsageError(e.to_string()).into(),
        e @ EngineError::StoredJourney { .. } => UsageError(e.to_string()).into(),
        e @ EngineError::Render(_) => UsageError(format!("journey `{journey}`: {e}")).into(),
        e => e.into(),
    }
}

/// `text` ending with one newline, so the next line of output starts on its own.
fn with_newline(text: &str) -> std::borrow::Cow<'_, str> {
    if text.ends_with('\n') { text.into() } else { format!("{text}\n").into() }
}

/// `kanta journeys triggers [--now T]`: evaluate the calendar triggers once and print, per
/// journey whose window held anything to look at, who entered and who did not.
pub fn triggers(args: &JourneysTriggersArgs) -> anyhow::Result<()> {
    use anyhow::Context;
    let now = now_or(args.now.as_deref())?;
    let settings = args.store.settings()?;
    let mut config = kanta_engine::EngineConfig::new(format!("kanta-cli-{}", std::process::id()));
    config.default_zone = Some(settings.journeys.default_timezone.value);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().context("starting the runtime")?;
    let outcome = runtime.block_on(async {
        let store = settings.database.open().await?;
        // The clock is only what `Engine::now` reports; the evaluation takes `now` as given.
        let clock = std::sync::Arc::new(kanta_domain::ManualClock::new(now));
        let engine = kanta_engine::Engine::new(store, config, clock)?;
        anyhow::Ok(engine.evaluate_triggers(now).await?)
    })?;
    outln!(
        "{:<24} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>9}  paused",
        "journey",
        "entered",
        "held out",
        "already",
        "at limit",
        "too late",
        "dropped",
        "collapsed"
    )?;
    for j in &outcome.journeys {
        outln!(
            "{:<24} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>9}  {}",
            j.journey,
            j.entered,
            j.held_out,
            j.already,
            j.at_limit,
            j.too_late,
            j.days_dropped,
            j.collapsed,
            if j.paused { "yes" } else { "no" }
        )?;
    }
    Ok(())
}

/// The `.html` and `.txt` files of a `templates/` folder, sorted; none when there is no folder.
fn template_files(folder: &Path) -> std::io::Result<Vec<PathBuf>> {
    if !folder.is_dir() {
        return Ok(Vec::new());
    }
    let mut files = Vec::new();
    for entry in std::fs::read_dir(folder)? {
        let path = entry?.path();
        if path.is_file() && matches!(path.extension().and_then(|e| e.to_str()), Some("html" | "txt")) {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// `NAME` of a `NAME.html` file.
fn html_name(path: &Path) -> Option<String> {
    if path.extension().and_then(|e| e.to_str()) != Some("html") {
        return None;
    }
    path.file_stem().and_then(|s| s.to_str()).map(str::to_owned)
}

/// Checks each template file, printing `FILE:LINE: message` for each problem; how many files
/// have one.
fn check_templates(files: &[PathBuf]) -> usize {
    let mut failed = 0;
    for file in files {
        let problem = match std::fs::read_to_string(file) {
            Ok(source) => kanta_mail::check(&source).err().map(|p| format!(":{}: {}", p.line, p.message)),
            Err(e) => Some(format!(": cannot read: {e}")),
        };
        if let Some(problem) = problem {
            eprintln!("{}{problem}", file.display());
            failed += 1;
        }
    }
    failed
}
