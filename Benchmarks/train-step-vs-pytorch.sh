#!/usr/bin/env bash
# The train-step figures of docs/speed.md and Benchmarks/README.md: ResNet-18 and
# resnet-mini against PyTorch CPU (pip install torch) eager and channels_last, the first
# line also against torch.compile; then the profiles and the conv layers with each
# Winograd tile size. Build first: swift build -c release
set -euo pipefail
cd "$(dirname "$0")/.."
B=.build/release/mola-bench
echo "## resnet18 28x28x3 uniform"; $B train-step --backbone resnet18 --side 28 --channels 3 --tasks 9 --method uniform --batch 128 --threads 2 --steps 8 --rounds 5 --compile-peer
echo "## resnet18 28x28x3 mola-grad"; $B train-step --backbone resnet18 --side 28 --channels 3 --tasks 9 --method mola-grad --batch 128 --threads 2 --steps 8 --rounds 4
echo "## resnet18 64x64x1 uniform"; $B train-step --backbone resnet18 --side 64 --channels 1 --tasks 9 --method uniform --batch 128 --threads 2 --steps 3 --rounds 3
echo "## resnet-mini"; $B train-step --threads 2 --steps 20 --rounds 5
echo "## resnet18 28x28x3 uniform, 1 thread"; $B train-step --backbone resnet18 --side 28 --channels 3 --tasks 9 --method uniform --batch 128 --threads 1 --steps 4 --rounds 3
echo "## profile resnet18 uniform"; $B train-step --backbone resnet18 --side 28 --channels 3 --tasks 9 --method uniform --steps 4 --rounds 1 --no-reference --profile
echo "## profile resnet18 mola-grad"; $B train-step --backbone resnet18 --side 28 --channels 3 --tasks 9 --method mola-grad --steps 4 --rounds 1 --no-reference --profile
echo "## conv layers"; $B conv-layers; MOLA_WINOGRAD=2 $B conv-layers; MOLA_WINOGRAD=4 $B conv-layers; MOLA_WINOGRAD=0 $B conv-layers
