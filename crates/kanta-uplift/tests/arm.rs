//! Holdout assignment over many customers: the shares match the setting, arms never move, and
//! the global holdout is independent of every journey's.

#![allow(clippy::unwrap_used)] // Helpers outside #[test] fns unwrap too: a panic is a failed test.

use kanta_domain::contact::CustomerId;
use kanta_uplift::arm::{Arm, Holdout, assign, assign_global};

const CUSTOMERS: usize = 100_000;

fn customers() -> Vec<CustomerId> {
    (0..CUSTOMERS).map(|i| CustomerId::parse(format!("cust-{i:06}")).unwrap()).collect()
}

fn share(arms: impl Iterator<Item = bool>) -> f64 {
    let (mut hits, mut total) = (0usize, 0usize);
    for hit in arms {
        hits += usize::from(hit);
        total += 1;
    }
    hits as f64 / total as f64
}

#[test]
fn the_control_share_of_100_000_customers_is_within_half_a_point_of_the_setting() {
    let customers = customers();
    for (setting, expected) in [("5%", 0.05), ("10%", 0.10), ("50%", 0.50), ("2.5%", 0.025)] {
        let holdout = Holdout::parse(setting).unwrap();
        let control = share(customers.iter().map(|c| assign(c, "welcome", holdout) == Arm::Control));
        assert!((control - expected).abs() < 0.005, "{setting}: control share {control}");
        let global = share(customers.iter().map(|c| assign_global(c, holdout) == Arm::Control));
        assert!((global - expected).abs() < 0.005, "global {setting}: share {global}");
    }
}

#[test]
fn a_customers_arm_never_changes_across_versions_and_re_entries() {
    // The arm is a function of (customer, journey name, share) alone: a new version of the
    // journey or a re-entry asks again with the same arguments, in any order.
    let customers = customers();
    let holdout = Holdout::parse("10%").unwrap();
    let first: Vec<Arm> = customers.iter().map(|c| assign(c, "winback", holdout)).collect();
    let again: Vec<Arm> = customers.iter().rev().map(|c| assign(c, "winback", holdout)).collect();
    assert!(first.iter().eq(again.iter().rev()));
    // Raising the share only moves treated customers into control, never the reverse, so a
    // customer once held out stays held out.
    let twenty = Holdout::parse("20%").unwrap();
    let moved_back = customers
        .iter()
        .zip(&first)
        .filter(|(c, arm)| **arm == Arm::Control && assign(c, "winback", twenty) == Arm::Treatment)
        .count();
    assert_eq!(moved_back, 0);
}

#[test]
fn the_global_holdout_and_journey_arms_are_independent() {
    let customers = customers();
    let journey = Holdout::parse("10%").unwrap();
    let global = Holdout::parse("5%").unwrap();
    let both = share(
        customers
            .iter()
            .map(|c| assign(c, "welcome", journey) == Arm::Control && assign_global(c, global) == Arm::Control),
    );
    // Independent: 0.10 × 0.05 = 0.005, standard error √(0.005 · 0.995 / 10⁵) = 0.00022.
    assert!((both - 0.005).abs() < 0.001, "joint share {both}");
    // Two journeys' arms are independent too: 0.10 × 0.10 = 0.01 (standard error 0.0003).
    let two = share(
        customers
            .iter()
            .map(|c| assign(c, "welcome", journey) == Arm::Control && assign(c, "winback", journey) == Arm::Control),
    );
    assert!((two - 0.01).abs() < 0.0015, "joint share of two journeys {two}");
}
