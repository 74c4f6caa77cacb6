#!/usr/bin/env python3
"""How kmsim's cost per event grows with the size of the estate, the workload otherwise the same.

The bench scenarios differ in more than N (fleet-1m runs 7 days with the deletion at day 3, the
others 60 days with it at day 30, so fleet-1m spends a larger share of its events on failed
attaches, which cost more). This script runs fleet-1m's scenario at every N instead: a copy of
scenarios/bench/fleet-1m.ron with only `instances` changed, under target/growth/. It prints the
median nanoseconds per counted event at each N (`kmsim bench`, simulation time only), their
growth from the smallest N, and the log N bound (log N / log N_smallest) it must stay under.

usage: benches/growth.py [--n 1k,10k,100k,1m] [--repeat 5]
"""
import argparse
import math
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare import ROOT, SIZES, TARGET, fmt_mem, log, measure  # noqa: E402

SHAPE = ROOT / "scenarios" / "bench" / "fleet-1m.ron"


def scenario_for(n):
    text = SHAPE.read_text()
    field = "instances: 1000000,"
    if text.count(field) != 1:
        raise SystemExit(f"{SHAPE}: expected one `{field}` to change")
    out = TARGET / "growth" / f"fleet-1m-shape-{n}.ron"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text.replace(field, f"instances: {n},"))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", default="1k,10k,100k,1m", help="comma-separated sizes among 1k,10k,100k,1m")
    ap.add_argument("--repeat", type=int, default=5, help="runs per size (median), sizes alternated")
    args = ap.parse_args()
    sizes = [s.strip() for s in args.n.split(",") if s.strip()]
    for s in sizes:
        if s not in SIZES:
            raise SystemExit(f"unknown size {s!r}: choose among {', '.join(SIZES)}")
    log("building kmsim (release)...")
    subprocess.run(["cargo", "build", "--release", "--quiet", "--bin", "kmsim"], cwd=ROOT, check=True)
    kmsim = TARGET / "release" / "kmsim"

    scenarios = {size: scenario_for(SIZES[size]) for size in sizes}
    runs = {size: [] for size in sizes}
    # Sizes alternate, round after round: a noisy moment on the machine (a 1k run lasts 10 ms)
    # then spoils one run of several sizes, not every run of one.
    for r in range(args.repeat):
        for size in sizes:
            log(f"N={size} run {r + 1}/{args.repeat}")
            runs[size].append(measure([kmsim, "bench", scenarios[size]]))
    rows = []
    for size in sizes:
        ns = sorted(1e9 / float(x["events_per_s"]) for x in runs[size])
        peaks = [x["peak_mib"] for x in runs[size]]
        peak = None if peaks[0] is None else max(peaks)
        rows.append((size, SIZES[size], int(runs[size][0]["events"]), statistics.median(ns), ns[0], ns[-1], peak))

    base_n, base_ns = rows[0][1], rows[0][3]
    header = ["N", "events", "ns/event", "fastest-slowest", "peak memory", "growth", "log N bound", ""]
    table = []
    for size, n, events, ns, lo, hi, peak in rows:
        growth = ns / base_ns
        bound = math.log(n) / math.log(base_n)
        verdict = "within" if growth <= bound else "OVER"
        table.append([size, f"{events:,}", f"{ns:.1f}", f"{lo:.1f}-{hi:.1f}", fmt_mem(peak), f"{growth:.2f}x",
                      f"{bound:.2f}x", verdict])
    widths = [max(len(str(x)) for x in col) for col in zip(header, *table)]
    for t in [header] + table:
        print("  ".join(str(x).rjust(w) for x, w in zip(t, widths)))
    print(f"\nfleet-1m's scenario at each N; median of {args.repeat} alternated runs (fastest and slowest beside it).")


if __name__ == "__main__":
    main()
