//! Feedback insights: what NPS and CSAT responses say, over time and across the customer base,
//! and which dissatisfaction comes before customers lapse. Pure: the store hands in the
//! responses and a few facts per customer; nothing here does IO.
//!
//! Definitions:
//! - **NPS** (Reichheld 2003, "The One Number You Need to Grow", HBR): of the responses to
//!   "how likely are you to recommend us" on 0–10, promoters answer 9–10, passives 7–8 and
//!   detractors 0–6; NPS = 100 · (promoters − detractors) / responses, from −100 to 100.
//! - **CSAT** on 1–5: the mean score, and the satisfied share — the share of 4s and 5s, the
//!   usual "CSAT %".
//! - Every response counts once where it falls (its month, its topics); stage and value tier
//!   are the customer's now (the latest scoring run), so "by stage" reads "what do customers who
//!   are now lapsing say".
//! - **Topics before lapse**: for each customer, the *last active window* is the 90 days up to
//!   their last activity (their last purchase or response, whichever is later). Among lapsed
//!   customers (stage `lapsing` or `lost`) with a response in that window, the share who raised
//!   a topic there, against the same share among active customers (every other stage); the
//!   topics where lapsed customers lead by the most percentage points come first. This is an
//!   association, not a cause: it says what to read first, not what to fix first.
//! - **Who to call**: customers whose latest response is a detractor (NPS ≤ 6 or CSAT ≤ 2), who
//!   are still valuable — value tier `top` or `high` — and not yet `lost`; most valuable first
//!   (12-month CLV, else revenue).

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use crate::time::Timestamp;

/// Seconds in a day.
const DAY: i64 = 86_400;

/// One feedback response.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    /// Index of the customer in the customer list.
    pub customer: usize,
    /// When, seconds since the epoch.
    pub time: i64,
    /// 0–10.
    pub nps: Option<u8>,
    /// 1–5.
    pub csat: Option<u8>,
    /// Tags, lower-cased.
    pub topics: Vec<String>,
    /// The free text, if any.
    pub text: Option<String>,
}

/// What the insights need to know about a customer who gave feedback.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CustomerFacts {
    /// External id.
    pub id: String,
    /// Display name.
    pub name: Option<String>,
    /// Email address.
    pub email: Option<String>,
    /// Lifecycle stage from the latest scoring run.
    pub stage: Option<String>,
    /// Value tier from the latest scoring run.
    pub value_tier: Option<String>,
    /// 12-month CLV from the latest scoring run.
    pub clv_12m: Option<f64>,
    /// P(alive) from the latest scoring run.
    pub p_alive: Option<f64>,
    /// Net revenue (purchases minus refunds), in currency units.
    pub revenue: f64,
    /// Last purchase, seconds since the epoch.
    pub last_purchase: Option<i64>,
}

/// Knobs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Options {
    /// Today (seconds since the epoch): months are counted back from it.
    pub now: i64,
    /// Months shown in the time series, ending with the current one.
    pub months: u32,
    /// Length of the last active window, days.
    pub window_days: i64,
    /// Longest call list.
    pub call_limit: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options { now: 0, months: 12, window_days: 90, call_limit: 50 }
    }
}

/// NPS and CSAT of a set of responses.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct Score {
    /// Responses in the set.
    pub responses: u64,
    /// Responses with an NPS answer.
    pub nps_responses: u64,
    /// 9–10.
    pub promoters: u64,
    /// 7–8.
    pub passives: u64,
    /// 0–6.
    pub detractors: u64,
    /// 100 · (promoters − detractors) / NPS responses; none without NPS responses.
    pub nps: Option<f64>,
    /// Responses with a CSAT answer.
    pub csat_responses: u64,
    /// Mean CSAT, 1–5.
    pub csat: Option<f64>,
    /// Share of CSAT answers that are 4 or 5.
    pub csat_satisfied: Option<f64>,
}

