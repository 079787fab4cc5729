#!/usr/bin/env bash
# Benchmark: journey delivery, issue 17's parts (b) and (c) (part (a), evaluating date triggers,
# is bench/journeys.sh): `kanta journeys run --until-idle` on a store of CUSTOMERS customers.
#
#   bench/journeys-delivery.sh [CUSTOMERS]     (default 1,000,000)
#
# (b) Email throughput with every guardrail on, against a bare lettre send loop to the same
#     SMTP sink in the same run (crates/kanta-mail/examples/bare_send.rs: the same multipart
#     message, rendered by kanta, with the same headers and size, the same pool and CONCURRENCY).
#     The store holds CUSTOMERS customers with addresses and email consent granted; MESSAGES
#     (default 20,000) of them get an event that starts a one-step send_email journey. Settings:
#     consent "opt-in", frequency_cap "3/7d", quiet_hours a one-hour window starting two hours
#     after the current UTC hour (the customers' zone is UTC, so it is not quiet during the run),
#     and a suppression list of every 100th customer's address (1 % of the recipients are
#     skipped at send time). rate_per_second is far above any rate reached, so it never limits.
#     Timed: from `kanta journeys run`'s first pass to the pass that finds nothing due (its own
#     summary), which includes consuming the journey feed (starting the runs) and advancing
#     them (rendering), not only sending; the bare loop's time is its send loop. The sink is
#     aiosmtpd's Sink handler (accepts and drops); its headroom is checked by the bare loop at
#     twice the concurrency. ROUNDS (default 2) rounds of kanta then the bare loop, alternating,
#     each kanta round on a fresh copy of the store; prints both rates and the ratio (target >= 0.70).
# (b) also prints kanta's mailer alone (bare_send with VIA=kanta): its own connections with
#     TCP_NODELAY, which lettre's transport lacks (each message waits ~40 ms for the server's
#     delayed ACK there), so the bare lettre loop is slower than kanta's whole pipeline.
# (c) Steps advanced per second: RUNS (default 20,000) runs of a journey of non-sending steps
#     (a branch on a segment condition, an attribute update in each arm, `wait: 0s`, a split
#     whose arms update an attribute), timed the same way; steps are the history records the
#     engine commits. Reference, same run: the sqlite3 CLI on a copy of the same store doing the
#     same number of single-row UPDATEs (customers by primary key) in as many transactions as
#     the engine's batches of runs (100 a commit; WAL, synchronous=FULL: kanta's mode). It is a
#     floor for what the store costs per step, not an equivalent workload (kanta also reads the
#     customer, evaluates the condition and writes the run and its history).
# Peak RSS of each kanta run from /usr/bin/time -v. Run by hand; never in CI.
set -euo pipefail
cd "$(dirname "$0")/.."
CUSTOMERS=${1:-1000000}
MESSAGES=${MESSAGES:-20000}
RUNS=${RUNS:-20000}
CONCURRENCY=${CONCURRENCY:-4}
ROUNDS=${ROUNDS:-2}
WORK=bench/work/journeys-delivery
rm -rf "$WORK" && mkdir -p "$WORK/journeys"
command -v sqlite3 >/dev/null || { apt-get update -qq && apt-get install -y -qq sqlite3 >/dev/null; }
scripts/install-test-deps >/dev/null

