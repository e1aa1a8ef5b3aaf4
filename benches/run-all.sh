#!/bin/sh
# Runs every benchmark of the workspace and writes benches/RESULTS.md from their reports.
#
#   benches/run-all.sh
#
# Each bench appends markdown tables to the file named by BENCH_REPORT (see
# cursor_connect_benches::emit); this script adds the machine, the commit and the timings.
# Criterion's own output goes to target/bench-logs/. Builds first, so the run time reported
# is the benches' alone (budget: 15 minutes on a 2-core machine).
set -eu
cd "$(dirname "$0")/.."

out="$PWD/benches/RESULTS.md"
logs="$PWD/target/bench-logs"
mkdir -p "$logs"
report=$(mktemp)
trap 'rm -f "$report"' EXIT

echo "building benches..." >&2
# One package per command, exactly as the runs below, so feature unification matches and
# nothing is rebuilt while benches run.
(cd benches && cargo bench -p cursor-connect-benches --no-run) >"$logs/build.log" 2>&1
cargo bench -p cursor-proxy --bench proxy --bench store --no-run >>"$logs/build.log" 2>&1

commit=$(git rev-parse --short=12 HEAD)
if ! git diff --quiet HEAD -- . 2>/dev/null; then
    commit="$commit (with uncommitted changes)"
fi
cpu=$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -n 1)
cores=$(nproc)
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
start=$(date +%s)

export BENCH_REPORT="$report"
run() {
    name=$1
    shift
    echo "running $name..." >&2
    t0=$(date +%s)
    "$@" >"$logs/$name.log" 2>&1 || {
        echo "$name failed; see $logs/$name.log" >&2
        exit 1
    }
    echo "$name: $(($(date +%s) - t0)) s" >>"$logs/times"
}
: >"$logs/times"
(cd benches && run frame cargo bench -p cursor-connect-benches --bench frame)
(cd benches && run classify cargo bench -p cursor-connect-benches --bench classify)
(cd benches && run transport cargo bench -p cursor-connect-benches --bench transport)
run proxy cargo bench -p cursor-proxy --bench proxy
run store cargo bench -p cursor-proxy --bench store

total=$(($(date +%s) - start))
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
{
    echo "# Benchmark results"
    echo
    echo "Written by \`benches/run-all.sh\` (do not edit by hand)."
    echo
    echo "* Machine: $cores cores, $cpu"
    echo "* Commit: $commit"
    echo "* Date: $(date -u '+%Y-%m-%d %H:%M UTC'), $(rustc --version)"
    echo "* Load average before / after: $load_before / $load_after"
    echo "* Run time: $total s for all benches ($(tr '\n' ',' <"$logs/times" | sed 's/,$//; s/,/, /g'))"
    if [ -n "${BENCH_NOTE:-}" ]; then
        echo "* Note: $BENCH_NOTE"
    fi
    echo
    echo "Every figure is a median of interleaved rounds (each round runs every variant of a"
    echo "case once, so load changes hit all of them alike); each table says how many rounds."
    cat "$report"
} >"$out"
echo "wrote $out in $total s" >&2
