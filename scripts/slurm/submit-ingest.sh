#!/usr/bin/env bash
# Partitioned ingest on Slurm: an array of N ingest parts, then a merge that waits for all.
#   scripts/slurm/submit-ingest.sh MANIFEST OUT N [--wait]
# e.g. scripts/slurm/submit-ingest.sh data-manifests/radimagenet.yaml datasets/radimagenet 32
# Set MOLA_PREP to the mola-prep binary if it is not on PATH (it must be reachable from the
# compute nodes, as must the data and OUT: a shared file system).
set -euo pipefail
[ $# -ge 3 ] || { echo "usage: $0 MANIFEST OUT N [--wait]" >&2; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)
export MANIFEST=$(realpath "$1") OUT=$(realpath -m "$2") MOLA_PREP=${MOLA_PREP:-$(command -v mola-prep || echo mola-prep)}
n=$3
wait=()
[ "${4:-}" = "--wait" ] && wait=(--wait)
parts=$(sbatch --parsable --export=ALL --array=0-$((n - 1)) "$here/ingest-part.sbatch")
echo "ingest parts: job $parts (array 0-$((n - 1)))"
sbatch --parsable --export=ALL --dependency=afterok:"$parts" "${wait[@]}" "$here/merge.sbatch" | sed 's/^/merge: job /'
