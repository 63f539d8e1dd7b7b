"""The scale figure (issue 20): `super` on fan-outs of 100, 1,000 and 10,000 independent tasks
plus one aggregator against llm-stub at 100 ms, strategy parallel, max_parallel_tasks 500, with
the workspace on a tmpfs (/dev/shm) and on the ordinary disk; and validate / dry-run of random
DAGs of 10,000 and 100,000 tasks.

Each run is measured as a whole process with GNU time (`/usr/bin/time -f ...`) wrapped around
`super` alone: llm-stub is a separate process started by this harness (a sibling, not a child,
so its CPU is not in the figure); its own CPU during each run is read from /proc and reported
beside. Runs of the two file systems alternate (A B, B A, ...) so both see the same background
load; each run gets a fresh workspace folder (`--workspace`), and every run's `run.json` must
show all N + 1 tasks succeeded. The stub's request count must equal runs x (N + 1).
"""

import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

from harness import GOAL, Stub, check_manifest, hyperfine, log, peak_rss, timed_run, verdict

LATENCY_MS = 100
MAX_PARALLEL = 500
DAG_SIZES = (10000, 100000)

TARGETS = {
    "cpu_per_task_10k_tmpfs_ms": 0.15,  # user + sys of super alone, workspace on tmpfs
    "cpu_growth_10k_over_1k": 1.1,  # CPU per task at 10,000 / at 1,000
    "wall_over_ideal_10k": 1.5,
    "rss_10k_mib": 64.0,
    "rss_100_mib": 9.0,
    "files_per_task": 2.0,  # goal: at most the output and the prompt
    "dag_100k_ms": 1000.0,  # validate and dry-run of a 100,000-task random DAG
    "dag_exponent": 1.1,  # log(t(100k) / t(10k)) / log(10)
}

def sizes(ctx):
    """The run sizes: --scale-sizes (default 100,1000,10000: the targets name these)."""
    return [int(x) for x in ctx.a.scale_sizes.split(",") if x]


def ideal_ms(n):
    return (math.ceil(n / MAX_PARALLEL) + 1) * LATENCY_MS


def fs_type(path):
    """The file system type of `path` as stat(1) names it (tmpfs, ext2/ext3, xfs, ...)."""
    r = subprocess.run(["stat", "-f", "-c", "%T", path], capture_output=True, text=True)
    return r.stdout.strip() or "unknown"


def task_files(ws, per):
    """The files a run creates for its tasks (as many as there are tasks, or more): everything
    in `task_outputs/` and the cache's per-entry files; not the files a run writes once
    (`run.json`, `metrics.json`, `trace.jsonl`, the lock, the results, the cache's journal)."""
    cache = os.path.join(ws, ".cache")
    entries = [f for f in os.listdir(cache) if f != "journal.jsonl"] if os.path.isdir(cache) else []
    return per.get("task_outputs", 0) + len(entries)


def count_files(ws):
    """Files (not folders) under `ws`, in total and per top-level entry."""
    total, per = 0, {}
    for root, _dirs, files in os.walk(ws):
        if not files:
            continue
        rel = os.path.relpath(root, ws)
        top = rel.split(os.sep)[0] if rel != "." else "."
        for name in files:
            key = top if top != "." else name
            per[key] = per.get(key, 0) + 1
            total += 1
    return total, dict(sorted(per.items(), key=lambda kv: (-kv[1], kv[0])))


def median_of(runs, key):
    return round(statistics.median(r[key] for r in runs), 3)