impl Score {
    fn add(&mut self, r: &Response) {
        self.responses += 1;
        if let Some(n) = r.nps {
            self.nps_responses += 1;
            match n {
                9..=10 => self.promoters += 1,
                7..=8 => self.passives += 1,
                _ => self.detractors += 1,
            }
        }
        if let Some(c) = r.csat {
            self.csat_responses += 1;
            // Kept as sums until `finish`.
            self.csat = Some(self.csat.unwrap_or(0.0) + f64::from(c));
            self.csat_satisfied = Some(self.csat_satisfied.unwrap_or(0.0) + f64::from(u8::from(c >= 4)));
        }
    }

    fn finish(mut self) -> Score {
        if self.nps_responses > 0 {
            let n = self.nps_responses as f64;
            self.nps = Some(100.0 * (self.promoters as f64 - self.detractors as f64) / n);
        }
        if self.csat_responses > 0 {
            let n = self.csat_responses as f64;
            self.csat = self.csat.map(|s| s / n);
            self.csat_satisfied = self.csat_satisfied.map(|s| s / n);
        }
        self
    }
}

/// A score for one group (a month, a stage, a tier, a topic).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Group {
    /// The group: `2024-03`, `lapsing`, `top`, `delivery`, or `unscored`.
    pub name: String,
    /// Its scores.
    #[serde(flatten)]
    pub score: Score,
}

/// A topic's share before lapse against its share among active customers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TopicLift {
    /// The topic.
    pub topic: String,
    /// Lapsed customers who raised it in their last active window.
    pub lapsed: u64,
    /// … as a share of lapsed customers with a response in that window.
    pub lapsed_share: f64,
    /// Active customers who raised it in their last active window.
    pub active: u64,
    /// … as a share of active customers with a response in that window.
    pub active_share: f64,
    /// `lapsed_share / active_share`; none when no active customer raised it.
    pub lift: Option<f64>,
}

/// Topics before lapse.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LapseTopics {
    /// Length of the last active window, days.
    pub window_days: i64,
    /// Lapsed customers with a response in their window (the denominator of `lapsed_share`).
    pub lapsed_customers: u64,
    /// Active customers with a response in their window.
    pub active_customers: u64,
    /// By lapsed share minus active share, largest first.
    pub topics: Vec<TopicLift>,
}

/// A valuable detractor.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CallEntry {
    /// External id.
    pub customer: String,
    /// Display name.
    pub name: Option<String>,
    /// Email address.
    pub email: Option<String>,
    /// The latest response's time, RFC 3339 date.
    pub responded: String,
    /// Its NPS answer.
    pub nps: Option<u8>,
    /// Its CSAT answer.
    pub csat: Option<u8>,
    /// Its topics.
    pub topics: Vec<String>,
    /// Its text.
    pub text: Option<String>,
    /// Stage now.
    pub stage: Option<String>,
    /// Value tier now.
    pub value_tier: Option<String>,
    /// 12-month CLV.
    pub clv_12m: Option<f64>,
    /// P(alive).
    pub p_alive: Option<f64>,
    /// Net revenue so far.
    pub revenue: f64,
}

/// Everything the feedback insights report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FeedbackInsights {
    /// The day the insights are computed for.
    pub as_of: String,
    /// Responses.
    pub responses: u64,
    /// Customers who responded.
    pub customers: u64,
    /// All responses.
    pub overall: Score,
    /// Per calendar month (UTC), oldest first, the last `months` months including empty ones.
    pub by_month: Vec<Group>,
    /// Per stage now, in lifecycle order, then `unscored`.
    pub by_stage: Vec<Group>,
    /// Per value tier now, highest first, then `unscored`.
    pub by_value_tier: Vec<Group>,
    /// Per topic, most responses first.
    pub by_topic: Vec<Group>,
    /// Topics raised before customers lapse.
    pub before_lapse: LapseTopics,
    /// Valuable detractors, most valuable first.
    pub call_list: Vec<CallEntry>,
}

const STAGES: [&str; 6] = ["new", "repeat", "loyal", "slipping", "lapsing", "lost"];
const TIERS: [&str; 4] = ["top", "high", "mid", "low"];
const UNSCORED: &str = "unscored";

fn month_of(seconds: i64) -> (i32, u32) {
    let (y, m, _) = Timestamp(seconds).day().ymd();
    (y, m)
}

