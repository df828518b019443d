#!/usr/bin/env bash
# The upstream fault test at length: CLIENTS (8) clients each send MESSAGES (500)
# distinct messages through one gateway while the upstream cycles every 40 ms through
# UNAVAILABLE, RESOURCE_EXHAUSTED, INTERNAL and answers later than the 300 ms deadline;
# clients retry on 4xx. Prints messages, fault phases, tries, upstream calls and the
# check (nothing lost, every message's calls under one idempotency key). 127.0.0.1
# only; stops by itself.  Usage: loadtest/faults.sh
set -euo pipefail
cd "$(dirname "$0")/.."
SMTPGATE_FAULT_CLIENTS=${CLIENTS:-8} SMTPGATE_FAULT_MESSAGES=${MESSAGES:-500} \
  cargo test --release --quiet --test faults -- --nocapture 2>&1 | grep -E "^faults:|test result|panicked"
