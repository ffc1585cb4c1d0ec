#!/usr/bin/env python3
"""Turns a tools/bench.sh results directory into the console table, the last
line `ratio qd1_p50=X qd32_iops=Y`, BENCHMARKS.md and bench/*.png.

Per job and target: the median over runs of fio's completion-latency p50/p99
(clat), IOPS and MB/s (read + write), and the server's CPU time per I/O from
/proc/<pid>/stat (memx-backd for MemX, nbdkit for nbdkit; the memory servers'
CPU is shown separately).  Spread = (max - min) / median across runs.
"""
import argparse
import glob
import json
import os
import re
import statistics
import subprocess
import sys

JOBS = [
    ("rr4k_qd1", "4k randread QD1"),
    ("rr4k_qd32", "4k randread QD32"),
    ("rw4k_qd1", "4k randwrite QD1"),
    ("rw4k_qd32", "4k randwrite QD32"),
    ("seqr64k", "64k seq read QD8"),
    ("seqw64k", "64k seq write QD8"),
    ("swapmix", "swap mix 60/40 4k+32k QD16"),
]
TARGETS = ["memx", "nbdkit"]


def one_run(prefix):
    with open(prefix + ".json") as f:
        text = f.read()
    # fio may print notes before the JSON object.
    j = json.loads(text[text.index("{"):])["jobs"][0]
    ios = iops = bw = 0.0
    p50s, p99s = [], []
    for d in ("read", "write"):
        s = j[d]
        if not s["total_ios"]:
            continue
        ios += s["total_ios"]
        iops += s["iops"]
        bw += s["bw_bytes"]
        pct = s["clat_ns"].get("percentile", {})
        p50s.append((s["total_ios"], pct.get("50.000000", 0) / 1000.0))
        p99s.append((s["total_ios"], pct.get("99.000000", 0) / 1000.0))
    # Mixed jobs: the I/O-weighted mean of the read and write percentiles.
    w = sum(n for n, _ in p50s) or 1
    p50 = sum(n * v for n, v in p50s) / w
    p99 = sum(n * v for n, v in p99s) / w
    hz, srv, pool = (int(x) for x in open(prefix + ".cpu").read().split())
    return {
        "p50": p50, "p99": p99, "iops": iops, "mbs": bw / 1e6,
        "cpu": srv / hz * 1e6 / ios if ios else 0.0,
        "pool_cpu": pool / hz * 1e6 / ios if ios else 0.0,
        "err": j.get("error", 0),
    }


def summarize(runs, key):
    vals = [r[key] for r in runs]
    med = statistics.median(vals)
    spread = (max(vals) - min(vals)) / med * 100 if med else 0.0
    return med, spread


