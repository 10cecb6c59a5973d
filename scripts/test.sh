#!/usr/bin/env bash
# The test command: installs what is missing, builds release (numeric code is slow in
# debug builds), runs every test, then the quick-start pipeline end to end with short
# training (--set quickstart.max_steps) and checks a rerun is a no-op. CI runs exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-tests.sh
swift build -c release
swift test -c release "$@"

# Fuzzing is seeded by the commit: reproducible for one commit, new ground for the next.
echo "== fuzzing every reader (kept findings replayed, then 120 s of mutations of real files)"
.build/release/mola-fuzz --replay Tests/Fixtures/fuzz-regressions
seeds=$(mktemp -d)
python3 scripts/make-damaged-files.py "$seeds" >/dev/null
.build/release/mola-fuzz "$seeds" --seconds "${MOLA_FUZZ_SECONDS:-120}" --out "$seeds/out" --seed "$((16#$(git rev-parse --short=8 HEAD 2>/dev/null || echo 1)))" \
  || { echo "fuzz findings (add each to Tests/Fixtures/fuzz-regressions with its fix):"; ls "$seeds/out/findings"; exit 1; }
rm -rf "$seeds"

echo "== quick-start pipeline, end to end (40 steps per model)"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
git ls-files -z | xargs -0 -I{} cp --parents {} "$work"   # a clean copy: no runs/ or locks
ln -s "$(pwd)/.build" "$work/.build"
(cd "$work" && .build/release/mola-pipeline run pipelines/quickstart.yaml --set quickstart.max_steps=40)
test -f "$work/runs/quickstart/compare/compare.md"
cat "$work/runs/quickstart/compare/compare.md"
second=$(cd "$work" && .build/release/mola-pipeline run pipelines/quickstart.yaml --set quickstart.max_steps=40)
echo "$second"
echo "$second" | grep -q "everything is up to date"
echo "quick-start pipeline: ok"
