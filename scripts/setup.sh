#!/usr/bin/env bash
# Installs what the project needs and is missing, nothing else. Idempotent: when everything is
# present it only checks (a few seconds) and changes nothing.
#
# usage: scripts/setup.sh [--test]   (--test also installs what the test suite needs)
set -euo pipefail

want_test=0
[[ "${1:-}" == "--test" ]] && want_test=1

# Build and runtime packages (Debian 12 names).
pkgs=(build-essential cmake pkg-config
      libsqlite3-dev libpoppler-cpp-dev libpistache-dev nlohmann-json3-dev
      libgumbo-dev libmd4c-dev libcli11-dev libpcre2-dev libxxhash-dev
      libfaiss-dev libopenblas-dev liblapack-dev
      libgtest-dev)
# Test-only packages: poppler-utils (pdftotext, reference for the PDF benchmark), curl for the
# smoke tests, python3 for the scorer; chromium, its driver and selenium for the web page test.
test_pkgs=(poppler-utils curl python3 chromium chromium-driver python3-selenium)

missing=()
check() {
  for p in "$@"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
      missing+=("$p")
    fi
  done
}
check "${pkgs[@]}"
(( want_test )) && check "${test_pkgs[@]}"

if (( ${#missing[@]} )); then
  echo "setup: installing ${missing[*]}"
  sudo_cmd=()
  [[ $(id -u) -ne 0 ]] && sudo_cmd=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update -qq
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "setup: all packages present"
fi
