#!/usr/bin/env bash
# The collapse and its remedies (docs/results.md, "The small-task collapse and its remedies"):
# on digits-fashion and digit-domains, MoLA-Grad at the paper's adapter scale (alpha 16)
# with BatchNorm over the whole mixed batch (as designed) and with `batchnorm: per-task`,
# in both adapter forms (factorised, and the reference's conv-lora), with task-balanced
# sampling (temperature 2) instead, and uniform beside them; 300 steps each, seeds 0 1 2
# (or the arguments). Runs go to runs/remedy-<data>-<variant>-s<seed> (finished runs are
# kept); one compare per data set, which writes its results page docs/results/remedies-<data>.md.
set -euo pipefail
cd "$(dirname "$0")/.."
seeds=("${@:-0 1 2}")
seeds=(${seeds[@]})
swift build -c release --product mola-train
for data in digits-fashion digit-domains; do
  for seed in "${seeds[@]}"; do
    for variant in uniform mola-grad mola-grad-per-task-bn conv-lora conv-lora-per-task-bn mola-grad-sampling; do
      out=runs/remedy-$data-$variant-s$seed
      [ -f "$out/report.json" ] && continue
      case $variant in
        uniform) cfg=uniform; extra=() ;;
        mola-grad) cfg=mola-grad; extra=(--set alpha=16) ;;
        mola-grad-per-task-bn) cfg=mola-grad; extra=(--set alpha=16 --set batchnorm=per-task) ;;
        conv-lora) cfg=mola-grad; extra=(--set alpha=16 --set adapters.form=conv-lora) ;;
        conv-lora-per-task-bn) cfg=mola-grad; extra=(--set alpha=16 --set adapters.form=conv-lora --set batchnorm=per-task) ;;
        mola-grad-sampling) cfg=mola-grad; extra=(--set alpha=16 --set sampling.temperature=2) ;;
      esac
      .build/release/mola-train run "configs/$data/$cfg.yaml" --fresh --quiet "${extra[@]}" \
        --set epochs=8 --set max_steps=300 --set eval_every=100 \
        --set seed="$seed" --set name="remedy-$data-$variant-s$seed" --set output="$out"
    done
  done
  .build/release/mola-train compare runs/remedy-$data-*-s* --out runs/remedy-$data-compare \
    --page docs/results/remedies-$data.md --title "$data: MoLA-Grad at alpha 16 and its remedies"
done
