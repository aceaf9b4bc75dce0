#!/usr/bin/env bash
# The simulator's speed, measured side by side on this machine:
#   1. one campaign (suite x seeds) on real processes, then the same one in simulation:
#      wall time of each and the ratio;
#   2. runs per minute in simulation for `smoke` and for the `byz-*` scenarios;
#   3. virtual seconds simulated per wall second for the default scenario.
#
#   scripts/sim-speed.sh [SUITE] [SEEDS] [JOBS] [AUTH]   (defaults: nightly 1 2 signatures)
#
# AUTH (signatures or macs) is passed to every run as --auth.
#
# Runs go to a temporary folder, which is removed at the end.
set -euo pipefail

suite=${1:-nightly}
seeds=${2:-1}
jobs=${3:-2}
auth=${4:-signatures}
root=$(git rev-parse --show-toplevel)
cd "$root"
cargo build --release -p harness -p replica -p byzantine 2>&1 | tail -1
gauntlet="$root/target/release/gauntlet"
out=$(mktemp -d "${TMPDIR:-/tmp}/gauntlet-sim-speed.XXXXXX")
trap 'rm -rf "$out"' EXIT

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

campaign() {
    local backend=$1
    shift
    local start end
    start=$(now)
    "$gauntlet" campaign --backend "$backend" --seeds "$seeds" --jobs "$jobs" --auth "$auth" \
        --out "$out/$backend" "$@" >"$out/$backend.log" 2>&1 || true
    end=$(now)
    elapsed "$start" "$end"
}

echo "campaign --suite $suite --seeds $seeds --jobs $jobs --auth $auth"
real_s=$(campaign real --suite "$suite")
echo "  real processes: $real_s s  ($(tail -1 "$out/real.log"))"
sim_s=$(campaign sim --suite "$suite")
echo "  simulation:     $sim_s s  ($(tail -1 "$out/sim.log"))"
awk -v r="$real_s" -v s="$sim_s" 'BEGIN { printf "  ratio: simulation is %.1fx faster in wall time\n", r / s }'

per_minute() {
    local label=$1
    shift
    local start end runs
    start=$(now)
    "$gauntlet" campaign --backend sim --seeds 5 --jobs "$jobs" --auth "$auth" --out "$out/rate-$label" "$@" \
        >/dev/null 2>&1 || true
    end=$(now)
    runs=$(find "$out/rate-$label" -name verdict.json | wc -l)
    awk -v n="$runs" -v a="$start" -v b="$end" -v l="$label" \
        'BEGIN { printf "  %-8s %d runs in %.1f s: %.0f runs per minute\n", l, n, b - a, n * 60 / (b - a) }'
}
echo "simulated runs per minute (5 seeds each, --jobs $jobs)"
per_minute smoke smoke
mapfile -t byz < <("$gauntlet" list | awk 'NF == 0 { exit } $1 ~ /^byz-/ && $1 != "byz-twin" { print $1 }')
per_minute byz-* "${byz[@]}"

echo "default scenario, one run, one core"
start=$(now)
"$gauntlet" run default --backend sim --auth "$auth" --seed 1 --out "$out/default" >/dev/null 2>&1 || true
end=$(now)
timeline=$(find "$out/default" -name timeline.json | head -1)
virtual_ns=$(grep -o '"probe_end_ns": [0-9]*' "$timeline" | grep -o '[0-9]*$')
awk -v v="$virtual_ns" -v a="$start" -v b="$end" \
    'BEGIN { printf "  %.1f virtual s in %.1f wall s: %.1f virtual s per wall s\n", v / 1e9, b - a, v / 1e9 / (b - a) }'
