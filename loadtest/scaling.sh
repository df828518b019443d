#!/usr/bin/env bash
# Shard scaling on one many-core host, all on 127.0.0.1: for each --shards N, smtpgate
# (pinned with taskset to CPUs 0..N-1; shards follow the process's affinity mask) forwards
# to smtpgate-sink, driven by smtpgate-load, and the script prints messages/s, latency and
# the CPU each of the three processes burned, so a reader can tell which one was the limit.
#
# While N leaves at least 3 CPUs free, the gateway's CPUs are its own ("dedicated"): the
# sink gets a fifth of the rest and the load generator the others (it needs about four
# times the sink's CPU per message). Past that the three
# share every CPU ("shared"), and messages per gateway CPU-second is the figure to compare.
#
# Workloads per N (all 1 KiB, 1 rcpt):
#   relay      plaintext relay listener, connections kept           (messages/s)
#   tls        STARTTLS + AUTH PLAIN, connections kept              (messages/s)
#   tls-new    STARTTLS + AUTH PLAIN, one message per connection    (sessions/s; full
#              handshakes: the load generator resumes no TLS session)
# Then on 1 dedicated shard: TLS latency at half the maximum rate, resumed sessions, 1 KiB x 50 rcpts
# over the relay, and a 25 MiB message through TLS; and where Postfix's smtp-source and
# smtp-sink are installed, smtp-source driving smtp-sink and the gateway's relay listener
# (one shard), each alone on CPU 0.
#
# Run from anywhere:  loadtest/scaling.sh       (builds the release binaries)
#                     BIN=dir loadtest/scaling.sh  (uses prebuilt ones, e.g. on another box)
# Knobs (environment): SHARDS_LIST ("1 2 4 8 16", capped at the CPU count), DURATION (5s
# per run), PER_SHARD (32 connections per gateway shard), PORT_TLS, PORT_RELAY,
# PORT_UPSTREAM, PORT_SMTPSINK, GATE_FLAGS (more gateway flags, e.g. "--spin-before-park
# 50us"), EXTRA ("no" skips the 1-shard extras), JSON_DIR (keep the load tool's
# JSON there).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -z "${BIN:-}" ]; then
  echo "== building smtpgate, smtpgate-sink, smtpgate-load (release)" >&2
  cargo build --release --quiet --bin smtpgate --bin smtpgate-sink --bin smtpgate-load
  BIN=target/release
fi
cores=$(nproc)
SHARDS_LIST=${SHARDS_LIST:-"1 2 4 8 16"}
DURATION=${DURATION:-5s}
PER_SHARD=${PER_SHARD:-32}
PORT_TLS=${PORT_TLS:-13525}
PORT_RELAY=${PORT_RELAY:-13526}
PORT_UPSTREAM=${PORT_UPSTREAM:-16051}
PORT_SMTPSINK=${PORT_SMTPSINK:-13527}
EXTRA=${EXTRA:-yes}
GATE_FLAGS=${GATE_FLAGS:-}
hz=$(getconf CLK_TCK)

