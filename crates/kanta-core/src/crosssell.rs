//! Product groups per customer: the category a customer buys most (`main_category`) and the
//! cross-sell hint (`next_category`): the category that customers who bought what this customer
//! bought most often bought *next*, among the categories this customer has not bought yet.
//!
//! "Bought next" is counted from every customer's history, order by order: when an order
//! brings categories the customer had never bought, each new category `B` is credited to the
//! categories `A` bought before it, one unit shared equally among them (`T[A][B] += 1/|A…|`),
//! so a customer with many categories does not outweigh one with few. A customer's hint is the
//! `B` they lack with the largest `Σ T[A][B]` over the categories `A` they have bought — an
//! item-to-item "customers who bought A went on to buy B" recommender (Linden, Smith & York
//! 2003, "Amazon.com recommendations: item-to-item collaborative filtering", IEEE Internet
//! Computing 7(1)), with adoption order as the signal. No hint when nothing was ever bought
//! after this customer's categories, or when they have bought every category. Ties go to the
//! category whose name sorts first, so results do not depend on input order; for the hint, whose
//! weights are sums of fractions, weights within [`HINT_TIE`] (relative) of the largest are
//! ties, since the same sum added in another order (another customer order, or a database's
//! `SUM`) may differ in its last bits, and that must not change the answer.

use std::collections::HashMap;

/// One order's categories.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Basket<'a> {
    /// The customer (any dense index).
    pub customer: usize,
    /// When (any monotone unit).
    pub time: i64,
    /// Category ids (indices into the category names), in any order, repeats allowed.
    pub categories: &'a [u32],
}

/// A customer's product-group facts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Groups {
    /// The category in most of the customer's orders (ties: the name that sorts first).
    pub main: Option<u32>,
    /// The cross-sell hint.
    pub next: Option<u32>,
}

/// Hint weights this close to the largest, relative, tie with it (see the module docs). Sums of
/// up to millions of fractions in different orders differ by far less; distinct weights of a
/// real shop by far more.
pub const HINT_TIE: f64 = 1e-9;

/// Categories up to which the "bought next" weights are a dense matrix (8 MB of `f64` at most);
/// a shop with more keeps them in a hash map.
const DENSE_CATEGORIES: usize = 1_024;

/// The "bought next" weights `T[A][B]`, accumulated in customer order.
enum Transitions {
    Dense { k: usize, weights: Vec<f64> },
    Sparse(HashMap<(u32, u32), f64>),
}

impl Transitions {
    fn new(k: usize) -> Transitions {
        if k <= DENSE_CATEGORIES {
            Transitions::Dense { k, weights: vec![0.0; k * k] }
        } else {
            Transitions::Sparse(HashMap::new())
        }
    }

    fn add(&mut self, a: u32, b: u32, w: f64) {
        match self {
            Transitions::Dense { k, weights } => weights[a as usize * *k + b as usize] += w,
            Transitions::Sparse(map) => *map.entry((a, b)).or_default() += w,
        }
    }

    /// Each category's non-zero row `(B, T[A][B])`, `B` ascending.
    fn rows(self, k: usize) -> Vec<Vec<(u32, f64)>> {
        let mut rows = vec![Vec::new(); k];
        match self {
            Transitions::Dense { k, weights } => {
                for (a, row) in weights.chunks(k.max(1)).enumerate() {
                    rows[a] = row.iter().enumerate().filter(|(_, w)| **w != 0.0).map(|(b, &w)| (b as u32, w)).collect();
                }
            }
            Transitions::Sparse(map) => {
                for ((a, b), w) in map {
                    rows[a as usize].push((b, w));
                }
                for row in &mut rows {
                    row.sort_unstable_by_key(|e| e.0);
                }
            }
        }
        rows
    }
}

