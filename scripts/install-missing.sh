#!/usr/bin/env bash
# apt_install [--with-recommends] PKG…: installs the Debian packages that are not installed
# (one apt-get update first, as a fresh machine has no package lists), without the packages
# they only recommend unless asked (Chromium's recommended fonts draw the reports' text). pip_install NAME[:MODULE]…: installs the
# Python packages whose module cannot be found. Sourced by the setup scripts.
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

apt_install() {
  local recommends=--no-install-recommends
  if [ "${1:-}" = --with-recommends ]; then recommends=""; shift; fi
  local missing=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $recommends "${missing[@]}" >/dev/null
}

pip_install() {
  local missing=()
  for spec in "$@"; do
    local name=${spec%%:*} module=${spec#*:}
    python3 -c "import importlib.util as u, sys; sys.exit(u.find_spec('$module') is None)" || missing+=("$name")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "setup: pip installing ${missing[*]}"
  python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore "${missing[@]}"
}
