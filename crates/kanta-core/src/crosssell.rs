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
//! category whose name sorts first, so results do not depend on input order.

use std::collections::HashMap;

/// One order's categories.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Basket {
    /// The customer (any dense index).
    pub customer: usize,
    /// When (any monotone unit).
    pub time: i64,
    /// Category ids (indices into the category names), in any order, repeats allowed.
    pub categories: Vec<u32>,
}

/// A customer's product-group facts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Groups {
    /// The category in most of the customer's orders (ties: the name that sorts first).
    pub main: Option<u32>,
    /// The cross-sell hint.
    pub next: Option<u32>,
}

/// Main category and cross-sell hint for customers `0..customers`, from baskets in any order.
/// `names[i]` is category `i`'s name (for tie-breaking).
pub fn product_groups(baskets: &[Basket], customers: usize, names: &[String]) -> Vec<Groups> {
    let mut by_customer: Vec<Vec<&Basket>> = vec![Vec::new(); customers];
    for b in baskets.iter().filter(|b| b.customer < customers) {
        by_customer[b.customer].push(b);
    }
    // Rank of each category name, for deterministic tie-breaks.
    let mut order: Vec<u32> = (0..names.len() as u32).collect();
    order.sort_by(|&a, &b| names[a as usize].cmp(&names[b as usize]));
    let mut rank = vec![0u32; names.len()];
    for (r, &c) in order.iter().enumerate() {
        rank[c as usize] = r as u32;
    }
    // The category with the largest weight; on equal weights the name that sorts first.
    let best = |candidates: &mut dyn Iterator<Item = (f64, u32)>| {
        candidates.max_by(|a, b| a.0.total_cmp(&b.0).then(rank[b.1 as usize].cmp(&rank[a.1 as usize]))).map(|(_, c)| c)
    };

    // Each customer's categories in order of adoption, and the transitions they add.
    let mut next: HashMap<u32, HashMap<u32, f64>> = HashMap::new();
    let mut bought: Vec<Vec<u32>> = Vec::with_capacity(customers);
    let mut main: Vec<Option<u32>> = Vec::with_capacity(customers);
    for history in &mut by_customer {
        history.sort_by_key(|b| b.time);
        let mut seen: Vec<u32> = Vec::new();
        let mut orders_with: HashMap<u32, u32> = HashMap::new();
        let mut i = 0;
        while i < history.len() {
            // Orders at the same instant are one basket: neither came "next" after the other.
            let mut basket: Vec<u32> = Vec::new();
            let t = history[i].time;
            while i < history.len() && history[i].time == t {
                basket.extend(&history[i].categories);
                for c in dedup(&history[i].categories) {
                    *orders_with.entry(c).or_default() += 1;
                }
                i += 1;
            }
            let new: Vec<u32> = dedup(&basket).into_iter().filter(|c| !seen.contains(c)).collect();
            if !seen.is_empty() && !new.is_empty() {
                let share = 1.0 / seen.len() as f64;
                for &a in &seen {
                    let row = next.entry(a).or_default();
                    for &b in &new {
                        *row.entry(b).or_default() += share;
                    }
                }
            }
            seen.extend(new);
        }
        main.push(best(&mut orders_with.iter().map(|(&c, &n)| (f64::from(n), c))));
        bought.push(seen);
    }

    bought
        .iter()
        .zip(main)
        .map(|(have, main)| {
            let mut scores: HashMap<u32, f64> = HashMap::new();
            for a in have {
                if let Some(row) = next.get(a) {
                    for (&b, &w) in row {
                        if !have.contains(&b) {
                            *scores.entry(b).or_default() += w;
                        }
                    }
                }
            }
            Groups { main, next: best(&mut scores.into_iter().map(|(c, s)| (s, c))) }
        })
        .collect()
}

fn dedup(categories: &[u32]) -> Vec<u32> {
    let mut out = categories.to_vec();
    out.sort_unstable();
    out.dedup();
    out
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

    fn basket(customer: usize, time: i64, categories: &[u32]) -> Basket {
        Basket { customer, time, categories: categories.to_vec() }
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