def run_sizes(ctx, project, bases):
    rows = []
    runs, warm = (2, 1) if ctx.quick else (5, 1)
    for n in sizes(ctx):
        oid = f"scale_{n}"
        got = {fs: [] for fs in bases}
        files = {}
        with Stub(ctx, LATENCY_MS) as stub:
            total_runs = 0
            for i in range(warm + runs):
                order = list(bases) if i % 2 == 0 else list(reversed(bases))
                for fs in order:
                    ws = os.path.join(bases[fs], f"{oid}-run{i}")
                    cmd = [ctx.super, "--project", project, "orchestra", "run", oid, "--goal", GOAL,
                           "--quiet", "--provider", "openai", "--model", "bench",
                           "--base-url", stub.url + "/v1", "--workspace", ws]
                    c0 = stub.cpu_seconds()
                    res = timed_run(ctx, cmd, f"{oid} ({fs}) run {i}")
                    res["stub_cpu_s"] = round(stub.cpu_seconds() - c0, 3)
                    res["load_1min"] = round(os.getloadavg()[0], 2)
                    total_runs += 1
                    check_manifest(ws, n + 1, f"{oid} ({fs}) run {i}")
                    if fs not in files:
                        total, per = count_files(ws)
                        files[fs] = {"total": total, "per_task": round(task_files(ws, per) / (n + 1), 3),
                                     "by_entry": per}
                    if fs == "tmpfs":
                        shutil.rmtree(ws, ignore_errors=True)  # tmpfs is memory
                    log(f"{oid} {fs} run {i + 1}/{warm + runs}: wall {res['wall_ms']:.0f} ms, "
                        f"cpu {res['cpu_s']:.2f} s, {res['rss_mib']:.1f} MiB, stub cpu "
                        f"{res['stub_cpu_s']:.2f} s, load {res['load_1min']}")
                    if i >= warm:
                        got[fs].append(res)
        expected = total_runs * (n + 1)
        if stub.requests != expected:
            raise SystemExit(f"{oid}: the stub served {stub.requests} requests, expected "
                             f"{expected} ({total_runs} runs x {n + 1} tasks)")
        for fs in bases:
            rs = got[fs]
            cpu = median_of(rs, "cpu_s")
            row = {"tasks": n, "fs": fs, "fs_type": fs_type(bases[fs]), "runs": rs, "warmup": warm,
                   "ideal_ms": ideal_ms(n),
                   "wall_ms": median_of(rs, "wall_ms"), "user_s": median_of(rs, "user_s"),
                   "sys_s": median_of(rs, "sys_s"), "cpu_s": cpu,
                   "cpu_per_task_ms": round(cpu * 1e3 / n, 4),
                   "rss_mib": median_of(rs, "rss_mib"), "stub_cpu_s": median_of(rs, "stub_cpu_s"),
                   "load_1min_median": median_of(rs, "load_1min"),
                   "files": files[fs], "stub_requests": stub.requests,
                   "stub_max_in_flight": stub.max_in_flight}
            row["wall_over_ideal"] = round(row["wall_ms"] / row["ideal_ms"], 3)
            rows.append(row)
            log(f"{oid} {fs}: wall {row['wall_ms']:.0f} ms ({row['wall_over_ideal']} x ideal), "
                f"cpu {cpu:.3f} s = {row['cpu_per_task_ms']:.3f} ms/task, {row['rss_mib']} MiB, "
                f"{files[fs]['per_task']} files/task")
    return rows


def dag_rows(ctx, project):
    rows = []
    for n in DAG_SIZES:
        oid = f"dag_{n}"
        v = [ctx.super, "--project", project, "orchestra", "validate", oid]
        d = [ctx.super, "--project", project, "orchestra", "run", oid, "--goal", GOAL, "--dry-run"]
        for c in (v, d):
            r = subprocess.run(c, env=ctx.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               text=True)
            if r.returncode != 0:
                raise SystemExit(f"{' '.join(c)} failed ({r.returncode}):\n{r.stderr[-1500:]}")
        runs = 3 if ctx.quick else (10 if n <= 10000 else 5)
        row = {"tasks": n,
               "validate": hyperfine(ctx, v, runs, 1, name=f"validate {oid}"),
               "validate_rss": peak_rss(ctx, v, 3, 1),
               "dry_run": hyperfine(ctx, d, runs, 1, name=f"dry-run {oid}"),
               "dry_run_rss": peak_rss(ctx, d, 3, 1),
               "load_1min": round(os.getloadavg()[0], 2)}
        log(f"{oid}: validate {row['validate']['median_ms']} ms, dry-run {row['dry_run']['median_ms']} ms")
        rows.append(row)
    a, b = rows[0], rows[-1]
    growth = {}
    for kind in ("validate", "dry_run"):
        growth[kind] = round(math.log(b[kind]["median_ms"] / a[kind]["median_ms"])
                             / math.log(b["tasks"] / a["tasks"]), 3)
    return rows, growth


