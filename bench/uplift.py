"""The uplift report's statistics in numpy/scipy: the peer of `kanta journeys report`.

    uplift.py DB ENTERED WINDOW       the report of journey `promo` as JSON (stdout)
    uplift.py --compare KANTA PEER    both reports' estimates side by side

Reads the same rows kanta's store reads (each customer's first entry, its conversion, net
revenue in the window after entry and in the 365 days before) with the same SQL, then computes
the same figures: Wald and Newcombe (hybrid score, method 10) intervals of the difference in
conversion rate, Welch's interval and a 2,000-resample percentile bootstrap of the difference in
revenue per customer, and the same after CUPED on the pre-entry revenue.
"""
import json
import sqlite3
import sys

import numpy as np
from scipy import stats

Z = stats.norm.ppf(0.975)
RESAMPLES = 2000
YEAR = 365 * 86400 * 1_000_000


def rows(db, window):
    signed = "CASE WHEN o.status = 'refunded' THEN -ABS(o.amount) ELSE o.amount END"
    revenue = lambda lo, hi: (
        f"(SELECT COALESCE(SUM({signed}), 0) FROM orders o WHERE o.customer_id = r.customer_id "
        f"AND o.time >= {lo} AND o.time < {hi} AND o.status <> 'cancelled')"
    )
    sql = f"""
        SELECT r.arm <> 'treatment', c.time IS NOT NULL, {revenue('r.entered_at', f'r.entered_at + {window}')},
               {revenue(f'r.entered_at - {YEAR}', 'r.entered_at')}
        FROM journey_runs r LEFT JOIN journey_conversions c ON c.run_id = r.id
        WHERE r.journey = 'promo' AND NOT EXISTS (SELECT 1 FROM journey_runs e WHERE e.customer_id = r.customer_id
          AND e.journey = r.journey AND (e.entered_at < r.entered_at OR (e.entered_at = r.entered_at AND e.id < r.id)))
        ORDER BY r.id"""
    data = np.array(sqlite3.connect(db).execute(sql).fetchall(), dtype=np.float64)
    return data[:, 0] > 0, data[:, 1] > 0, data[:, 2] / 10_000, data[:, 3] / 10_000


def wilson(s, n):
    p = s / n
    centre = p + Z * Z / (2 * n)
    spread = Z * np.sqrt(p * (1 - p) / n + Z * Z / (4 * n * n))
    d = 1 + Z * Z / n
    return (centre - spread) / d, (centre + spread) / d


def rates(conv_t, conv_c):
    n1, n2, s1, s2 = len(conv_t), len(conv_c), conv_t.sum(), conv_c.sum()
    p1, p2 = s1 / n1, s2 / n2
    d = p1 - p2
    half = Z * np.sqrt(p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2)
    (l1, u1), (l2, u2) = wilson(s1, n1), wilson(s2, n2)
    newcombe = (d - np.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2), d + np.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2))
    return {"difference": d, "wald": [d - half, d + half], "newcombe": list(newcombe)}


def welch(a, b):
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    df = (va + vb) ** 2 / (va * va / (len(a) - 1) + vb * vb / (len(b) - 1))
    d, half = a.mean() - b.mean(), stats.t.ppf(0.975, df) * np.sqrt(va + vb)
    return {"difference": d, "interval": [d - half, d + half]}


def bootstrap(a, b, seed):
    rng = np.random.default_rng(seed)

    def means(x):
        out = np.empty(RESAMPLES)
        chunk = max(1, 20_000_000 // len(x))
        for i in range(0, RESAMPLES, chunk):
            k = min(chunk, RESAMPLES - i)
            out[i : i + k] = x[rng.integers(0, len(x), size=(k, len(x)))].mean(axis=1)
        return out

    d = np.sort(means(a) - means(b))
    return {"difference": a.mean() - b.mean(), "interval": list(np.quantile(d, [0.025, 0.975]))}


def report(db, window):
    control, converted, after, before = rows(db, window)
    t, c = ~control, control
    x = np.concatenate([before[t], before[c]])
    y = np.concatenate([after[t], after[c]])
    theta = np.cov(x, y, ddof=1)[0, 1] / x.var(ddof=1) if x.var() > 0 else 0.0
    adj = after - theta * (before - x.mean())
    return {
        "customers": [int(t.sum()), int(c.sum())],
        "conversion": rates(converted[t], converted[c]),
        "revenue": {"welch": welch(after[t], after[c]), "bootstrap": bootstrap(after[t], after[c], 1)},
        "cuped": {"theta": theta, "welch": welch(adj[t], adj[c]), "bootstrap": bootstrap(adj[t], adj[c], 2)},
    }


def compare(kanta_file, peer_file):
    k, p = json.load(open(kanta_file)), json.load(open(peer_file))
    pairs = [
        ("customers (treatment, control)", [k["treatment"]["customers"], k["control"]["customers"]], p["customers"]),
        ("conversion difference", k["conversion"]["difference"], p["conversion"]["difference"]),
        ("  Wald", k["conversion"]["wald"], p["conversion"]["wald"]),
        ("  Newcombe", k["conversion"]["newcombe"], p["conversion"]["newcombe"]),
        ("revenue difference, Welch", k["revenue"]["welch"]["interval"], p["revenue"]["welch"]["interval"]),
        ("  bootstrap", k["revenue"]["bootstrap"]["interval"], p["revenue"]["bootstrap"]["interval"]),
        ("CUPED θ", k["cuped"]["theta"], p["cuped"]["theta"]),
        ("  Welch", k["cuped"]["welch"]["interval"], p["cuped"]["welch"]["interval"]),
        ("  bootstrap", k["cuped"]["bootstrap"]["interval"], p["cuped"]["bootstrap"]["interval"]),
    ]
    def fmt(v):
        if isinstance(v, dict):  # kanta's intervals are {"lower", "upper"}
            v = [v["lower"], v["upper"]]
        if isinstance(v, list):
            return "[" + ", ".join(f"{x:.6f}" for x in v) + "]"
        return f"{v:.9f}"

    print(f"  {'figure':<32} {'kanta':>32} {'numpy/scipy':>32}")
    for name, a, b in pairs:
        print(f"  {name:<32} {fmt(a):>32} {fmt(b):>32}")
    print(f"  CUPED variance reduction (kanta): {100 * k['cuped']['variance_reduction']:.1f}%")


if __name__ == "__main__":
    if sys.argv[1] == "--compare":
        compare(sys.argv[2], sys.argv[3])
    else:
        json.dump(report(sys.argv[1], int(sys.argv[3])), sys.stdout, default=float)
