#!/usr/bin/env bash
# The test command: installs what is missing, builds release (numeric code is slow in
# debug builds), runs every test, then the quick-start pipeline end to end with short
# training (--set quickstart.max_steps) and checks a rerun is a no-op. CI runs exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
swift build -c release
swift test -c release "$@"

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