def fig_scale(ctx):
    shm = "/dev/shm"
    if not os.path.isdir(shm) or fs_type(shm) != "tmpfs":
        raise SystemExit(f"scale: {shm} is not a tmpfs here ({fs_type(shm) if os.path.isdir(shm) else 'missing'}); "
                         "the figure needs one for the workspace")
    run_project = os.path.join(ctx.session, "scale-project")
    dag_project = os.path.join(ctx.session, "dag-project")
    log("generating the scale orchestras and the 10,000 / 100,000-task DAGs (~10 s)")
    for out, args in ((run_project, ["--sizes", "", "--scale-sizes", ",".join(map(str, sizes(ctx)))]),
                      (dag_project, ["--sizes", ",".join(map(str, DAG_SIZES))])):
        subprocess.run([sys.executable, os.path.join(os.path.dirname(__file__), "gen_orchestras.py"),
                        out, "--seed", str(ctx.a.seed), "--no-small", *args], check=True,
                       stdout=subprocess.DEVNULL)
    shm_base = tempfile.mkdtemp(prefix="super-bench-scale-", dir=shm)
    disk_base = os.path.join(ctx.session, "scale-workspaces")
    os.makedirs(disk_base)
    disk_type = fs_type(disk_base)
    if disk_type == "tmpfs":
        log(f"warning: {disk_base} is on a tmpfs too: set BENCH_WORK to a folder on the disk")
    bases = {"tmpfs": shm_base, "disk": disk_base}
    try:
        rows = run_sizes(ctx, run_project, bases)
    finally:
        shutil.rmtree(shm_base, ignore_errors=True)
    dags, growth = dag_rows(ctx, dag_project)
    ctx.save("scale", {"latency_ms": LATENCY_MS, "max_parallel": MAX_PARALLEL, "rows": rows,
                       "dag_rows": dags, "dag_growth_exponent": growth, "targets": TARGETS,
                       "disk_fs_type": disk_type, "seed": ctx.a.seed,
                       "measured": "GNU time around super alone; llm-stub is a separate process "
                                   "(its CPU is stub_cpu_s)"})


# ---------------------------------------------------------------- summary

def _row(rows, n, fs):
    return next((r for r in rows if r["tasks"] == n and r["fs"] == fs), None)


