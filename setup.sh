#!/usr/bin/env bash
# Installs xfmr's build dependencies from Debian, only those that are missing.
# Idempotent and silent when everything is already installed. Extra package names as arguments
# (.ci/run: the sanitizer and fuzzer runtime) are installed the same way.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

packages=(cmake g++ clang libeigen3-dev catch2 libbenchmark-dev nlohmann-json3-dev "$@")

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
  if [ "$status" != "installed" ]; then
    missing+=("$p")
  fi
done

if [ "${#missing[@]}" -eq 0 ]; then
  exit 0
fi

sudo=()
if [ "$(id -u)" -ne 0 ]; then
  sudo=(sudo)
fi

echo "setup.sh: installing ${missing[*]}"
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
