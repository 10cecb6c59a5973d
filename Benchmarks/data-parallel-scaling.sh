#!/usr/bin/env bash
# The data-parallel figures of Benchmarks/README.md ("Data-parallel training over MPI"):
# train images/s of the digits-fashion configs at N=1 (one process) and N=2 (mpirun, one
# thread per rank), and the time of one gradient all-reduce. Needs OpenMPI (apt-get install
# openmpi-bin) and the digits-fashion dataset (mola-train ingests it on first use). Build
# first: swift build -c release
set -euo pipefail
cd "$(dirname "$0")/.."
T=.build/release/mola-train
MPI="mpirun --allow-run-as-root --oversubscribe --mca btl self,vader --mca btl_vader_single_copy_mechanism none"
for cfg in configs/digits-fashion/uniform.yaml configs/digits-fashion/mola-grad.yaml configs/digits-fashion/mola-router.yaml; do
  echo "## $cfg N=1"; $T bench "$cfg" --threads 1 --steps 10 --rounds 3
  echo "## $cfg N=2"; $MPI -np 2 $T bench "$cfg" --threads 1 --steps 10 --rounds 3
done
# ResNet-18 (the paper's backbone, 11M parameters: a 45 MB all-reduce per step)
cfg=configs/digits-fashion/uniform.yaml
echo "## resnet18 $cfg N=1"; $T bench "$cfg" --set backbone.name=resnet18 --threads 1 --steps 2 --rounds 2
echo "## resnet18 $cfg N=2"; $MPI -np 2 $T bench "$cfg" --set backbone.name=resnet18 --threads 1 --steps 2 --rounds 2