/// Groups in a fixed order, empty ones left out, then any other names in name order.
fn ordered(mut groups: HashMap<String, Score>, order: &[&str]) -> Vec<Group> {
    let mut out: Vec<Group> = order
        .iter()
        .chain(std::iter::once(&UNSCORED))
        .filter_map(|name| groups.remove(*name).map(|s| Group { name: (*name).to_string(), score: s.finish() }))
        .collect();
    let rest: BTreeMap<String, Score> = groups.into_iter().collect();
    out.extend(rest.into_iter().map(|(name, s)| Group { name, score: s.finish() }));
    out
}

/// Compute the insights. `responses[i].customer` indexes `customers`; out-of-range indices are
/// ignored.
pub fn insights(responses: &[Response], customers: &[CustomerFacts], options: &Options) -> FeedbackInsights {
    let responses: Vec<&Response> = responses.iter().filter(|r| r.customer < customers.len()).collect();
    let mut overall = Score::default();
    let mut by_stage: HashMap<String, Score> = HashMap::new();
    let mut by_tier: HashMap<String, Score> = HashMap::new();
    let mut by_topic: HashMap<String, Score> = HashMap::new();
    let mut by_month: BTreeMap<(i32, u32), Score> = BTreeMap::new();
    let mut latest: HashMap<usize, &Response> = HashMap::new();
    let mut last_response: HashMap<usize, i64> = HashMap::new();
    for r in &responses {
        let c = &customers[r.customer];
        overall.add(r);
        by_stage.entry(c.stage.clone().unwrap_or_else(|| UNSCORED.into())).or_default().add(r);
        by_tier.entry(c.value_tier.clone().unwrap_or_else(|| UNSCORED.into())).or_default().add(r);
        for t in &r.topics {
            by_topic.entry(t.clone()).or_default().add(r);
        }
        by_month.entry(month_of(r.time)).or_default().add(r);
        let newer = latest.get(&r.customer).is_none_or(|l| r.time >= l.time);
        if newer {
            latest.insert(r.customer, r);
        }
        let last = last_response.entry(r.customer).or_insert(r.time);
        *last = (*last).max(r.time);
    }

    // The last `months` months, empty ones included, so the series has no gaps.
    let today = Timestamp(options.now).day();
    let current = today.month_index();
    let months: Vec<Group> = (0..i64::from(options.months.max(1)))
        .rev()
        .map(|back| {
            let index = current - back as i32;
            let (y, m) = (index.div_euclid(12), index.rem_euclid(12) as u32 + 1);
            let score = by_month.get(&(y, m)).copied().unwrap_or_default().finish();
            Group { name: format!("{y:04}-{m:02}"), score }
        })
        .collect();

    let mut topics: Vec<Group> = by_topic.into_iter().map(|(name, s)| Group { name, score: s.finish() }).collect();
    topics.sort_by(|a, b| b.score.responses.cmp(&a.score.responses).then_with(|| a.name.cmp(&b.name)));

    FeedbackInsights {
        as_of: today.to_string(),
        responses: overall.responses,
        customers: latest.len() as u64,
        overall: overall.finish(),
        by_month: months,
        by_stage: ordered(by_stage, &STAGES),
        by_value_tier: ordered(by_tier, &TIERS),
        by_topic: topics,
        before_lapse: before_lapse(&responses, customers, &last_response, options.window_days),
        call_list: call_list(&latest, customers, options.call_limit),
    }
}

fn is_lapsed(stage: Option<&str>) -> Option<bool> {
    match stage? {
        "lapsing" | "lost" => Some(true),
        _ => Some(false),
    }
}

