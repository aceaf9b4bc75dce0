#!/usr/bin/env bash
# Fuzzes the replica's whole inbound path (framing, decoding, authentication, the core) with
# mutated real frames of every message kind, from one seed (see replica/src/fuzz/).
#
#   scripts/fuzz-inbound.sh [FRAMES] [SEED] [AUTH]  (defaults: 10000000 frames, seed 1, signatures)
#
# AUTH is the cluster's authentication, signatures or macs (the corpus and the checks use it).
#
# Builds `fuzz-inbound` in release with overflow checks and debug assertions on, as cargo-fuzz
# builds its targets, in a target directory of its own (so the workspace's ordinary release
# build is left alone), runs it and prints its report and the wall time. Exits 1 if anything
# panicked; a crash at frame I reproduces with the same SEED and I+1 frames.
set -euo pipefail
frames=${1:-10000000}
seed=${2:-1}
auth=${3:-signatures}
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
target="${CARGO_TARGET_DIR:-$root/target}/fuzz-inbound"

CARGO_PROFILE_RELEASE_OVERFLOW_CHECKS=true CARGO_PROFILE_RELEASE_DEBUG_ASSERTIONS=true \
    cargo build --release -p replica --bin fuzz-inbound --target-dir "$target" 2>&1 | tail -1

start=$(date +%s)
status=0
"$target/release/fuzz-inbound" --seed "$seed" --frames "$frames" --auth "$auth" || status=$?
echo "wall time: $(( $(date +%s) - start )) s (corpus, fuzzing and report)"
exit "$status"
