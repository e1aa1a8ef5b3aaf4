#!/usr/bin/env bash
# Short fuzz run of every target (CI smoke test). Fails if any target crashes.
#
#   fuzz/smoke.sh              # every target, 10 s each
#   FUZZ_SECONDS=600 fuzz/smoke.sh frame_decode   # one target, longer
#
# cargo-fuzz needs nightly-only rustc flags; on the stable toolchain RUSTC_BOOTSTRAP=1 enables
# them. It must be set from the very first build: a build without it caches a failed compiler
# probe in fuzz/target/.rustc_info.json (we delete that file if it exists from such a run).
set -euo pipefail
cd "$(dirname "$0")"

export RUSTC_BOOTSTRAP=1
# Our own target dir (fuzz/target): never share one with the non-instrumented main build.
unset CARGO_TARGET_DIR
SECONDS_PER_TARGET="${FUZZ_SECONDS:-10}"
CARGO_FUZZ_VERSION=0.13.2

if ! cargo fuzz --version 2>/dev/null | grep -q "$CARGO_FUZZ_VERSION"; then
  echo "installing cargo-fuzz $CARGO_FUZZ_VERSION"
  cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked
fi

if [ -f target/.rustc_info.json ] && ! grep -q RUSTC_BOOTSTRAP target/.rustc_info.json 2>/dev/null; then
  # A stale probe from a run without RUSTC_BOOTSTRAP would make every build fail.
  rm -f target/.rustc_info.json
fi

if [ "$#" -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(cargo fuzz list)
fi

mkdir -p target
status=0
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t"
  seeds=()
  if [ -d "seeds/$t" ]; then seeds=("seeds/$t"); fi
  echo "=== fuzz $t for ${SECONDS_PER_TARGET}s"
  # corpus/$t collects new inputs (git-ignored); seeds/$t are committed starting points.
  log="target/fuzz-$t.log"
  set +e
  cargo fuzz run "$t" "corpus/$t" "${seeds[@]}" -- \
    -max_total_time="$SECONDS_PER_TARGET" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
    >"$log" 2>&1
  rc=$?
  set -e
  grep -E "^(#[0-9]+ +(INITED|DONE)|stat::number_of_executed_units|stat::peak_rss_mb|Done [0-9]+ runs)" "$log" || true
  if [ "$rc" -ne 0 ]; then
    tail -n 60 "$log"
    echo "!!! fuzz target $t failed (exit $rc; log fuzz/$log, inputs in fuzz/artifacts/$t)"
    status=1
  fi
done
exit "$status"
