#!/usr/bin/env bash
# How long the quick start takes a fresh machine, measured in its parts (needs root and the
# network to Debian and PyPI; takes about 8 minutes on 2 cores):
#   1. scripts/setup.sh's Debian packages, in a fresh Debian 12 chroot (debootstrap minbase),
#      and the tests' extra packages after them;
#   2. its pip packages, in a fresh virtual environment;
#   3. the first `swift build -c release` of a fresh clone of this repository's HEAD;
#   4. `mola-pipeline run pipelines/quickstart.yaml` in that clone.
# Prints one JSON line of seconds. The chroot lacks the Swift toolchain and Python a fresh
# machine has, so the parts run where each can.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'umount "$work/root/proc" 2>/dev/null || true; rm -rf "$work"' EXIT
now() { date +%s.%N; }
since() { python3 -c "import sys; print(round(float(sys.argv[2]) - float(sys.argv[1]), 1))" "$1" "$(now)"; }
command -v debootstrap >/dev/null || { apt-get update -qq && apt-get install -y -qq debootstrap >/dev/null; }
debootstrap --variant=minbase bookworm "$work/root" http://deb.debian.org/debian >/dev/null
cp /etc/resolv.conf "$work/root/etc/resolv.conf"
main="zlib1g-dev libpng-dev libturbojpeg0-dev libssl-dev pkg-config dataset-fashion-mnist"
tests="chromium openmpi-bin libopenmpi3 time iproute2"
t=$(now); chroot "$work/root" bash -c "export DEBIAN_FRONTEND=noninteractive; apt-get update -qq && apt-get install -y -qq --no-install-recommends $main >/dev/null 2>&1"; apt_main=$(since "$t")
t=$(now); chroot "$work/root" bash -c "export DEBIAN_FRONTEND=noninteractive; apt-get install -y -qq $tests >/dev/null 2>&1"; apt_tests=$(since "$t")
python3 -m venv "$work/venv"
t=$(now); "$work/venv/bin/pip" install --quiet --no-cache-dir --disable-pip-version-check mlxtend scikit-learn; pip_main=$(since "$t")
git clone -q "$repo" "$work/clone"
t=$(now); (cd "$work/clone" && swift build -c release >/dev/null 2>&1); build=$(since "$t")
t=$(now); (cd "$work/clone" && .build/release/mola-pipeline run pipelines/quickstart.yaml >/dev/null 2>&1); pipeline=$(since "$t")
total=$(python3 -c "print(round($apt_main + $pip_main + $build + $pipeline, 1))")
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); family=$(grep -m1 'cpu family' /proc/cpuinfo | cut -d: -f2 | xargs)
printf '{"apt_main_s": %s, "pip_main_s": %s, "first_build_s": %s, "pipeline_s": %s, "quickstart_total_s": %s, "apt_tests_extra_s": %s, "cores": %d, "cpu": "%s family %s"}\n' \
  "$apt_main" "$pip_main" "$build" "$pipeline" "$total" "$apt_tests" "$(nproc)" "$cpu" "$family"
