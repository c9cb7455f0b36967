#!/usr/bin/env bash
# Ingestion speed, side by side with poppler's pdftotext on the same file and machine.
#   bench/ingest_bench.sh [BUILD_DIR]
# Makes a 100+ page PDF and a text corpus (bench/make_bench_*.sh, Debian packages only), then:
#   - pages/s: `rag ingest` of the PDF into a fresh data folder (parse + chunk + SQLite/FTS5
#     with fsync) against `pdftotext` of the same PDF (text extraction only); median of 5 runs;
#   - chunks/s and MB/s: `rag ingest` of the text corpus into a fresh data folder.
# Prints a Markdown table for docs/BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
rag=$build/rag
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

bash bench/make_bench_pdf.sh "$work/bench.pdf" >/dev/null
bash bench/make_bench_text.sh "$work/text" >/dev/null
pages=$(pdfinfo "$work/bench.pdf" | awk '/^Pages:/ {print $2}')

now() { date +%s.%N; }
calc() { awk "BEGIN { print $* }"; }
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

time_rag_pdf() {
  rm -rf "$work/data"
  local t0; t0=$(now)
  "$rag" ingest "$work/bench.pdf" --data "$work/data" --log-level warn >/dev/null
  calc "$(now) - $t0"
}
time_pdftotext() {
  local t0; t0=$(now)
  pdftotext "$work/bench.pdf" "$work/out.txt"
  calc "$(now) - $t0"
}

rag_s=$(for i in 1 2 3 4 5; do time_rag_pdf; done | median)
ptt_s=$(for i in 1 2 3 4 5; do time_pdftotext; done | median)

rm -rf "$work/data"
text_bytes=$(du -sb "$work/text" | cut -f1)
t0=$(now)
summary=$("$rag" ingest "$work/text" --data "$work/data" --log-level warn)
text_s=$(calc "$(now) - $t0")
chunks=$(echo "$summary" | sed -n 's/.* \([0-9]*\) chunks in.*/\1/p')

cpu=$(lscpu | sed -n 's/^Model name: *//p' | head -1)
printf '| what | rag | pdftotext | ratio |\n|---|---|---|---|\n'
printf '| PDF, %d pages: seconds (median of 5) | %.3f | %.3f | %.2fx the time |\n' "$pages" "$rag_s" "$ptt_s" "$(calc "$rag_s / $ptt_s")"
printf '| PDF: pages/s | %.0f | %.0f | %.2f |\n' "$(calc "$pages / $rag_s")" "$(calc "$pages / $ptt_s")" "$(calc "$ptt_s / $rag_s")"
printf '\nText corpus: %.1f MB, %d chunks in %.2f s: %.0f chunks/s, %.1f MB/s (parse + chunk + store)\n' \
  "$(calc "$text_bytes / 1000000")" "$chunks" "$text_s" "$(calc "$chunks / $text_s")" \
  "$(calc "$text_bytes / 1000000 / $text_s")"
printf 'Machine: %s, %s cores; %s\n' "$cpu" "$(nproc)" "$(date -u +%Y-%m-%d)"
