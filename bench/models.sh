#!/usr/bin/env bash
# Benchmark: kanta's model fits and predictions vs Python lifetimes 0.11.3, side by side.
#
#   bench/models.sh            (10⁵ and 10⁶ customers)
#   ONLY=whole bench/models.sh (only the whole-process comparison at 10⁶)
#
# Installs lifetimes==0.11.3 (with pandas < 2, numpy < 1.24, which it needs) in a venv under
# bench/work/, generates shops with `kanta generate`, turns them into continuous-time summaries
# (frequency, recency and T in fractional days, so identical histories are rare), and times in
# one run: BG/NBD fit at 10⁵ and 10⁶ customers, Pareto/NBD fit at 10⁵, and P(alive) + expected
# purchases + 12-month CLV for 10⁶ customers. Prints the ratios and checks that kanta's
# log-likelihood is never below lifetimes' and that the parameters agree within 10⁻³ relative.
# Then, as whole processes back to back (REPS times, default 3, medians): `kanta fit` at 10⁶
# against a Python process that reads the same summary with pandas and fits with lifetimes.
# Run by hand; never in CI.
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=bench/work
mkdir -p "$WORK"
if [ ! -x "$WORK/venv-lifetimes/bin/python" ]; then
  python3 -m venv "$WORK/venv-lifetimes"
  "$WORK/venv-lifetimes/bin/pip" install -q "lifetimes==0.11.3" "pandas<2" "numpy<1.24"
fi
cargo build --release --quiet -p kanta-cli
KANTA=${KANTA:-${CARGO_TARGET_DIR:-target}/release/kanta}
for n in 100000 1000000; do
  f="$WORK/shop-$n.csv"
  [ -s "$f" ] || "$KANTA" generate --customers "$n" --seed 11 --out "$f" --quiet
done
exec "$WORK/venv-lifetimes/bin/python" bench/models.py "$KANTA" "$WORK"
