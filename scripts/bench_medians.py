#!/usr/bin/env python3
"""Medians over several runs of scripts/bench_side_by_side.sh.

Usage: scripts/bench_medians.py RUN_DIR [RUN_DIR ...]

Reads every "workload framework threads metric value" line of each run folder's *.txt files and
prints, per workload and thread count, kiln's median (range), its median fraction of the AVX-512
FMA peak measured in the same run (GFLOP/s rows), and for each peer its median and the median
(range) of the per-run ratios kiln / peer. Ratios are taken within a run, then the median across
runs, so a run where the machine was busy moves one sample, not the comparison.
"""
import collections
import glob
import statistics
import sys


def main(runs):
    data = collections.defaultdict(dict)  # (workload, threads, metric) -> {run: {framework: value}}
    peaks = {}
    for r in runs:
        for f in glob.glob(r + "/*.txt"):
            for line in open(f):
                p = line.split()
                if line.startswith("#") or len(p) != 5:
                    continue
                wl, fw, t, metric, val = p
                try:
                    val = float(val)
                except ValueError:
                    continue
                if wl == "W3-peak":
                    if fw == "fma-avx512" or (fw == "fma-avx2" and (r, t) not in peaks):
                        peaks[(r, t)] = val
                    continue
                data[(wl, t, metric)].setdefault(r, {})[fw] = val
    print("runs:", len(runs))
    for t in ("1", "2"):
        ps = [peaks[(r, t)] for r in runs if (r, t) in peaks]
        if ps:
            print(f"FMA peak, {t} thread(s): median {statistics.median(ps):.1f} GFLOP/s ({min(ps):.1f}-{max(ps):.1f})")
    for (wl, t, metric), per in sorted(data.items()):
        if metric not in ("gflops", "samples_per_s"):
            continue
        kiln = [per[r]["kiln"] for r in per if "kiln" in per[r]]
        if not kiln:
            continue
        out = f"| {wl} | {t} | {statistics.median(kiln):,.1f} ({min(kiln):,.0f}-{max(kiln):,.0f})"
        pct = [per[r]["kiln"] / peaks[(r, t)] * 100 for r in per if "kiln" in per[r] and (r, t) in peaks]
        out += f" | {statistics.median(pct):.1f} %" if metric == "gflops" and pct else " | -"
        for peer in sorted({fw for v in per.values() for fw in v} - {"kiln"}):
            vals = [per[r][peer] for r in per if peer in per[r]]
            ratios = [per[r]["kiln"] / per[r][peer] for r in per if peer in per[r] and "kiln" in per[r]]
            if ratios:
                out += f" | {peer} {statistics.median(vals):,.1f} | {statistics.median(ratios):.2f}x ({min(ratios):.2f}-{max(ratios):.2f})"
        print(out + " |")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])
