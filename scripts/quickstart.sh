#!/usr/bin/env bash
# The main job, end to end on a fresh machine: installs what is missing, builds release and
# prepares the quick-start dataset (MNIST-5k, optdigits and Fashion-MNIST as three tasks).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
swift build -c release --product mola-prep
.build/release/mola-prep ingest data-manifests/digits-fashion.yaml
.build/release/mola-prep inspect datasets/digits-fashion
