#!/usr/bin/env bash
# The test command: installs what is missing, builds release (numeric code is slow in
# debug builds) and runs every test. CI runs exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
swift build -c release
swift test -c release "$@"
