//! A journey's uplift report, from the store: every customer's first entry with their arm,
//! conversion and revenue ([`GoalStore::uplift_entries`], read a page at a time), turned into
//! the statistics of [`kanta_uplift::report`]. The CLI (`kanta journeys report`) and the API
//! (`GET /v1/journeys/{name}/report`) both call [`uplift_report`], so they show the same numbers.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use kanta_domain::Timestamp;
use kanta_domain::money::Money;
use kanta_journey::document::duration_text;
use kanta_journey::{Holdout, Journey, StepKind};
use kanta_store::Storage;
use kanta_store::journey::{FunnelRow, RevenueAtRisk, RunArm, RunId};
use kanta_uplift::curve::FollowUp;
use kanta_uplift::report::{Settings, Unit, UpliftReport, report};
use serde::Serialize;

use crate::{DAY_MICROS, EngineError};

/// The window revenue is compared over when a journey has no goal.
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(30 * 86_400);

/// The covariate's window before entry (CUPED).
pub const PRE_WINDOW: Duration = Duration::from_secs(365 * 86_400);

/// Rows read per page.
const PAGE: u32 = 20_000;

/// The uplift report of one journey, with what it was computed over.
#[derive(Debug, Clone, Serialize)]
pub struct JourneyUplift {
    /// The journey.
    pub journey: String,
    /// Its current version (the goal and holdout are read from it).
    pub version: i64,
    /// The goal as written (`event order.created within 30d`), if any.
    pub goal: Option<String>,
    /// The journey's holdout (`10%`).
    pub holdout: String,
    /// The window conversions and revenue are counted in after entry.
    pub window: String,
    /// When the report was computed, RFC 3339.
    pub computed_at: String,
    /// Runs (all entries, not only first ones) by arm.
    pub entries: Vec<(RunArm, i64)>,
    /// The statistics.
    #[serde(flatten)]
    pub report: UpliftReport,
    /// Per step and outcome, the runs that passed it (every version, every entry).
    pub funnel: Vec<FunnelRow>,
    /// The store's revenue at risk now (lapsing and lost customers and their last 12 months),
    /// to set the journey's incremental revenue and CLV beside.
    pub revenue_at_risk: RevenueAtRisk,
    /// The arms of each random `split`, compared as treatment and control are: every arm
    /// against the first, over the treated customers whose first run took the split.
    pub splits: Vec<SplitComparison>,
}

/// One arm of a split against the split's first arm.
#[derive(Debug, Clone, Serialize)]
pub struct SplitComparison {
    /// The split step's id.
    pub step: String,
    /// The arm compared (1, 2, …), as "treatment".
    pub arm: u32,
    /// The arm it is compared with (0), as "control".
    pub baseline: u32,
    /// The comparison.
    pub report: UpliftReport,
}

/// Computes the report of `journey` at `now` (the store's current version of it).
pub async fn uplift_report(
    store: &dyn Storage,
    name: &str,
    now: Timestamp,
    settings: Settings,
) -> Result<Option<JourneyUplift>, EngineError> {
    let Some(head) = store.journey_heads().await?.into_iter().find(|h| h.name == name) else {
        return Ok(None);
    };
    let journey = Journey::from_json(&head.definition).map_err(|problems| EngineError::StoredJourney {
        name: name.to_owned(),
        version: head.version,
        problem: problems.to_string(),
    })?;
    let window = journey.goal.as_ref().map_or(DEFAULT_WINDOW, |g| g.within);
    let window_micros = i64::try_from(window.as_micros()).unwrap_or(i64::MAX);
    let mut units = Vec::new();
    // The first runs of treated customers, for the split comparisons.
    let has_split = journey.all_steps().iter().any(|s| matches!(s.kind, StepKind::Split(_)));
    let mut treated_runs: HashMap<RunId, usize> = HashMap::new();
    let mut after: Option<RunId> = None;
    loop {
        let (page, next) = store.uplift_entries(name, window, PRE_WINDOW, after, PAGE).await?;
        if has_split {
            for (i, e) in page.iter().enumerate() {
                if !e.arm.is_control() {
                    treated_runs.insert(e.run, units.len() + i);
                }
            }
        }
        units.extend(page.iter().map(|e| {
            let entered = e.entered_at.micros();
            let window_end = entered.saturating_add(window_micros);
            let observed_to = window_end.min(now.micros());
            let day = |t: i64| u32::try_from((t - entered).max(0) / DAY_MICROS).unwrap_or(u32::MAX);
            Unit {
                control: e.arm.is_control(),
                matured: window_end <= now.micros(),
                converted: e.converted_at.is_some(),
                revenue_after: Money::from_raw(e.revenue_after).to_f64(),
                orders_after: e.orders_after as f64,
                revenue_before: Money::from_raw(e.revenue_before).to_f64(),
                messages: u64::try_from(e.messages_sent).unwrap_or(0),
                predicted_clv: e.clv_12m.filter(|v| v.is_finite()).unwrap_or(0.0),
                follow_up: FollowUp {
                    days_followed: day(observed_to),
                    converted_on: e.converted_at.map(|t| day(t.micros())),
                },
            }
        }));
        match next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    let compute = |units: &[Unit]| report(units, settings).map_err(|e| EngineError::Report(e.to_string()));
    let splits =
        if has_split { split_comparisons(store, name, &units, &treated_runs, &compute).await? } else { Vec::new() };
    let report = compute(&units)?;
    Ok(Some(JourneyUplift {
        journey: name.to_owned(),
        version: head.version,
        goal: journey.goal.as_ref().map(kanta_journey::document::Goal::describe),
        holdout: if journey.holdout == Holdout::NONE { "0%".to_owned() } else { journey.holdout.to_string() },
        window: duration_text(window),
        computed_at: kanta_store::rfc3339(now.micros()),
        entries: store.entries_by_arm(name).await?,
        report,
        funnel: store.step_funnel(name).await?,
        revenue_at_risk: store.revenue_at_risk(now).await?,
        splits,
    }))
}

/// Every split's arms against its first arm: the treated first runs that took the split, the
/// first arm as "control".
async fn split_comparisons(
    store: &dyn Storage,
    name: &str,
    units: &[Unit],
    treated_runs: &HashMap<RunId, usize>,
    compute: &impl Fn(&[Unit]) -> Result<UpliftReport, EngineError>,
) -> Result<Vec<SplitComparison>, EngineError> {
    // (step, arm) → the units that took it.
    let mut by_arm: BTreeMap<(String, u32), Vec<Unit>> = BTreeMap::new();
    let mut after = None;
    loop {
        let (page, next) = store.split_choices(name, after, PAGE).await?;
        for choice in page {
            if let Some(&i) = treated_runs.get(&choice.run) {
                by_arm.entry((choice.step, choice.arm)).or_default().push(units[i]);
            }
        }
        match next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    let mut out = Vec::new();
    for ((step, arm), arm_units) in &by_arm {
        if *arm == 0 {
            continue;
        }
        let baseline = by_arm.get(&(step.clone(), 0)).map(Vec::as_slice).unwrap_or_default();
        let both: Vec<Unit> = baseline
            .iter()
            .map(|u| Unit { control: true, ..*u })
            .chain(arm_units.iter().map(|u| Unit { control: false, ..*u }))
            .collect();
        out.push(SplitComparison { step: step.clone(), arm: *arm, baseline: 0, report: compute(&both)? });
    }
    Ok(out)
}
