#!/usr/bin/env python3
"""Turns a tools/bench.sh results directory into the console table, the last
line `ratio ...` (every target of issue 15, with its spread), BENCHMARKS.md
and bench/*.png.

Per job and target: the median over runs of fio's completion-latency p50/p99
(clat), IOPS and MB/s (read + write), and the server's CPU time per I/O from
/proc/<pid>/stat (memx-backd for MemX, nbdkit for nbdkit; the memory servers'
CPU is shown separately).  Spread = (max - min) / median across runs.  A ratio
between two targets is the median of the per-repetition ratios (the targets
of one repetition ran one after the other: paired), its spread theirs.
Targets: memx (2 memory servers, the shipped configuration unless conf.txt
says otherwise), nbdkit, memx8 (8 memory servers), memx+ (opt-in settings).
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
SIDES = ["memx8", "memx+"]
LABEL = {"memx": "memx", "nbdkit": "nbdkit", "memx8": "memx 8srv", "memx+": "memx+opt"}

# The targets of issue 15: (key, what, numerator, denominator, bound, op).
# A term is (target, job, metric); a bare number is an absolute bound.
RATIOS = [
    ("wr_qd1_p50", "4k randwrite QD1 p50 / MemX 4k randread QD1 p50",
     ("memx", "rw4k_qd1", "p50"), ("memx", "rr4k_qd1", "p50"), 1.3, "<="),
    ("w32_iops", "4k randwrite QD32 IOPS / nbdkit", ("memx", "rw4k_qd32", "iops"),
     ("nbdkit", "rw4k_qd32", "iops"), 1.0, ">="),
    ("seqw_mbs", "64k seq write MB/s / nbdkit", ("memx", "seqw64k", "mbs"), ("nbdkit", "seqw64k", "mbs"), 0.5, ">="),
    ("seqr_mbs", "64k seq read MB/s / nbdkit", ("memx", "seqr64k", "mbs"), ("nbdkit", "seqr64k", "mbs"), 0.5, ">="),
    ("swap_iops", "swap mix IOPS / nbdkit", ("memx", "swapmix", "iops"), ("nbdkit", "swapmix", "iops"), 1.0, ">="),
    ("qd32_iops", "4k randread QD32 IOPS / nbdkit", ("memx", "rr4k_qd32", "iops"),
     ("nbdkit", "rr4k_qd32", "iops"), 1.5, ">="),
    ("qd1_p50", "4k randread QD1 p50 / nbdkit", ("memx", "rr4k_qd1", "p50"), ("nbdkit", "rr4k_qd1", "p50"), 1.5, "<="),
    ("w1_8v2_p50", "4k randwrite QD1 p50, 8 memory servers / 2", ("memx8", "rw4k_qd1", "p50"),
     ("memx", "rw4k_qd1", "p50"), 1.1, "<="),
    ("w32_cpu_us", "backend CPU µs per 4k write at QD32", ("memx", "rw4k_qd32", "cpu"), None, 10.0, "<="),
]


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


def load_runs(R, t, name):
    """{rep: one_run} of target t's job name."""
    out = {}
    for p in glob.glob(os.path.join(R, f"{t}.{name}.*.json")):
        rep = p[:-5].rsplit(".", 1)[1]
        if rep.isdigit():
            out[int(rep)] = one_run(p[:-5])
    return out


