#!/usr/bin/env bash
# What the test command adds to scripts/setup.sh: Chromium (the HTML reports are checked in
# a real browser), OpenMPI (the data-parallel tests; mola-train loads libmpi at run time and
# the build needs no MPI), GNU time (a child's own peak memory), iproute2 (the two-host
# test's network namespaces), and the oracles: numpy, Pillow, pydicom and nibabel with
# their test files, TensorBoard's event reader. Quick when all is present.
set -euo pipefail
bash "$(dirname "$0")/setup.sh"
# shellcheck source=scripts/install-missing.sh
source "$(dirname "$0")/install-missing.sh"

apt_install --with-recommends chromium openmpi-bin libopenmpi3 time iproute2
pip_install numpy pillow:PIL pydicom nibabel tensorboard
