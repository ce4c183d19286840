#!/usr/bin/env python3
"""report.py: turns compare.sh's raw runs into tables, latest.json and PNGs.

    report.py RUNS.jsonl REDIS_BENCHMARK.csv OUT_DIR RUNS DURATION KEYS
    report.py --plot OUT_DIR      (redraw the PNGs from OUT_DIR/latest.json)

RUNS.jsonl holds one line per kvbench run ({"case", "label", "server",
"run", "result"}) or per other measured figure ({"case", "note", "value"}).
Prints one markdown table per case, writes OUT_DIR/latest.json, and, if
gnuplot is installed, OUT_DIR/case<N>_throughput.png (bars: kvd vs Redis vs
ceiling) and OUT_DIR/case<N>_cdf_<label>.png (latency CDFs from kvbench's
histogram buckets).
"""
import csv
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

SERVERS = ("kvd", "redis", "ceiling")


def summary(results):
    rps = [x.get("throughput_rps", 0) for x in results]
    p99 = [x.get("latency_us", {}).get("p99", 0) for x in results]
    s = {"median_rps": statistics.median(rps), "min_rps": min(rps), "max_rps": max(rps),
         "median_p99_us": statistics.median(p99),
         "errors": sum(x.get("errors", 0) for x in results)}
    lags = [x["replication_lag"] for x in results if x.get("replication_lag")]
    if lags:
        lag_hist = {}
        for l in lags:
            for us, count in l.pop("histogram_us", []):
                lag_hist[us] = lag_hist.get(us, 0) + count
        s["lag_ms"] = {k: statistics.median(l[k] for l in lags)
                       for k in ("p50_ms", "p90_ms", "p99_ms", "max_ms")}
        s["lag_ms"]["samples"] = sum(l["samples"] for l in lags)
        s["lag_ms"]["unfinished"] = sum(l["unfinished"] for l in lags)
        s["lag_histogram_us"] = sorted(lag_hist.items())
    # Paced runs: how late kvbench's 1 ms pace timer ran (its own loop's
    # stalls, a floor under the lag it can see), medians over the runs.
    late = [x["pace_late"] for x in results if x.get("pace_late")]
    if late:
        s["pace_late_ms"] = {k: statistics.median(l[k] for l in late)
                             for k in ("p50_ms", "p99_ms", "p999_ms", "max_ms")}
    # How busy each event loop was (kvbench --server-pids): kvbench's own,
    # and each server process's main thread, medians over the runs.
    # Runs that never measured (kvbench -1) are left out, and so is a
    # server that could not be read in a run (-1), rather than pulling
    # the medians down; -1 stays only where no run could read it.
    busy = [x["loop_busy"] for x in results
            if x.get("loop_busy") and x["loop_busy"]["kvbench"] >= 0]
    if busy:
        n = max(len(b["servers"]) for b in busy)
        servers = []
        for i in range(n):
            seen = [b["servers"][i] for b in busy if i < len(b["servers"]) and b["servers"][i] >= 0]
            servers.append(statistics.median(seen) if seen else -1.0)
        s["loop_busy"] = {"kvbench": statistics.median(b["kvbench"] for b in busy),
                          "servers": servers}
    # Histogram of all runs together, for the CDF plots.
    hist = {}
    for x in results:
        for us, count in x.get("histogram_us", []):
            hist[us] = hist.get(us, 0) + count
    s["histogram_us"] = sorted(hist.items())
    s["runs"] = [{k: v for k, v in x.items() if k != "histogram_us"} for x in results]
    return s


def loops_cores(busy):
    """Cores the loops used together: every server loop and kvbench's."""
    return sum(b for b in busy["servers"] if b >= 0) + busy["kvbench"]


def bound_by(busy):
    """Which loop limited a run, from its loop_busy summary: one loop at 90 %
    of a core, or else the loops together at 70 % of the machine's cores
    (the rest goes to the kernel's network work and other threads)."""
    servers = [b for b in busy["servers"] if b >= 0]
    if servers and max(servers) >= 0.9:
        return "server"
    if busy["kvbench"] >= 0.9:
        return "kvbench"
    if loops_cores(busy) >= 0.7 * (os.cpu_count() or 1):
        return "shared cores"
    return "neither"