work=$(mktemp -d /tmp/smtpgate-scaling.XXXXXX)
JSON_DIR=${JSON_DIR:-$work}
mkdir -p "$JSON_DIR"
pids=()
stop_servers() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  pids=()
}
on_exit() {
  local status=$?
  stop_servers
  if [ "$status" != 0 ]; then
    for f in "$work"/*.err; do [ -s "$f" ] && { echo "== $f" && tail -n 20 "$f"; } >&2; done
  fi
  rm -rf "$work"
}
trap on_exit EXIT
echo "scaling-token" >"$work/token"

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_port() {
  for _ in $(seq 1 100); do
    if port_open "$1"; then return 0; fi
    sleep 0.1
  done
  echo "nothing listening on 127.0.0.1:$1" >&2
  cat "$work"/*.err >&2 || true
  exit 1
}
for port in "$PORT_TLS" "$PORT_RELAY" "$PORT_UPSTREAM" "$PORT_SMTPSINK"; do
  if port_open "$port"; then
    echo "127.0.0.1:$port is already in use (set PORT_TLS, PORT_RELAY, PORT_UPSTREAM)" >&2
    exit 1
  fi
done

cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
# User+system ticks of this shell's finished children (the load generator runs).
# `times` runs in this shell (a command substitution would fork and see none of them).
child_ticks() {
  times >"$work/times"
  awk -v hz="$hz" 'NR == 2 { gsub(/[ms]/, " "); print int(($1 * 60 + $2 + $3 * 60 + $4) * hz) }' "$work/times"
}

# Sets gate_cpus, sink_cpus, load_cpus, sink_n, load_n, placement for N shards.
layout() {
  local n=$1 rest=$((cores - $1))
  if ((rest >= 3)); then
    placement=dedicated
    sink_n=$(((rest + 4) / 5))
    load_n=$((rest - sink_n))
    gate_cpus="0-$((n - 1))"
    load_cpus="$n-$((n + load_n - 1))"
    sink_cpus="$((n + load_n))-$((cores - 1))"
  else
    placement=shared
    sink_n=$(((cores + 3) / 4))
    load_n=$cores
    gate_cpus="0-$((cores - 1))"
    load_cpus=$gate_cpus
    sink_cpus=$gate_cpus
  fi
}

start_servers() { # shards
  taskset -c "$sink_cpus" "$BIN/smtpgate-sink" --listen "127.0.0.1:$PORT_UPSTREAM" \
    --shards "$sink_n" >/dev/null 2>"$work/sink.err" &
  sink_pid=$!
  pids+=("$sink_pid")
  wait_port "$PORT_UPSTREAM"
  # shellcheck disable=SC2086 # GATE_FLAGS is a list of flags
  SMTPGATE_LOG=warn taskset -c "$gate_cpus" "$BIN/smtpgate" --dev --shards "$1" \
    --listen "127.0.0.1:$PORT_TLS" --listen-relay "127.0.0.1:$PORT_RELAY" \
    --relay-application SCALING --relay-token-file "$work/token" \
    --upstream "http://127.0.0.1:$PORT_UPSTREAM" $GATE_FLAGS >/dev/null 2>"$work/gate.err" &
  gate_pid=$!
  pids+=("$gate_pid")
  wait_port "$PORT_TLS"
  wait_port "$PORT_RELAY"
  alive
}

alive() {
  for pid in "$sink_pid" "$gate_pid"; do
    kill -0 "$pid" 2>/dev/null || { echo "a server exited (pid $pid)" >&2; exit 1; }
  done
}

# One load run; prints a table row and leaves msgs/s in $last_rate.
measure() { # label shards connections load-options...
  local label=$1 n=$2 conns=$3
  shift 3
  local json="$JSON_DIR/$label-$n.json"
  local g0 s0 l0 t0 t1 g1 s1 l1
  g0=$(cpu_ticks "$gate_pid")
  s0=$(cpu_ticks "$sink_pid")
  child_ticks >"$work/l0"
  l0=$(cat "$work/l0")
  t0=$(date +%s.%N)
  taskset -c "$load_cpus" "$BIN/smtpgate-load" --quiet --threads "$load_n" -c "$conns" \
    --duration "$DURATION" --json "$json" "$@" >"$work/load.out" 2>&1 ||
    { cat "$work/load.out" >&2; exit 1; }
  t1=$(date +%s.%N)
  alive
  g1=$(cpu_ticks "$gate_pid")
  s1=$(cpu_ticks "$sink_pid")
  child_ticks >"$work/l1"
  l1=$(cat "$work/l1")
  local row
  row=$(python3 - "$json" <<'EOF'
import json, sys
c = json.load(open(sys.argv[1]))["cells"][0]
l = c["latency_us"]
print(c["msgs_per_s"], c["ok"], c["messages"], l["p50"] / 1000, l["p99"] / 1000)
EOF
)
  read -r rate ok sent p50 p99 <<<"$row"
  last_rate=$rate
  awk -v label="$label" -v n="$n" -v pl="$placement" -v c="$conns" -v rate="$rate" -v ok="$ok" \
    -v sent="$sent" -v p50="$p50" -v p99="$p99" -v t="$(echo "$t1 $t0" | awk '{ print $1 - $2 }')" \
    -v g=$((g1 - g0)) -v s=$((s1 - s0)) -v l=$((l1 - l0)) -v hz="$hz" -v base="${base[$label]:-0}" -v first="$([ "$n" = 1 ] && [ -n "${main[$label]:-}" ] && echo 1)" 'BEGIN {
      gc = g / hz / t; sc = s / hz / t; lc = l / hz / t
      per = (g > 0) ? rate * t / (g / hz) : 0
      speed = (base > 0) ? sprintf("%.2fx", rate / base) : (first ? "1.00x" : "-")
      printf "%-10s %6d %-9s %5d %10.0f %7s %7.2f %7.2f %8.2f %10.0f %8.2f %8.2f %8s\n",
        label, n, pl, c, rate, (ok == sent ? "all" : ok "/" sent), p50, p99, gc, per, sc, lc, speed
    }'
}

echo "host: $cores CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'))"
echo "runs of $DURATION; $PER_SHARD connections per shard; 1 KiB x 1 rcpt; gateway flags: ${GATE_FLAGS:-none}"
printf "%-10s %6s %-9s %5s %10s %7s %7s %7s %8s %10s %8s %8s %8s\n" workload shards placement conns \
  "msgs/s" "2xx" "p50 ms" "p99 ms" "gw cores" "msg/gw-s" "sink" "load" "vs 1"
declare -A base main=([relay]=1 [tls]=1 [tls-new]=1)
for n in $SHARDS_LIST; do
  ((n <= cores)) || continue
  layout "$n"
  start_servers "$n"
  measure relay "$n" $((PER_SHARD * n)) --target "127.0.0.1:$PORT_RELAY" --no-tls
  [ "$n" = 1 ] && base[relay]=$last_rate
  measure tls "$n" $((PER_SHARD * n)) --target "127.0.0.1:$PORT_TLS" --insecure --auth app:token
  [ "$n" = 1 ] && base[tls]=$last_rate
  measure tls-new "$n" $((PER_SHARD * n)) \
    --target "127.0.0.1:$PORT_TLS" --insecure --auth app:token --messages-per-conn 0
  [ "$n" = 1 ] && base[tls-new]=$last_rate
  stop_servers
done

[ "$EXTRA" = no ] && exit 0
echo
echo "1 shard, extras"
layout 1
start_servers 1
measure tls-max 1 "$PER_SHARD" --target "127.0.0.1:$PORT_TLS" --insecure --auth app:token
half=$(awk -v r="$last_rate" 'BEGIN { printf "%d", r / 2 }')
echo "-- TLS at half that rate ($half msgs/s, open loop, coordinated omission corrected):"
measure tls-half 1 "$PER_SHARD" --target "127.0.0.1:$PORT_TLS" --insecure --auth app:token --rate "$half"
echo "-- the relay at that rate:"
measure relay-half 1 "$PER_SHARD" --target "127.0.0.1:$PORT_RELAY" --no-tls --rate "$half"
PATH=$PATH:/usr/sbin
if command -v smtp-sink >/dev/null; then
  # The floor of the measurement: the same client and rate against a server that does
  # nothing (smtp-sink, alone on CPU 0), so what the kernel and generator add shows.
  taskset -c 0 smtp-sink -u nobody "127.0.0.1:$PORT_SMTPSINK" 1000 >/dev/null 2>&1 &
  pids+=($!)
  wait_port "$PORT_SMTPSINK"
  echo "-- control: smtp-sink at that rate (the generator's and the kernel's share):"
  measure smtp-sink 1 "$PER_SHARD" --target "127.0.0.1:$PORT_SMTPSINK" --no-tls --rate "$half"
fi
echo "-- one message per connection, TLS sessions resumed (a client with a session cache):"
measure tls-resume 1 "$PER_SHARD" --target "127.0.0.1:$PORT_TLS" --insecure --auth app:token \
  --messages-per-conn 0 --tls-resume
echo "-- 1 KiB x 50 rcpts over the relay (PIPELINING):"
measure relay-50 1 "$PER_SHARD" --target "127.0.0.1:$PORT_RELAY" --no-tls --rcpts 50
echo "-- 25 MiB through TLS, one connection (MB/s = msgs/s x 26.2):"
measure tls-25M 1 1 --target "127.0.0.1:$PORT_TLS" --insecure --auth app:token --size 25MiB
awk -v r="$last_rate" 'BEGIN { printf "25 MiB end to end: %.0f MB/s\n", r * 26214400 / 1e6 }'

# Postfix's smtp-source (one command per round trip, no PIPELINING) against smtp-sink and
# against the gateway's relay listener, each server on CPU 0 alone, when both are at hand.
if command -v smtp-source >/dev/null && command -v smtp-sink >/dev/null; then
  echo
  echo "smtp-source -s 20 on CPUs $load_cpus; smtp-sink on CPU 0, 1 gateway shard on CPUs $gate_cpus (msgs/s):"
  printf "%-28s %10s %10s %10s %8s\n" workload smtp-sink smtpgate gate/sink "gw cores"
  source_rate() { # port messages options...
    local port=$1 m=$2 t0 t1
    shift 2
    t0=$(date +%s.%N)
    taskset -c "$load_cpus" smtp-source -s 20 -m "$m" "$@" -f a@example.com -t b@example.com \
      "127.0.0.1:$port" >/dev/null
    t1=$(date +%s.%N)
    echo "$t0 $t1" | awk -v m="$m" '{ printf "%.0f", m / ($2 - $1) }'
  }
  for w in "1KiB x 1 rcpt|50000|-d -l 1024" "100KiB x 1 rcpt|5000|-d -l 102400" \
    "1KiB x 50 rcpts|10000|-d -l 1024 -r 50" "1KiB, new connection each|20000|-l 1024"; do
    IFS='|' read -r name m opts <<<"$w"
    # shellcheck disable=SC2086
    a=$(source_rate "$PORT_SMTPSINK" "$m" $opts)
    g0=$(cpu_ticks "$gate_pid")
    t0=$(date +%s.%N)
    # shellcheck disable=SC2086
    b=$(source_rate "$PORT_RELAY" "$m" $opts)
    t1=$(date +%s.%N)
    g1=$(cpu_ticks "$gate_pid")
    awk -v n="$name" -v a="$a" -v b="$b" -v g=$((g1 - g0)) -v hz="$hz" -v t0="$t0" -v t1="$t1" \
      'BEGIN { printf "%-28s %10d %10d %9.2fx %8.2f\n", n, a, b, b / a, g / hz / (t1 - t0) }'
  done
fi
stop_servers