def summary_lines(d):
    """The scale tables of summary.md / BENCHMARKS.md from the saved scale.json."""
    L = []
    add = L.append
    T = d["targets"]
    rows = d["rows"]
    add(f"### Scale: N independent tasks + 1 aggregator, {d['latency_ms']} ms stub, "
        f"max_parallel_tasks {d['max_parallel']} (issue 20)")
    add("")
    src = d.get("source", {})
    changed = " (with local changes to src/)" if src.get("src_modified") else ""
    n_runs, n_warm = (len(rows[0]["runs"]), rows[0]["warmup"]) if rows else (0, 0)
    add(f"Commit {str(src.get('commit'))[:10]}{changed}, recorded {d.get('recorded_at')}; load average "
        f"{d.get('load_average_at_start')} (1 min) at the start, {d.get('load_average_at_end')} "
        f"(1, 5, 15 min) at the end; medians of {n_runs} runs after {n_warm} warm-up, the two "
        f"workspaces alternating.")
    add("")
    add("| target | figure | verdict |")
    add("| --- | --- | --- |")
    t10, t1, d10 = _row(rows, 10000, "tmpfs"), _row(rows, 1000, "tmpfs"), _row(rows, 10000, "disk")
    d1 = _row(rows, 1000, "disk")
    if t10:
        v = t10["cpu_per_task_ms"]
        add(f"| CPU per task at 10,000, workspace on tmpfs: ≤ {T['cpu_per_task_10k_tmpfs_ms']} ms | {v:.3f} ms "
            f"| {verdict(v <= T['cpu_per_task_10k_tmpfs_ms'])} |")
    if t10 and t1:
        g = t10["cpu_per_task_ms"] / t1["cpu_per_task_ms"]
        add(f"| CPU per task at 10,000 / at 1,000 (tmpfs): ≤ {T['cpu_growth_10k_over_1k']} | "
            f"{t10['cpu_per_task_ms']:.3f} / {t1['cpu_per_task_ms']:.3f} = {g:.2f} "
            f"| {verdict(g <= T['cpu_growth_10k_over_1k'])} |")
    if d10 and d1:
        g = d10["cpu_per_task_ms"] / d1["cpu_per_task_ms"]
        add(f"| the same with the workspace on the disk (reported) | {d10['cpu_per_task_ms']:.3f} / {d1['cpu_per_task_ms']:.3f} "
            f"= {g:.2f} | {verdict(g <= T['cpu_growth_10k_over_1k'])} |")
    for r in (t10, d10):
        if r:
            add(f"| wall at 10,000 ({r['fs']}): ≤ {T['wall_over_ideal_10k']} × ideal | {r['wall_ms'] / 1e3:.2f} s "
                f"/ {r['ideal_ms'] / 1e3:.2f} s = {r['wall_over_ideal']:.2f} × "
                f"| {verdict(r['wall_over_ideal'] <= T['wall_over_ideal_10k'])} |")
    for r in (t10, d10):
        if r:
            add(f"| peak RSS at 10,000 ({r['fs']}): ≤ {T['rss_10k_mib']:g} MiB | {r['rss_mib']:.1f} MiB "
                f"| {verdict(r['rss_mib'] <= T['rss_10k_mib'])} |")
    for fs in ("tmpfs", "disk"):
        r = _row(rows, 100, fs)
        if r:
            add(f"| peak RSS at 100 ({fs}): ≤ {T['rss_100_mib']:g} MiB | {r['rss_mib']:.1f} MiB "
                f"| {verdict(r['rss_mib'] <= T['rss_100_mib'])} |")
    if d10:
        f = d10["files"]["per_task"]
        add(f"| files created per task at 10,000: goal ≤ {T['files_per_task']:g} (the output and the prompt) "
            f"| {f:.2f} | {verdict(f <= T['files_per_task'])} |")
    for r in d.get("dag_rows", []):
        if r["tasks"] == 100000:
            for kind, name in (("validate", "validate"), ("dry_run", "run --dry-run")):
                ms = r[kind]["median_ms"]
                add(f"| `{name}` of a 100,000-task random DAG: < 1 s | {ms:.0f} ms "
                    f"| {verdict(ms < T['dag_100k_ms'])} |")
    for kind, name in (("validate", "validate"), ("dry_run", "run --dry-run")):
        e = d.get("dag_growth_exponent", {}).get(kind)
        if e is not None:
            add(f"| `{name}` growth exponent, 10,000 → 100,000: ≤ {T['dag_exponent']} | {e:.3f} "
                f"| {verdict(e <= T['dag_exponent'])} |")
    add("")
    add("| N | workspace | wall | ideal | wall / ideal | CPU user + sys | CPU per task | peak RSS "
        "| files per task | stub CPU | stub max in flight | load (1 min) |")
    add("| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        where = "tmpfs, `/dev/shm`" if r["fs"] == "tmpfs" else f"disk, {r['fs_type']}"
        add(f"| {r['tasks']:,} | {where} | {r['wall_ms'] / 1e3:.2f} s | {r['ideal_ms'] / 1e3:.2f} s "
            f"| {r['wall_over_ideal']:.2f} | {r['user_s']:.2f} + {r['sys_s']:.2f} s | {r['cpu_per_task_ms']:.3f} ms "
            f"| {r['rss_mib']:.1f} MiB | {r['files']['per_task']:.2f} | {r['stub_cpu_s']:.2f} s "
            f"| {r['stub_max_in_flight']} | {r['load_1min_median']} |")
    add("")
    d10f = d10["files"] if d10 else (t10["files"] if t10 else None)
    if d10f:
        parts = ", ".join(f"`{k}` {v:,}" for k, v in d10f["by_entry"].items())
        add(f"Files in one 10,000-task workspace: {d10f['total']:,} ({parts}).")
        add("")
    if d.get("dag_rows"):
        add("| random DAG | validate | dry-run | validate RSS | dry-run RSS | load (1 min) |")
        add("| ---: | ---: | ---: | ---: | ---: | ---: |")
        for r in d["dag_rows"]:
            add(f"| {r['tasks']:,} tasks | {r['validate']['median_ms']:.1f} ms | {r['dry_run']['median_ms']:.1f} ms "
                f"| {r['validate_rss']['median_mib']:.1f} MiB | {r['dry_run_rss']['median_mib']:.1f} MiB "
                f"| {r['load_1min']} |")
        g = d.get("dag_growth_exponent", {})
        add("")
        add(f"Growth exponent log(t(100,000) / t(10,000)) / log(10): validate {g.get('validate')}, "
            f"dry-run {g.get('dry_run')} (1 is linear).")
        add("")
    return L