def netbench(path):
    out = {}
    for line in open(path):
        m = re.match(r"netbench (read|write) qd=(\d+) ops=\d+ p50_us=([\d.]+) p99_us=([\d.]+) iops=(\d+)", line)
        if m:
            kind, qd = m.group(1), int(m.group(2))
            out[(kind, "qd1" if qd == 1 else "qdN")] = {
                "qd": qd, "p50": float(m.group(3)), "p99": float(m.group(4)), "iops": float(m.group(5))}
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--results", required=True)
    ap.add_argument("--out", required=True, help="source tree: BENCHMARKS.md and bench/ go here")
    ap.add_argument("--size", required=True)
    ap.add_argument("--replicas", required=True)
    ap.add_argument("--runtime", required=True)
    ap.add_argument("--reps", required=True)
    a = ap.parse_args()
    R = a.results

    res = {}
    for name, _ in JOBS:
        for t in TARGETS:
            runs = [one_run(p[:-5]) for p in sorted(glob.glob(os.path.join(R, f"{t}.{name}.*.json")))]
            if not runs:
                continue
            res[(name, t)] = {k: summarize(runs, k) for k in ("p50", "p99", "iops", "mbs", "cpu", "pool_cpu")}
            res[(name, t)]["n"] = len(runs)
            res[(name, t)]["errors"] = sum(1 for r in runs if r["err"])
    if not res:
        sys.exit(f"bench: no results in {R}")
    # MEMX_BENCH_JOBS may have run only some jobs.
    jobs = [(n, l) for n, l in JOBS if all((n, t) in res for t in TARGETS)]
    nb = netbench(os.path.join(R, "netbench.txt"))

    hdr = f"{'job':<28} {'target':<7} {'p50 us':>14} {'p99 us':>14} {'IOPS':>16} {'MB/s':>14} {'srv CPU us/IO':>14} {'pool CPU':>9}"
    lines = [hdr, "-" * len(hdr)]
    md = ["| job | target | p50 µs | p99 µs | IOPS | MB/s | server CPU µs/I/O | memd CPU µs/I/O |",
          "|---|---|---:|---:|---:|---:|---:|---:|"]
    for name, label in jobs:
        for t in TARGETS:
            r = res[(name, t)]
            def f(k, fmt):
                m, s = r[k]
                return (fmt % m) + f" ±{s:3.0f}%"
            pool = "%.1f" % r["pool_cpu"][0] if t == "memx" else "-"
            lines.append(f"{label:<28} {t:<7} {f('p50', '%.1f'):>14} {f('p99', '%.1f'):>14} {f('iops', '%.0f'):>16}"
                         f" {f('mbs', '%.1f'):>14} {f('cpu', '%.1f'):>14} {pool:>9}")
            md.append(f"| {label} | {t} | {f('p50', '%.1f')} | {f('p99', '%.1f')} | {f('iops', '%.0f')} | "
                      f"{f('mbs', '%.1f')} | {f('cpu', '%.1f')} | {pool} |")
    for kind in ("read", "write"):
        for q in ("qd1", "qdN"):
            if (kind, q) in nb:
                n = nb[(kind, q)]
                label = f"floor 4k fab_{'read' if kind == 'read' else 'send+ack'} QD{n['qd']}"
                lines.append(f"{label:<28} {'fabric':<7} {n['p50']:>14.1f} {n['p99']:>14.1f} {n['iops']:>16.0f}"
                             f" {n['iops'] * 4096 / 1e6:>14.1f} {'-':>14} {'-':>9}")
                md.append(f"| {label} | fabric | {n['p50']:.1f} | {n['p99']:.1f} | {n['iops']:.0f} | "
                          f"{n['iops'] * 4096 / 1e6:.1f} | - | - |")

    def ratio_of(name, key):
        if (name, "memx") not in res or (name, "nbdkit") not in res:
            return float("nan")
        return res[(name, "memx")][key][0] / res[(name, "nbdkit")][key][0]
    x = ratio_of("rr4k_qd1", "p50")
    y = ratio_of("rr4k_qd32", "iops")
    floor = nb.get(("read", "qd1"), {}).get("p50")
    errs = sum(v["errors"] for v in res.values())

    # ---- plots ----
    bdir = os.path.join(a.out, "bench")
    os.makedirs(bdir, exist_ok=True)
    dat = os.path.join(R, "plot.dat")
    with open(dat, "w") as f:
        f.write("job memx_p50 nbd_p50 memx_iops nbd_iops\n")
        for name, label in jobs:
            m, n = res[(name, "memx")], res[(name, "nbdkit")]
            f.write(f"\"{label}\" {m['p50'][0]:.1f} {n['p50'][0]:.1f} {m['iops'][0]:.0f} {n['iops'][0]:.0f}\n")
    png = os.path.join(bdir, "bench.png")
    gp = f"""
set terminal pngcairo size 1200,520 font ',10' noenhanced
set output '{png}'
set multiplot layout 1,2 title 'MemX (sim, 2 memx-memd, tcp;ofi_rxm) vs nbdkit memory (nbd over TCP), {a.size} disk, medians of {a.reps} runs'
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set xtics rotate by -30 scale 0
set key top left
set grid ytics
set ylabel 'p50 completion latency (µs, log)'
set logscale y
set title 'latency p50 (lower is better)'
plot '{dat}' using 2:xtic(1) title 'MemX' lc rgb '#2a7ab0', '' using 3 title 'nbdkit' lc rgb '#d08020'{
    f", {floor} with lines lw 2 dt 2 lc rgb '#444444' title 'fabric 4k read QD1 p50'" if floor else ''}
unset logscale y
set ylabel 'IOPS'
set title 'IOPS (higher is better)'
plot '{dat}' using 4:xtic(1) title 'MemX' lc rgb '#2a7ab0', '' using 5 title 'nbdkit' lc rgb '#d08020'
unset multiplot
"""
    try:
        subprocess.run(["gnuplot"], input=gp, text=True, check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError) as e:
        print(f"bench: gnuplot failed: {getattr(e, 'stderr', e)}", file=sys.stderr)
        png = None

    # ---- BENCHMARKS.md ----
    load = open(os.path.join(R, "load.txt")).read().strip() if os.path.exists(os.path.join(R, "load.txt")) else "?"
    stats = open(os.path.join(R, "memxctl-stats.txt")).read().rstrip() if os.path.exists(
        os.path.join(R, "memxctl-stats.txt")) else ""
    analysis_path = os.path.join(a.out, "bench", "analysis.md")
    analysis = open(analysis_path).read().rstrip() if os.path.exists(analysis_path) else ""
    ratio = f"ratio qd1_p50={x:.2f} qd32_iops={y:.2f}"
    doc = f"""# MemX benchmarks

Generated by `make bench` (tools/bench.sh, bench/report.py); do not edit by hand — the
analysis section comes from bench/analysis.md.

**Setup.** One machine, one run: a {a.size} disk each.
- **MemX**: fio → `memx-fio.so` (libmemxfront, the userspace blkif frontend) → blkif ring + event
  channel on the **sim** platform → `memx-backd` → libfabric `tcp;ofi_rxm` on loopback → 2 `memx-memd`
  (replicas = {a.replicas}: a write is stored on both servers before it is acknowledged); the backend
  polls busy rings and gathers reads (`ring_poll_us = 50`, `gather_reads = yes`; both off by
  default: see memx.conf.example).
- **nbdkit**: fio's `nbd` engine (libnbd) → `nbdkit memory {a.size}` over TCP on loopback.
- **floor**: `memx-netbench`, the bare libfabric round trip the pool rides on (4 KiB `fab_read`,
  and 4 KiB `fab_send` answered by an ack), between two processes on the same provider.

Each job: {a.reps} runs of {a.runtime} s per target, MemX and nbdkit alternating; both disks were filled with
incompressible data first, so every read reaches a server.  Figures are medians across runs, ± the spread
(max − min) / median.  Latency is fio's completion latency (clat).  Server CPU is user+system time of
`memx-backd` (MemX) or `nbdkit` per I/O; memd CPU is both memory servers together.
Machine load at the end of the run: `{load}` (2 cores; the benchmark's own processes load them, and
anything else running does too: ratios from the same run are the comparison).

```
{ratio}
```

{chr(10).join(md)}

{"![latency and IOPS, MemX vs nbdkit](bench/bench.png)" if png else "(gnuplot was not available: no plot)"}

Backend view at the end of the run (`memxctl stats`; the volume layer's own latency histogram, from request
hand-off to the volume until its completion):

```
{stats}
```

{analysis}
"""
    with open(os.path.join(a.out, "BENCHMARKS.md"), "w") as f:
        f.write(doc)

    print("\n".join(lines))
    if errs:
        print(f"bench: {errs} fio runs reported errors (see the JSON)")
    if floor and ("rr4k_qd1", "memx") in res:
        print(f"floor: fabric 4k read QD1 p50 {floor:.1f} us; MemX 4k randread QD1 p50 is "
              f"{res[('rr4k_qd1', 'memx')]['p50'][0] / floor:.1f}x that")
    print(f"bench: wrote {os.path.join(a.out, 'BENCHMARKS.md')}" + (f" and {png}" if png else ""))
    print(ratio)


if __name__ == "__main__":
    main()
