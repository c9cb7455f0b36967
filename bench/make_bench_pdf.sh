#!/usr/bin/env bash
# Produces the PDF of the ingestion benchmark: the Debian Reference (English) exactly as Debian 12
# ships it in debian-reference-en (LaTeX/xdvipdfmx output, 261 pages of real text, ~1.3 MB,
# GPL-2+). Not committed: benchmarks call this script with the path to write.
#
# usage: bench/make_bench_pdf.sh OUT      (OUT: a file name, or an existing folder to write
#                                          debian-reference.en.pdf into)
# Installs debian-reference-en and poppler-utils when missing (as scripts/setup.sh does).
set -euo pipefail

[[ $# -eq 1 ]] || { echo "usage: $0 OUT.pdf|OUT_DIR" >&2; exit 2; }
out=$1
[[ -d "$out" ]] && out="$out/debian-reference.en.pdf"

pkgs=(debian-reference-en poppler-utils)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if (( ${#missing[@]} )); then
  echo "make_bench_pdf: installing ${missing[*]}" >&2
  sudo_cmd=()
  [[ $(id -u) -ne 0 ]] && sudo_cmd=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update -qq
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

src=/usr/share/debian-reference/debian-reference.en.pdf
[[ -f "$src" ]] || { echo "make_bench_pdf: $src is missing after installing debian-reference-en" >&2; exit 1; }
mkdir -p "$(dirname "$out")"
cp "$src" "$out"

# The benchmark relies on 100+ pages; refuse anything smaller (a changed package, say).
pages=$(pdfinfo "$out" | awk '/^Pages:/ {print $2}')
if [[ -z "$pages" || "$pages" -lt 100 ]]; then
  echo "make_bench_pdf: $out has ${pages:-no} pages, expected 100 or more" >&2
  exit 1
fi
echo "$out: $pages pages, $(stat -c %s "$out") bytes"
