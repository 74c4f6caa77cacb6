#!/usr/bin/env python3
"""kmsim against the reference models of the `fleet` workload, side by side, in one run.

Builds kmsim (release) and the hand-written heap loop (benches/reference/heap_fleet), installs
SimPy into target/bench-venv if it is not importable, then runs kmsim (`kmsim bench` on
scenarios/bench/fleet-<N>.ron), the heap loop and SimPy on the same N and seed, alternating them,
and prints a table of the median simulation time (with the fastest and slowest run), events per
second, peak memory and the ratios.

usage: benches/compare.py [--n 1k,10k,100k] [--repeat 3] [--simpy-max 10k] [--neighbour] [--markdown]

Times are the simulation alone as each program reports it (`sim_s`: kmsim excludes parsing and
building the world, the references their set-up); peak memory is the whole process's maximum
resident set, read by GNU time (/usr/bin/time). Machines are noisy: compare the ratios measured in one run.

`--neighbour` measures the same with a busy neighbour: stress-ng's cache stressor runs on the last
CPU and thrashes the last-level cache, as other tenants of a virtual machine's host do, while the
programs run on the first CPU (Linux; stress-ng from the distribution, e.g. `apt install stress-ng`).
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET = ROOT / "target"
SIZES = {"1k": 1_000, "10k": 10_000, "100k": 100_000, "1m": 1_000_000}


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def build():
    log("building kmsim and the heap loop (release)...")
    subprocess.run(["cargo", "build", "--release", "--quiet", "--bin", "kmsim"], cwd=ROOT, check=True)
    heap = ROOT / "benches" / "reference" / "heap_fleet"
    subprocess.run(
        ["cargo", "build", "--release", "--quiet", "--target-dir", str(TARGET / "heap_fleet")],
        cwd=heap,
        check=True,
    )
    return TARGET / "release" / "kmsim", TARGET / "heap_fleet" / "release" / "heap_fleet"


def python_with_simpy():
    try:
        import simpy  # noqa: F401

        return sys.executable
    except ImportError:
        pass
    env = TARGET / "bench-venv"
    py = env / "bin" / "python"
    if not py.exists():
        log(f"installing SimPy into {env}...")
        venv.create(env, with_pip=True)
    if subprocess.run([py, "-c", "import simpy"], capture_output=True).returncode != 0:
        subprocess.run([py, "-m", "pip", "install", "--quiet", "simpy"], check=True)
    return str(py)


GNU_TIME = Path("/usr/bin/time")


def measure(cmd, cpu=None):
    """Runs cmd (on CPU `cpu` alone, if given); returns its key=value line as a dict, with its peak RSS in MiB.

    The peak is read by GNU time, a small process: a child forked from this Python would carry
    Python's own resident set into its maximum.
    """
    cmd = [str(c) for c in cmd]
    rss_file = TARGET / "bench-maxrss.txt"
    wrapped = [str(GNU_TIME), "-f", "%M", "-o", str(rss_file)] + cmd if GNU_TIME.exists() else cmd
    pin = None if cpu is None else (lambda: os.sched_setaffinity(0, {cpu}))
    proc = subprocess.run(wrapped, stdout=subprocess.PIPE, cwd=ROOT, preexec_fn=pin)
    if proc.returncode != 0:
        raise SystemExit(f"{cmd[0]} failed with exit code {proc.returncode}")
    line = next(l for l in proc.stdout.decode().splitlines() if l.startswith("impl="))
    fields = dict(kv.split("=", 1) for kv in line.split())
    fields["peak_mib"] = int(rss_file.read_text().split()[-1]) / 1024 if GNU_TIME.exists() else None
    return fields


def start_neighbour():
    """Starts stress-ng's cache stressor on the last CPU; returns (the process, the CPU the programs run on)."""
    stress = shutil.which("stress-ng")
    if stress is None:
        raise SystemExit("--neighbour needs stress-ng: install it (apt install stress-ng) or leave the flag out")
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        raise SystemExit("--neighbour needs two CPUs: one for the programs, one for the neighbour")
    log(f"a busy neighbour: stress-ng --cache 1 on CPU {cpus[-1]}; the programs on CPU {cpus[0]}")
    proc = subprocess.Popen([stress, "--cache", "1", "--taskset", str(cpus[-1]), "--quiet"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return proc, cpus[0]


def fmt_mem(mib):
    if mib is None:
        return "n/a (no /usr/bin/time)"
    return f"{mib / 1024:.2f} GiB" if mib >= 1024 else f"{mib:.0f} MiB"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", default="1k,10k,100k", help="comma-separated sizes among 1k,10k,100k,1m")
    ap.add_argument("--repeat", type=int, default=3, help="runs of each program per size (median)")
    ap.add_argument("--simpy-max", default="10k", help="largest size SimPy runs at (it takes minutes at 100k)")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--neighbour", action="store_true",
                    help="run beside stress-ng's cache stressor on another CPU (a busy neighbour)")
    ap.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    args = ap.parse_args()
    sizes = [s.strip() for s in args.n.split(",") if s.strip()]
    for s in sizes + [args.simpy_max]:
        if s not in SIZES:
            raise SystemExit(f"unknown size {s!r}: choose among {', '.join(SIZES)}")

    kmsim, heap = build()
    py = python_with_simpy()
    simpy_script = ROOT / "benches" / "reference" / "simpy_fleet.py"

    neighbour, cpu = start_neighbour() if args.neighbour else (None, None)
    try:
        rows = run_all(args, sizes, kmsim, heap, py, simpy_script, cpu)
    finally:
        if neighbour is not None:
            neighbour.terminate()
            neighbour.wait()
    print_table(args, rows)


def run_all(args, sizes, kmsim, heap, py, simpy_script, cpu):
    rows = []
    for size in sizes:
        n = SIZES[size]
        scenario = ROOT / "scenarios" / "bench" / f"fleet-{size}.ron"
        programs = {
            "kmsim": [kmsim, "bench", scenario, "--seed", args.seed],
            "heap loop": [heap, n, args.seed],
        }
        if n <= SIZES[args.simpy_max]:
            programs["SimPy"] = [py, simpy_script, n, args.seed]
        results = {name: [] for name in programs}
        for r in range(args.repeat):
            for name, cmd in programs.items():  # alternated, so that drift hits all alike
                log(f"N={size} run {r + 1}/{args.repeat}: {name}")
                results[name].append(measure(cmd, cpu))
        for name, runs in results.items():
            rows.append(
                {
                    "N": size,
                    "impl": name,
                    "events": int(runs[0]["events"]),
                    "ever_failed": int(runs[0]["ever_failed"]),
                    "sim_s": statistics.median(float(x["sim_s"]) for x in runs),
                    "range": (min(float(x["sim_s"]) for x in runs), max(float(x["sim_s"]) for x in runs)),
                    "peak_mib": None if runs[0]["peak_mib"] is None else max(x["peak_mib"] for x in runs),
                }
            )
    return rows


def print_table(args, rows):
    def row_for(size, impl):
        return next((r for r in rows if r["N"] == size and r["impl"] == impl), None)

    header = ["N", "program", "events", "ever failed", "time (s)", "fastest-slowest", "events/s", "peak memory",
              "time / heap loop", "SimPy time / kmsim"]
    table = []
    for r in rows:
        heap_row, simpy_row, kmsim_row = (row_for(r["N"], x) for x in ("heap loop", "SimPy", "kmsim"))
        rate = r["events"] / r["sim_s"]
        vs_heap = f"{r['sim_s'] / heap_row['sim_s']:.2f}x" if heap_row else ""
        vs_simpy = ""
        if r["impl"] == "kmsim" and simpy_row:
            vs_simpy = f"{simpy_row['sim_s'] / r['sim_s']:.1f}x"
        lo, hi = r["range"]
        table.append([r["N"], r["impl"], f"{r['events']:,}", f"{r['ever_failed']:,}", f"{r['sim_s']:.3f}",
                      f"{lo:.3f}-{hi:.3f}", f"{rate / 1e6:.2f} M", fmt_mem(r["peak_mib"]), vs_heap, vs_simpy])

    if args.markdown:
        print("| " + " | ".join(header) + " |")
        print("|" + "---|" * len(header))
        for t in table:
            print("| " + " | ".join(t) + " |")
    else:
        widths = [max(len(str(x)) for x in col) for col in zip(header, *table)]
        for t in [header] + table:
            print("  ".join(str(x).rjust(w) for x, w in zip(t, widths)))
    where = "on one CPU, beside stress-ng --cache 1 on another" if args.neighbour else f"{os.cpu_count()} CPUs"
    print(f"\nmedian of {args.repeat} runs each (and the fastest and slowest), alternated; seed {args.seed}; "
          f"{where}; kmsim counts the initial import as one more key call.")


if __name__ == "__main__":
    main()
