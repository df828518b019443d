#!/usr/bin/env bash
# Memory under hostile message structure: CONNS (50) connections at once each send a
# message over a structure cap (a 1.5 MB header block: 552 5.3.4; 12,000 header fields
# and 12,000 MIME parts: 550 5.6.0) to a one-shard relay gateway in front of
# smtpgate-sink; prints the gateway's resident memory before and its peak after each
# kind. 127.0.0.1 only; stops by itself.  Usage: loadtest/hostile_rss.sh
set -euo pipefail
cd "$(dirname "$0")/.."
CONNS=${CONNS:-50}
PORT=${PORT:-12699}
SINK=${SINK:-15099}
cargo build --release --quiet --bin smtpgate --bin smtpgate-sink
work=$(mktemp -d)
echo token >"$work/token"
./target/release/smtpgate-sink --listen "127.0.0.1:$SINK" >/dev/null 2>&1 &
sink=$!
SMTPGATE_LOG=warn ./target/release/smtpgate --listen-relay "127.0.0.1:$PORT" \
  --relay-application RSS --relay-token-file "$work/token" \
  --upstream "http://127.0.0.1:$SINK" --shards 1 >/dev/null 2>&1 &
gate=$!
trap 'kill $gate $sink 2>/dev/null; rm -rf "$work"' EXIT
sleep 1
memory() { grep -E "VmRSS|VmHWM" "/proc/$gate/status" | tr -s ' \n' ' '; echo; }
echo "idle: $(memory)"
for kind in header fields parts; do
  python3 loadtest/hostile_messages.py "$PORT" "$CONNS" "$kind"
  echo "  after: $(memory)"
done
