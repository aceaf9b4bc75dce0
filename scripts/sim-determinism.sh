#!/usr/bin/env bash
# Determinism of the simulator over every built-in scenario: each runs once with a
# seed, then `gauntlet reproduce` runs it again and compares the history, every replica's
# events, the nemesis and proxy logs and the verdict byte for byte (its exit code is 1 when a
# replay differs). Prints one line per scenario and exits 1 if any replay differed.
#
#   scripts/sim-determinism.sh [SEED]      (default: 1)
set -euo pipefail

seed=${1:-1}
root=$(git rev-parse --show-toplevel)
cd "$root"
cargo build --release -p harness -p replica -p byzantine 2>&1 | tail -1
gauntlet="$root/target/release/gauntlet"
out=$(mktemp -d "${TMPDIR:-/tmp}/gauntlet-determinism.XXXXXX")
trap 'rm -rf "$out"' EXIT

failed=0
# `gauntlet list` prints the scenarios, one per line, then a blank line and the behaviours.
for scenario in $("$gauntlet" list | awk 'NF == 0 { exit } { print $1 }'); do
    "$gauntlet" run "$scenario" --backend sim --seed "$seed" --out "$out" >/dev/null 2>&1 || true
    run_dir=$(find "$out/$scenario" -mindepth 1 -maxdepth 1 -type d | head -1)
    if summary=$("$gauntlet" reproduce "$run_dir" 2>&1); then
        echo "identical  $scenario: $(grep -o 'replayed exactly[^;]*' <<<"$summary" | head -1)"
    else
        failed=1
        echo "DIFFERENT  $scenario:"
        sed 's/^/    /' <<<"$summary"
    fi
done
exit "$failed"