fn before_lapse(
    responses: &[&Response],
    customers: &[CustomerFacts],
    last_response: &HashMap<usize, i64>,
    window_days: i64,
) -> LapseTopics {
    // Topics each customer raised inside their last active window.
    let mut raised: HashMap<usize, Vec<&str>> = HashMap::new();
    for r in responses {
        let c = &customers[r.customer];
        let last = c.last_purchase.unwrap_or(i64::MIN).max(last_response.get(&r.customer).copied().unwrap_or(i64::MIN));
        if r.time > last - window_days * DAY && r.time <= last {
            let topics = raised.entry(r.customer).or_default();
            for t in &r.topics {
                if !topics.contains(&t.as_str()) {
                    topics.push(t);
                }
            }
        }
    }
    let (mut lapsed_n, mut active_n) = (0u64, 0u64);
    let mut counts: HashMap<&str, (u64, u64)> = HashMap::new();
    for (customer, topics) in &raised {
        let Some(lapsed) = is_lapsed(customers[*customer].stage.as_deref()) else { continue };
        if lapsed {
            lapsed_n += 1;
        } else {
            active_n += 1;
        }
        for t in topics {
            let e = counts.entry(t).or_default();
            if lapsed {
                e.0 += 1;
            } else {
                e.1 += 1;
            }
        }
    }
    let share = |k: u64, n: u64| if n == 0 { 0.0 } else { k as f64 / n as f64 };
    let mut topics: Vec<TopicLift> = counts
        .into_iter()
        .map(|(topic, (lapsed, active))| {
            let (ls, as_) = (share(lapsed, lapsed_n), share(active, active_n));
            TopicLift {
                topic: topic.to_string(),
                lapsed,
                lapsed_share: ls,
                active,
                active_share: as_,
                lift: (as_ > 0.0).then(|| ls / as_),
            }
        })
        .collect();
    topics.sort_by(|a, b| {
        (b.lapsed_share - b.active_share)
            .total_cmp(&(a.lapsed_share - a.active_share))
            .then_with(|| b.lapsed.cmp(&a.lapsed))
            .then_with(|| a.topic.cmp(&b.topic))
    });
    LapseTopics { window_days, lapsed_customers: lapsed_n, active_customers: active_n, topics }
}

fn is_detractor(r: &Response) -> bool {
    r.nps.is_some_and(|n| n <= 6) || r.csat.is_some_and(|c| c <= 2)
}

