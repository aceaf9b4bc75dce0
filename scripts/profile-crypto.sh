#!/usr/bin/env bash
# Where the CPU goes in the cluster benchmark's 32-client phase: a system-wide `perf` profile
# split by process, with the share spent in ed25519 arithmetic (curve25519-dalek, ed25519-dalek,
# SHA-512, our cofactored checks) and the share the CPUs sat idle.
#
#   scripts/profile-crypto.sh [AUTH]   (AUTH: signatures or macs, default macs; needs `perf`
#                                       and permission to profile every CPU)
#
# Multiply a process's share by the bench's CPU-per-operation columns to get microseconds of
# signature work per operation.
set -euo pipefail

command -v perf >/dev/null || { echo "error: perf is not installed" >&2; exit 1; }
root=$(git rev-parse --show-toplevel)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
bench="$work/bench.txt"
auth=${1:-macs}

cd "$root"
cargo bench -p harness --bench cluster --no-run 2>&1 | tail -1
BENCH_SECONDS=${BENCH_SECONDS:-10} cargo bench -p harness --bench cluster >"$bench" 2>&1 &
bench_pid=$!
# The bench runs the baseline, then each mode; within a mode the 1-client row is printed when
# its phase ends, and the 32-client phase starts right after.
until awk -v mode="auth $auth:" 'index($0, mode) == 1 { seen = 1 } seen && /^ *1 / { found = 1 }
        END { exit !found }' "$bench" 2>/dev/null; do
    kill -0 "$bench_pid" 2>/dev/null || { cat "$bench" >&2; exit 1; }
    sleep 0.5
done
sleep 2
perf record -a -F 999 -o "$work/perf.data" -- sleep 4 >/dev/null 2>&1
wait "$bench_pid"
awk -v mode="auth $auth:" 'index($0, mode) == 1 { seen = 1; print } seen && /^ *(clients|32) / { print }' "$bench" | head -3

perf report -i "$work/perf.data" --no-children --sort comm,sym --stdio -g none 2>/dev/null |
    awk '
    /^ *[0-9.]+%/ {
        share = $1 + 0; comm = $2
        if (comm ~ /^(replica|tokio)/) comm = "replicas"
        else if (comm ~ /^cluster-/) comm = "bench client"
        else if (comm == "swapper") comm = "idle"
        else comm = "other"
        total[comm] += share
        if ($0 ~ /curve25519|ed25519|subtle::|sha512|cofactored/) crypto[comm] += share
    }
    END {
        for (c in total)
            printf "%-13s %6.2f%% of CPU time, ed25519 arithmetic %6.2f%% (%.0f%% of its own)\n",
                c, total[c], crypto[c], (total[c] > 0 ? 100 * crypto[c] / total[c] : 0)
    }' | sort
