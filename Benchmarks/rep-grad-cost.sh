#!/usr/bin/env bash
# What `rep_grad` saves: train images/s of gradient combiners on the shared parameters
# (one forward and backward per task) against the same combiners on the shared
# representation (one of each), with the plain summed step beside them, on the
# digits-fashion MoLA-Grad config (resnet-mini, 3 tasks) and with ResNet-18. Rounds
# alternate the variants; each variant's best round is kept. Prints one JSON object per
# variant and round, then the summary. Needs the digits-fashion dataset (mola-train
# ingests it on first use). Build first: swift build -c release
set -euo pipefail
cd "$(dirname "$0")/.."
T=.build/release/mola-train
ROUNDS=${ROUNDS:-3}
out=$(mktemp)
trap 'rm -f "$out"' EXIT
measure() {  # backbone steps weighting
  $T bench configs/digits-fashion/mola-grad.yaml --threads 2 --rounds 1 --steps "$2" --set "backbone.name=$1" ${3:+--set "weighting=$3"} | tee -a "$out"
}
for round in $(seq "$ROUNDS"); do
  for w in "" pcgrad "{name: pcgrad, rep_grad: true}" mgda "{name: mgda, rep_grad: true}" nash-mtl "{name: nash-mtl, rep_grad: true}"; do
    measure resnet-mini 10 "$w"
  done
  for w in "" pcgrad "{name: pcgrad, rep_grad: true}"; do measure resnet18 2 "$w"; done
done
python3 - "$out" <<'PY'
import json, sys
best = {}
for line in open(sys.argv[1]):
    r = json.loads(line)
    key = (r["backbone"], r["weighting"])
    best[key] = max(best.get(key, 0), r["train_images_per_s"])
print("\n| backbone | weighting | images/s (best) | rep_grad speed-up |\n|---|---|---:|---:|")
for (backbone, w), v in best.items():
    full = best.get((backbone, w.removesuffix(" (rep_grad)")))
    ratio = f"{v / full:.2f}x" if w.endswith("(rep_grad)") and full else ""
    print(f"| {backbone} | {w} | {v:.1f} | {ratio} |")
PY
