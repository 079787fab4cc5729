//! Random splits that are stable per customer: "random split with weights (stable per
//! customer)" (issue 17).
//!
//! A customer's arm is a pure function of the customer's key, the journey and the step, so it is
//! the same in every process, after every restart and on every Rust version: SHA-256 (not std's
//! hasher, whose output may change between releases and is randomly seeded per process) of the
//! three values, each prefixed with its length so that `("ab", "c")` and `("a", "bc")` differ.
//! Salting with the journey and the step makes two splits independent: landing in the first arm
//! of one says nothing about the arm of another.

pub(crate) use kanta_domain::stable::stable_u64;

/// `u` (a uniform 64-bit draw) scaled to `0..n` without modulo bias beyond 2⁻³² for any `n` up
/// to 2³²: the high bits of `u · n`.
pub(crate) fn scale(u: u64, n: u64) -> u64 {
    ((u128::from(u) * u128::from(n)) >> 64) as u64
}

/// The arm (an index into `weights`) of a customer at a split step.
///
/// Arm `i` is chosen with probability `weights[i] / sum(weights)`; an arm of weight 0 is never
/// chosen. `None` when there is no weight at all (no arms, or all zero), which validation
/// refuses before a journey runs.
///
/// The draw is `SHA-256("kanta-split-v1" ‖ len ‖ customer_key ‖ len ‖ journey ‖ len ‖ step_id)`,
/// lengths as 8-byte big-endian integers, its first 8 bytes read big-endian as `u`, and the
/// point `⌊u · total / 2⁶⁴⌋` located among the cumulative weights. Changing any of this moves
/// customers between arms of running experiments: the `v1` is there to version it.
pub fn choose(customer_key: &str, journey: &str, step_id: &str, weights: &[u32]) -> Option<usize> {
    let total: u64 = weights.iter().map(|w| u64::from(*w)).sum();
    if total == 0 {
        return None;
    }
    let u = stable_u64("kanta-split-v1", &[customer_key.as_bytes(), journey.as_bytes(), step_id.as_bytes()]);
    let point = scale(u, total);
    let mut cumulative = 0u64;
    weights.iter().position(|w| {
        cumulative += u64::from(*w);
        point < cumulative
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_keys_get_their_pinned_arms() {
        // Recomputed outside Rust (Python's hashlib) from the rule in `choose`'s docs.
        let keys = (1..=12).map(|i| format!("c-{i}")).chain(["alice@example.com".into(), "42".into()]);
        let picks: Vec<_> = keys.map(|key| choose(&key, "winback", "offer", &[50, 30, 20]).unwrap()).collect();
        assert_eq!(picks, PINNED);
        assert_eq!(stable_u64("kanta-split-v1", &[b"c-1", b"winback", b"offer"]), PINNED_U64);
    }

    /// c-1 … c-12, alice@example.com, 42.
    const PINNED: [usize; 14] = [1, 1, 1, 0, 1, 0, 0, 2, 0, 0, 2, 0, 0, 0];
    const PINNED_U64: u64 = 10_964_835_389_041_410_594;

    #[test]
    fn shares_over_100_000_keys_are_within_five_standard_deviations_of_the_weights() {
        // Each arm's count is Binomial(n, p): σ = √(n·p·(1−p)), at most 158 here. A correct
        // uniform hash leaves 5σ with probability below 10⁻⁶ per arm; a bias of one percentage
        // point (1,000 keys) is more than 5σ for every arm, so this catches a skewed mapping.
        let n = 100_000u32;
        let weights = [50, 30, 20];
        let mut counts = [0u32; 3];
        for i in 0..n {
            counts[choose(&format!("customer-{i}"), "winback", "offer", &weights).unwrap()] += 1;
        }
        for (count, weight) in counts.iter().zip(weights) {
            let p = f64::from(weight) / 100.0;
            let expected = f64::from(n) * p;
            let sigma = (f64::from(n) * p * (1.0 - p)).sqrt();
            assert!((f64::from(*count) - expected).abs() <= 5.0 * sigma, "{counts:?} against weights {weights:?}");
        }
    }

    #[test]
    fn two_splits_are_independent_of_each_other() {
        // With two 50/50 steps, a customer's two arms agree for half of the customers (±5σ, σ =
        // √(n/4) = 158); a hash that ignored the step would make them agree always.
        let n = 100_000;
        let same = (0..n)
            .filter(|i| {
                let key = format!("customer-{i}");
                choose(&key, "winback", "a", &[1, 1]) == choose(&key, "winback", "b", &[1, 1])
            })
            .count();
        assert!((same as f64 - 50_000.0).abs() <= 5.0 * 158.2, "{same}");
    }

    #[test]
    fn zero_weights_are_never_chosen_and_no_weight_chooses_nothing() {
        for i in 0..1_000 {
            assert_ne!(choose(&format!("k{i}"), "j", "s", &[3, 0, 1]), Some(1));
        }
        assert_eq!(choose("k", "j", "s", &[0, 7, 0]), Some(1));
        assert_eq!(choose("k", "j", "s", &[]), None);
        assert_eq!(choose("k", "j", "s", &[0, 0]), None);
        assert_eq!(choose("k", "j", "s", &[u32::MAX, u32::MAX]).map(|i| i < 2), Some(true));
    }

    #[test]
    fn the_same_inputs_always_choose_the_same_arm() {
        let first = choose("c-7", "welcome", "split-1", &[1, 1, 1, 1]);
        for _ in 0..10 {
            assert_eq!(choose("c-7", "welcome", "split-1", &[1, 1, 1, 1]), first);
        }
        // Length prefixes keep shifted boundaries apart.
        assert_ne!(
            stable_u64("kanta-split-v1", &[b"ab", b"c", b"s"]),
            stable_u64("kanta-split-v1", &[b"a", b"bc", b"s"])
        );
    }
}
