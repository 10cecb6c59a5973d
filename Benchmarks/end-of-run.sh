#!/usr/bin/env bash
# What the end of a run costs against its training: a 60-step MoLA-Grad ResNet-18 (ImageNet
# stem) on digits-fashion, then the final evaluation of the best checkpoint on validation and
# test, the spectra of every adapted layer and the reports. Prints the wall time, the
# training time (validation included) and the rest. Needs the digits-fashion dataset
# (mola-train ingests it on first use). Build first: swift build -c release
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
start=$(date +%s.%N)
.build/release/mola-train run configs/digits-fashion/mola-grad.yaml --quiet --fresh --set backbone.name=resnet18 \
  --set backbone.stem=imagenet --set max_steps=60 --set output="$out/run"
end=$(date +%s.%N)
python3 - "$out/run/report.json" "$start" "$end" <<'PY'
import json, sys
train = json.load(open(sys.argv[1]))["train_seconds"]
wall = float(sys.argv[3]) - float(sys.argv[2])
print(json.dumps({"wall_s": round(wall, 1), "train_s": round(train, 1), "rest_s": round(wall - train, 1)}))
PY
