#!/usr/bin/env bash
# Triage of a simulated campaign's failures: every run that was not as expected is shrunk in
# simulation (`gauntlet shrink`) and the shrunk scenario is re-run on real processes
# (`gauntlet reproduce --backend real`). Writes CAMPAIGN_DIR/triage.md, one row per failure with
# the original run, the shrunk scenario and its run, and the real re-run, and prints it.
#
#   scripts/triage.sh CAMPAIGN_DIR [MAX]     (MAX failures triaged, default 5)
#
# Environment: GAUNTLET (default target/release/gauntlet), TRIAGE_BUDGET_RUNS (shrink runs per
# failure, default 80). Exits 0 when there was nothing to triage or every step ran, 2 otherwise.
set -euo pipefail

campaign=${1:?usage: scripts/triage.sh CAMPAIGN_DIR [MAX]}
max=${2:-5}
gauntlet=${GAUNTLET:-target/release/gauntlet}
budget_runs=${TRIAGE_BUDGET_RUNS:-80}
[ -f "$campaign/campaign.json" ] || { echo "error: $campaign/campaign.json not found" >&2; exit 2; }

mapfile -t failures < <(python3 - "$campaign/campaign.json" "$max" <<'EOF'
import json, sys
campaign = json.load(open(sys.argv[1]))
if campaign.get("backend") != "sim":
    sys.exit(0)
unexpected = [r for r in campaign["records"] if r.get("status") == "unexpected" and r.get("run_dir")]
for record in unexpected[: int(sys.argv[2])]:
    print(record["run_dir"])
EOF
)

report="$campaign/triage.md"
{
    echo "# Triage of $(basename "$campaign")"
    echo
    if [ "${#failures[@]}" -eq 0 ]; then
        echo "Nothing to triage: no simulated run was unexpected."
    else
        echo "| original run | shrunk scenario | its run | re-run on real processes |"
        echo "|---|---|---|---|"
    fi
} >"$report"

status=0
for run in "${failures[@]}"; do
    shrink_dir="$run-shrink"
    shrunk="(shrink failed)"
    real="(not run)"
    if "$gauntlet" shrink "$run" --budget-runs "$budget_runs" --out "$shrink_dir" >"$run.shrink.log" 2>&1 \
        || [ -f "$shrink_dir/shrunk.yaml" ]; then
        shrunk=$(tail -1 "$run.shrink.log")
        if "$gauntlet" reproduce --backend real --run-dir "$shrink_dir/real" "$shrink_dir/run" >"$run.real.log" 2>&1; then
            real="shows on real processes: $(tail -1 "$run.real.log")"
        else
            real="$(tail -1 "$run.real.log")"
        fi
    else
        shrunk="(shrink failed: $(tail -1 "$run.shrink.log"))"
        status=2
    fi
    echo "| \`$run\` | \`$shrink_dir/shrunk.yaml\`: $shrunk | \`$shrink_dir/run\` | $real |" >>"$report"
done
cat "$report"
# The campaign's index links each failure's shrunk scenario, its run and the real re-run.
"$gauntlet" index "$campaign" >/dev/null || status=2
exit "$status"
