"""Checks that kanta's customers.csv and the peer's table agree on every shared column.

Integers, dates and exact-decimal money must be equal; monetary (a ratio) to 1e-9 relative.
Usage: compare_tables.py KANTA.csv PEER.csv
"""
import csv
import sys
from decimal import Decimal


def load(path):
    with open(path, newline="") as f:
        return {row["customer_id"]: row for row in csv.DictReader(f)}


kanta, peer = load(sys.argv[1]), load(sys.argv[2])
problems = []
if kanta.keys() != peer.keys():
    problems.append(f"customer sets differ: {len(kanta)} in kanta, {len(peer)} in the peer")
for cid in sorted(kanta.keys() & peer.keys()):
    k, p = kanta[cid], peer[cid]
    for col in ("first_purchase", "last_purchase", "orders", "frequency", "recency", "T"):
        if str(k[col]) != str(p[col]).split(".")[0] and float(k[col]) != float(p[col]):
            problems.append(f"{cid} {col}: kanta {k[col]} peer {p[col]}")
    if Decimal(k["revenue"]) != Decimal(p["revenue"]):
        problems.append(f"{cid} revenue: kanta {k['revenue']} peer {p['revenue']}")
    km, pm = float(k["monetary"]), float(p["monetary"])
    if abs(km - pm) > 1e-9 * max(1.0, abs(pm)):
        problems.append(f"{cid} monetary: kanta {km} peer {pm}")
    if len(problems) > 10:
        break
if problems:
    print("MISMATCH")
    print("\n".join(problems[:10]))
    sys.exit(1)
print(f"identical: {len(kanta)} customers, columns first_purchase..monetary")
