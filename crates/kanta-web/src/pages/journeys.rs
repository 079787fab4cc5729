//! Journeys: the list with status and counts (`/journeys`), a journey's steps drawn as a flow
//! with how many customers wait at each step and how many went through it, its versions and
//! pause/resume (`/journeys/{name}`), and its uplift report (`/journeys/{name}/uplift`), the
//! same numbers as `kanta journeys report`.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{Html, IntoResponse, Redirect, Response};
use kanta_journey::Journey;
use kanta_store::journey::{JourneyReport, JourneySummary, RunArm};
use serde::Serialize;

use super::encode_query;
use crate::background::Cached;
use crate::pages::overview::readable_time;
use crate::session::{Button, Needs, current, read_form};
use crate::{WebError, WebState};
use kanta_report::format::NumberFormat;

#[derive(Serialize)]
struct Listed {
    name: String,
    href: String,
    version: i64,
    paused: bool,
    active: String,
    entered: String,
    held_out: String,
    updated: String,
}

fn path_of(name: &str) -> String {
    format!("/journeys/{}", encode_query(name))
}

/// `GET /journeys`.
pub async fn list(State(state): State<WebState>, headers: HeaderMap) -> Result<Html<String>, WebError> {
    let session = current(&state, &headers, "/journeys").await?;
    let f = &state.config.format;
    let mut journeys = Vec::new();
    for j in state.store.journeys().await? {
        let arms = state.store.entries_by_arm(&j.name).await?;
        let count = |want: &[RunArm]| -> u64 {
            arms.iter().filter(|(arm, _)| want.contains(arm)).map(|(_, n)| u64::try_from(*n).unwrap_or(0)).sum()
        };
        journeys.push(Listed {
            href: path_of(&j.name),
            version: j.version,
            paused: j.paused,
            active: f.integer(u64::try_from(j.active_runs).unwrap_or(0)),
            entered: f.integer(count(&[RunArm::Treatment, RunArm::Control, RunArm::GlobalControl])),
            held_out: f.integer(count(&[RunArm::Control, RunArm::GlobalControl])),
            updated: readable_time(&j.updated_at.to_rfc3339()),
            name: j.name,
        });
    }
    state.templates.page("journeys.html", "journeys", Some(&session), minijinja::context! { journeys })
}

/// One step of the flow.
#[derive(Serialize)]
struct FlowStep {
    id: String,
    depth: usize,
    opens: Option<String>,
    what: String,
    /// Runs waiting at the step now (current version).
    at: String,
    /// Runs that went through it (every version), by outcome.
    through: String,
    outcomes: String,
    /// Messages of the step by status (current version).
    messages: String,
}

#[derive(Serialize)]
struct VersionRow {
    version: i64,
    created: String,
    digest: String,
    active: String,
    completed: String,
    exited: String,
    held_out: String,
}

async fn report(state: &WebState, name: &str) -> Result<JourneyReport, WebError> {
    state.store.journey_report(name).await?.ok_or_else(|| WebError::NotFound(format!("no journey `{name}`")))
}

/// The journey's head (name, version, pause), or a 404: what the uplift and simulation pages
/// need before their background work, without the report's counts over every run.
async fn summary(state: &WebState, name: &str) -> Result<JourneySummary, WebError> {
    state
        .store
        .journeys()
        .await?
        .into_iter()
        .find(|j| j.name == name)
        .ok_or_else(|| WebError::NotFound(format!("no journey `{name}`")))
}

