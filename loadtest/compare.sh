#!/usr/bin/env bash
# Side-by-side throughput on 127.0.0.1, driven by Postfix's smtp-source with the same
# workloads against:
#   (a) smtp-sink               a do-nothing SMTP server: the ceiling
#   (b) Postfix smtpd           queueing to a discard: transport
#   (c) smtpgate (relay mode)   forwarding every message to smtpgate-sink over gRPC
# Prints messages/s for each (median of RUNS) and the ratios smtpgate/sink and
# smtpgate/postfix. Installs Debian's postfix package if missing (for smtp-source,
# smtp-sink and smtpd). Run as root from anywhere:  loadtest/compare.sh
#
# Knobs (environment): RUNS (3), MESSAGES (20000 per run; 2000 for 100 KiB),
# SESSIONS (20), SHARDS (smtpgate shards; default half the cores, since smtp-source runs
# on the same box and a shard pinned to every core fights it: on 2 cores, 1 shard did
# 1,436 msg/s with 50 recipients where 2 shards did 969), SINK_SHARDS (1).
set -euo pipefail

RUNS=${RUNS:-3}
MESSAGES=${MESSAGES:-20000}
SESSIONS=${SESSIONS:-20}
cores=$(nproc)
SHARDS=${SHARDS:-$((cores > 1 ? cores / 2 : 1))}
SINK_SHARDS=${SINK_SHARDS:-1}
PORT_SINK=${PORT_SINK:-12525}
PORT_POSTFIX=${PORT_POSTFIX:-12526}
PORT_GATE=${PORT_GATE:-12527}
PORT_UPSTREAM=${PORT_UPSTREAM:-15051}

cd "$(dirname "$0")/.."

if ! command -v smtp-source >/dev/null 2>&1 && [ ! -x /usr/sbin/smtp-source ]; then
  echo "== installing postfix (for smtp-source, smtp-sink, smtpd)" >&2
  export DEBIAN_FRONTEND=noninteractive
  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends postfix >/dev/null
fi
PATH=/usr/sbin:$PATH

echo "== building smtpgate (release)" >&2
cargo build --release --quiet --bin smtpgate --bin smtpgate-sink

work=$(mktemp -d /tmp/smtpgate-compare.XXXXXX)
chmod 755 "$work" # Postfix's daemons run as the postfix user and must reach it.
pids=()
# Postfix only runs a private instance (-c DIR) that the default main.cf lists in
# alternate_config_directories: add ours for the run, and put everything back after.
default_main=/etc/postfix/main.cf
main_backup=""
if [ -e "$default_main" ]; then
  main_backup="$work/main.cf.orig"
  cp -p "$default_main" "$main_backup"
fi
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  postfix -c "$work/postfix" stop >/dev/null 2>&1 || true
  wait 2>/dev/null || true
  if [ -n "$main_backup" ]; then cp -p "$main_backup" "$default_main"; else rm -f "$default_main"; fi
  rm -rf "$work"
}
trap cleanup EXIT
if [ -n "$main_backup" ]; then
  existing=$(postconf -h alternate_config_directories 2>/dev/null || true)
  postconf -e "alternate_config_directories = ${existing:+$existing, }$work/postfix"
else
  echo "alternate_config_directories = $work/postfix" >"$default_main"
fi

wait_port() {
  for _ in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "nothing listening on 127.0.0.1:$1" >&2
  return 1
}

# Every port must be free, or one server would silently be another run's.
for port in "$PORT_SINK" "$PORT_POSTFIX" "$PORT_GATE" "$PORT_UPSTREAM"; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "127.0.0.1:$port is already in use (set PORT_SINK, PORT_POSTFIX, PORT_GATE, PORT_UPSTREAM)" >&2
    exit 1
  fi
done

# (a) smtp-sink: accepts everything, stores nothing.
smtp-sink -u nobody "127.0.0.1:$PORT_SINK" 1000 >/dev/null 2>&1 &
pids+=($!)

# (b) a private Postfix instance: smtpd on 127.0.0.1, everything to discard:.
mkdir -p "$work/postfix" "$work/spool" "$work/data"
chown postfix "$work/data"
cat >"$work/postfix/main.cf" <<EOF
compatibility_level = 3.6
queue_directory = $work/spool
data_directory = $work/data
command_directory = /usr/sbin
daemon_directory = /usr/lib/postfix/sbin
shlib_directory = /usr/lib/postfix
mail_owner = postfix
setgid_group = postdrop
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
myhostname = compare.localdomain
mydestination =
mynetworks = 127.0.0.0/8
relay_domains = example.com
default_transport = discard:
relay_transport = discard:
local_transport = discard:
smtpd_relay_restrictions = permit_mynetworks, reject
smtpd_recipient_restrictions = permit_mynetworks, reject
default_process_limit = 200
maillog_file = $work/maillog
maillog_file_prefixes = $work
EOF
# The stock master.cf with smtpd moved to our port, outside a chroot.
sed -e "s/^smtp\( *\)inet\( *\)n\( *\)-\( *\)[yn]/127.0.0.1:$PORT_POSTFIX inet n - n/" \
  /etc/postfix/master.cf >"$work/postfix/master.cf"
