"""The peer of bench/simulate.sh: the projection of `kanta journeys simulate` for a
`stage_becomes: lost` journey, in numpy over the same store.

    simulate.py DB NOW_MICROS DAYS DRAWS SEED

Reads what kanta reads: the orders (not cancelled, positive: purchases) aggregated per customer
in SQL — purchase days, first and last day, orders — the latest scoring run's BG/NBD parameters
and its lapse threshold G. Then, DRAWS times: each customer alive with P(alive) (Fader, Hardie &
Lee 2005, eq. 11), λ ~ Gamma(r + x, α + T), p ~ Beta(a, b + x), purchases as exponential gaps
until the horizon or a drop-out after a purchase; the stage of each day (lost when the days since
the last purchase day exceed 2G) and the customers whose stage becomes lost. Prints the mean
entries over the draws as JSON. G is held at the scoring run's (kanta moves it with the drawn
gaps; the counts then differ, and the bench prints both).
"""
import json
import sqlite3
import sys

import numpy as np
from scipy.special import expit

DAY = 86_400_000_000


def main():
    db, now, days, draws, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    run = con.execute(
        "SELECT diagnostics FROM score_runs WHERE status = 'completed' AND model IS NOT NULL ORDER BY id DESC LIMIT 1"
    ).fetchone()
    diag = json.loads(run[0])
    models = diag["models"]
    fit = next(c["fit"] for c in models["candidates"] if c["model"] == models["chosen"])
    p = {q["name"]: q["value"] for q in fit["params"]}
    r, alpha, a, b = p["r"], p["alpha"], p["a"], p["b"]
    g = diag["summary"]["lapse_days"]
    today = now // DAY
    rows = con.execute(
        "SELECT COUNT(DISTINCT time / ?1), MIN(time / ?1), MAX(time / ?1), COUNT(*) FROM orders "
        "WHERE status = 'completed' AND amount > 0 AND time < ?2 GROUP BY customer_id",
        (DAY, now),
    ).fetchall()
    a_rows = np.array(rows, dtype=np.float64)
    x = a_rows[:, 0] - 1
    first, last, orders = a_rows[:, 1], a_rows[:, 2], a_rows[:, 3]
    t_x, t = last - first, today - first
    since = today - last
    # P(alive) of BG/NBD: 1 / (1 + [x > 0] a / (b + x − 1) ((α + T) / (α + t_x))^(r + x)).
    log_odds = np.log(a) - np.log(np.maximum(b + x - 1, 1e-300)) + (r + x) * (np.log(alpha + t) - np.log(alpha + t_x))
    p_alive = np.where(x > 0, expit(-log_odds), 1.0)
    frac = (now % DAY) / DAY
    rng = np.random.default_rng(seed)
    n = len(x)
    totals = []
    for _ in range(draws):
        alive = rng.random(n) < p_alive
        lam = rng.gamma(r + x, 1.0 / (alpha + t))
        drop = rng.beta(a, b + x)
        # The latest purchase day after today (−since before any) by the end of each day.
        last_day = -since.copy()
        clock = np.zeros(n)
        active = alive.copy()
        first_purchase_day = np.full(n, np.inf)
        # Purchases in order, all customers at once, until nobody is still buying.
        while active.any():
            idx = np.nonzero(active)[0]
            clock[idx] += rng.exponential(1.0 / lam[idx])
            bought = clock[idx] <= days
            idx_b = idx[bought]
            day = np.floor(frac + clock[idx_b])
            last_day[idx_b] = np.maximum(last_day[idx_b], day)
            first_purchase_day[idx_b] = np.minimum(first_purchase_day[idx_b], np.ceil(clock[idx_b]))
            active[idx[~bought]] = False
            dropped = rng.random(len(idx_b)) < drop[idx_b]
            active[idx_b[dropped]] = False
        # Without purchases in the window a customer's days since the last purchase on day k are
        # since + k; lost when above 2G, entered on the first such day after a day below.
        k_lost = np.floor(2 * g - since) + 1  # the first k with since + k > 2G
        entered = (k_lost >= 1) & (k_lost <= days) & (first_purchase_day > k_lost)
        totals.append(int(entered.sum()))
    print(json.dumps({"customers": n, "lapse_days": g, "entries": float(np.mean(totals)), "draws": totals}))


if __name__ == "__main__":
    main()
