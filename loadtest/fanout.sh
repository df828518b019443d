#!/usr/bin/env bash
# End-to-end latency of a fan-out message: X-SMTPAPI `to` of RECIPIENTS addresses with a
# `sub` giving each its own name (one Notify call per recipient), sent by smtpgate-load
# over plain SMTP to a one-shard gateway (relay listener) forwarding to smtpgate-sink on
# 127.0.0.1. Prints smtpgate-load's latency table (from MAIL to the 250) and the sink's
# request count. Everything stops by itself.
#
# Knobs (environment): RECIPIENTS (1000), COUNT (50 messages), CONNECTIONS (1),
# DISTINCT (RECIPIENTS: distinct names; fewer means fewer, larger calls),
# FANOUT (the gateway's --fanout-concurrency, 32), PORT_GATE (12537), PORT_SINK (15061).
set -euo pipefail
RECIPIENTS=${RECIPIENTS:-1000}
COUNT=${COUNT:-50}
CONNECTIONS=${CONNECTIONS:-1}
DISTINCT=${DISTINCT:-$RECIPIENTS}
FANOUT=${FANOUT:-32}
PORT_GATE=${PORT_GATE:-12537}
PORT_SINK=${PORT_SINK:-15061}
cd "$(dirname "$0")/.."

for port in "$PORT_GATE" "$PORT_SINK"; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "127.0.0.1:$port is already in use (set PORT_GATE, PORT_SINK)" >&2
    exit 1
  fi
done
cargo build --release --quiet --bin smtpgate --bin smtpgate-sink --bin smtpgate-load
work=$(mktemp -d /tmp/smtpgate-fanout.XXXXXX)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

./target/release/smtpgate-sink --listen "127.0.0.1:$PORT_SINK" --shards 1 --record \
  --duration 600s >"$work/sink.out" 2>&1 &
sink_pid=$!
pids+=("$sink_pid")
echo "fanout-token" >"$work/token"
SMTPGATE_LOG=warn ./target/release/smtpgate --listen-relay "127.0.0.1:$PORT_GATE" \
  --relay-application FANOUT --relay-token-file "$work/token" --shards 1 \
  --fanout-concurrency "$FANOUT" --upstream "http://127.0.0.1:$PORT_SINK" \
  >/dev/null 2>"$work/gate.err" &
pids+=($!)
for _ in $(seq 1 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$PORT_GATE") 2>/dev/null && break
  sleep 0.1
done

header=$(python3 -c '
import json, sys
n, distinct = int(sys.argv[1]), int(sys.argv[2])
to = ["user%d@example.com" % i for i in range(n)]
names = ["Name %d" % (i % distinct) for i in range(n)]
print("X-SMTPAPI: " + json.dumps({"to": to, "sub": {"%name%": names}}))
' "$RECIPIENTS" "$DISTINCT")

echo "fan-out: $RECIPIENTS recipients, $DISTINCT distinct substitution sets, $COUNT messages, $CONNECTIONS connection(s), --fanout-concurrency $FANOUT, 1 gateway shard"
./target/release/smtpgate-load --target "127.0.0.1:$PORT_GATE" --no-tls -c "$CONNECTIONS" \
  --threads 1 --count "$COUNT" --header "$header"
kill -TERM "$sink_pid"
wait "$sink_pid" 2>/dev/null || true
echo "smtpgate-sink: $(tail -n 1 "$work/sink.out")"
