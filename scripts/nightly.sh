#!/usr/bin/env bash
# Nightly campaign: build the release binaries, run the `nightly` suite first in simulation
# over many seeds (fast, and every finding replays byte for byte from its seed), then on real
# processes within a time budget; keep every result under results/ (results/latest points at
# the last campaign), and exit with the worse of the two codes: 0 all as expected, 1 an
# unexpected outcome, 2 a run could not be carried out.
#
# Usage: scripts/nightly.sh [BUDGET]            e.g. scripts/nightly.sh 20m
# Environment (all optional):
#   GAUNTLET_BUDGET     budget when no argument is given (default 60m)
#   GAUNTLET_SHARD      K/N: run only this shard of the matrix (default 1/1)
#   GAUNTLET_SEEDS      seeds per scenario (default 1)
#   GAUNTLET_SEED_FROM  first seed (default: today's date as YYYYMMDD, so each night differs
#                       and every shard of one night agrees)
#   GAUNTLET_JOBS       runs at a time (default 1: runs are timing-sensitive)
#   GAUNTLET_RESULTS    results root (default results)
#   GAUNTLET_SIM_SEEDS  seeds per scenario of the simulated campaign (default 50; 0 skips it)
#   GAUNTLET_SIM_BUDGET its budget per authentication mode (default 10m)
#   GAUNTLET_SIM_AUTH   the authentication modes it runs, one campaign each (default
#                       "signatures macs": both must pass every scenario)
#   GAUNTLET_SIM_JOBS   its runs at a time (default: every core; a simulated run uses one)
#   GAUNTLET_TRIAGE_MAX simulated failures per campaign shrunk and re-run on real processes
#                       (scripts/triage.sh; default 3)
set -euo pipefail
cd "$(dirname "$0")/.."

budget="${1:-${GAUNTLET_BUDGET:-60m}}"
shard="${GAUNTLET_SHARD:-1/1}"
seeds="${GAUNTLET_SEEDS:-1}"
seed_from="${GAUNTLET_SEED_FROM:-$(date -u +%Y%m%d)}"
jobs="${GAUNTLET_JOBS:-1}"
results="${GAUNTLET_RESULTS:-results}"
sim_seeds="${GAUNTLET_SIM_SEEDS:-50}"
sim_budget="${GAUNTLET_SIM_BUDGET:-10m}"
sim_auth="${GAUNTLET_SIM_AUTH:-signatures macs}"
sim_jobs="${GAUNTLET_SIM_JOBS:-$(nproc)}"

echo "nightly: budget $budget, shard $shard, $seeds seed(s) from $seed_from, $jobs job(s), results in $results"
# gauntlet, replica and byzantine-replica must sit side by side: build every binary at once.
cargo build --release --workspace --bins

set +e
sim_code=0
if [ "$sim_seeds" -gt 0 ]; then
  for auth in $sim_auth; do
    target/release/gauntlet campaign --backend sim --suite nightly --auth "$auth" \
      --budget "$sim_budget" --seeds "$sim_seeds" --seed-from "$seed_from" \
      --jobs "$sim_jobs" --shard "$shard" --out "$results"
    mode_code=$?
    echo "nightly: simulated campaign (auth $auth) exited $mode_code; index: $results/latest/index.html"
    if [ "$mode_code" -eq 1 ]; then
      # Each failure shrunk in simulation, then re-run on real processes: triage.md.
      scripts/triage.sh "$results/latest" "${GAUNTLET_TRIAGE_MAX:-3}"
    fi
    sim_code=$((mode_code > sim_code ? mode_code : sim_code))
  done
fi
target/release/gauntlet campaign --suite nightly \
  --budget "$budget" --seeds "$seeds" --seed-from "$seed_from" \
  --jobs "$jobs" --shard "$shard" --out "$results"
code=$?
set -e

echo "nightly: campaign exited $code; index: $results/latest/index.html, JUnit: $results/latest/junit.xml"
exit $((sim_code > code ? sim_code : code))
