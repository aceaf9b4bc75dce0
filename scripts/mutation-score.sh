#!/usr/bin/env bash
# The mutation score: who tests the tester. Plants each bug cargo-mutants generates in the
# protocol code (replica/src/core/, verify.rs, service.rs, node/wal.rs, the client's reply
# counting), one at a time in a worktree under target/, and judges each build with a simulated
# --fail-fast campaign over the nightly suite. Writes results/mutants/<time>/mutants.md
# (missed mutants first), mutants.json and mutants.jsonl (as it goes).
#
#   scripts/mutation-score.sh [GAUNTLET MUTANTS ARGS...]
#   scripts/mutation-score.sh --sample 20 --budget 5m       # a seeded sample of 20
#   scripts/mutation-score.sh --file replica/src/verify.rs   # one file
#
# Every mutant costs an incremental release build (tens of seconds) plus up to --budget of
# campaign; the full set takes hours. Installs cargo-mutants (from crates.io) when missing.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! cargo mutants --version >/dev/null 2>&1; then
    echo "installing cargo-mutants"
    cargo install --locked cargo-mutants
fi
if ! command -v patch >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq patch >/dev/null
    else
        echo "error: the mutation score plants mutants with patch(1); install it" >&2
        exit 2
    fi
fi
if ! git diff --quiet HEAD -- replica; then
    echo "note: uncommitted changes under replica/ are not scored; the worktree is HEAD" >&2
fi
exec cargo run --release -p harness --bin gauntlet -- mutants "$@"
