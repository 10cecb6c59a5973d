#!/usr/bin/env bash
# How far two MPI ranks drift from one process, step by step: the data-parallel tests'
# tiny net (resnet-mini 8/12/16 on MNIST-5k and optdigits at 12×12, batch 32, sync batch
# norm) trained for each step count in one process and on two ranks, one thread each, with
# uniform, MoLA-Grad and every balancer; prints the largest difference of any tensor
# relative to its scale, as DataParallelTests measures it. MOLA_WINOGRAD picks the path.
#
#   scripts/rank-divergence.sh 2 3 8        # after `swift build -c release`; needs mpirun, numpy
set -euo pipefail
cd "$(dirname "$0")/.."
steps=("${@:-2}")
bin=.build/release
work=$(mktemp -d /tmp/rank-divergence.XXXX)
trap 'rm -rf "$work"' EXIT
python=$(command -v python3)

cp Tests/Fixtures/tiny-digits.yaml "$work/tiny.yaml"
"$bin/mola-prep" ingest "$work/tiny.yaml" --out "$work/data" --quiet > /dev/null

# Largest |a − b| / (max |a| + 1e-3) over the tensors of two safetensors files.
difference() {
    "$python" - "$1" "$2" <<'EOF'
import json, struct, sys
import numpy as np
def load(path):
    b = open(path, 'rb').read(); n = struct.unpack('<Q', b[:8])[0]; h = json.loads(b[8:8 + n]); d = b[8 + n:]
    return {k: np.frombuffer(d[v['data_offsets'][0]:v['data_offsets'][1]], dtype=np.float32) for k, v in h.items() if k != '__metadata__'}
a, b = load(sys.argv[1]), load(sys.argv[2])
print('%.2g' % max(float(np.max(np.abs(a[k] - b[k])) / (np.max(np.abs(a[k])) + 1e-3)) for k in a))
EOF
}

# One comparison: method, extra config lines, steps.
compare() {
    local dir; dir=$(mktemp -d "$work/run.XXXX")
    for out in one two; do
        printf '%s\n' "name: tiny" "data: {dataset: $work/data}" "method: $1" \
            "backbone: {name: resnet-mini, stem_width: 8, widths: [8, 12, 16], blocks: [1, 1, 1]}" \
            "adapters: {rank: 2, alpha: 4}" "epochs: 1000" "max_steps: $3" "eval_every: $3" "batch_size: 32" \
            "seed: 3" "output: $dir/$out" "sync_batchnorm: true" "$2" > "$dir/$out.yaml"
    done
    "$bin/mola-train" run "$dir/one.yaml" --quiet --set threads=1 > "$dir/log" 2>&1 || { cat "$dir/log"; exit 1; }
    mpirun --allow-run-as-root --oversubscribe --mca btl self,vader --mca btl_vader_single_copy_mechanism none -np 2 \
        "$bin/mola-train" run "$dir/two.yaml" --quiet --set threads=1 > "$dir/log" 2>&1 || { cat "$dir/log"; exit 1; }
    difference "$dir/one/checkpoints/latest/model.safetensors" "$dir/two/checkpoints/latest/model.safetensors"
    rm -rf "$dir"
}

# Every balancer name, as mola-train lists them when a config names none of them.
printf '%s\n' "name: names" "data: {dataset: $work/data}" "method: uniform" "weighting: none-of-them" > "$work/names.yaml"
balancers=$( ("$bin/mola-train" run "$work/names.yaml" 2>&1 || true) | sed -n 's/.*is not one of //p' | tr -d ',')
for s in ${steps[@]}; do
    line="steps=$s uniform=$(compare uniform '' "$s") mola-grad=$(compare mola-grad '' "$s")"
    for b in $balancers; do line+=" $b=$(compare uniform "weighting: $b" "$s")"; done
    echo "$line"
done
