#!/usr/bin/env bash
# Aardvark's measure for the Byzantine clients: the honest clients' completed operations per
# second during the workload phase (the attack window) of each `byzc-*` scenario, beside the
# same scenario without its Byzantine client (its `clients:` section removed and one workload
# client fewer, so the same honest clients run in both).
#
#   scripts/byzc-throughput.sh [BACKEND] [SEEDS] [SCENARIO...]
#       (defaults: real 1, every byzc-* scenario)
#
# Prints one line per scenario and seed: both verdicts, both figures and their ratio. Runs go
# to a temporary folder, removed at the end unless KEEP=1.
set -euo pipefail

backend=${1:-real}
seeds=${2:-1}
shift $(($# < 2 ? $# : 2))
root=$(git rev-parse --show-toplevel)
cd "$root"
cargo build --release -p harness -p replica -p byzantine 2>&1 | tail -1
gauntlet="$root/target/release/gauntlet"
scenarios=("$@")
if [ ${#scenarios[@]} -eq 0 ]; then
    mapfile -t scenarios < <("$gauntlet" list | awk '$1 ~ /^byzc-/ { print $1 }')
fi
out=$(mktemp -d "${TMPDIR:-/tmp}/gauntlet-byzc.XXXXXX")
if [ "${KEEP:-0}" = 1 ]; then
    echo "runs kept in $out"
else
    trap 'rm -rf "$out"' EXIT
fi

# The scenario text without its `clients:` section, one workload client fewer, renamed.
baseline_of() {
    awk '
        /^clients:/ { skip = 1; next }
        skip && /^[^ #]/ { skip = 0 }
        skip { next }
        /^name:/ { print $0 "-baseline"; next }
        /^  clients: [0-9]+/ { print "  clients: " ($2 - 1); next }
        { print }
    ' "$1"
}

# Honest completions per second within the workload phase of run folder $1.
ok_per_s() {
    local dir=$1 start end
    start=$(grep -o '"workload_start_ns": [0-9]*' "$dir/timeline.json" | grep -o '[0-9]*$')
    end=$(grep -o '"workload_end_ns": [0-9]*' "$dir/timeline.json" | grep -o '[0-9]*$')
    awk -v start="$start" -v end="$end" '
        /"type":"ok"/ {
            match($0, /"time_ns":[0-9]+/)
            t = substr($0, RSTART + 10, RLENGTH - 10) + 0
            if (t >= start && t <= end) ok++
        }
        END { printf "%.1f", ok / ((end - start) / 1e9) }
    ' "$dir/history.jsonl"
}

outcome() { grep -o '"outcome": "[a-z]*"' "$1/verdict.json" | head -1 | grep -o '[a-z]*"$' | tr -d '"'; }

printf '%-24s %-4s %4s  %-10s %10s  %-10s %10s  %6s\n' scenario back seed attacked "ok/s" baseline "ok/s" ratio
for scenario in "${scenarios[@]}"; do
    for seed in $(seq 1 "$seeds"); do
        attacked="$out/$scenario-$seed"
        "$gauntlet" run "$scenario" --backend "$backend" --seed "$seed" --run-dir "$attacked" \
            >"$attacked.log" 2>&1 || true
        baseline_of "$attacked/scenario.yaml" >"$out/$scenario-baseline.yaml"
        plain="$out/$scenario-$seed-baseline"
        "$gauntlet" run "$out/$scenario-baseline.yaml" --backend "$backend" --seed "$seed" \
            --run-dir "$plain" >"$plain.log" 2>&1 || true
        a=$(ok_per_s "$attacked")
        b=$(ok_per_s "$plain")
        ratio=$(awk -v a="$a" -v b="$b" 'BEGIN { if (b > 0) printf "%.3f", a / b; else print "-" }')
        printf '%-24s %-4s %4s  %-10s %10s  %-10s %10s  %6s\n' "$scenario" "$backend" "$seed" \
            "$(outcome "$attacked")" "$a" "$(outcome "$plain")" "$b" "$ratio"
    done
done