/// Main category and cross-sell hint for customers `0..customers`, from baskets in any order
/// (already sorted by customer and time is fastest). `names[i]` is category `i`'s name (for
/// tie-breaking).
///
/// Costs O(baskets + Σ adoption pairs) with per-customer scratch space reused: on a store of a
/// million customers with ten million one-category orders this is a fraction of a second, where
/// a map per customer took seconds.
pub fn product_groups(baskets: &[Basket<'_>], customers: usize, names: &[String]) -> Vec<Groups> {
    let k = names.len();
    let known = |b: &&Basket<'_>| b.customer < customers && b.categories.iter().all(|&c| (c as usize) < k);
    let mut sorted: Vec<&Basket<'_>> = baskets.iter().filter(known).collect();
    if !sorted.is_sorted_by_key(|b| (b.customer, b.time)) {
        // Stable: orders at the same instant keep their input order.
        sorted.sort_by_key(|b| (b.customer, b.time));
    }
    // Rank of each category name, for deterministic tie-breaks.
    let mut order: Vec<u32> = (0..k as u32).collect();
    order.sort_by(|&a, &b| names[a as usize].cmp(&names[b as usize]));
    let mut rank = vec![0u32; k];
    for (r, &c) in order.iter().enumerate() {
        rank[c as usize] = r as u32;
    }
    // The category with the largest weight; on equal weights the name that sorts first.
    let best = |candidates: &mut dyn Iterator<Item = (f64, u32)>| {
        candidates.max_by(|a, b| a.0.total_cmp(&b.0).then(rank[b.1 as usize].cmp(&rank[a.1 as usize]))).map(|(_, c)| c)
    };

    // Pass 1: each customer's categories in order of adoption (flat, with offsets), their main
    // category, and the transitions they add.
    let mut transitions = Transitions::new(k);
    let mut bought: Vec<u32> = Vec::new();
    let mut starts = vec![0usize; customers + 1];
    let mut main: Vec<Option<u32>> = vec![None; customers];
    let mut orders_with = vec![0u32; k];
    let mut touched: Vec<u32> = Vec::new();
    let (mut basket, mut scratch, mut new) = (Vec::new(), Vec::new(), Vec::new());
    let mut i = 0;
    for customer in 0..customers {
        let seen_start = bought.len();
        while i < sorted.len() && sorted[i].customer == customer {
            // Orders at the same instant are one basket: neither came "next" after the other.
            basket.clear();
            let t = sorted[i].time;
            while i < sorted.len() && sorted[i].customer == customer && sorted[i].time == t {
                basket.extend_from_slice(sorted[i].categories);
                dedup_into(sorted[i].categories, &mut scratch);
                for &c in &scratch {
                    if orders_with[c as usize] == 0 {
                        touched.push(c);
                    }
                    orders_with[c as usize] += 1;
                }
                i += 1;
            }
            dedup_into(&basket, &mut scratch);
            new.clear();
            new.extend(scratch.iter().copied().filter(|c| !bought[seen_start..].contains(c)));
            let seen = &bought[seen_start..];
            if !seen.is_empty() && !new.is_empty() {
                let share = 1.0 / seen.len() as f64;
                for &a in seen {
                    for &b in &new {
                        transitions.add(a, b, share);
                    }
                }
            }
            bought.extend_from_slice(&new);
        }
        starts[customer + 1] = bought.len();
        main[customer] = best(&mut touched.iter().map(|&c| (f64::from(orders_with[c as usize]), c)));
        for c in touched.drain(..) {
            orders_with[c as usize] = 0;
        }
    }

    // Pass 2: each customer's hint from the rows of the categories they have.
    let rows = transitions.rows(k);
    let mut scores = vec![0.0f64; k];
    let mut has = vec![false; k];
    (0..customers)
        .map(|customer| {
            let have = &bought[starts[customer]..starts[customer + 1]];
            for &a in have {
                has[a as usize] = true;
            }
            for &a in have {
                for &(b, w) in &rows[a as usize] {
                    if !has[b as usize] {
                        if scores[b as usize] == 0.0 {
                            touched.push(b);
                        }
                        scores[b as usize] += w;
                    }
                }
            }
            let largest = touched.iter().map(|&c| scores[c as usize]).fold(0.0f64, f64::max);
            let next = touched
                .iter()
                .copied()
                .filter(|&c| scores[c as usize] >= largest * (1.0 - HINT_TIE))
                .min_by_key(|&c| rank[c as usize]);
            for c in touched.drain(..) {
                scores[c as usize] = 0.0;
            }
            for &a in have {
                has[a as usize] = false;
            }
            Groups { main: main[customer], next }
        })
        .collect()
}

/// `categories` sorted and without repeats, into `out`.
fn dedup_into(categories: &[u32], out: &mut Vec<u32>) {
    out.clear();
    out.extend_from_slice(categories);
    out.sort_unstable();
    out.dedup();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Vec<String> {
        ["coffee", "grinders", "tea", "mugs"].iter().map(|s| s.to_string()).collect()
    }
    const COFFEE: u32 = 0;
    const GRINDERS: u32 = 1;
    const TEA: u32 = 2;
    const MUGS: u32 = 3;

    fn basket(customer: usize, time: i64, categories: &[u32]) -> Basket<'_> {
        Basket { customer, time, categories }
    }

    #[test]
    fn the_hint_is_what_customers_with_the_same_categories_adopted_next() {
        let baskets = vec![
            // 0 and 1: coffee, then grinders. 2: coffee, then mugs. 3: tea, then mugs.
            basket(0, 1, &[COFFEE]),
            basket(0, 2, &[GRINDERS, COFFEE]),
            basket(1, 5, &[COFFEE, COFFEE]),
            basket(1, 9, &[GRINDERS]),
            basket(2, 1, &[COFFEE]),
            basket(2, 3, &[MUGS]),
            basket(3, 1, &[TEA]),
            basket(3, 4, &[MUGS]),
            // 4: coffee only. 5: tea only. 6: coffee and tea together, once.
            basket(4, 1, &[COFFEE]),
            basket(5, 1, &[TEA]),
            basket(6, 1, &[COFFEE, TEA]),
        ];
        let g = product_groups(&baskets, 8, &names());
        // T[coffee] = {grinders: 2, mugs: 1}; T[tea] = {mugs: 1}.
        assert_eq!(g[4], Groups { main: Some(COFFEE), next: Some(GRINDERS) });
        assert_eq!(g[5], Groups { main: Some(TEA), next: Some(MUGS) });
        // 6 has coffee and tea: grinders 2 against mugs 1 + 1 = 2; the tie goes to "grinders".
        assert_eq!(g[6].next, Some(GRINDERS));
        assert_eq!(g[6].main, Some(COFFEE), "one order each: the name sorting first");
        // 0 has coffee and grinders: only mugs is left (from coffee, 1).
        assert_eq!(g[0], Groups { main: Some(COFFEE), next: Some(MUGS) });
        // 2 has coffee and mugs: grinders (2).
        assert_eq!(g[2].next, Some(GRINDERS));
        // 7 bought nothing.
        assert_eq!(g[7], Groups::default());
    }

    #[test]
    fn adoption_credit_is_shared_among_earlier_categories_and_same_time_orders_are_one_basket() {
        let baskets = vec![
            // 0: coffee and tea, then mugs: coffee→mugs ½, tea→mugs ½.
            basket(0, 1, &[COFFEE, TEA]),
            basket(0, 2, &[MUGS]),
            // 1: tea, then grinders: tea→grinders 1.
            basket(1, 1, &[TEA]),
            basket(1, 2, &[GRINDERS]),
            // 2: coffee and grinders in two orders at the same time: nothing "next".
            basket(2, 7, &[COFFEE]),
            basket(2, 7, &[GRINDERS]),
            // 3: tea only → grinders 1 beats mugs ½.
            basket(3, 1, &[TEA]),
        ];
        let g = product_groups(&baskets, 4, &names());
        assert_eq!(g[3].next, Some(GRINDERS));
        // 2 has coffee and grinders: mugs ½ from coffee (tea→… is not theirs).
        assert_eq!(g[2].next, Some(MUGS));
        // 0 has everything but grinders: tea→grinders 1.
        assert_eq!(g[0].next, Some(GRINDERS));
        // Nobody adopted anything after grinders alone; 1 has tea and grinders: mugs ½ via tea.
        assert_eq!(g[1].next, Some(MUGS));
    }

    #[test]
    fn hint_weights_equal_but_for_the_order_of_their_sums_tie() {
        let names: Vec<String> = ["a", "b", "c", "x1", "x2", "x3", "x4", "x5"].iter().map(|s| s.to_string()).collect();
        let (a, b, c) = (0, 1, 2);
        let xs = [3, 4, 5, 6, 7];
        let first = |k: usize| -> Vec<u32> { std::iter::once(a).chain(xs[..k].iter().copied()).collect() };
        let (one, three, two, six) = (first(0), first(2), first(1), first(5));
        let (bb, cc) = ([b], [c]);
        let baskets = vec![
            // a → b shared among 1, 3 and 3 earlier categories: 1 + ⅓ + ⅓.
            basket(1, 1, &one),
            basket(1, 2, &bb),
            basket(2, 1, &three),
            basket(2, 2, &bb),
            basket(3, 1, &three),
            basket(3, 2, &bb),
            // a → c: 1 + ½ + ⅙, the same 5/3.
            basket(4, 1, &one),
            basket(4, 2, &cc),
            basket(5, 1, &two),
            basket(5, 2, &cc),
            basket(6, 1, &six),
            basket(6, 2, &cc),
            // 0 bought a alone.
            basket(0, 1, &one),
        ];
        // Added up as above, the two differ in the last bit, c's being the larger.
        let credits = |ns: &[f64]| ns.iter().fold(0.0, |sum, n| sum + 1.0 / n);
        assert!(credits(&[1.0, 3.0, 3.0]) < credits(&[1.0, 2.0, 6.0]));
        let g = product_groups(&baskets, 7, &names);
        assert_eq!(g[0].next, Some(b), "a tie, so the name sorting first");
    }

    #[test]
    fn no_hint_without_a_following_purchase_or_when_everything_is_bought() {
        let all = vec![basket(0, 1, &[COFFEE, GRINDERS, TEA, MUGS]), basket(1, 1, &[TEA])];
        let g = product_groups(&all, 2, &names());
        assert_eq!(g[0], Groups { main: Some(COFFEE), next: None });
        assert_eq!(g[1], Groups { main: Some(TEA), next: None }, "nobody bought anything after anything");
        // Baskets of unknown customers are ignored; input order does not matter.
        let mut shuffled =
            vec![basket(9, 1, &[TEA]), basket(0, 2, &[GRINDERS]), basket(0, 1, &[COFFEE]), basket(1, 1, &[COFFEE])];
        let g = product_groups(&shuffled, 2, &names());
        shuffled.reverse();
        assert_eq!(g, product_groups(&shuffled, 2, &names()));
        assert_eq!(g[1].next, Some(GRINDERS));
    }
}
