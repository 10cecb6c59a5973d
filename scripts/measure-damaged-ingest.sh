#!/usr/bin/env bash
# What a damaged file costs ingest: nibabel's example4d.nii.gz cut to CUT bytes (default
# 50000), ingested alone, timed by GNU time. Prints one JSON line.
#   scripts/measure-damaged-ingest.sh [MOLA_PREP] [CUT]
# Give another build's mola-prep to compare (e.g. one built at an older commit).
set -euo pipefail
prep=${1:-.build/release/mola-prep}
cut=${2:-50000}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
src=$(python3 -c 'import nibabel, os; print(os.path.join(os.path.dirname(nibabel.__file__), "tests", "data", "example4d.nii.gz"))')
mkdir -p "$work/tree/brain"
head -c "$cut" "$src" > "$work/tree/brain/cut.nii.gz"
cat > "$work/m.yaml" <<YAML
name: cut
image: {height: 32, width: 32, channels: 1}
tasks:
  - name: t
    classes: [brain]
    sources:
      - {format: nifti, root: $work/tree, split: train}
YAML
/usr/bin/time -f '%e %M' -o "$work/cost" "$prep" ingest "$work/m.yaml" --out "$work/out" --quiet 2> "$work/err" || true
read -r seconds kb < <(tail -1 "$work/cost")
error=$(grep -m1 '^error:' "$work/err" | sed "s|$work/||g; s|\"|'|g")
printf '{"cut_bytes": %d, "seconds": %s, "peak_mb": %d, "cpu": "%s", "error": "%s"}\n' \
  "$cut" "$seconds" $((kb / 1024)) "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), family $(grep -m1 'cpu family' /proc/cpuinfo | cut -d: -f2 | xargs)" "$error"
