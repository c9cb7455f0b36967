#!/usr/bin/env bash
# Produces the text corpus of the chunking benchmark (3.8 MB of real prose, plain UTF-8 text) from
# documentation shipped by Debian 12. Not committed: benchmarks call this script with a folder.
#
#   debian-reference.en.txt   Debian Reference, English        (debian-reference-en, GPL-2+)
#   debian-reference.fr.txt   Debian Reference, French         (debian-reference-fr, GPL-2+)
#   debian-reference.ja.txt   Debian Reference, Japanese       (debian-reference-ja, GPL-2+)
#   developers-reference.txt  Debian Developer's Reference     (developers-reference, GPL-2+)
#   maint-guide.txt           Debian New Maintainers' Guide    (maint-guide, GPL-2+)
#   gnu-coding-standards.txt  GNU Coding Standards             (gnu-standards, GFDL-1.3+)
#   gnu-maintainers.txt       Information for GNU Maintainers  (gnu-standards, GFDL-1.3+)
#
# The French and Japanese texts exercise multi-byte UTF-8 (accents, CJK without spaces). The
# folder holds nothing else, so it can be ingested whole; for a one-document run, concatenate
# the files (cat OUT_DIR/*.txt).
#
# usage: bench/make_bench_text.sh OUT_DIR
set -euo pipefail

[[ $# -eq 1 ]] || { echo "usage: $0 OUT_DIR" >&2; exit 2; }
out=$1

pkgs=(debian-reference-en debian-reference-fr debian-reference-ja developers-reference
      maint-guide gnu-standards)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if (( ${#missing[@]} )); then
  echo "make_bench_text: installing ${missing[*]}" >&2
  sudo_cmd=()
  [[ $(id -u) -ne 0 ]] && sudo_cmd=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update -qq
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

mkdir -p "$out"
unpack() {  # unpack SRC.gz NAME
  [[ -f "$1" ]] || { echo "make_bench_text: $1 is missing (is /usr/share/doc excluded by dpkg?)" >&2; exit 1; }
  zcat "$1" > "$out/$2"
}
unpack /usr/share/debian-reference/debian-reference.en.txt.gz debian-reference.en.txt
unpack /usr/share/debian-reference/debian-reference.fr.txt.gz debian-reference.fr.txt
unpack /usr/share/debian-reference/debian-reference.ja.txt.gz debian-reference.ja.txt
unpack /usr/share/developers-reference/developers-reference.txt.gz developers-reference.txt
unpack /usr/share/doc/maint-guide/maint-guide.en.txt.gz maint-guide.txt
unpack /usr/share/doc/gnu-standards/standards.text.gz gnu-coding-standards.txt
unpack /usr/share/doc/gnu-standards/maintain.text.gz gnu-maintainers.txt

echo "$out: $(ls "$out" | wc -l) files, $(cat "$out"/*.txt | wc -c) bytes"
