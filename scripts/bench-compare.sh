#!/usr/bin/env bash
# Runs the cluster benchmark for a baseline revision and for the working tree, interleaved, so
# both see the same machine. On a shared 2-core VM one run can differ from the next by 15%;
# only runs taken side by side compare.
#
#   scripts/bench-compare.sh REV [ROUNDS]      (defaults: ROUNDS=3, BENCH_SECONDS=6)
#
# BENCH_MODE picks the row compared: the 32-client row of `auth signatures` (default) or
# `auth macs` (a revision from before the bench measured both modes has one table: its row).
#
# The baseline is built in its own worktree and target dir under ${TMPDIR:-/tmp}, so the
# working tree's build is untouched. Prints one line per run and the mean ops/s at 32 clients.
set -euo pipefail

rev=${1:?usage: scripts/bench-compare.sh REV [ROUNDS]}
rounds=${2:-3}
root=$(git rev-parse --show-toplevel)
base="${TMPDIR:-/tmp}/gauntlet-bench-base-$(git rev-parse --short "$rev")"
export BENCH_SECONDS=${BENCH_SECONDS:-6}

if [ ! -d "$base" ]; then
    git -C "$root" worktree add --detach "$base" "$rev" >/dev/null
fi
# The bench moved from `workloads` to `harness` (it measures the proxy too); older revisions
# have it in `workloads`.
bench_package() { if [ -f "$1/harness/benches/cluster.rs" ]; then echo harness; else echo workloads; fi; }
build() { (cd "$1" && CARGO_TARGET_DIR="$1/target" cargo bench -p "$(bench_package "$1")" --bench cluster --no-run 2>&1 | tail -1); }
echo "building the baseline ($rev) in $base"
build "$base"
echo "building the working tree"
build "$root"

# Every working-tree run rewrites results/bench/cluster.json; a comparison is not a figure to
# commit, so the file is put back as it was when the script ends.
figures="$root/results/bench/cluster.json"
saved=$(mktemp)
if [ -f "$figures" ]; then
    cp "$figures" "$saved"
    trap 'mv "$saved" "$figures"' EXIT
else
    trap 'rm -f "$figures" "$saved"' EXIT
fi

mode=${BENCH_MODE:-signatures}
run() {
    (cd "$1" && CARGO_TARGET_DIR="$1/target" cargo bench -p "$(bench_package "$1")" --bench cluster 2>/dev/null |
        awk -v want="$mode:" '/^auth / { section = $2 } /^unreplicated/ { section = "-" }
            $1 == 32 && (section == "" || section == want) { print; exit }')
}
declare -A total=([base]=0 [tree]=0)
for round in $(seq 1 "$rounds"); do
    for side in base tree; do
        dir=$root; [ "$side" = base ] && dir=$base
        row=$(run "$dir")
        echo "round $round $side: $row"
        total[$side]=$(awk -v t="${total[$side]}" -v r="$row" 'BEGIN { split(r, f, " "); print t + f[3] }')
    done
done
awk -v b="${total[base]}" -v t="${total[tree]}" -v n="$rounds" 'BEGIN {
    printf "mean ops/s at 32 clients: baseline %.0f, working tree %.0f, ratio %.2f\n", b / n, t / n, t / b }'