def print_busy(by_label):
    """One table per case: how busy each loop was, and so what a figure measured.

    by_label: label -> server -> summary. On a 2-core machine the servers
    and kvbench share the cores: a throughput is the server's own only when
    its loop was busy all the run (bench/README.md, "Loop busy").
    """
    rows = [(label, srv, sm["loop_busy"]) for label, by_server in by_label.items()
            for srv, sm in by_server.items() if isinstance(sm, dict) and sm.get("loop_busy")]
    if not rows:
        return
    print("\nLoop busy (share of one core over the measurement, median of the runs):\n")
    print("| workload | server | server loop(s) | kvbench loop | all loops, cores | bound by |\n"
          "|---|---|---|---|---|---|")
    for label, srv, busy in rows:
        loops = ", ".join(f"{b:.0%}" if b >= 0 else "?" for b in busy["servers"]) or "-"
        print(f"| {label} | {srv} | {loops} | {busy['kvbench']:.0%} | {loops_cores(busy):.2f} "
              f"| {bound_by(busy)} |")


def main():
    runs_path, rb_path, out_dir, runs, duration, keys = sys.argv[1:7]
    rows = [json.loads(line) for line in open(runs_path)]
    notes = {}
    groups = {}  # case -> label -> server -> [results]
    for r in rows:
        if "note" in r:
            notes.setdefault(r["case"], {})[r["note"]] = r["value"]
            continue
        groups.setdefault(r["case"], {}).setdefault(r["label"], {}).setdefault(
            r["server"], []).append(r["result"])
    rb = {}
    for line in csv.reader(open(rb_path)):
        if len(line) >= 3 and line[1] in ("SET", "GET"):
            rb[f"{'PUT' if line[1] == 'SET' else 'GET'} P={line[0]}"] = float(line[2])

    cpu = "unknown"
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    doc = {"generated": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
           "machine": {"nproc": os.cpu_count(), "cpu": cpu, "kernel": platform.release(),
                       "loadavg": open("/proc/loadavg").read().split()[:3]},
           "settings": {"runs": int(runs), "duration_s": float(duration), "keys": int(keys)},
           "cases": {}}
    print(f"causalkv bench: {keys} keys, C=50, 100-byte values, median of {runs} x {duration} s;"
          f" {os.cpu_count()} cores, {cpu}, load {' '.join(doc['machine']['loadavg'])}")
    probes = {k.removeprefix("page_cache_mb_s_"): v for k, v in notes.get("host", {}).items()}
    if probes:
        # bench/README.md, "The host's memory": under ~1,000 MB/s the host
        # is backing guest memory at first touch, and log writes pay for it.
        doc["machine"]["page_cache_mb_s"] = probes
        print("page cache writes, MB/s (new file, 128 MiB): " +
              ", ".join(f"{k.replace('_', ' ')} {v:,}" for k, v in probes.items()))

    fmt = lambda s: f"{s['median_rps']:,.0f} ({s['min_rps']:,.0f}-{s['max_rps']:,.0f})"
    ratio = lambda a, b: f"{a / b:.2f}x" if a and b else "-"
    titles = {"1": "one node, no fsync", "2": "three nodes replicating (no fsync)",
              "3": "durable writes, one node", "5": "replication lag, three nodes"}
    for case in sorted(groups):
        labels = groups[case]
        out = {}
        print(f"\n### Case {case}: {titles.get(case, '')}\n")
        if case == "5":
            hdr = ("server", "workload", "req/s", "rate limit", "lag p50 ms", "lag p90 ms",
                   "lag p99 ms", "lag max ms", "samples (unfinished)", "p99 us",
                   "kvbench late p99 / max ms")
            print("| " + " | ".join(hdr) + " |\n|" + "---|" * len(hdr))
            for label, by_server in labels.items():
                out[label] = {s: summary(v) for s, v in by_server.items()}
                for s, sm in out[label].items():
                    lag = sm.get("lag_ms")
                    rate = sm["runs"][0].get("rate_limit", 0)
                    cells = [s, label, fmt(sm), f"{rate:,.0f}" if rate else "-"]
                    if lag:
                        cells += [f"{lag[k]:.3f}" for k in ("p50_ms", "p90_ms", "p99_ms", "max_ms")]
                        cells += [f"{lag['samples']} ({lag['unfinished']})"]
                    else:
                        cells += ["-"] * 5
                    cells += [f"{sm['median_p99_us']:.0f}"]
                    late = sm.get("pace_late_ms")
                    cells += [f"{late['p99_ms']:.2f} / {late['max_ms']:.1f}" if late else "-"]
                    print("| " + " | ".join(cells) + " |")
            print_busy(out)
        else:
            servers = [s for s in SERVERS if any(s in v for v in labels.values())]
            hdr = ["workload"] + [f"{s} req/s" for s in servers] + ["kvd/redis"]
            if "ceiling" in servers:
                hdr.append("kvd/ceil")
            hdr += [f"p99 {s} us" for s in servers if s != "ceiling"]
            if case == "1":
                hdr.append("redis-benchmark")
            print("| " + " | ".join(hdr) + " |\n|" + "---|" * len(hdr))
            for label, by_server in labels.items():
                c = {s: summary(v) for s, v in by_server.items()}
                med = {s: c[s]["median_rps"] if s in c else None for s in servers}
                c["kvd_over_redis"] = med["kvd"] / med["redis"] if med.get("kvd") and med.get("redis") else None
                cells = [label] + [fmt(c[s]) if s in c else "-" for s in servers]
                cells.append(ratio(med.get("kvd"), med.get("redis")))
                if "ceiling" in servers:
                    c["kvd_over_ceiling"] = (med["kvd"] / med["ceiling"]
                                             if med.get("kvd") and med.get("ceiling") else None)
                    cells.append(ratio(med.get("kvd"), med.get("ceiling")))
                cells += [f"{c[s]['median_p99_us']:.0f}" if s in c else "-"
                          for s in servers if s != "ceiling"]
                if case == "1":
                    c["redis_benchmark_rps"] = rb.get(label)
                    cells.append(f"{rb[label]:,.0f}" if label in rb else "-")
                errs = sum(c[s]["errors"] for s in servers if s in c)
                print("| " + " | ".join(cells) + " |" + (f"  ERRORS: {errs}" if errs else ""))
                out[label] = c
            print_busy(out)
        doc["cases"][case] = out
    if "4" in notes:
        n = notes["4"]
        k = int(n["keys"])
        per = {s: (n[f"{s}_rss_after_kb"] - n[f"{s}_rss_before_kb"]) * 1024 / k for s in ("kvd", "redis")}
        tot = {s: n[f"{s}_rss_after_kb"] * 1024 / k for s in ("kvd", "redis")}
        doc["cases"]["4"] = {"keys": k, "value_size": 100, "notes": n,
                             "bytes_per_key_growth": per, "bytes_per_key_total": tot,
                             "kvd_over_redis": per["kvd"] / per["redis"] if per["redis"] else None}
        print(f"\n### Case 4: memory after loading {k:,} keys of 100-byte values\n")
        print("| server | RSS before MiB | RSS after MiB | bytes/key (growth) | bytes/key (total RSS) | load s |")
        print("|---|---|---|---|---|---|")
        for s in ("kvd", "redis"):
            print(f"| {s} | {n[f'{s}_rss_before_kb'] / 1024:.1f} | {n[f'{s}_rss_after_kb'] / 1024:.1f} "
                  f"| {per[s]:.0f} | {tot[s]:.0f} | {n.get(f'{s}_preload_s', 0):.2f} |")
        print(f"\nkvd/redis bytes per key (growth): {ratio(per['kvd'], per['redis'])}")
    if "5" in notes:
        doc["cases"].setdefault("5", {})["rates"] = notes["5"]

    os.makedirs(out_dir, exist_ok=True)
    out_path = os.path.join(out_dir, "latest.json")
    with open(out_path, "w") as f:
        json.dump(doc, f, separators=(",", ":"))  # Compact: it holds histograms.
    print(f"\nwrote {out_path}")
    plot(doc, out_dir)


