"""kanta vs lifetimes 0.11.3: fit and prediction times, log-likelihoods and parameters.

Called by bench/models.sh with the kanta binary and the work folder.
"""
import json
import os
import subprocess
import sys
import time

import numpy as np
import pandas as pd
from lifetimes import BetaGeoFitter, GammaGammaFitter, ParetoNBDFitter

KANTA, WORK = sys.argv[1], sys.argv[2]
# ONLY=whole runs only the whole-process comparison (reading the summary file and fitting).
ONLY = os.environ.get("ONLY")
REPS = int(os.environ.get("REPS", "3"))


def summary(n):
    """Continuous-time summary (days with fractions) of the generated shop, cached as CSV."""
    out = f"{WORK}/summary-{n}.csv"
    if os.path.exists(out):
        return out
    orders = pd.read_csv(f"{WORK}/shop-{n}.csv", usecols=["order_id", "customer_id", "order_date", "amount"])
    orders = orders.groupby(["customer_id", "order_id"], sort=False).agg(t=("order_date", "first"), amount=("amount", "sum"))
    orders = orders.reset_index()
    orders["t"] = pd.to_datetime(orders["t"], utc=True).astype("int64") / 1e9 / 86400.0
    orders = orders[orders["amount"] > 0].sort_values(["customer_id", "t"])
    end = orders["t"].max()
    g = orders.groupby("customer_id", sort=False)
    first = g["t"].transform("min")
    orders["repeat"] = g.cumcount() > 0
    rep = orders[orders["repeat"]]
    s = pd.DataFrame({"first": g["t"].min(), "last": g["t"].max(), "n": g.size()})
    s["frequency"] = s["n"] - 1
    s["recency"] = s["last"] - s["first"]
    s["T"] = end - s["first"]
    s["monetary_value"] = rep.groupby("customer_id")["amount"].mean().reindex(s.index).fillna(0.0)
    s[["frequency", "recency", "T", "monetary_value"]].to_csv(out, index_label="customer_id", float_format="%.6f")
    del first
    return out


def kanta(*args):
    """Runs kanta with KANTA_TIMINGS; returns (wall seconds, {phase: seconds}, stdout)."""
    env = dict(os.environ, KANTA_TIMINGS="1")
    t0 = time.perf_counter()
    p = subprocess.run([KANTA, *args], capture_output=True, text=True, env=env, check=True)
    wall = time.perf_counter() - t0
    phases = {}
    for line in p.stderr.splitlines():
        if line.startswith("timing: "):
            name, secs = line[len("timing: "):].rsplit(": ", 1)
            phases[name] = float(secs.split()[0])
    return wall, phases, p.stdout


def timed(f):
    t0 = time.perf_counter()
    r = f()
    return time.perf_counter() - t0, r


def lifetimes_ll(fitter, df, names):
    """lifetimes' total log-likelihood at its own estimates, by its own formula."""
    params = [fitter.params_[k] for k in names]
    f, r, T = df["frequency"].values, df["recency"].values, df["T"].values
    if isinstance(fitter, ParetoNBDFitter):
        return ParetoNBDFitter._conditional_log_likelihood(params, f, r, T).sum()
    # BetaGeoFitter's objective is the mean negative log-likelihood, on log-parameters.
    return -fitter._negative_log_likelihood(np.log(params), f, r, T, np.ones(len(df)), 0.0) * len(df)


rows = []
failures = []


def compare(label, kanta_json, lt_fitter, names, lt_ll):
    k_ll = kanta_json["log_likelihood"]
    print(f"    log-likelihood: kanta {k_ll:.4f}, lifetimes {lt_ll:.4f}")
    if k_ll < lt_ll - 1e-6 * abs(lt_ll):
        failures.append(f"{label}: kanta's log-likelihood {k_ll} is below lifetimes' {lt_ll}")
    for k in names:
        a, b = kanta_json["params"][k], lt_fitter.params_[k]
        rel = abs(a / b - 1)
        flag = "" if rel <= 1e-3 else "  (differs by more than 1e-3)"
        print(f"    {k:>6}: kanta {a:.6g}, lifetimes {b:.6g}, rel. diff {rel:.1e}{flag}")
        if rel > 1e-3:
            failures.append(f"{label}: {k} differs: kanta {a}, lifetimes {b}")


# lifetimes' side of the whole-process comparison: a fresh interpreter that imports lifetimes,
# reads the summary with pandas and fits BG/NBD, as a user's script would.
LIFETIMES_FIT = """
import sys
import pandas as pd
from lifetimes import BetaGeoFitter
df = pd.read_csv(sys.argv[1])
BetaGeoFitter().fit(df["frequency"], df["recency"], df["T"])
"""


def whole_process(n):
    """`kanta fit` and lifetimes' read + fit as whole processes, back to back, REPS times."""
    path = summary(n)
    kanta_walls, lifetimes_walls = [], []
    for _ in range(REPS):
        t0 = time.perf_counter()
        subprocess.run([KANTA, "fit", path, "--model", "bgnbd", "--json"], capture_output=True, check=True)
        kanta_walls.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", LIFETIMES_FIT, path], capture_output=True, check=True)
        lifetimes_walls.append(time.perf_counter() - t0)
    k, lt = float(np.median(kanta_walls)), float(np.median(lifetimes_walls))
    print(f"\nBG/NBD read + fit as whole processes, {n:,} customers (median of {REPS}, back to back):")
    print(f"  kanta fit {k:.3f} s ({', '.join(f'{w:.3f}' for w in kanta_walls)}), "
          f"lifetimes {lt:.2f} s ({', '.join(f'{w:.2f}' for w in lifetimes_walls)}): {lt / k:.1f}×")
    return k, lt


