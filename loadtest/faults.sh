#!/usr/bin/env bash
# The upstream fault test at length: CLIENTS (8) clients each send MESSAGES (2000)
# distinct messages through one gateway while smtpgate-sink cycles (1.5 s a cycle)
# through error storms (UNAVAILABLE, RESOURCE_EXHAUSTED, INTERNAL), answers later than
# the 300 ms deadline, GOAWAY / TCP reset / close with calls in flight, and the port
# refused then served again; clients retry on 4xx. Prints messages, fault phases,
# connections cut, tries and refusals by reply, upstream calls, and the check (nothing
# lost, every message's calls under one idempotency key, none shared; 250 again right
# after the faults stop). 127.0.0.1 only; stops by itself.  Usage: loadtest/faults.sh
set -euo pipefail
cd "$(dirname "$0")/.."
SMTPGATE_FAULT_CLIENTS=${CLIENTS:-8} SMTPGATE_FAULT_MESSAGES=${MESSAGES:-2000} \
  cargo test --release --quiet --test faults -- --nocapture 2>&1 | grep -E "^faults:|test result|panicked"