fn call_list(latest: &HashMap<usize, &Response>, customers: &[CustomerFacts], limit: usize) -> Vec<CallEntry> {
    let mut list: Vec<CallEntry> = latest
        .iter()
        .filter(|(_, r)| is_detractor(r))
        .map(|(&i, r)| (&customers[i], *r))
        .filter(|(c, _)| {
            matches!(c.value_tier.as_deref(), Some("top" | "high")) && c.stage.as_deref().is_some_and(|s| s != "lost")
        })
        .map(|(c, r)| CallEntry {
            customer: c.id.clone(),
            name: c.name.clone(),
            email: c.email.clone(),
            responded: Timestamp(r.time).day().to_string(),
            nps: r.nps,
            csat: r.csat,
            topics: r.topics.clone(),
            text: r.text.clone(),
            stage: c.stage.clone(),
            value_tier: c.value_tier.clone(),
            clv_12m: c.clv_12m,
            p_alive: c.p_alive,
            revenue: c.revenue,
        })
        .collect();
    list.sort_by(|a, b| {
        b.clv_12m
            .unwrap_or(f64::NEG_INFINITY)
            .total_cmp(&a.clv_12m.unwrap_or(f64::NEG_INFINITY))
            .then_with(|| b.revenue.total_cmp(&a.revenue))
            .then_with(|| a.customer.cmp(&b.customer))
    });
    list.truncate(limit);
    list
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::Day;

    fn at(date: &str) -> i64 {
        Timestamp::start_of(Day::parse(date).expect("a date")).0 + 12 * 3600
    }

    fn customer(id: &str, stage: Option<&str>, tier: Option<&str>, clv: f64, last: &str) -> CustomerFacts {
        CustomerFacts {
            id: id.into(),
            name: Some(id.to_uppercase()),
            email: Some(format!("{id}@example.com")),
            stage: stage.map(str::to_string),
            value_tier: tier.map(str::to_string),
            clv_12m: Some(clv),
            p_alive: Some(0.5),
            revenue: clv * 2.0,
            last_purchase: Some(at(last)),
        }
    }

    fn response(customer: usize, date: &str, nps: Option<u8>, csat: Option<u8>, topics: &[&str]) -> Response {
        Response {
            customer,
            time: at(date),
            nps,
            csat,
            topics: topics.iter().map(|t| t.to_string()).collect(),
            text: Some(format!("from {customer}")),
        }
    }

    /// Five customers, six responses; every number below is counted by hand in the comments.
    fn shop() -> (Vec<Response>, Vec<CustomerFacts>) {
        let customers = vec![
            customer("ann", Some("loyal"), Some("top"), 500.0, "2024-05-20"),
            customer("bob", Some("lapsing"), Some("high"), 80.0, "2024-02-01"),
            customer("cy", Some("lost"), Some("top"), 10.0, "2023-12-01"),
            customer("dee", Some("slipping"), Some("high"), 300.0, "2024-06-01"),
            CustomerFacts { id: "eve".into(), revenue: 5.0, ..CustomerFacts::default() },
        ];
        let responses = vec![
            response(0, "2024-05-10", Some(10), None, &["quality"]),
            response(0, "2024-06-01", Some(9), Some(5), &["delivery"]),
            response(1, "2024-02-10", Some(3), Some(2), &["delivery", "price"]),
            response(2, "2024-01-15", Some(5), None, &["delivery"]),
            response(3, "2024-06-10", Some(6), Some(3), &["price"]),
            response(4, "2024-03-05", None, Some(4), &[]),
        ];
        (responses, customers)
    }

    fn options() -> Options {
        Options { now: at("2024-06-15"), months: 6, ..Options::default() }
    }

    fn close(a: Option<f64>, b: f64) -> bool {
        a.is_some_and(|a| (a - b).abs() < 1e-12)
    }

    #[test]
    fn nps_and_csat_follow_their_definitions() {
        let (responses, customers) = shop();
        let i = insights(&responses, &customers, &options());
        let o = i.overall;
        // NPS answers 10, 9, 3, 5, 6: two promoters, no passive, three detractors → 100·(2−3)/5.
        assert_eq!((o.responses, o.nps_responses, o.promoters, o.passives, o.detractors), (6, 5, 2, 0, 3));
        assert!(close(o.nps, -20.0), "{:?}", o.nps);
        // CSAT answers 5, 2, 3, 4: mean 3.5, two of four satisfied.
        assert_eq!(o.csat_responses, 4);
        assert!(close(o.csat, 3.5) && close(o.csat_satisfied, 0.5), "{o:?}");
        assert_eq!((i.responses, i.customers, i.as_of.as_str()), (6, 5, "2024-06-15"));
    }

    #[test]
    fn months_stages_tiers_and_topics_are_grouped() {
        let (responses, customers) = shop();
        let i = insights(&responses, &customers, &options());
        let months: Vec<(&str, u64, Option<f64>)> =
            i.by_month.iter().map(|g| (g.name.as_str(), g.score.responses, g.score.nps)).collect();
        assert_eq!(
            months,
            [
                ("2024-01", 1, Some(-100.0)),
                ("2024-02", 1, Some(-100.0)),
                ("2024-03", 1, None),
                ("2024-04", 0, None),
                ("2024-05", 1, Some(100.0)),
                ("2024-06", 2, Some(0.0)),
            ]
        );
        assert!(close(i.by_month[5].score.csat, 4.0));
        let stages: Vec<(&str, u64)> = i.by_stage.iter().map(|g| (g.name.as_str(), g.score.responses)).collect();
        assert_eq!(stages, [("loyal", 2), ("slipping", 1), ("lapsing", 1), ("lost", 1), ("unscored", 1)]);
        // Top tier: ann 10 and 9, cy 5 → 100·(2−1)/3.
        assert_eq!(i.by_value_tier.iter().map(|g| g.name.as_str()).collect::<Vec<_>>(), ["top", "high", "unscored"]);
        assert!(close(i.by_value_tier[0].score.nps, 100.0 / 3.0));
        assert!(close(i.by_value_tier[1].score.nps, -100.0));
        // Delivery: 9, 3, 5 → one promoter, two detractors.
        let topics: Vec<(&str, u64)> = i.by_topic.iter().map(|g| (g.name.as_str(), g.score.responses)).collect();
        assert_eq!(topics, [("delivery", 3), ("price", 2), ("quality", 1)]);
        assert!(close(i.by_topic[0].score.nps, -100.0 / 3.0));
    }

    #[test]
    fn topics_before_lapse_compare_lapsed_and_active_windows() {
        let (responses, customers) = shop();
        let lapse = insights(&responses, &customers, &options()).before_lapse;
        // Lapsed with a response in their window: bob (delivery, price), cy (delivery).
        // Active: ann (quality, delivery), dee (price). Eve is unscored and left out.
        assert_eq!((lapse.lapsed_customers, lapse.active_customers, lapse.window_days), (2, 2, 90));
        type Row<'a> = (&'a str, u64, f64, u64, f64, Option<f64>);
        let rows: Vec<Row> = lapse
            .topics
            .iter()
            .map(|t| (t.topic.as_str(), t.lapsed, t.lapsed_share, t.active, t.active_share, t.lift))
            .collect();
        assert_eq!(
            rows,
            [
                ("delivery", 2, 1.0, 1, 0.5, Some(2.0)),
                ("price", 1, 0.5, 1, 0.5, Some(1.0)),
                ("quality", 0, 0.0, 1, 0.5, Some(0.0)),
            ]
        );
    }

    #[test]
    fn responses_outside_the_last_active_window_do_not_count_before_lapse() {
        let customers = vec![customer("old", Some("lost"), Some("low"), 1.0, "2024-01-01")];
        // 120 and exactly 90 days before the last purchase: outside (the window is the 90 days
        // up to it, (last − 90 d, last]); 89 days before: inside.
        let responses = vec![
            response(0, "2023-09-03", Some(2), None, &["website"]),
            response(0, "2023-10-03", Some(2), None, &["returns"]),
            response(0, "2023-10-04", Some(2), None, &["delivery"]),
        ];
        let lapse = insights(&responses, &customers, &options()).before_lapse;
        assert_eq!(lapse.topics.iter().map(|t| t.topic.as_str()).collect::<Vec<_>>(), ["delivery"]);
    }

    #[test]
    fn the_call_list_holds_valuable_detractors_not_yet_lost_most_valuable_first() {
        let (mut responses, customers) = shop();
        // ann's latest answer is a promoter; bob and dee are valuable detractors; cy is lost;
        // eve is unscored.
        let list = insights(&responses, &customers, &options()).call_list;
        let who: Vec<(&str, Option<u8>, Option<f64>)> =
            list.iter().map(|c| (c.customer.as_str(), c.nps, c.clv_12m)).collect();
        assert_eq!(who, [("dee", Some(6), Some(300.0)), ("bob", Some(3), Some(80.0))]);
        assert_eq!((list[0].responded.as_str(), list[0].text.as_deref()), ("2024-06-10", Some("from 3")));
        assert_eq!(list[0].email.as_deref(), Some("dee@example.com"));
        // A later happy answer takes dee off the list; a CSAT of 2 alone puts ann on it.
        responses.push(response(3, "2024-06-12", Some(9), None, &[]));
        responses.push(response(0, "2024-06-13", None, Some(2), &["support"]));
        let list = insights(&responses, &customers, &options()).call_list;
        assert_eq!(list.iter().map(|c| c.customer.as_str()).collect::<Vec<_>>(), ["ann", "bob"]);
        let one = insights(&responses, &customers, &Options { call_limit: 1, ..options() }).call_list;
        assert_eq!(one.len(), 1);
    }

    #[test]
    fn no_feedback_gives_empty_groups_and_a_gapless_series() {
        let i = insights(&[], &[], &Options { now: at("2024-01-20"), months: 3, ..Options::default() });
        assert_eq!(i.overall, Score::default());
        assert_eq!(i.by_month.iter().map(|g| g.name.as_str()).collect::<Vec<_>>(), ["2023-11", "2023-12", "2024-01"]);
        assert!(i.by_stage.is_empty() && i.by_topic.is_empty() && i.call_list.is_empty());
        assert_eq!((i.before_lapse.lapsed_customers, i.before_lapse.topics.len()), (0, 0));
    }
}
