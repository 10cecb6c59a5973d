#!/usr/bin/env bash
# Runs train-mpi.sbatch on a real single-node Slurm on this machine: a 2-rank data-parallel
# training of the digits-fashion MoLA-Grad config (short), then checks the run finished with
# 2 ranks in its records. Needs root and OpenMPI. Not part of CI (it starts daemons); its
# output is recorded in Benchmarks/README.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
bash "$root/scripts/slurm/start-local-slurm.sh"
[ -x .build/release/mola-train ] || swift build -c release --product mola-train
work=$(mktemp -d /tmp/mola-slurm-train.XXXXXX)
cd "$root"
# As root in a container: OpenMPI wants explicit consent, and no cross-process memory copy.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl_vader_single_copy_mechanism=none
job=$(CONFIG=configs/digits-fashion/mola-grad.yaml MOLA_TRAIN=$root/.build/release/mola-train \
  EXTRA="--set max_steps=60 --set eval_every=30 --set output=$work/run" \
  sbatch --parsable --wait --output="$work/train-%j.log" scripts/slurm/train-mpi.sbatch)
cat "$work"/train-*.log
grep -c '"ranks":2' "$work/run/metrics.jsonl"
sacct -j "$job" -o JobID,State,ExitCode 2>/dev/null || true
test -f "$work/run/report.md" && echo "slurm mpi training: ok"