def traffic(R, t, name):
    """The transport traffic per request over every run of the job (memxctl
    --json stats before and after each run, ctl.c's traffic object)."""
    keys = ("msgs_sent", "bytes_sent", "page_msgs", "page_bytes", "msgs_recvd", "bytes_recvd",
            "rma_reads", "rma_pieces", "rma_bytes", "writes", "reads")
    tot = dict.fromkeys(keys, 0)
    seen = False
    for p in glob.glob(os.path.join(R, f"{t}.{name}.*.stats0")):
        try:
            a = json.load(open(p)).get("traffic")
            b = json.load(open(p[:-1] + "1")).get("traffic")
        except (OSError, ValueError):
            continue
        if not a or not b:
            continue
        seen = True
        for k in keys:
            tot[k] += b.get(k, 0) - a.get(k, 0)
    if not seen:
        return None
    w, r = tot["writes"], tot["reads"]
    return {
        "writes": w, "reads": r,
        "w_msgs": tot["msgs_sent"] / w if w else None,
        "w_page_msgs": tot["page_msgs"] / w if w else None,
        "w_other_msgs": (tot["msgs_sent"] - tot["page_msgs"]) / w if w else None,
        "w_recvd": tot["msgs_recvd"] / w if w else None,
        "w_kib": tot["bytes_sent"] / w / 1024 if w else None,
        "r_rma": tot["rma_reads"] / r if r else None,
        "r_pieces": tot["rma_pieces"] / r if r else None,
        "r_kib": tot["rma_bytes"] / r / 1024 if r else None,
    }


def netbench(path):
    out = {}
    for line in open(path):
        m = re.match(r"netbench (read|write) qd=(\d+) ops=\d+ p50_us=([\d.]+) p99_us=([\d.]+) iops=(\d+)", line)
        if m:
            kind, qd = m.group(1), int(m.group(2))
            out[(kind, "qd1" if qd == 1 else "qdN")] = {
                "qd": qd, "p50": float(m.group(3)), "p99": float(m.group(4)), "iops": float(m.group(5))}
    return out


