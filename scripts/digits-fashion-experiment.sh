#!/usr/bin/env bash
# The real experiment of the README: every method on digits-fashion (3 epochs each), then
# the compare table. Seeds as arguments (default: 0); METHODS="uniform mola-grad" to run
# fewer methods. Each run goes to runs/df-<method>-s<seed>; finished runs are kept.
# MOLA_TRAIN=path runs that binary instead of building (a copy keeps a long experiment
# on one build while the tree changes).
set -euo pipefail
cd "$(dirname "$0")/.."
seeds=("${@:-0}")
if [ -z "${MOLA_TRAIN:-}" ]; then swift build -c release --product mola-train; fi
train="${MOLA_TRAIN:-.build/release/mola-train}"
for seed in "${seeds[@]}"; do
  for method in ${METHODS:-uniform single-task mola-grad mola-router mmoe}; do
    if [ -f "runs/df-$method-s$seed/report.json" ]; then continue; fi
    "$train" run "configs/digits-fashion/$method.yaml" --fresh --quiet \
      --set seed="$seed" --set name="df-$method-s$seed" --set output="runs/df-$method-s$seed"
  done
done
"$train" compare runs/df-*-s* --out runs/digits-fashion-compare
