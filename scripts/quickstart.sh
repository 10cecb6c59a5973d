#!/usr/bin/env bash
# The main job, end to end on a fresh machine: installs what is missing, builds release and
# runs pipelines/quickstart.yaml (ingest digits-fashion, train uniform and MoLA-Grad, compare).
# A second run does nothing and says so. Extra arguments go to `mola-pipeline run`
# (e.g. --set quickstart.epochs=2).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
swift build -c release
.build/release/mola-pipeline run pipelines/quickstart.yaml "$@"
echo "compare report: $(pwd)/runs/quickstart/compare/compare.md"