def slug(label):
    return re.sub(r"[^A-Za-z0-9]+", "_", label).strip("_").lower()


def plot(doc, out_dir):
    if shutil.which("gnuplot") is None:
        print("gnuplot not found: no PNGs (apt-get install gnuplot-nox)")
        return
    made = []
    data_dir = tempfile.mkdtemp(prefix="kvbench-plot.")  # gnuplot's input, removed after.
    try:
        plot_cases(doc, out_dir, data_dir, made)
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    print(f"wrote {len(made)} PNGs in {out_dir}")


def plot_cases(doc, out_dir, data_dir, made):
    for case, labels in doc["cases"].items():
        if case == "4":
            continue
        servers = [s for s in SERVERS if any(isinstance(v, dict) and s in v for v in labels.values())]
        rows = [(l, v) for l, v in labels.items() if isinstance(v, dict) and any(s in v for s in servers)]
        if not rows:
            continue
        dat = os.path.join(data_dir, f"case{case}_throughput.dat")
        with open(dat, "w") as f:
            f.write("workload " + " ".join(servers) + "\n")
            for label, v in rows:
                vals = [str(v[s]["median_rps"]) if s in v else "0" for s in servers]
                f.write(f"\"{label}\" " + " ".join(vals) + "\n")
        png = os.path.join(out_dir, f"case{case}_throughput.png")
        cols = ", ".join(f"'{dat}' using {i + 2}:xtic(1) title '{s}'" for i, s in enumerate(servers))
        names = {"kvd": "kvd", "redis": "Redis", "ceiling": "ceiling"}
        title = " vs ".join(names[s] for s in servers)
        gp(f"""set terminal pngcairo noenhanced size 900,500
set output '{png}'
set title 'case {case}: throughput (median req/s), {title}'
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set key outside right top autotitle columnheader
set ylabel 'requests/s'
set yrange [0:*]
set grid ytics
set xtics rotate by -20
plot {cols}
""")
        made.append(png)
        for label, v in rows:
            # Case 5 lag runs: the CDF of the replication lag, not of latency.
            key = "lag_histogram_us" if any("lag_histogram_us" in v.get(s, {}) for s in servers) \
                else "histogram_us"
            what = "replication lag" if key == "lag_histogram_us" else "latency"
            curves = []
            for s in servers:
                hist = v.get(s, {}).get(key) if s in v else None
                if not hist:
                    continue
                total = sum(c for _, c in hist)
                path = os.path.join(data_dir, f"case{case}_cdf_{slug(label)}_{s}.dat")
                with open(path, "w") as f:
                    seen = 0
                    for us, c in hist:
                        seen += c
                        f.write(f"{us} {seen / total}\n")
                curves.append(f"'{path}' using 1:2 with lines lw 2 title '{s}'")
            if not curves:
                continue
            png = os.path.join(out_dir, f"case{case}_cdf_{slug(label)}.png")
            gp(f"""set terminal pngcairo noenhanced size 800,500
set output '{png}'
set title 'case {case}, {label}: {what} CDF'
set logscale x
set xlabel '{what} (us, log)'
set ylabel 'fraction'
set yrange [0:1]
set key bottom right
set grid
plot {', '.join(curves)}
""")
            made.append(png)


def gp(script):
    r = subprocess.run(["gnuplot"], input=script, text=True, capture_output=True)
    if r.returncode != 0:
        print("gnuplot failed: " + r.stderr.strip(), file=sys.stderr)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--plot":
        plot(json.load(open(os.path.join(sys.argv[2], "latest.json"))), sys.argv[2])
    else:
        main()