/// `GET /journeys/{name}`.
pub async fn show(
    State(state): State<WebState>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Html<String>, WebError> {
    let session = current(&state, &headers, &path_of(&name)).await?;
    let report = report(&state, &name).await?;
    let f = &state.config.format;
    let summary = &report.summary;
    let stored = state
        .store
        .journey_version(&name, summary.version)
        .await?
        .ok_or_else(|| WebError::NotFound(format!("no version {} of journey `{name}`", summary.version)))?;
    let journey = Journey::from_json(&stored.definition).map_err(|problems| {
        kanta_store::StoreError::Corrupt(format!("stored journey `{name}` does not validate: {problems}"))
    })?;
    let compiled = journey.compile();
    // Runs through each step: a count over every step a run took, made in the background.
    let store = state.store.clone();
    let key = name.clone();
    let funnel = state
        .funnels
        .get(&name, state.now(), move || async move { store.step_funnel(&key).await.map_err(|e| e.to_string()) });
    let (funnel, counted) = match &funnel {
        Cached::Ready { value, computed_at, .. } => {
            (Some(value.clone()), Some(readable_time(&kanta_store::rfc3339(*computed_at))))
        }
        Cached::Pending | Cached::Failed(_) => (None, None),
    };
    let mut through: BTreeMap<&str, Vec<(&str, i64)>> = BTreeMap::new();
    for row in funnel.iter().flat_map(|f| f.iter()) {
        through.entry(row.step.as_str()).or_default().push((row.outcome.as_str(), row.runs));
    }
    let counts = |step: &str| report.steps.iter().find(|s| s.version == summary.version && s.step == step);
    let flow: Vec<FlowStep> = compiled
        .steps
        .iter()
        .map(|s| {
            let id = s.id.as_str();
            let passed = through.get(id).map(Vec::as_slice).unwrap_or_default();
            let total: i64 = passed.iter().map(|(_, n)| n).sum();
            let here = counts(id);
            FlowStep {
                id: id.to_owned(),
                depth: s.depth(),
                opens: s.opens(),
                what: s.action.describe(),
                at: f.integer(here.map_or(0, |c| u64::try_from(c.active_runs).unwrap_or(0))),
                through: if counted.is_some() { f.integer(u64::try_from(total).unwrap_or(0)) } else { "…".into() },
                outcomes: passed
                    .iter()
                    .map(|(outcome, n)| format!("{outcome} {}", f.integer(u64::try_from(*n).unwrap_or(0))))
                    .collect::<Vec<_>>()
                    .join(", "),
                messages: here
                    .map(|c| {
                        c.messages
                            .iter()
                            .map(|(status, n)| format!("{status} {}", f.integer(u64::try_from(*n).unwrap_or(0))))
                            .collect::<Vec<_>>()
                            .join(", ")
                    })
                    .unwrap_or_default(),
            }
        })
        .collect();
    let versions: Vec<VersionRow> = report
        .versions
        .iter()
        .rev()
        .map(|v| VersionRow {
            version: v.version,
            created: readable_time(&v.created_at.to_rfc3339()),
            digest: v.digest.chars().take(12).collect(),
            active: f.integer(u64::try_from(v.active_runs).unwrap_or(0)),
            completed: f.integer(u64::try_from(v.completed_runs).unwrap_or(0)),
            exited: f.integer(u64::try_from(v.exited_runs).unwrap_or(0)),
            held_out: f.integer(u64::try_from(v.held_out_runs).unwrap_or(0)),
        })
        .collect();
    let page = minijinja::context! {
        name => summary.name.clone(),
        path => path_of(&summary.name),
        version => summary.version,
        paused => summary.paused,
        active => f.integer(u64::try_from(summary.active_runs).unwrap_or(0)),
        updated => readable_time(&summary.updated_at.to_rfc3339()),
        description => journey.description.clone(),
        trigger => journey.trigger.describe(),
        holdout => (journey.holdout != kanta_journey::Holdout::NONE).then(|| journey.holdout.to_string()),
        goal => journey.goal.as_ref().map(kanta_journey::document::Goal::describe),
        flow => flow,
        counted => counted,
        versions => versions,
    };
    state.templates.page("journey.html", "journeys", Some(&session), page)
}

/// `POST /journeys/{name}/pause` and `/resume` (admin).
async fn set_paused(
    state: WebState,
    headers: HeaderMap,
    name: String,
    body: Bytes,
    paused: bool,
) -> Result<Response, WebError> {
    read_form::<Button>(&state, &headers, &path_of(&name), &body, Needs::Admin).await?;
    if !state.store.set_journey_paused(&name, paused, state.clock.now()).await? {
        return Err(WebError::NotFound(format!("no journey `{name}`")));
    }
    Ok(Redirect::to(&path_of(&name)).into_response())
}

/// `POST /journeys/{name}/pause`.
pub async fn pause(
    State(state): State<WebState>,
    headers: HeaderMap,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Response, WebError> {
    set_paused(state, headers, name, body, true).await
}

/// `POST /journeys/{name}/resume`.
pub async fn resume(
    State(state): State<WebState>,
    headers: HeaderMap,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Response, WebError> {
    set_paused(state, headers, name, body, false).await
}

/// `GET /journeys/{name}/uplift`: the uplift report, computed in the background (it reads every
/// entry) and shown with the time it was computed; the first view says it is being computed and
/// reloads itself.
pub async fn uplift(
    State(state): State<WebState>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Html<String>, WebError> {
    let session = current(&state, &headers, &format!("{}/uplift", path_of(&name))).await?;
    // An unknown journey is a 404 now, not a failed computation later.
    let summary = summary(&state, &name).await?;
    let store = state.store.clone();
    let (key, now) = (name.clone(), state.clock.now());
    let cached = state.uplift.get(&name, now.micros(), move || async move {
        let settings = kanta_uplift::report::Settings::default();
        match kanta_engine::uplift::uplift_report(&*store, &key, now, settings).await {
            Ok(Some(report)) => Ok(report),
            Ok(None) => Err(format!("no journey `{key}`")),
            Err(e) => Err(e.to_string()),
        }
    });
    let f = &state.config.format;
    let page = match cached {
        Cached::Ready { value: report, computed_at, refreshing } => {
            let at_risk = &report.revenue_at_risk;
            minijinja::context! {
                ready => true,
                name => report.journey.clone(),
                path => path_of(&report.journey),
                version => report.version,
                holdout => report.holdout.clone(),
                goal => report.goal.clone().unwrap_or_else(|| "none (revenue only)".into()),
                window => report.window.clone(),
                computed => readable_time(&kanta_store::rfc3339(computed_at)),
                refreshing => refreshing,
                ttl_minutes => crate::UPLIFT_TTL.as_secs() / 60,
                tables => kanta_report::uplift::tables(&report.report),
                curve_rows => curve_rows(&report.report, f),
                at_risk => format!(
                    "{} lapsing customers ({} in their last 12 months) and {} lost ({})",
                    f.integer(u64::try_from(at_risk.lapsing_customers).unwrap_or(0)),
                    f.money(kanta_domain::Money::from_raw(at_risk.lapsing_revenue_12m)),
                    f.integer(u64::try_from(at_risk.lost_customers).unwrap_or(0)),
                    f.money(kanta_domain::Money::from_raw(at_risk.lost_revenue_12m)),
                ),
            }
        }
        Cached::Pending => minijinja::context! {
            ready => false, name => summary.name.clone(), path => path_of(&summary.name), pending => true,
        },
        Cached::Failed(problem) => minijinja::context! {
            ready => false, name => summary.name.clone(), path => path_of(&summary.name), problem => problem,
        },
    };
    state.templates.page("journey_uplift.html", "journeys", Some(&session), page)
}

/// The conversion curves as table rows (the chart's alternative): day, and each arm's share
/// converted with its band.
fn curve_rows(report: &kanta_uplift::report::UpliftReport, f: &NumberFormat) -> Vec<[String; 3]> {
    let point = |p: &kanta_uplift::curve::CurvePoint| {
        format!("{} [{}, {}]", f.percent(p.converted), f.percent(p.band.lower), f.percent(p.band.upper))
    };
    report
        .curve_treatment
        .iter()
        .zip(&report.curve_control)
        .map(|(t, c)| [t.day.to_string(), point(t), point(c)])
        .collect()
}

/// Days projected by the simulation view.
const SIMULATED_DAYS: u32 = 30;
/// Draws of the customers' futures averaged by the simulation view.
const SIMULATED_DRAWS: u32 = 10;

/// `GET /journeys/{name}/simulation`: the journey's current version projected over the next 30
/// days against the store (`kanta journeys simulate`), computed in the background.
pub async fn simulation(
    State(state): State<WebState>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Html<String>, WebError> {
    let session = current(&state, &headers, &format!("{}/simulation", path_of(&name))).await?;
    let summary = summary(&state, &name).await?;
    let base =
        minijinja::context! { name => summary.name.clone(), path => path_of(&summary.name), days => SIMULATED_DAYS };
    let Some((engine, slipping_below)) = state.engine.clone() else {
        let page = minijinja::context! { disabled => true, ..base };
        return state.templates.page("journey_simulation.html", "journeys", Some(&session), page);
    };
    let stored = state
        .store
        .journey_version(&name, summary.version)
        .await?
        .ok_or_else(|| WebError::NotFound(format!("no version {} of journey `{name}`", summary.version)))?;
    let journey = Journey::from_json(&stored.definition).map_err(|problems| {
        kanta_store::StoreError::Corrupt(format!("stored journey `{name}` does not validate: {problems}"))
    })?;
    let options = kanta_engine::simulate::SimulateOptions {
        days: SIMULATED_DAYS,
        seed: 1,
        draws: SIMULATED_DRAWS,
        lapse_days: None,
        slipping_below,
    };
    // A new version is a new simulation.
    let key = format!("{name}@{}", summary.version);
    // The simulation's future is not `Send` (the compiler cannot prove it for its borrows
    // across awaits), so it is driven on a blocking thread of its own by the runtime's handle.
    let handle = tokio::runtime::Handle::current();
    let cached = state.simulations.get(&key, state.now(), move || async move {
        tokio::task::spawn_blocking(move || {
            handle.block_on(async { engine.simulate(&journey, &options).await.map_err(|e| e.to_string()) })
        })
        .await
        .map_err(|e| format!("the simulation stopped: {e}"))?
    });
    let page = match cached {
        Cached::Ready { value: simulation, computed_at, refreshing } => {
            let view = crate::simulation::page(&simulation);
            let drawn = kanta_report::simulation::charts(&view);
            let f = &state.config.format;
            let days: Vec<[String; 5]> = simulation
                .entries_per_day
                .iter()
                .zip(&simulation.sends_per_day)
                .map(|(e, d)| {
                    [
                        d.day.clone(),
                        f.integer(e.entries),
                        f.integer(d.sent),
                        f.integer(d.deferred),
                        f.integer(d.webhooks),
                    ]
                })
                .collect();
            minijinja::context! {
                ready => true,
                version => summary.version,
                computed => readable_time(&kanta_store::rfc3339(computed_at)),
                refreshing => refreshing,
                ttl_minutes => crate::SIMULATION_TTL.as_secs() / 60,
                draws => SIMULATED_DRAWS,
                from => simulation.from.get(..10).unwrap_or_default().to_owned(),
                until => simulation.until.get(..10).unwrap_or_default().to_owned(),
                entries_from => simulation.entries_from.clone(),
                summary => view.summary.clone(),
                steps => view.steps.iter().map(|(id, kind, runs)| [id.clone(), (*kind).to_owned(), f.integer(*runs)]).collect::<Vec<_>>(),
                weeks => view.per_week.iter().map(|[emails, weeks]| [emails.to_string(), f.integer(*weeks)]).collect::<Vec<_>>(),
                day_rows => days,
                charts => drawn,
                caveats => simulation.caveats.clone(),
                ..base
            }
        }
        Cached::Pending => minijinja::context! { pending => true, ..base },
        Cached::Failed(problem) => minijinja::context! { problem => problem, ..base },
    };
    state.templates.page("journey_simulation.html", "journeys", Some(&session), page)
}
