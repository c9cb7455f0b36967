#!/usr/bin/env python3
"""Per-kernel time summary of an Nsight Compute CSV (ncu --csv --metrics gpu__time_duration.sum):
kernel name (templates stripped), launches, total and mean microseconds, share of the total.
Usage: python3 bench/ncu_summary.py ncu.csv [TOP]"""
import csv
import re
import sys
from collections import defaultdict


def short(name):
    name = re.sub(r"\(.*", "", name)          # drop the argument list
    depth, out = 0, []
    for ch in name:                            # drop template arguments
        depth += ch == "<"
        if depth == 0:
            out.append(ch)
        depth -= ch == ">"
    return "".join(out).replace("void ", "").split("::")[-1][:60]


def main():
    rows = list(csv.DictReader(line for line in open(sys.argv[1]) if line.startswith('"')))
    top = int(sys.argv[2]) if len(sys.argv) > 2 else 30
    total, count = defaultdict(float), defaultdict(int)
    for r in rows:
        if r.get("Metric Name") != "gpu__time_duration.sum":
            continue
        value = float(r["Metric Value"].replace(",", ""))
        scale = {"nsecond": 1e-3, "usecond": 1.0, "msecond": 1e3, "ns": 1e-3, "us": 1.0}.get(r.get("Metric Unit", "nsecond"), 1e-3)
        k = short(r["Kernel Name"])
        total[k] += value * scale
        count[k] += 1
    all_us = sum(total.values())
    print(f"{'kernel':60s} {'launches':>8s} {'total us':>10s} {'mean us':>9s} {'share':>6s}")
    for k, t in sorted(total.items(), key=lambda kv: -kv[1])[:top]:
        print(f"{k:60s} {count[k]:8d} {t:10.1f} {t / count[k]:9.2f} {100 * t / all_us:5.1f}%")
    print(f"{'all':60s} {sum(count.values()):8d} {all_us:10.1f}")


if __name__ == "__main__":
    main()