def ratio_of(runs, num, den):
    """(median, spread %, n) of the per-repetition ratio num/den (den None: num itself)."""
    a = runs.get((num[0], num[1]), {})
    b = runs.get((den[0], den[1]), {}) if den else None
    vals = []
    for rep, ra in sorted(a.items()):
        if b is None:
            vals.append(ra[num[2]])
        elif rep in b and b[rep][den[2]]:
            vals.append(ra[num[2]] / b[rep][den[2]])
    if not vals:
        return None
    med = statistics.median(vals)
    return med, ((max(vals) - min(vals)) / med * 100 if med else 0.0), len(vals)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--results", required=True)
    ap.add_argument("--out", required=True, help="source tree: BENCHMARKS.md and bench/ go here")
    ap.add_argument("--size", required=True)
    ap.add_argument("--replicas", required=True)
    ap.add_argument("--runtime", required=True)
    ap.add_argument("--reps", required=True)
    ap.add_argument("--servers8", default="8")
    ap.add_argument("--optin", default="")
    a = ap.parse_args()
    R = a.results

    runs, res = {}, {}
    for name, _ in JOBS:
        for t in TARGETS + SIDES:
            rr = load_runs(R, t, name)
            if not rr:
                continue
            runs[(t, name)] = rr
            vals = list(rr.values())
            res[(name, t)] = {k: summarize(vals, k) for k in ("p50", "p99", "iops", "mbs", "cpu", "pool_cpu")}
            res[(name, t)]["n"] = len(vals)
            res[(name, t)]["errors"] = sum(1 for r in vals if r["err"])
            res[(name, t)]["traffic"] = traffic(R, t, name) if t != "nbdkit" else None
    if not res:
        sys.exit(f"bench: no results in {R}")
    # MEMX_BENCH_JOBS may have run only some jobs.
    jobs = [(n, l) for n, l in JOBS if all((n, t) in res for t in TARGETS)]
    nb = netbench(os.path.join(R, "netbench.txt"))
    conf_path = os.path.join(R, "conf.txt")
    conf = " ".join(l.strip().replace(" ", "") for l in open(conf_path) if l.strip()) if os.path.exists(
        conf_path) else ""

    hdr = f"{'job':<28} {'target':<9} {'p50 us':>14} {'p99 us':>14} {'IOPS':>16} {'MB/s':>14} {'srv CPU us/IO':>14} {'pool CPU':>9}"
    lines = [hdr, "-" * len(hdr)]
    md = ["| job | target | p50 µs | p99 µs | IOPS | MB/s | server CPU µs/I/O | memd CPU µs/I/O |",
          "|---|---|---:|---:|---:|---:|---:|---:|"]
    for name, label in jobs:
        for t in TARGETS + SIDES:
            if (name, t) not in res:
                continue
            r = res[(name, t)]
            def f(k, fmt):
                m, s = r[k]
                return (fmt % m) + f" ±{s:3.0f}%"
            pool = "%.1f" % r["pool_cpu"][0] if t != "nbdkit" else "-"
            lines.append(f"{label:<28} {LABEL[t]:<9} {f('p50', '%.1f'):>14} {f('p99', '%.1f'):>14} {f('iops', '%.0f'):>16}"
                         f" {f('mbs', '%.1f'):>14} {f('cpu', '%.1f'):>14} {pool:>9}")
            md.append(f"| {label} | {LABEL[t]} | {f('p50', '%.1f')} | {f('p99', '%.1f')} | {f('iops', '%.0f')} | "
                      f"{f('mbs', '%.1f')} | {f('cpu', '%.1f')} | {pool} |")
    for kind in ("read", "write"):
        for q in ("qd1", "qdN"):
            if (kind, q) in nb:
                n = nb[(kind, q)]
                label = f"floor 4k fab_{'read' if kind == 'read' else 'send+ack'} QD{n['qd']}"
                lines.append(f"{label:<28} {'fabric':<9} {n['p50']:>14.1f} {n['p99']:>14.1f} {n['iops']:>16.0f}"
                             f" {n['iops'] * 4096 / 1e6:>14.1f} {'-':>14} {'-':>9}")
                md.append(f"| {label} | fabric | {n['p50']:.1f} | {n['p99']:.1f} | {n['iops']:.0f} | "
                          f"{n['iops'] * 4096 / 1e6:.1f} | - | - |")

    # ---- transport traffic per guest request (memxctl stats' counters) ----
    def g(v, fmt="%.2f"):
        return "-" if v is None else fmt % v
    thdr = (f"{'job':<28} {'target':<9} {'msgs/write':>10} {'page':>6} {'other':>6} {'answers':>7} {'KiB/write':>9}"
            f" {'RMA/read':>8} {'pieces':>6} {'KiB/read':>8}")
    tlines = [thdr, "-" * len(thdr)]
    tmd = ["| job | target | messages sent / write | with pages | other | received / write | KiB sent / write | "
           "RMA reads / read | pieces / read | KiB / read |", "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, label in jobs:
        for t in ["memx"] + SIDES:
            tr = res.get((name, t), {}).get("traffic")
            if not tr:
                continue
            cells = [g(tr["w_msgs"]), g(tr["w_page_msgs"]), g(tr["w_other_msgs"]), g(tr["w_recvd"]),
                     g(tr["w_kib"], "%.1f"), g(tr["r_rma"]), g(tr["r_pieces"]), g(tr["r_kib"], "%.1f")]
            tlines.append(f"{label:<28} {LABEL[t]:<9} {cells[0]:>10} {cells[1]:>6} {cells[2]:>6} {cells[3]:>7}"
                          f" {cells[4]:>9} {cells[5]:>8} {cells[6]:>6} {cells[7]:>8}")
            tmd.append(f"| {label} | {LABEL[t]} | " + " | ".join(cells) + " |")

    # ---- the ratio line: every target with its spread ----
    parts, met, missed, rmd = [], 0, [], []
    for key, what, num, den, bound, op in RATIOS:
        v = ratio_of(runs, num, den)
        if v is None:
            continue
        m, sp, n = v
        ok = m <= bound if op == "<=" else m >= bound
        met += ok
        if not ok:
            missed.append(key)
        parts.append(f"{key}={m:.2f}±{sp:.0f}%")
        rmd.append(f"| `{key}` | {what} | {m:.2f} ± {sp:.0f}% | {op} {bound:g} | {'met' if ok else '**missed**'} |")
    ratio = "ratio " + " ".join(parts)
    verdict = f"targets: {met} of {len(parts)} met" + (f"; missed: {' '.join(missed)}" if missed else "")
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
    shipped = ("the configuration MemX ships (no `[backend]` setting overridden)" if not conf else
               f"**not the shipped defaults**: `{conf}` (MEMX_BENCH_RING_POLL_US / MEMX_BENCH_GATHER_READS)")
    sides = []
    if any(t == "memx8" for t, _ in runs):
        sides.append(f"- **memx 8srv**: a second MemX world like the first but with {a.servers8} memory servers "
                     "(same R), for the write QD1 job: what a write costs must not grow with the cluster.")
    if any(t == "memx+" for t, _ in runs):
        sides.append(f"- **memx+opt**: a third MemX world with the opt-in `{a.optin}`, for the QD1/QD32 jobs, "
                     "beside the headline (shipped) figures.")
    doc = f"""# MemX benchmarks

Generated by `make bench` (tools/bench.sh, bench/report.py); do not edit by hand — the
analysis section comes from bench/analysis.md.

**Setup.** One machine, one run: a {a.size} disk each.
- **MemX**: fio → `memx-fio.so` (libmemxfront, the userspace blkif frontend) → blkif ring + event
  channel on the **sim** platform → `memx-backd` → libfabric `tcp;ofi_rxm` on loopback → 2 `memx-memd`
  (replicas = {a.replicas}: a write is stored on both servers before it is acknowledged); the backend runs
  {shipped}.
- **nbdkit**: fio's `nbd` engine (libnbd) → `nbdkit memory {a.size}` over TCP on loopback.
- **floor**: `memx-netbench`, the bare libfabric round trip the pool rides on (4 KiB `fab_read`,
  and 4 KiB `fab_send` answered by an ack), between two processes on the same provider.
{chr(10).join(sides)}

Each job: {a.reps} runs of {a.runtime} s per target, the targets alternating within each repetition; every disk
was filled with incompressible data first, so every read reaches a server.  Figures are medians across runs,
± the spread (max − min) / median.  A ratio is the median of the per-repetition ratios (paired runs), ± their
spread.  Latency is fio's completion latency (clat).  Server CPU is user+system time of `memx-backd` (MemX) or
`nbdkit` per I/O; memd CPU is the memory servers together.
Machine load at the end of the run: `{load}` (2 cores; the benchmark's own processes load them, and
anything else running does too: ratios from the same run are the comparison).

```
{ratio}
{verdict}
```

| target | what | this run | bound | |
|---|---|---:|---:|---|
{chr(10).join(rmd)}

{chr(10).join(md)}

{"![latency and IOPS, MemX vs nbdkit](bench/bench.png)" if png else "(gnuplot was not available: no plot)"}

Transport traffic per guest request, per job (`memxctl stats` counters before and after each run; every
message is charged to the writes, since reads are one-sided RMA reads):

{chr(10).join(tmd)}

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
    print()
    print("transport per guest request:")
    print("\n".join(tlines))
    if errs:
        print(f"bench: {errs} fio runs reported errors (see the JSON)")
    if floor and ("rr4k_qd1", "memx") in res:
        print(f"floor: fabric 4k read QD1 p50 {floor:.1f} us; MemX 4k randread QD1 p50 is "
              f"{res[('rr4k_qd1', 'memx')]['p50'][0] / floor:.1f}x that")
    if conf:
        print(f"bench: the headline MemX figures are NOT the shipped defaults: {conf}")
    print(f"bench: wrote {os.path.join(a.out, 'BENCHMARKS.md')}" + (f" and {png}" if png else ""))
    print(verdict)
    print(ratio)


if __name__ == "__main__":
    main()