if ONLY == "whole":
    whole_process(1_000_000)
    sys.exit(0)

for n, models in [(100_000, ["bgnbd", "paretonbd"]), (1_000_000, ["bgnbd", "predict"])]:
    path = summary(n)
    df = pd.read_csv(path)
    distinct = len(df[["frequency", "recency", "T"]].drop_duplicates())
    print(f"\n{n:,} customers ({distinct:,} distinct (x, t_x, T), {np.mean(df['frequency'] > 0):.0%} repeat buyers)")
    if "bgnbd" in models:
        wall, phases, out = kanta("fit", path, "--model", "bgnbd", "--json")
        kj = json.loads(out)
        lt_time, bgf = timed(lambda: BetaGeoFitter().fit(df["frequency"], df["recency"], df["T"]))
        ll = lifetimes_ll(bgf, df, ["r", "alpha", "a", "b"])
        print(f"  BG/NBD fit: kanta {phases['fit']:.3f} s (whole command {wall:.2f} s), lifetimes {lt_time:.2f} s")
        compare(f"BG/NBD {n}", kj, bgf, ["r", "alpha", "a", "b"], ll)
        rows.append((f"BG/NBD fit, {n:,}", phases["fit"], wall, lt_time))
    if "paretonbd" in models:
        wall, phases, out = kanta("fit", path, "--model", "paretonbd", "--json")
        kj = json.loads(out)
        lt_time, pf = timed(lambda: ParetoNBDFitter().fit(df["frequency"], df["recency"], df["T"]))
        ll = lifetimes_ll(pf, df, ["r", "alpha", "s", "beta"])
        print(f"  Pareto/NBD fit: kanta {phases['fit']:.3f} s (whole command {wall:.2f} s), lifetimes {lt_time:.2f} s")
        compare(f"Pareto/NBD {n}", kj, pf, ["r", "alpha", "s", "beta"], ll)
        rows.append((f"Pareto/NBD fit, {n:,}", phases["fit"], wall, lt_time))
    if "predict" in models:
        # Fit once with kanta (both tools then predict from the same parameters).
        bg_json, gg_json = f"{WORK}/bg-{n}.json", f"{WORK}/gg-{n}.json"
        kanta("fit", path, "--model", "bgnbd", "-o", bg_json)
        kanta("fit", path, "--model", "gammagamma", "-o", gg_json)
        wall, phases, _ = kanta("predict", path, "--params", bg_json, "--params", gg_json, "--horizon", "30",
                                "-o", f"{WORK}/pred-{n}.csv")
        bg = json.load(open(bg_json))["params"]
        gg = json.load(open(gg_json))["params"]
        bgf = BetaGeoFitter()
        bgf.params_ = pd.Series(bg)
        bgf.predict = bgf.conditional_expected_number_of_purchases_up_to_time  # as fit() sets it
        ggf = GammaGammaFitter()
        ggf.params_ = pd.Series({"p": gg["p"], "q": gg["q"], "v": gg["gamma"]})
        f, r, T, m = df["frequency"], df["recency"], df["T"], df["monetary_value"]

        def lifetimes_predict():
            pa = bgf.conditional_probability_alive(f, r, T)
            e = bgf.conditional_expected_number_of_purchases_up_to_time(30, f, r, T)
            spend = ggf.conditional_expected_average_profit(f, m)
            clv = ggf.customer_lifetime_value(bgf, f, r, T, m, time=12, discount_rate=0.01, freq="D")
            return pa, e, spend, clv

        lt_time, (pa, e, spend, clv) = timed(lifetimes_predict)
        compute = phases["predict"]
        print(f"  predictions (P(alive), E[30 days], spend, 12-month CLV): kanta {compute:.3f} s "
              f"(whole command incl. CSV in/out {wall:.2f} s), lifetimes {lt_time:.2f} s")
        pred = pd.read_csv(f"{WORK}/pred-{n}.csv")
        for name, ours, theirs in [("p_alive", pred["p_alive"], pa), ("expected_purchases", pred["expected_purchases"], e),
                                   ("expected_spend", pred["expected_spend"], spend), ("clv", pred["clv"], clv)]:
            diff = np.max(np.abs(ours.values - np.asarray(theirs)) / np.maximum(np.abs(np.asarray(theirs)), 1e-12))
            print(f"    {name}: max rel. diff {diff:.1e}")
            if diff > 1e-6:
                failures.append(f"predictions {name} differ from lifetimes by {diff}")
        rows.append((f"predictions, {n:,}", compute, wall, lt_time))

whole = whole_process(1_000_000)

print("\n| task | kanta compute | kanta whole command | lifetimes | ratio (compute) | ratio (whole) |")
print("|---|---|---|---|---|---|")
for label, compute, wall, lt in rows:
    print(f"| {label} | {compute:.3f} s | {wall:.2f} s | {lt:.2f} s | {lt / compute:.0f}× | {lt / wall:.1f}× |")
k, lt = whole
print(f"| BG/NBD read + fit, whole processes, 1,000,000 | | {k:.2f} s | {lt:.2f} s (read + fit) | | {lt / k:.1f}× |")
if failures:
    print("\nCHECKS FAILED:\n  " + "\n  ".join(failures))
    sys.exit(1)
print("\nchecks: kanta's log-likelihood ≥ lifetimes', parameters within 1e-3, predictions within 1e-6")
