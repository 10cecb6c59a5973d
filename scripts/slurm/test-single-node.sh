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
command -v slurmctld >/dev/null || { apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >/dev/null; }
host=$(hostname -s); cpus=$(nproc)
cat > /etc/slurm/slurm.conf <<CONF
ClusterName=local
SlurmctldHost=$host
AuthType=auth/munge
SlurmUser=root
SlurmdUser=root
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
SlurmctldLogFile=/var/log/slurmctld.log
SlurmdLogFile=/var/log/slurmd.log
JobAcctGatherType=jobacct_gather/none
NodeName=$host CPUs=$cpus RealMemory=4000 State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
mkdir -p /var/spool/slurmctld /var/spool/slurmd /run/munge && chown munge:munge /run/munge
pgrep -x munged >/dev/null || runuser -u munge -- munged
pgrep -x slurmctld >/dev/null || slurmctld
pgrep -x slurmd >/dev/null || slurmd
for _ in $(seq 30); do sinfo -h -o %T 2>/dev/null | grep -q idle && break; sleep 1; done
sinfo
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
