#!/usr/bin/env bash
# Reproduces the sample corpus (corpora/sample/ and corpora/LICENSES/) from Debian 12 packages.
# Run once; the output is committed. corpora/README.md is written by hand and says where each
# file comes from; this script is the exact recipe.
#
# usage: tools/make_sample_corpus.sh [OUT_DIR]      (default: the corpora/ folder of this repository)
#
# Needs (installed when missing, like scripts/setup.sh): the documentation packages below, chromium
# (prints one SQLite page to PDF) and poppler-utils (pdfinfo, to check the PDFs).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=${1:-$root/corpora}

pkgs=(maint-guide gnu-standards sqlite3-doc systemd libxxhash-dev chromium poppler-utils)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if (( ${#missing[@]} )); then
  echo "make_sample_corpus: installing ${missing[*]}"
  sudo_cmd=()
  [[ $(id -u) -ne 0 ]] && sudo_cmd=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update -qq
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# Fails with a clear line when a package's documentation was not installed (some minimal images
# exclude /usr/share/doc through dpkg path-exclude rules).
need() {
  [[ -f "$1" ]] || { echo "make_sample_corpus: $1 is missing (is /usr/share/doc excluded by dpkg?)" >&2; exit 1; }
}

sample="$out/sample"
lic="$out/LICENSES"
mkdir -p "$sample" "$lic"

# 1. A PDF exactly as Debian ships it (LaTeX-made, 63 pages): the Debian New Maintainers' Guide.
src=/usr/share/doc/maint-guide/maint-guide.en.pdf
need "$src"
cp "$src" "$sample/debian-new-maintainers-guide.pdf"

# 2. Plain text: the GNU Coding Standards, the text rendering shipped by gnu-standards.
src=/usr/share/doc/gnu-standards/standards.text.gz
need "$src"
zcat "$src" > "$sample/gnu-coding-standards.txt"

# 3. HTML pages of the SQLite documentation (public domain), unchanged.
need /usr/share/doc/sqlite3/whentouse.html
cp /usr/share/doc/sqlite3/whentouse.html "$sample/sqlite-when-to-use.html"
cp /usr/share/doc/sqlite3/wal.html "$sample/sqlite-write-ahead-logging.html"

# 4. Markdown: a systemd design document (with YAML front matter) and the xxHash specification.
need /usr/share/doc/systemd/UIDS-GIDS.md.gz
zcat /usr/share/doc/systemd/UIDS-GIDS.md.gz > "$sample/systemd-users-groups-uids-gids.md"
need /usr/share/doc/libxxhash-dev/xxhash_spec.md.gz
zcat /usr/share/doc/libxxhash-dev/xxhash_spec.md.gz > "$sample/xxhash-spec.md"

# 5. A small PDF made here: SQLite's "How To Corrupt An SQLite Database File" printed by headless
#    Chromium. The page is copied to a scratch folder first so that (a) its relative links point at
#    the upstream site instead of file:// paths of this machine, and (b) a print style hides the
#    site's navigation menu. The text itself is unchanged.
src=/usr/share/doc/sqlite3/howtocorrupt.html
need "$src"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp /usr/share/doc/sqlite3/sqlite.css "$tmp/"
sed -e 's#href="\([A-Za-z0-9_./-]*\.html\)#href="https://www.sqlite.org/\1#g' \
    -e 's#</head>#<style>@media print { .menu, .tagline, .searchmenu, .logo, .fancy_toc { display: none } }</style></head>#' \
    "$src" > "$tmp/howtocorrupt.html"
# --no-sandbox: Chromium refuses to run as root otherwise (containers, CI).
chromium --headless --no-sandbox --disable-gpu --no-pdf-header-footer \
  --print-to-pdf="$tmp/out.pdf" "file://$tmp/howtocorrupt.html" >/dev/null 2>&1
cp "$tmp/out.pdf" "$sample/sqlite-how-to-corrupt.pdf"

# Licences: the Debian copyright file of every source package, and the full licence texts.
cp /usr/share/doc/maint-guide/copyright "$lic/maint-guide.copyright"
cp /usr/share/doc/gnu-standards/copyright "$lic/gnu-standards.copyright"
cp /usr/share/doc/sqlite3-doc/copyright "$lic/sqlite3-doc.copyright"
cp /usr/share/doc/systemd/copyright "$lic/systemd.copyright"
cp /usr/share/doc/libxxhash-dev/copyright "$lic/libxxhash-dev.copyright"
cp /usr/share/common-licenses/GPL-2 "$lic/GPL-2"
cp /usr/share/common-licenses/GFDL-1.3 "$lic/GFDL-1.3"
cp /usr/share/common-licenses/LGPL-2.1 "$lic/LGPL-2.1"

# Summary: sizes, page counts, and the package versions used (for corpora/README.md).
for f in "$sample"/*; do
  pages=""
  [[ "$f" == *.pdf ]] && pages=" $(pdfinfo "$f" | awk '/^Pages:/ {print $2}') pages"
  printf '%8d bytes  %s%s\n' "$(stat -c %s "$f")" "${f#"$out"/}" "$pages"
done
dpkg-query -W "${pkgs[@]}" | sed 's/^/  package /'
du -sh "$out" | sed 's/^/  total /'
