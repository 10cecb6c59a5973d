#!/usr/bin/env bash
# Runs the partitioned ingest on a real single-node Slurm on this machine and checks it:
# installs slurm-wlm and munge (Debian), writes a one-node slurm.conf (this host, its CPUs),
# starts munged, slurmctld and slurmd, submits an array of 3 ingest parts of
# data-manifests/digit-domains.yaml with a dependent merge (submit-ingest.sh --wait), then
# compares the merged dataset with a one-process ingest record by record. Needs root.
# Not part of CI (it starts daemons); its output is recorded in Benchmarks/README.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
bash "$root/scripts/slurm/start-local-slurm.sh"
[ -x .build/release/mola-prep ] || swift build -c release --product mola-prep
work=$(mktemp -d /tmp/mola-slurm.XXXXXX)
cd "$work"
MOLA_PREP=$root/.build/release/mola-prep "$root/scripts/slurm/submit-ingest.sh" "$root/data-manifests/digit-domains.yaml" "$work/parted" 3 --wait
cat mola-ingest-*_0.log mola-merge-*.log
"$root/.build/release/mola-prep" ingest "$root/data-manifests/digit-domains.yaml" --out "$work/whole" --quiet
python3 - "$work" <<'PY'
import json, os, sys
import numpy as np
def records(d):
    out = {}
    for s in json.load(open(os.path.join(d, "index.json")))["shards"]:
        z = np.load(os.path.join(d, s["file"]))
        out.setdefault(s["split"], []).extend((int(t), int(l), i.tobytes()) for i, l, t in zip(z["images"], z["labels"], z["tasks"]))
    return {k: sorted(v) for k, v in out.items()}
a, b = records(os.path.join(sys.argv[1], "parted")), records(os.path.join(sys.argv[1], "whole"))
print("records per split:", {k: len(v) for k, v in a.items()}, "equal to one process:", a == b)
sys.exit(0 if a == b else 1)
PY
"$root/.build/release/mola-prep" verify "$work/parted"
