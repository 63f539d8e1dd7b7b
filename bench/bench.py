#!/usr/bin/env python3
"""Whole-process benchmarks of `super` (driven by scripts/bench.sh; see BENCHMARKS.md).

    python3 bench/bench.py [options] FIGURE...      FIGURE: baseline startup validate
                                                    overhead fanout local | all | summary

Times come from hyperfine (median of >= 5 runs after warm-up runs), peak RSS from GNU time
(`/usr/bin/time -f %M`, median of >= 5 runs after a warm-up). Each figure writes
RESULTS/<figure>.json; `summary` (run after every figure) writes RESULTS/summary.md from
whatever JSON files exist.
"""

import argparse
import json
import math
import os
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
GOAL = "bench"
MiB = 1024.0

# Targets from issue 7 (and the embedded-model issue for RSS).
TARGETS = {
    "startup_ms": 5.0,
    "overhead_ms": 1.0,
    "rss_100_mib": 20.0,
    "fanout_ratio": 1.05,
    "validate_10k_ms": 200.0,
    "local_gen_ratio": 0.8,
    "local_rss_ratio": 1.5,
}


def log(*a):
    print("[bench]", *a, file=sys.stderr, flush=True)


class Ctx:
    def __init__(self, a):
        self.super = os.path.abspath(a.super)
        self.stub = os.path.abspath(a.stub)
        self.results = os.path.abspath(a.results)
        self.work = os.path.abspath(a.work)
        self.quick = a.quick
        self.a = a
        self.project = os.path.join(self.work, "project")
        os.makedirs(self.results, exist_ok=True)
        os.makedirs(self.work, exist_ok=True)
        self.env = dict(os.environ, OPENAI_API_KEY="bench-key", NO_COLOR="1")
        for k in ("SUPER_PROVIDER", "SUPER_MODEL", "SUPER_BASE_URL", "SUPER_PROJECT"):
            self.env.pop(k, None)

    def runs(self, n):
        return max(5, n // 4) if self.quick else n

    def generate(self):
        # Regenerated once per invocation (deterministic, ~0.1 s), so a stale project never lingers.
        if not getattr(self, "_generated", False):
            self._generated = True
            log("generating orchestras into", self.project)
            subprocess.run([sys.executable, os.path.join(HERE, "gen_orchestras.py"), self.project,
                            "--seed", str(self.a.seed)], check=True, stdout=subprocess.DEVNULL)

    def save(self, figure, data):
        data["recorded_at"] = time.strftime("%Y-%m-%d %H:%M:%S %z")
        data["quick"] = self.quick
        path = os.path.join(self.results, figure + ".json")
        with open(path + ".tmp", "w") as f:
            json.dump(data, f, indent=2)
        os.replace(path + ".tmp", path)
        log("wrote", path)


def hyperfine(ctx, cmd, runs, warmup, prepare=None, name="x"):
    """Median (and min, max, mean) of `cmd` (a list) in ms, no shell in between."""
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        out = f.name
    args = ["hyperfine", "-N", "--style", "none", "--warmup", str(warmup), "--runs", str(runs),
            "--export-json", out]
    if prepare:
        args += ["--prepare", shlex.join(prepare)]
    args.append(shlex.join(cmd))
    r = subprocess.run(args, env=ctx.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                       text=True)
    if r.returncode != 0:
        raise SystemExit(f"hyperfine failed for {name}: {r.stderr.strip()}\ncommand: {shlex.join(cmd)}")
    with open(out) as f:
        res = json.load(f)["results"][0]
    os.unlink(out)
    ms = [t * 1e3 for t in res["times"]]
    return {
        "median_ms": round(statistics.median(ms), 3),
        "mean_ms": round(statistics.fmean(ms), 3),
        "min_ms": round(min(ms), 3),
        "max_ms": round(max(ms), 3),
        "runs": len(ms),
        "warmup": warmup,
    }


def peak_rss(ctx, cmd, runs, warmup=1, prepare=None):
    """Median peak RSS (MiB) of `cmd` over `runs` runs after `warmup` runs, from GNU time."""
    vals = []
    with tempfile.NamedTemporaryFile(suffix=".txt", delete=False) as f:
        out = f.name
    for i in range(warmup + runs):
        if prepare:
            subprocess.run(prepare, check=True)
        r = subprocess.run(["/usr/bin/time", "-o", out, "-f", "%M"] + cmd, env=ctx.env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if r.returncode != 0:
            raise SystemExit(f"failed ({r.returncode}): {shlex.join(cmd)}\n{r.stderr[-2000:]}")
        with open(out) as f:
            kb = int(f.read().split()[-1])
        if i >= warmup:
            vals.append(kb / MiB)
    os.unlink(out)
    return {"median_mib": round(statistics.median(vals), 2), "min_mib": round(min(vals), 2),
            "max_mib": round(max(vals), 2), "runs": len(vals)}


class Stub:
    """llm-stub on a free loopback port; on exit, its request count and max in flight."""

    def __init__(self, ctx, latency_ms):
        self.ctx, self.latency_ms = ctx, latency_ms
        self.requests = self.max_in_flight = None

    def __enter__(self):
        self.p = subprocess.Popen([self.ctx.stub, "--port", "0", "--latency-ms", str(self.latency_ms),
                                   "--exit-on-stdin-close"],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        line = self.p.stdout.readline()
        m = re.search(r"listening on (http://\S+)", line)
        if not m:
            self.p.kill()
            raise SystemExit(f"llm-stub did not start: {line!r}")
        self.url = m.group(1).rstrip("/")
        return self

    def __exit__(self, *exc):
        self.p.stdin.close()
        rest = self.p.stdout.read()
        self.p.wait(timeout=10)
        m = re.search(r"requests=(\d+) max_in_flight=(\d+)", rest)
        if m:
            self.requests, self.max_in_flight = int(m.group(1)), int(m.group(2))
        return False


def run_cmd(ctx, oid, stub, extra=()):
    return [ctx.super, "--project", ctx.project, "orchestra", "run", oid, "--goal", GOAL, "--quiet",
            "--provider", "openai", "--model", "bench", "--base-url", stub.url + "/v1", *extra]


def workspace(ctx, oid):
    return os.path.join(ctx.project, "orchestra_workspaces", oid)


def check_run(ctx, oid, stub, n_tasks, extra=()):
    """One untimed run; it must exit 0 and its run.json must show every task succeeded."""
    shutil.rmtree(workspace(ctx, oid), ignore_errors=True)
    r = subprocess.run(run_cmd(ctx, oid, stub, extra), env=ctx.env, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"run {oid} failed ({r.returncode}):\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}")
    manifest = os.path.join(workspace(ctx, oid), "run.json")
    with open(manifest) as f:
        m = json.load(f)
    tasks = m.get("tasks", {})
    statuses = [t.get("status") for t in (tasks.values() if isinstance(tasks, dict) else tasks)]
    ok = sum(1 for s in statuses if s in ("succeeded", "success", "completed", "done", "ok"))
    if len(statuses) != n_tasks or ok != n_tasks:
        raise SystemExit(f"run {oid}: expected {n_tasks} finished tasks in run.json, got "
                         f"{ok}/{len(statuses)}: {sorted(set(map(str, statuses)))}")


# ---------------------------------------------------------------- figures

def fig_baseline(ctx):
    """What the machine allows: spawning a process, and a loopback HTTP round trip."""
    data = {"true": hyperfine(ctx, ["true"], ctx.runs(200), 20, name="true")}
    true = shutil.which("true")
    data["true"]["command"] = true
    if ctx.a.load and os.path.exists(ctx.a.load):
        # llm-stub's load example: 1 keep-alive connection, sequential requests, in-process stub.
        meds = []
        for stream in ("", "stream"):
            r = subprocess.run([ctx.a.load, "1", "2000"] + ([stream] if stream else []),
                               capture_output=True, text=True, check=True)
            m = re.search(r"p50 ([0-9.]+)(µs|us|ms|ns)", r.stdout)
            v = float(m.group(1)) * {"ns": 1e-6, "us": 1e-3, "µs": 1e-3, "ms": 1.0}[m.group(2)]
            meds.append({"mode": stream or "json", "p50_ms": round(v, 4), "raw": r.stdout.strip()})
        data["loopback_http"] = meds
    ctx.save("baseline", data)


def fig_startup(ctx):
    cmd = [ctx.super, "--help"]
    data = {"command": "super --help",
            "time": hyperfine(ctx, cmd, ctx.runs(100), 10, name="--help"),
            "rss": peak_rss(ctx, cmd, ctx.runs(20), 2)}
    data["target_ms"] = TARGETS["startup_ms"]
    ctx.save("startup", data)


def fig_validate(ctx):
    ctx.generate()
    sizes = [int(s) for s in ctx.a.sizes.split(",")]
    rows = []
    for n in sizes:
        oid = f"dag_{n}"
        v = [ctx.super, "--project", ctx.project, "orchestra", "validate", oid]
        d = [ctx.super, "--project", ctx.project, "orchestra", "run", oid, "--goal", GOAL, "--dry-run"]
        # Both must succeed before they are timed.
        for c in (v, d):
            r = subprocess.run(c, env=ctx.env, capture_output=True, text=True)
            if r.returncode != 0:
                raise SystemExit(f"{shlex.join(c)} failed ({r.returncode}):\n{r.stdout[-1500:]}{r.stderr[-1500:]}")
        runs = ctx.runs(20 if n <= 1000 else 10)
        row = {"tasks": n,
               "validate": hyperfine(ctx, v, runs, 3, name=f"validate {oid}"),
               "validate_rss": peak_rss(ctx, v, 5, 1),
               "dry_run": hyperfine(ctx, d, runs, 3, name=f"dry-run {oid}"),
               "dry_run_rss": peak_rss(ctx, d, 5, 1)}
        log(f"{oid}: validate {row['validate']['median_ms']} ms, dry-run {row['dry_run']['median_ms']} ms")
        rows.append(row)
    # Linearity: per-task cost between consecutive sizes, and the 10x ratio.
    for kind in ("validate", "dry_run"):
        for a_, b_ in zip(rows, rows[1:]):
            dt = b_[kind]["median_ms"] - a_[kind]["median_ms"]
            b_[kind]["us_per_task_since_prev"] = round(dt * 1e3 / (b_["tasks"] - a_["tasks"]), 2)
            b_[kind]["ratio_to_prev"] = round(b_[kind]["median_ms"] / a_[kind]["median_ms"], 2)
    # The same with every task on the embedded model (`--provider local`, needs the model): what a
    # project whose agents have no `language_model` pays (the dry run counts prompt tokens with
    # the model's tokenizer).
    local_rows = []
    if os.path.exists(os.path.expanduser(ctx.a.model)):
        for n in [x for x in sizes if x <= 1000]:
            oid = f"dag_{n}"
            v = [ctx.super, "--project", ctx.project, "orchestra", "validate", oid, "--provider", "local"]
            d = [ctx.super, "--project", ctx.project, "orchestra", "run", oid, "--goal", GOAL, "--dry-run",
                 "--provider", "local"]
            row = {"tasks": n,
                   "validate": hyperfine(ctx, v, ctx.runs(10), 2, name=f"validate local {oid}"),
                   "validate_rss": peak_rss(ctx, v, 5, 1),
                   "dry_run": hyperfine(ctx, d, ctx.runs(10), 1, name=f"dry-run local {oid}"),
                   "dry_run_rss": peak_rss(ctx, d, 5, 1)}
            log(f"{oid} --provider local: validate {row['validate']['median_ms']} ms, "
                f"dry-run {row['dry_run']['median_ms']} ms")
            local_rows.append(row)
    ctx.save("validate", {"rows": rows, "local_provider_rows": local_rows,
                          "target_10k_ms": TARGETS["validate_10k_ms"], "seed": ctx.a.seed})


def fig_overhead(ctx):
    ctx.generate()
    out = {"latencies": []}
    for lat in (0, 50):
        entry = {"latency_ms": lat, "rows": []}
        with Stub(ctx, lat) as stub:
            for n in (3, 20, 100):
                oid = f"seq_{n}"
                check_run(ctx, oid, stub, n)
                prep = ["rm", "-rf", workspace(ctx, oid)]
                runs = ctx.runs(10 if lat == 0 else 5)
                t = hyperfine(ctx, run_cmd(ctx, oid, stub), runs, 2 if lat == 0 else 1, prep, oid)
                rss = peak_rss(ctx, run_cmd(ctx, oid, stub), 5, 1, prep)
                per_task = t["median_ms"] / n - lat
                log(f"seq_{n} @ {lat} ms: {t['median_ms']} ms, {rss['median_mib']} MiB")
                entry["rows"].append({"tasks": n, "time": t, "rss": rss,
                                      "ideal_ms": n * lat,
                                      "overhead_per_task_ms_incl_startup": round(per_task, 3)})
        w = {r["tasks"]: r["time"]["median_ms"] for r in entry["rows"]}
        entry["marginal_overhead_per_task_ms"] = round((w[100] - w[20]) / 80 - lat, 3)
        entry["stub_requests"] = stub.requests
        out["latencies"].append(entry)
        log(f"latency {lat} ms: marginal overhead {entry['marginal_overhead_per_task_ms']} ms/task")
    out["targets"] = {"overhead_ms": TARGETS["overhead_ms"], "rss_100_mib": TARGETS["rss_100_mib"]}
    ctx.save("overhead", out)


def fig_fanout(ctx):
    ctx.generate()
    lat = 200
    rows = []
    for n in (20, 200):
        for p in (20, 50):
            oid = f"fan_{n}"
            extra = ["--max-parallel", str(p)]
            with Stub(ctx, lat) as stub:
                check_run(ctx, oid, stub, n + 1, extra)
                prep = ["rm", "-rf", workspace(ctx, oid)]
                t = hyperfine(ctx, run_cmd(ctx, oid, stub, extra), ctx.runs(5), 1, prep, oid)
                rss = peak_rss(ctx, run_cmd(ctx, oid, stub, extra), 5, 1, prep)
            ideal = (math.ceil(n / p) + 1) * lat
            row = {"tasks": n, "max_parallel": p, "latency_ms": lat, "ideal_ms": ideal,
                   "time": t, "rss": rss, "ratio": round(t["median_ms"] / ideal, 4),
                   "stub_max_in_flight": stub.max_in_flight, "stub_requests": stub.requests}
            log(f"fan_{n} P={p}: {t['median_ms']} ms / ideal {ideal} = {row['ratio']}; "
                f"max in flight {stub.max_in_flight}")
            rows.append(row)
    ctx.save("fanout", {"rows": rows, "target_ratio": TARGETS["fanout_ratio"]})


def fig_local(ctx):
    a = ctx.a
    model = os.path.expanduser(a.model)
    if not os.path.exists(model):
        raise SystemExit(f"model not found: {model} (run scripts/fetch-model.sh)")
    runs, warm = ctx.runs(5), 1
    P, G, T = a.prompt_tokens, a.gen_tokens, 1
    data = {"model": model, "prompt_tokens_target": P, "gen_tokens": G, "threads": T}

    def collect(cmd, label):
        outs = []
        for i in range(warm + runs):
            r = subprocess.run(["/usr/bin/time", "-f", "%M"] + cmd, capture_output=True, text=True,
                               env=dict(ctx.env, RAYON_NUM_THREADS="1", OMP_NUM_THREADS="1"))
            if r.returncode != 0:
                raise SystemExit(f"{label} failed:\n{r.stderr[-3000:]}")
            j = json.loads(r.stdout.strip().splitlines()[-1])
            j["process_peak_rss_kb"] = int(r.stderr.strip().splitlines()[-1])
            if i >= warm:
                outs.append(j)
            log(f"{label} run {i + 1}/{warm + runs}: gen {j.get('generation_tokens_per_s')} tok/s")
        keys = [k for k, v in outs[0].items() if isinstance(v, (int, float)) and not isinstance(v, bool)]
        med = {k: statistics.median(o[k] for o in outs if o.get(k) is not None) for k in keys}
        return {"median": med, "runs": outs}

    if a.local_bench and os.path.exists(a.local_bench):
        data["super_local"] = collect([a.local_bench, model, str(P), str(G), str(T)], "super-local")
    else:
        data["super_local_missing"] = f"no super-local bench example at {a.local_bench}"
        log(data["super_local_missing"])
    if a.llama_python and os.path.exists(a.llama_python):
        data["llama_cpp"] = collect([a.llama_python, os.path.join(HERE, "llama_cpp_bench.py"), model,
                                     str(P), str(G), str(T)], "llama.cpp")
    else:
        data["llama_cpp_missing"] = f"no python with llama_cpp at {a.llama_python}"
        log(data["llama_cpp_missing"])
    if "super_local" in data and "llama_cpp" in data:
        s, l = data["super_local"]["median"], data["llama_cpp"]["median"]
        data["gen_ratio"] = round(s["generation_tokens_per_s"] / l["generation_tokens_per_s"], 3)
        data["prompt_ratio"] = round(s["prompt_tokens_per_s"] / l["prompt_tokens_per_s"], 3)
        data["rss_ratio"] = round(s["process_peak_rss_kb"] / l["process_peak_rss_kb"], 3)
    ctx.save("local", data)


# ---------------------------------------------------------------- summary

def load(ctx, fig):
    p = os.path.join(ctx.results, fig + ".json")
    if os.path.exists(p):
        with open(p) as f:
            return json.load(f)
    return None


def verdict(ok):
    return "met" if ok else "**missed**"


def summary(ctx):
    L = []
    add = L.append
    b, s, v, o, f, loc = (load(ctx, x) for x in ("baseline", "startup", "validate", "overhead", "fanout", "local"))
    add("| figure | target | median | verdict |")
    add("| --- | --- | --- | --- |")
    if s:
        add(f"| startup, `super --help` | ≤ {TARGETS['startup_ms']:g} ms | {s['time']['median_ms']:.2f} ms, "
            f"{s['rss']['median_mib']:.1f} MiB | {verdict(s['time']['median_ms'] <= TARGETS['startup_ms'])} |")
    if o:
        for e in o["latencies"]:
            m = e["marginal_overhead_per_task_ms"]
            add(f"| overhead per task, sequential, {e['latency_ms']} ms stub, (N=100 − N=20)/80 − latency "
                f"| ≤ 1 ms | {m:.3f} ms | {verdict(m <= TARGETS['overhead_ms'])} |")
        for e in o["latencies"]:
            r100 = next(r for r in e["rows"] if r["tasks"] == 100)["rss"]["median_mib"]
            add(f"| peak RSS, 100 tasks, remote (stub) provider, {e['latency_ms']} ms | ≤ 20 MiB | {r100:.1f} MiB "
                f"| {verdict(r100 <= TARGETS['rss_100_mib'])} |")
    if f:
        for r in f["rows"]:
            add(f"| fan-out {r['tasks']} + 1 at 200 ms, max_parallel {r['max_parallel']}: run / ideal "
                f"({r['time']['median_ms']:.0f} / {r['ideal_ms']} ms) | ≤ 1.05 | {r['ratio']:.3f} "
                f"| {verdict(r['ratio'] <= TARGETS['fanout_ratio'])} |")
    if v:
        for r in v["rows"]:
            if r["tasks"] == 10000:
                add(f"| validate, 10,000-task random DAG | ≤ 200 ms | {r['validate']['median_ms']:.1f} ms "
                    f"| {verdict(r['validate']['median_ms'] <= TARGETS['validate_10k_ms'])} |")
    if loc and "gen_ratio" in loc:
        sl, lc = loc["super_local"]["median"], loc["llama_cpp"]["median"]
        add(f"| local generation vs llama.cpp, 1 thread | ≥ 0.8× | {sl['generation_tokens_per_s']:.1f} vs "
            f"{lc['generation_tokens_per_s']:.1f} tok/s = {loc['gen_ratio']:.2f}× | "
            f"{verdict(loc['gen_ratio'] >= TARGETS['local_gen_ratio'])} |")
        add(f"| local peak RSS vs llama.cpp (embedded-model issue) | ≤ 1.5× | "
            f"{sl['process_peak_rss_kb'] / MiB:.0f} vs {lc['process_peak_rss_kb'] / MiB:.0f} MiB = "
            f"{loc['rss_ratio']:.2f}× | {verdict(loc['rss_ratio'] <= TARGETS['local_rss_ratio'])} |")
    add("")
    if b:
        add(f"Machine floor: spawning `true` {b['true']['median_ms']:.2f} ms"
            + ("".join(f"; loopback HTTP round trip to llm-stub ({x['mode']}) p50 {x['p50_ms'] * 1e3:.0f} µs"
                       for x in b.get("loopback_http", []))) + ".")
        add("")
    if s:
        add("### Startup")
        add("")
        t = s["time"]
        add(f"`super --help`: median {t['median_ms']:.2f} ms (min {t['min_ms']:.2f}, {t['runs']} runs), "
            f"peak RSS {s['rss']['median_mib']:.1f} MiB.")
        add("")
    if v:
        add("### Validate and dry-run of random DAGs (~3 dependencies per task)")
        add("")
        add("| tasks | validate | µs/task vs previous size | dry-run | µs/task vs previous size | validate RSS | dry-run RSS |")
        add("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        for r in v["rows"]:
            vv, dd = r["validate"], r["dry_run"]
            add(f"| {r['tasks']:,} | {vv['median_ms']:.1f} ms | {vv.get('us_per_task_since_prev', '–')} "
                f"| {dd['median_ms']:.1f} ms | {dd.get('us_per_task_since_prev', '–')} "
                f"| {r['validate_rss']['median_mib']:.1f} MiB | {r['dry_run_rss']['median_mib']:.1f} MiB |")
        add("")
        if v.get("local_provider_rows"):
            add("The same with `--provider local` (every task on the embedded model, as for agents with no "
                "`language_model`):")
            add("")
            add("| tasks | validate | dry-run | validate RSS | dry-run RSS |")
            add("| ---: | ---: | ---: | ---: | ---: |")
            for r in v["local_provider_rows"]:
                add(f"| {r['tasks']:,} | {r['validate']['median_ms']:.1f} ms | {r['dry_run']['median_ms']:.1f} ms "
                    f"| {r['validate_rss']['median_mib']:.1f} MiB | {r['dry_run_rss']['median_mib']:.1f} MiB |")
            add("")
    if o:
        add("### Sequential runs (chain, each task has the previous as context)")
        add("")
        add("| stub latency | N | wall (median) | ideal N × latency | wall − ideal per task | peak RSS |")
        add("| ---: | ---: | ---: | ---: | ---: | ---: |")
        for e in o["latencies"]:
            for r in e["rows"]:
                add(f"| {e['latency_ms']} ms | {r['tasks']} | {r['time']['median_ms']:.1f} ms | {r['ideal_ms']} ms "
                    f"| {r['overhead_per_task_ms_incl_startup']:.3f} ms | {r['rss']['median_mib']:.1f} MiB |")
        add("")
        for e in o["latencies"]:
            add(f"Marginal overhead per task at {e['latency_ms']} ms: {e['marginal_overhead_per_task_ms']:.3f} ms.")
        add("")
    if f:
        add("### Fan-out (N independent tasks + 1 aggregator, 200 ms stub)")
        add("")
        add("| N | max_parallel | wall (median) | ideal | run / ideal | stub max in flight | peak RSS |")
        add("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        for r in f["rows"]:
            add(f"| {r['tasks']} | {r['max_parallel']} | {r['time']['median_ms']:.1f} ms | {r['ideal_ms']} ms "
                f"| {r['ratio']:.3f} | {r['stub_max_in_flight']} | {r['rss']['median_mib']:.1f} MiB |")
        add("")
    if loc:
        add(f"### Embedded model, {loc['threads']} thread, ~{loc['prompt_tokens_target']} prompt tokens, "
            f"{loc['gen_tokens']} generated (greedy, EOS ignored)")
        add("")
        add("| engine | prompt tok/s | generation tok/s | time to first token | load | peak RSS |")
        add("| --- | ---: | ---: | ---: | ---: | ---: |")
        for key, name in (("super_local", "super-local (candle, Q4_1→Q8_0 cache)"), ("llama_cpp", "llama.cpp (llama-cpp-python, Q4_1)")):
            if key in loc:
                m = loc[key]["median"]
                add(f"| {name} | {m['prompt_tokens_per_s']:.1f} | {m['generation_tokens_per_s']:.1f} "
                    f"| {m['time_to_first_token_ms']:.1f} ms | {m.get('load_ms', float('nan')):.0f} ms "
                    f"| {m['process_peak_rss_kb'] / MiB:.0f} MiB |")
            elif key + "_missing" in loc:
                add(f"| {name} | – | – | – | – | not measured: {loc[key + '_missing']} |")
        add("")
    text = "\n".join(L) + "\n"
    path = os.path.join(ctx.results, "summary.md")
    with open(path, "w") as fh:
        fh.write(text)
    print(text)


FIGURES = {"baseline": fig_baseline, "startup": fig_startup, "validate": fig_validate,
           "overhead": fig_overhead, "fanout": fig_fanout, "local": fig_local}


def main():
    ap = argparse.ArgumentParser(description="super whole-process benchmarks")
    ap.add_argument("figures", nargs="+", choices=list(FIGURES) + ["all", "summary"])
    ap.add_argument("--super", required=True, help="the super binary")
    ap.add_argument("--stub", required=True, help="the llm-stub binary")
    ap.add_argument("--load", help="llm-stub's load example binary (baseline)")
    ap.add_argument("--local-bench", help="super-local's bench example binary")
    ap.add_argument("--llama-python", help="a python with llama_cpp installed")
    ap.add_argument("--model", default="~/.cache/super/models/SmolLM2-135M-Instruct.Q4_1.gguf")
    ap.add_argument("--prompt-tokens", type=int, default=128)
    ap.add_argument("--gen-tokens", type=int, default=128)
    ap.add_argument("--sizes", default="100,1000,10000")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--results", default=os.path.join(HERE, "results"))
    ap.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "super-bench"))
    ap.add_argument("--quick", action="store_true", help="fewer runs (smoke test, not for figures)")
    a = ap.parse_args()
    ctx = Ctx(a)
    figs = list(FIGURES) if "all" in a.figures else [x for x in a.figures if x != "summary"]
    for fig in figs:
        log(f"== {fig}")
        FIGURES[fig](ctx)
    summary(ctx)


if __name__ == "__main__":
    main()