cargo build --release --quiet -p kanta-cli
cargo build --release --quiet -p kanta-mail --example bare_send
TARGET=${CARGO_TARGET_DIR:-target}
[[ $TARGET = /* ]] || TARGET=$PWD/$TARGET
KANTA=${KANTA:-$TARGET/release/kanta}
BARE=$TARGET/release/examples/bare_send
PY=target/test-tools/venv/bin/python

now() { date +%s.%N; }
rss() { awk -F': ' '/Maximum resident set size/ {print int($2/1024)}' "$1"; }
# The number before WORDS in a `journeys run` summary line.
count() { grep -o "[0-9]* $2" <<<"$1" | head -n 1 | cut -d' ' -f1; }
seconds() { sed 's/.*; \([0-9.]*\) s$/\1/' <<<"$1"; }
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
events() { # name count -> events.csv of customers c-1..c-count, at the current time
  awk -v name="$1" -v n="$2" -v t="$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
    'BEGIN { print "customer_id,name,time"; for (i = 1; i <= n; i++) printf "c-%d,%s,%s\n", i, name, t }' >"$WORK/events.csv"
}

# --- the sink: aiosmtpd's Sink handler on a free loopback port
port=$($PY -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
$PY -m aiosmtpd -n -l "127.0.0.1:$port" -c aiosmtpd.handlers.Sink >"$WORK/sink.log" 2>&1 &
SINK=$!
trap 'kill $SINK 2>/dev/null || true' EXIT
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done

# --- settings: every guardrail on, not quiet now
hour=$((10#$(date -u +%H)))
QUIET=$(printf '%02d:00-%02d:00' $(((hour + 2) % 24)) $(((hour + 3) % 24)))
cat >"$WORK/kanta.toml" <<EOF
[email]
smtp_url = "smtp://127.0.0.1:$port"
from = "Shop <hello@shop.example>"
public_url = "https://shop.example"
unsubscribe_secret = "bench-unsubscribe-secret-0123456789"
rate_per_second = 1000000
concurrency = $CONCURRENCY
timeout_seconds = 30

[guardrails]
consent = "opt-in"
frequency_cap = "3/7d"
quiet_hours = "$QUIET"

[journeys]
default_timezone = "UTC"
max_event_age = "1d"
EOF
export KANTA_CONFIG=$WORK/kanta.toml
unset KANTA_DATABASE_URL

# --- the journeys (templates beside them, embedded by apply)
cp -r journeys/templates "$WORK/journeys/"
cat >"$WORK/journeys/send.yaml" <<'EOF'
name: bench-send
trigger:
  event: bench.send
steps:
  - send_email:
      subject: "We saved you 10% on your next order"
      template: win-back
EOF
cat >"$WORK/journeys/steps.yaml" <<'EOF'
name: bench-steps
trigger:
  event: bench.steps
steps:
  - branch:
      if: "orders >= 1"
      then:
        - update: { set: { attributes.bench_buyer: true } }
      else:
        - update: { set: { attributes.bench_buyer: false } }
  - wait: 0s
  - split:
      - weight: 50
        steps:
          - update: { set: { attributes.bench_arm: "a" }, tag: bench }
      - weight: 50
        steps:
          - update: { set: { attributes.bench_arm: "b" }, tag: bench }
EOF

# --- the store: customers with addresses and consent, the journeys, the suppression list
BASE=$WORK/base.db
awk -v n="$CUSTOMERS" 'BEGIN { print "id,email,name,consent_email"; for (i = 1; i <= n; i++) printf "c-%d,c-%d@example.org,Customer %d,granted\n", i, i, i }' >"$WORK/customers.csv"
t0=$(now)
"$KANTA" import customers "$WORK/customers.csv" --db "sqlite://$BASE" -q
t1=$(now)
"$KANTA" journeys apply "$WORK/journeys/send.yaml" "$WORK/journeys/steps.yaml" --db "sqlite://$BASE" >/dev/null
sqlite3 "$BASE" "WITH RECURSIVE s(i) AS (SELECT 100 UNION ALL SELECT i + 100 FROM s WHERE i + 100 <= $CUSTOMERS)
  INSERT INTO suppressions (address, reason, soft_bounces, suppressed, suppressed_at, updated_at)
  SELECT 'c-' || i || '@example.org', 'manual', 0, 1, 0, 0 FROM s; PRAGMA wal_checkpoint(TRUNCATE);" >/dev/null
suppressed=$(sqlite3 "$BASE" "SELECT COUNT(*) FROM suppressions")
awk -v n="$CUSTOMERS" -v a="$t0" -v b="$t1" -v s="$suppressed" 'BEGIN { printf "== store: %d customers (imported in %.1f s, %.0f/s), %d suppressed addresses\n", n, b - a, n / (b - a), s }'

# The message kanta sends, for the bare loop: the same parts, subject and link length.
"$KANTA" journeys preview bench-send 0 --customer c-1 --db "sqlite://$BASE" >"$WORK/preview.txt"
"$KANTA" journeys preview bench-send 0 --customer c-1 --db "sqlite://$BASE" --text >"$WORK/part.txt"
"$KANTA" journeys preview bench-send 0 --customer c-1 --db "sqlite://$BASE" --html >"$WORK/part.html"
"$KANTA" journeys preview bench-send 0 --customer c-1 --db "sqlite://$BASE" --eml "$WORK/one.eml" >/dev/null
SUBJECT=$(sed -n 's/^Subject: //p' "$WORK/preview.txt")
UNSUBSCRIBE=$(sed -n 's/^List-Unsubscribe: <\(.*\)>$/\1/p' "$WORK/preview.txt")
KANTA_SIZE=$(wc -c <"$WORK/one.eml")

# --- (b) email throughput
echo "== (b) email throughput: $MESSAGES messages (of a $CUSTOMERS-customer store) to aiosmtpd's Sink, $CONCURRENCY in flight"
echo "   guardrails: consent opt-in (granted), frequency_cap 3/7d, quiet_hours $QUIET UTC (now: $(date -u +%H:%M) UTC, customers in UTC: not quiet), $suppressed addresses suppressed (1 % of the recipients)"
kanta_send() { # round -> "sent seconds rate rss"
  local db=$WORK/send-$1.db line
  cp "$BASE" "$db"
  events bench.send "$MESSAGES"
  "$KANTA" import events "$WORK/events.csv" --db "sqlite://$db" -q
  /usr/bin/time -v "$KANTA" journeys run --until-idle --db "sqlite://$db" >"$WORK/send-$1.out" 2>"$WORK/send-$1.time" \
    || { cat "$WORK/send-$1.time" >&2; return 1; }
  line=$(cat "$WORK/send-$1.out")
  echo "   kanta round $1: $line" >&2
  rm -f "$db" "$db-wal" "$db-shm"
  awk -v n="$(count "$line" sent)" -v s="$(seconds "$line")" -v r="$(rss "$WORK/send-$1.time")" 'BEGIN { printf "%d %.2f %.0f %d\n", n, s, n / s, r }'
}
bare_send() { # concurrency -> rate
  local out
  out=$("$BARE" "127.0.0.1:$port" "$MESSAGES" "$1" "$WORK/part.txt" "$WORK/part.html" "$SUBJECT" "$UNSUBSCRIBE")
  echo "   $out (concurrency $1)" >&2
  sed 's/.*: \([0-9]*\) messages\/s.*/\1/' <<<"$out"
}
kanta_rates=() bare_rates=() kanta_rss=()
for round in $(seq "$ROUNDS"); do
  read -r sent secs krate krss < <(kanta_send "$round")
  brate=$(bare_send "$CONCURRENCY")
  kanta_rates+=("$krate") bare_rates+=("$brate") kanta_rss+=("$krss")
  awk -v r="$round" -v k="$krate" -v b="$brate" -v s="$sent" -v t="$secs" -v m="$krss" 'BEGIN { printf "   round %d: kanta %d sent in %.2f s = %.0f messages/s (peak RSS %d MB), bare lettre %.0f messages/s, ratio %.2f\n", r, s, t, k, m, b, k / b }'
done
headroom=$(bare_send $((CONCURRENCY * 2)))
# kanta's mailer alone, the same messages at the same concurrency (no store, no guardrails).
transport=$(VIA=kanta bare_send "$CONCURRENCY")
k=$(printf '%s\n' "${kanta_rates[@]}" | median)
b=$(printf '%s\n' "${bare_rates[@]}" | median)
m=$(printf '%s\n' "${kanta_rss[@]}" | sort -n | tail -n 1)
echo "   message size: kanta $KANTA_SIZE bytes (journeys preview --eml), the bare loop's as printed above"
awk -v h="$headroom" -v b="$b" -v c="$CONCURRENCY" 'BEGIN { printf "   sink check: the bare loop at %d in flight: %.0f messages/s (%.2f x its rate at %d)\n", c * 2, h, h / b, c }'
B_LINE=$(awk -v k="$k" -v b="$b" -v m="$m" -v x="$transport" 'BEGIN { printf "(b) email: kanta journeys run %.0f messages/s, bare lettre loop %.0f messages/s, ratio %.2f (target >= 0.70); kanta peak RSS %d MB; kanta'"'"'s mailer alone %.0f messages/s", k, b, k / b, m, x }')

# --- (c) steps advanced per second
echo "== (c) steps advanced: $RUNS runs of bench-steps (branch, update, wait 0s, split, update)"
db=$WORK/steps.db
cp "$BASE" "$db"
events bench.steps "$RUNS"
"$KANTA" import events "$WORK/events.csv" --db "sqlite://$db" -q
/usr/bin/time -v "$KANTA" journeys run --until-idle --db "sqlite://$db" >"$WORK/steps.out" 2>"$WORK/steps.time" \
  || { cat "$WORK/steps.time" >&2; exit 1; }
line=$(cat "$WORK/steps.out")
echo "   kanta: $line"
steps=$(count "$line" steps) passes=$(count "$line" "runs advanced") secs=$(seconds "$line") srss=$(rss "$WORK/steps.time")
sqlite3 "$db" "SELECT '   store: ' || COUNT(*) || ' runs completed' FROM journey_runs WHERE journey = 'bench-steps' AND status = 'completed'"
rm -f "$db" "$db-wal" "$db-shm"
# The reference: as many single-row UPDATEs in as many transactions as the engine commits runs
# in (it writes each claimed batch of up to 100 runs in one), on a copy of the store.
cp "$BASE" "$WORK/ref.db"
txs=$(( (passes + 99) / 100 ))
awk -v steps="$steps" -v tx="$txs" -v n="$CUSTOMERS" 'BEGIN {
  print "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;"
  per = steps / tx; done = 0
  for (t = 1; t <= tx; t++) {
    print "BEGIN;"
    upto = int(t * per + 0.5)
    for (; done < upto; done++) printf "UPDATE customers SET updated_at = updated_at + 1 WHERE id = %d;\n", (done * 7919) % n + 1
    print "COMMIT;"
  }
}' >"$WORK/ref.sql"
t0=$(now); sqlite3 "$WORK/ref.db" <"$WORK/ref.sql" >/dev/null; t1=$(now)
rm -f "$WORK/ref.db" "$WORK/ref.db-wal" "$WORK/ref.db-shm"
C_LINE=$(awk -v s="$steps" -v t="$secs" -v tx="$txs" -v a="$t0" -v b="$t1" -v m="$srss" 'BEGIN { printf "(c) steps: kanta journeys run %.0f steps/s (%d steps, %.2f s), sqlite3 %d single-row UPDATEs in %d transactions %.0f/s, ratio %.2f; kanta peak RSS %d MB", s / t, s, t, s, tx, s / (b - a), (s / t) / (s / (b - a)), m }')

echo "$B_LINE"
echo "$C_LINE"