grep -q "^127.0.0.1:$PORT_POSTFIX" "$work/postfix/master.cf" ||
  echo "127.0.0.1:$PORT_POSTFIX inet n - n - - smtpd" >>"$work/postfix/master.cf"
if ! postfix -c "$work/postfix" start >/dev/null 2>&1; then
  echo "Postfix did not start:" >&2
  tail -n 5 "$work/maillog" >&2 2>/dev/null || true
  exit 1
fi

# (c) smtpgate in relay mode, forwarding to smtpgate-sink.
./target/release/smtpgate-sink --listen "127.0.0.1:$PORT_UPSTREAM" --shards "$SINK_SHARDS" --record \
  >"$work/sink.out" 2>&1 &
sink_pid=$!
pids+=("$sink_pid")
echo "compare-token" >"$work/token"
SMTPGATE_LOG=warn ./target/release/smtpgate --listen-relay "127.0.0.1:$PORT_GATE" \
  --relay-application COMPARE --relay-token-file "$work/token" \
  --upstream "http://127.0.0.1:$PORT_UPSTREAM" --shards "$SHARDS" >/dev/null 2>"$work/gate.err" &
gate_pid=$!
pids+=("$gate_pid")

wait_port "$PORT_SINK"; wait_port "$PORT_POSTFIX"; wait_port "$PORT_GATE"
for pid in "$gate_pid" "$sink_pid"; do
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "a server exited at start:" >&2
    cat "$work/gate.err" "$work/sink.out" >&2
    exit 1
  fi
done

# Messages/s of one smtp-source run.
run() { # port, smtp-source options...
  local port=$1; shift
  local start end
  start=$(date +%s.%N)
  smtp-source "$@" -f from@example.com -t to@example.com "127.0.0.1:$port" >/dev/null
  end=$(date +%s.%N)
  echo "$start $end" | awk -v m="$count" '{ printf "%.0f\n", m / ($2 - $1) }'
}

median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

cpu_seconds() { # pid: user+system CPU seconds so far
  awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f\n", ($14 + $15) / hz }' "/proc/$1/stat"
}

echo "smtpgate: $SHARDS shard(s) of $cores cores; smtpgate-sink: $SINK_SHARDS shard(s); $SESSIONS sessions"
printf "%-34s %12s %12s %12s %10s %10s\n" "workload (msgs/s, median of $RUNS)" "smtp-sink" "postfix" "smtpgate" "gate/sink" "gate/pfx"
workloads=(
  "1KiB x 1 rcpt, persistent|-s $SESSIONS -d -l 1024"
  "100KiB x 1 rcpt, persistent|-s $SESSIONS -d -l 102400"
  "1KiB x 50 rcpts, persistent|-s $SESSIONS -d -l 1024 -r 50"
  "1KiB, one connection per message|-s $SESSIONS -l 1024"
)
gate_cpu_before=$(cpu_seconds "$gate_pid")
sink_cpu_before=$(cpu_seconds "$sink_pid")
bench_start=$(date +%s.%N)
for w in "${workloads[@]}"; do
  name=${w%%|*}
  opts=${w#*|}
  count=$MESSAGES
  case "$name" in 100KiB*) count=$((MESSAGES / 10)) ;; esac
  results=()
  for port in "$PORT_SINK" "$PORT_POSTFIX" "$PORT_GATE"; do
    # shellcheck disable=SC2086
    results+=("$(for _ in $(seq 1 "$RUNS"); do run "$port" $opts -m "$count"; done | median)")
  done
  awk -v n="$name" -v a="${results[0]}" -v b="${results[1]}" -v c="${results[2]}" \
    'BEGIN { printf "%-34s %12d %12d %12d %9.2fx %9.2fx\n", n, a, b, c, c / a, c / b }'
done
bench_end=$(date +%s.%N)
gate_cpu=$(echo "$(cpu_seconds "$gate_pid") $gate_cpu_before" | awk '{ print $1 - $2 }')
sink_cpu=$(echo "$(cpu_seconds "$sink_pid") $sink_cpu_before" | awk '{ print $1 - $2 }')
wall=$(echo "$bench_end $bench_start" | awk '{ print $1 - $2 }')
echo
awk -v g="$gate_cpu" -v s="$sink_cpu" -v w="$wall" 'BEGIN {
  printf "CPU over all runs (%.0f s of wall time, all three servers): smtpgate %.1f s, smtpgate-sink %.1f s\n", w, g, s
  printf "The upstream sink used %.0f%% of one core on average: it is not the bottleneck.\n", 100 * s / w
}'
kill -TERM "$sink_pid" 2>/dev/null || true
sleep 0.3
echo "smtpgate-sink summary: $(tail -n 1 "$work/sink.out")"
