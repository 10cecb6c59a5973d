#!/usr/bin/env bash
# The real experiment of the README: every method on digits-fashion (3 epochs each), then
# the compare table. Seeds as arguments (default: 0); METHODS="uniform mola-grad" to run
# fewer methods. Each run goes to runs/df-<method>-s<seed>; finished runs are kept.
set -euo pipefail
cd "$(dirname "$0")/.."
seeds=("${@:-0}")
swift build -c release --product mola-train
for seed in "${seeds[@]}"; do
  for method in ${METHODS:-uniform single-task mola-grad mola-router mmoe}; do
    if [ -f "runs/df-$method-s$seed/report.json" ]; then continue; fi
    .build/release/mola-train run "configs/digits-fashion/$method.yaml" --fresh --quiet \
      --set seed="$seed" --set name="df-$method-s$seed" --set output="runs/df-$method-s$seed"
  done
done
.build/release/mola-train compare runs/df-*-s* --out runs/digits-fashion-compare
