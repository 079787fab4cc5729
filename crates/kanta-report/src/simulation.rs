//! A journey simulation (`kanta journeys simulate --html`) as a self-contained HTML page
//! (inline CSS and SVG, no script): the headline counts, entries and sends per day as charts,
//! runs per step and emails per customer-week.

use minijinja::{Environment, context};
use serde::Serialize;

use crate::charts;
use crate::format::thousands;

const TEMPLATE: &str = include_str!("../templates/simulation.html");

/// What the page shows.
#[derive(Debug, Clone, Serialize)]
pub struct SimulationPage<'a> {
    /// The journey's name.
    pub journey: &'a str,
    /// The window's start, RFC 3339.
    pub from: &'a str,
    /// Its end, RFC 3339.
    pub until: &'a str,
    /// Its length in days.
    pub days: u32,
    /// The seed of the draws.
    pub seed: u64,
    /// How entries were projected, in a sentence.
    pub entries_from: &'a str,
    /// Headline figures as (label, value).
    pub summary: Vec<(String, String)>,
    /// Runs per step: (id, kind, runs).
    pub steps: Vec<(String, &'static str, u64)>,
    /// One label per day of the window.
    pub day_labels: Vec<String>,
    /// Entries per day.
    pub entries: Vec<u64>,
    /// Emails sent when queued, per day.
    pub sent: Vec<u64>,
    /// Emails delayed by quiet hours, per day they go.
    pub deferred: Vec<u64>,
    /// Webhook calls per day.
    pub webhooks: Vec<u64>,
    /// Customer-weeks by emails in them: `[emails, customer-weeks]`.
    pub per_week: Vec<[u64; 2]>,
    /// What the projection does not know.
    pub caveats: &'a [String],
}

/// The page's three charts: entries per day, sends per day, and emails per customer-week (none
/// when nobody gets email).
#[derive(Debug, Clone, Serialize)]
pub struct SimulationCharts {
    /// Entries per day.
    pub entries: String,
    /// Emails at once, after quiet hours, and webhooks per day.
    pub sends: String,
    /// Customer-weeks by emails in them.
    pub week: Option<String>,
}

/// Draws the charts of `page` (this page and the dashboard's simulation view show the same).
pub fn charts(page: &SimulationPage<'_>) -> SimulationCharts {
    let entries =
        charts::stacked_days("Entries per day", "entries", &page.day_labels, &[("entries", page.entries.as_slice())]);
    let mut sends: Vec<(&str, &[u64])> =
        vec![("emails at once", page.sent.as_slice()), ("emails after quiet hours", page.deferred.as_slice())];
    if page.webhooks.iter().any(|&w| w > 0) {
        sends.push(("webhooks", page.webhooks.as_slice()));
    }
    let sends = charts::stacked_days("Sends per day", "sends", &page.day_labels, &sends);
    let week_labels: Vec<String> = page.per_week.iter().map(|[emails, _]| emails.to_string()).collect();
    let week_counts: Vec<u64> = page.per_week.iter().map(|[_, weeks]| *weeks).collect();
    let week = (!week_counts.is_empty()).then(|| {
        charts::counted_bars(
            "Emails per customer per week",
            "emails in the week",
            "customer-weeks",
            &week_labels,
            &week_counts,
        )
    });
    SimulationCharts { entries, sends, week }
}

/// Renders the page.
pub fn render_simulation_html(page: &SimulationPage<'_>) -> Result<String, minijinja::Error> {
    let mut env = Environment::new();
    env.add_template("simulation.html", TEMPLATE)?;
    env.add_template("base.css", crate::BASE_CSS)?;
    let drawn = charts(page);
    let steps: Vec<(String, &str, String)> =
        page.steps.iter().map(|(id, kind, runs)| (id.clone(), *kind, thousands(*runs))).collect();
    env.get_template("simulation.html")?.render(context! {
        p => page,
        version => env!("CARGO_PKG_VERSION"),
        steps => steps,
        entries_chart => drawn.entries,
        sends_chart => drawn.sends,
        week_chart => drawn.week,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_names_the_journey_and_draws_its_charts() {
        let caveats = vec!["consent is not projected".to_owned()];
        let page = SimulationPage {
            journey: "win-back",
            from: "2026-12-04T00:00:00Z",
            until: "2027-01-03T00:00:00Z",
            days: 30,
            seed: 1,
            entries_from: "the last 30 days replayed",
            summary: vec![("entries".into(), "1,234".into())],
            steps: vec![("first-offer".into(), "send_email", 1_200)],
            day_labels: vec!["2026-12-04".into(), "2026-12-05".into()],
            entries: vec![600, 634],
            sent: vec![500, 600],
            deferred: vec![100, 0],
            webhooks: vec![0, 0],
            per_week: vec![[1, 900], [2, 150]],
            caveats: &caveats,
        };
        let html = render_simulation_html(&page).unwrap();
        for needle in
            ["win-back", "first-offer", "1,200", "1,234", "consent is not projected", "Sends per day", "customer-weeks"]
        {
            assert!(html.contains(needle), "{needle} missing");
        }
        assert_eq!(html.matches("<svg").count(), 3);
        assert!(!html.contains("chart-error"));
    }
}
