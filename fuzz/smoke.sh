#!/usr/bin/env bash
# A short run of every fuzz target (FUZZ_SECONDS each, default 8), seeded from the repository's
# own examples, rules and outputs. Nightly with AddressSanitizer when a nightly toolchain is
# installed; otherwise stable with `-s none`; if neither builds, it says so and exits 0 only
# outside CI. A crash leaves its input under fuzz/artifacts/ and fails the run.
set -euo pipefail
cd "$(dirname "$0")"
secs=${FUZZ_SECONDS:-8}
targets=(load_report rules config waivers baseline render snapshot)

if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  run=(cargo +nightly fuzz run)
  echo "fuzz: nightly with AddressSanitizer, ${secs} s per target"
else
  run=(cargo fuzz run -s none)
  echo "fuzz: no nightly toolchain; stable without a sanitizer, ${secs} s per target"
fi

# Seeds: what the repository already holds, copied so that the corpus stays out of it.
seeds=$(mktemp -d)
trap 'rm -rf "$seeds"' EXIT
mkdir -p "$seeds"/{load_report,rules,config,waivers,baseline,render,snapshot}
cp ../examples/*.json ../examples/*.csv "$seeds/load_report/"
cp ../examples/*.json "$seeds/render/"
cp ../fuzz/seeds/snapshot/* "$seeds/snapshot/"
cp ../rules/*.yaml "$seeds/rules/"
cp ../examples/orgaudit.yaml "$seeds/config/"
cp ../examples/waivers.yaml "$seeds/waivers/"
sed -n '/^---$/,$p' ../tests/snapshots/formats__acme.json.snap | tail -n +2 | sed -n '/^---$/,$p' | tail -n +2 > "$seeds/baseline/acme.json"

for t in "${targets[@]}"; do
  mkdir -p "corpus/$t"
  if ! "${run[@]}" "$t" "corpus/$t" "$seeds/$t" -- -max_total_time="$secs" -rss_limit_mb=4096 -timeout=20; then
    if [ -d "artifacts/$t" ] && [ -n "$(ls -A "artifacts/$t" 2>/dev/null)" ]; then
      echo "fuzz: $t found a crash: fuzz/artifacts/$t" >&2
      exit 1
    fi
    if [ "${CI:-}" = "true" ]; then
      echo "fuzz: $t could not run" >&2
      exit 1
    fi
    echo "fuzz: SKIPPED $t: cargo fuzz could not build or run it here" >&2
  fi
done
echo "fuzz: every target ran ${secs} s without a crash"
