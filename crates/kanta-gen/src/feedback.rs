//! Synthetic feedback for a generated shop: NPS and CSAT survey answers after some orders, with
//! topics and a short text, in the CSV layout `kanta import feedback` reads.
//!
//! The shop's customers stop buying at some point (the BG/NBD drop-out). A customer's last
//! order that lies more than 120 days before the end of the data is treated as the experience
//! before they lapsed: answers after it are mostly detractors and mention `delivery` far more
//! often (and `price`, `support` somewhat more) than answers after other orders, which are
//! mostly promoters talking about `quality` and `taste`. So the feedback insights of a
//! generated shop have a known answer: `delivery` is the topic that rises before lapse.

use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64Mcg;

use kanta_core::time::{SECONDS_PER_DAY, Timestamp};

use crate::{Config, GenOrder};

/// Share of orders followed by a survey answer.
pub const RESPONSE_RATE: f64 = 0.25;
/// Days without an order before the end after which a last order counts as the one before a lapse.
pub const LAPSE_DAYS: i64 = 120;

/// One survey answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenFeedback {
    /// `F` and the order number.
    pub id: String,
    /// The customer, as in the order lines.
    pub customer_id: String,
    /// When (2 to 7 days after the order).
    pub time: Timestamp,
    /// 0–10.
    pub nps: u8,
    /// 1–5, or none (not every survey asks).
    pub csat: Option<u8>,
    /// A short text.
    pub text: &'static str,
    /// Tags.
    pub topics: Vec<&'static str>,
    /// `email` or `web`.
    pub channel: &'static str,
    /// The order answered about.
    pub order_id: String,
}

/// Topic, chance after a lapse-preceding order, chance after any other order, what a satisfied
/// (NPS 7–10) and an unhappy customer write about it.
const TOPICS: [(&str, f64, f64, &str, &str); 6] = [
    ("delivery", 0.60, 0.10, "arrived quickly", "the parcel came late"),
    ("price", 0.30, 0.12, "fair prices", "prices went up"),
    ("support", 0.20, 0.05, "helpful support", "nobody answered my email"),
    ("quality", 0.10, 0.35, "great quality", "the grinder broke"),
    ("taste", 0.05, 0.30, "the coffee tastes wonderful", "the beans tasted stale"),
    ("packaging", 0.08, 0.08, "nice packaging", "the bag was torn"),
];

/// Survey answers for `orders` (as `simulate` returned them for `config`), seeded by the
/// config's seed; returns are not surveyed.
pub fn feedback(orders: &[GenOrder], config: &Config) -> Vec<GenFeedback> {
    let mut rng = Pcg64Mcg::seed_from_u64(config.seed ^ 0x0fee_dbac_0000_0001);
    let end = Timestamp::start_of(config.end).0 + SECONDS_PER_DAY;
    let mut last: std::collections::HashMap<u64, i64> = std::collections::HashMap::new();
    for o in orders.iter().filter(|o| o.value.raw() > 0) {
        let t = last.entry(o.customer).or_insert(o.time.0);
        *t = (*t).max(o.time.0);
    }
    let mut out = Vec::new();
    for o in orders.iter().filter(|o| o.value.raw() > 0) {
        if rng.random::<f64>() >= RESPONSE_RATE {
            continue;
        }
        let time = o.time.0 + rng.random_range(2..=7) * SECONDS_PER_DAY + rng.random_range(0..SECONDS_PER_DAY);
        if time >= end {
            continue;
        }
        let before_lapse =
            last.get(&o.customer).is_some_and(|&t| t == o.time.0 && end - t > LAPSE_DAYS * SECONDS_PER_DAY);
        let nps: u8 = if before_lapse {
            // Mostly detractors: 0–6 three times in four.
            if rng.random::<f64>() < 0.75 { rng.random_range(0..=6) } else { rng.random_range(7..=10) }
        } else if rng.random::<f64>() < 0.7 {
            rng.random_range(9..=10)
        } else {
            rng.random_range(5..=8)
        };
        // CSAT follows NPS loosely: 0–10 mapped onto 1–5, give or take one.
        let csat = (rng.random::<f64>() < 0.6).then(|| {
            let base = 1 + i32::from(nps) * 4 / 10;
            (base + rng.random_range(-1..=1)).clamp(1, 5) as u8
        });
        let mut topics = Vec::new();
        let mut text = "";
        for (topic, lapse_chance, other_chance, happy, unhappy) in TOPICS {
            let chance = if before_lapse { lapse_chance } else { other_chance };
            if rng.random::<f64>() < chance {
                topics.push(topic);
                if text.is_empty() {
                    text = if nps >= 7 { happy } else { unhappy };
                }
            }
        }
        out.push(GenFeedback {
            id: format!("F{:09}", o.number),
            customer_id: format!("C{:07}", o.customer),
            time: Timestamp(time),
            nps,
            csat,
            text,
            topics,
            channel: if rng.random::<f64>() < 0.7 { "email" } else { "web" },
            order_id: format!("O{:09}", o.number),
        });
    }
    out.sort_by(|a, b| (a.time, &a.id).cmp(&(b.time, &b.id)));
    out
}

/// Write answers as CSV: `id,customer_id,time,nps,csat,text,topics,channel,order_id`, topics
/// separated by `;`, times RFC 3339 UTC.
pub fn write_csv(path: &std::path::Path, answers: &[GenFeedback]) -> Result<(), csv::Error> {
    let mut w = csv::Writer::from_path(path)?;
    w.write_record(["id", "customer_id", "time", "nps", "csat", "text", "topics", "channel", "order_id"])?;
    let mut time = String::new();
    for a in answers {
        time.clear();
        crate::write::rfc3339(a.time.0, &mut time);
        w.write_record([
            a.id.as_str(),
            &a.customer_id,
            &time,
            &a.nps.to_string(),
            &a.csat.map(|c| c.to_string()).unwrap_or_default(),
            a.text,
            &a.topics.join(";"),
            a.channel,
            &a.order_id,
        ])?;
    }
    w.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simulate;

    #[test]
    fn answers_are_seeded_follow_orders_and_complain_before_a_lapse() {
        let config = Config { customers: 3000, seed: 9, ..Config::default() };
        let orders = simulate(&config).expect("a valid configuration");
        let a = feedback(&orders, &config);
        assert_eq!(a, feedback(&orders, &config), "the same seed gives the same answers");
        let purchases = orders.iter().filter(|o| o.value.raw() > 0).count() as f64;
        let rate = a.len() as f64 / purchases;
        assert!((0.2..0.27).contains(&rate), "about a quarter of orders are answered: {rate}");
        assert!(a.iter().all(|f| f.nps <= 10 && f.csat.is_none_or(|c| (1..=5).contains(&c))));
        assert!(a.windows(2).all(|w| w[0].time <= w[1].time));
        // Delivery is mentioned far more often among detractors than among promoters.
        let share = |pick: &dyn Fn(&GenFeedback) -> bool| {
            let group: Vec<&GenFeedback> = a.iter().filter(|f| pick(f)).collect();
            group.iter().filter(|f| f.topics.contains(&"delivery")).count() as f64 / group.len() as f64
        };
        let (detractors, promoters) = (share(&|f| f.nps <= 6), share(&|f| f.nps >= 9));
        assert!(detractors > 2.0 * promoters, "{detractors} vs {promoters}");
    }
}
