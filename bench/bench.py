#!/usr/bin/env python3
"""Whole-process benchmarks of `super` (driven by scripts/bench.sh; see BENCHMARKS.md).

    python3 bench/bench.py [options] FIGURE...      FIGURE: baseline startup validate
                                                    overhead fanout local scale peers
                                                    | all | summary

Times come from hyperfine (median of >= 5 runs after warm-up runs), peak RSS from GNU time
(`/usr/bin/time -f %M`, median of >= 5 runs after a warm-up). Each figure writes
RESULTS/<figure>.json; `summary` (run after every figure) writes RESULTS/summary.md from
whatever JSON files exist. The scale and peers figures (bench/scale.py, bench/peers.py) time
each run under GNU time alone (wall, user + sys CPU, peak RSS of the measured process only).
"""

import argparse
import json
import math
import os
import re
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile

from harness import (GOAL, HERE, MiB, Ctx, Stub, check_run, hyperfine, load, log, peak_rss, run_cmd,
                     stash, stub_floor, verdict, wait_quiet, workspace)
import peers
import scale

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
            # Growth exponent k in time ~ tasks^k between the two sizes (1 = linear, 2 = quadratic).
            b_[kind]["exponent_since_prev"] = round(
                math.log(b_[kind]["median_ms"] / a_[kind]["median_ms"]) / math.log(b_["tasks"] / a_["tasks"]), 3)
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
            entry["stub_floor"] = stub_floor(stub, 100 if lat == 0 else 40)
            for n in (3, 20, 100):
                oid = f"seq_{n}"
                check_run(ctx, oid, stub, n)
                prep = stash(ctx, oid)
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
        # The same net of what the stub, its timer and the loopback add to every request (measured
        # by a minimal keep-alive client against the same stub): the part that is super's.
        entry["stub_floor_excess_ms"] = round(entry["stub_floor"]["median_ms"] - lat, 3)
        entry["marginal_overhead_net_of_stub_ms"] = round(
            entry["marginal_overhead_per_task_ms"] - entry["stub_floor_excess_ms"], 3)
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
                floor = stub_floor(stub, 5)
                check_run(ctx, oid, stub, n + 1, extra)
                prep = stash(ctx, oid)
                t = hyperfine(ctx, run_cmd(ctx, oid, stub, extra), ctx.runs(5), 1, prep, oid)
                rss = peak_rss(ctx, run_cmd(ctx, oid, stub, extra), 5, 1, prep)
                if n == 200 and p == 50:
                    # The same when the previous run's workspace is deleted just before
                    # (rm -rf of ~600 files): what ext4 inode allocation then costs.
                    t_rm = hyperfine(ctx, run_cmd(ctx, oid, stub, extra), ctx.runs(5), 1,
                                     ["rm", "-rf", workspace(ctx, oid)], oid + " rm")
            ideal = (math.ceil(n / p) + 1) * lat
            row = {"tasks": n, "max_parallel": p, "latency_ms": lat, "ideal_ms": ideal,
                   "time": t, "rss": rss, "ratio": round(t["median_ms"] / ideal, 4),
                   "stub_max_in_flight": stub.max_in_flight, "stub_requests": stub.requests,
                   "stub_floor_ms": floor["median_ms"]}
            if n == 200 and p == 50:
                row["after_rm_rf"] = {"time": t_rm, "ratio": round(t_rm["median_ms"] / ideal, 4)}
            log(f"fan_{n} P={p}: {t['median_ms']} ms / ideal {ideal} = {row['ratio']}; "
                f"max in flight {stub.max_in_flight}")
            rows.append(row)
    ctx.save("fanout", {"rows": rows, "target_ratio": TARGETS["fanout_ratio"]})


def fig_local(ctx):
    a = ctx.a
    model = os.path.expanduser(a.model)
    if not os.path.exists(model):
        raise SystemExit(f"model not found: {model} (run scripts/fetch-model.sh)")
    runs, warm = ctx.runs(9), 1
    P, G, T = a.prompt_tokens, a.gen_tokens, 1
    data = {"model": model, "prompt_tokens_target": P, "gen_tokens": G, "threads": T}

    def once(cmd, label, i):
        r = subprocess.run(["/usr/bin/time", "-f", "%M"] + cmd, capture_output=True, text=True,
                           env=dict(ctx.env, RAYON_NUM_THREADS="1", OMP_NUM_THREADS="1"))
        if r.returncode != 0:
            raise SystemExit(f"{label} failed ({r.returncode}):\n{r.stderr[-3000:]}")
        j = json.loads(r.stdout.strip().splitlines()[-1])
        j["process_peak_rss_kb"] = int(r.stderr.strip().splitlines()[-1])
        log(f"{label} run {i + 1}/{warm + runs}: prompt {j.get('prompt_tokens_per_s')} tok/s, "
            f"gen {j.get('generation_tokens_per_s')} tok/s, {j['process_peak_rss_kb'] // 1024} MiB")
        return j

    engines = []
    if a.local_bench and os.path.exists(a.local_bench):
        engines.append(("super_local", [a.local_bench, model, str(P), str(G), str(T)]))
        # The same generation constrained by a JSON Schema (the mask's cost), interleaved.
        engines.append(("super_local_schema",
                        [a.local_bench, model, str(P), str(G), str(T), "--schema", "builtin"]))
    else:
        data["super_local_missing"] = f"no super-local bench example at {a.local_bench}"
        log(data["super_local_missing"])
    if a.llama_python and os.path.exists(a.llama_python):
        engines.append(("llama_cpp", [a.llama_python, os.path.join(HERE, "llama_cpp_bench.py"), model,
                                      str(P), str(G), str(T)]))
    else:
        data["llama_cpp_missing"] = f"no python with llama_cpp at {a.llama_python}"
        log(data["llama_cpp_missing"])
    # Interleaved (A B A B ...), so both engines see the same background load.
    outs = {k: [] for k, _ in engines}
    for i in range(warm + runs):
        for key, cmd in engines:
            j = once(cmd, key, i)
            if i >= warm:
                outs[key].append(j)
    for key, got in outs.items():
        keys = [k for k, v in got[0].items() if isinstance(v, (int, float)) and not isinstance(v, bool)]
        med = {k: statistics.median(o[k] for o in got if o.get(k) is not None) for k in keys}
        data[key] = {"median": med, "runs": got}
    if "super_local" in data and "llama_cpp" in data:
        s, l = data["super_local"]["median"], data["llama_cpp"]["median"]
        data["gen_ratio"] = round(s["generation_tokens_per_s"] / l["generation_tokens_per_s"], 3)
        data["prompt_ratio"] = round(s["prompt_tokens_per_s"] / l["prompt_tokens_per_s"], 3)
        data["rss_ratio"] = round(s["process_peak_rss_kb"] / l["process_peak_rss_kb"], 3)
        # Per interleaved pair (same moment, same background load), then the median.
        pairs = [a_["generation_tokens_per_s"] / b_["generation_tokens_per_s"]
                 for a_, b_ in zip(data["super_local"]["runs"], data["llama_cpp"]["runs"])]
        data["gen_ratio_paired_median"] = round(statistics.median(pairs), 3)
        data["gen_ratio_paired_range"] = [round(min(pairs), 3), round(max(pairs), 3)]
    if "super_local" in data and "super_local_schema" in data:
        # Constrained / unconstrained generation speed, per interleaved pair.
        pairs = [c["generation_tokens_per_s"] / u["generation_tokens_per_s"]
                 for c, u in zip(data["super_local_schema"]["runs"], data["super_local"]["runs"])]
        data["schema_gen_ratio_paired_median"] = round(statistics.median(pairs), 3)
        data["schema_gen_ratio_paired_range"] = [round(min(pairs), 3), round(max(pairs), 3)]
    ctx.save("local", data)


# ---------------------------------------------------------------- summary

def summary(ctx):
    L = []
    add = L.append
    b, s, v, o, f, loc = (load(ctx, x) for x in ("baseline", "startup", "validate", "overhead", "fanout", "local"))
    sc, pe = load(ctx, "scale"), load(ctx, "peers")
    add("| figure | target | median | verdict |")
    add("| --- | --- | --- | --- |")
    if s:
        add(f"| startup, `super --help` | ≤ {TARGETS['startup_ms']:g} ms | {s['time']['median_ms']:.2f} ms, "
            f"{s['rss']['median_mib']:.1f} MiB | {verdict(s['time']['median_ms'] <= TARGETS['startup_ms'])} |")
    if o:
        for e in o["latencies"]:
            m = e["marginal_overhead_per_task_ms"]
            net = e.get("marginal_overhead_net_of_stub_ms")
            extra = ""
            if net is not None and e["latency_ms"] > 0:
                extra = (f" ({net:.3f} ms net of the stub's own {e['stub_floor_excess_ms']:.2f} ms "
                         f"per request over its nominal latency)")
            v_ = verdict(m <= TARGETS['overhead_ms'])
            if m > TARGETS['overhead_ms'] and net is not None and net <= TARGETS['overhead_ms']:
                v_ += " as defined; met net of the stub"
            add(f"| overhead per task, sequential, {e['latency_ms']} ms stub, (N=100 − N=20)/80 − latency "
                f"| ≤ 1 ms | {m:.3f} ms{extra} | {v_} |")
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
            f"{lc['generation_tokens_per_s']:.1f} tok/s = {loc['gen_ratio']:.2f}× "
            f"(paired runs: median {loc.get('gen_ratio_paired_median', float('nan')):.2f}×) | "
            f"{verdict(loc['gen_ratio'] >= TARGETS['local_gen_ratio'])} |")
        add(f"| local peak RSS vs llama.cpp (embedded-model issue) | ≤ 1.5× | "
            f"{sl['process_peak_rss_kb'] / MiB:.0f} vs {lc['process_peak_rss_kb'] / MiB:.0f} MiB = "
            f"{loc['rss_ratio']:.2f}× | {verdict(loc['rss_ratio'] <= TARGETS['local_rss_ratio'])} |")
    if loc and "schema_gen_ratio_paired_median" in loc:
        sc, sl = loc["super_local_schema"]["median"], loc["super_local"]["median"]
        r = loc["schema_gen_ratio_paired_median"]
        add(f"| local generation with / without a JSON Schema (constrained decoding) | ≥ 0.75× | "
            f"{sc['generation_tokens_per_s']:.1f} vs {sl['generation_tokens_per_s']:.1f} tok/s "
            f"(paired runs: median {r:.2f}×) | {verdict(r >= 0.75)} |")
    add("")
    if s and o and f and not pe:
        # Only until the peers are measured here (`scripts/bench.sh peers`), which replaces it.
        zero = next(e for e in o["latencies"] if e["latency_ms"] == 0)
        rows = {r["tasks"]: r for r in zero["rows"]}
        fan = next((r for r in f["rows"] if r["tasks"] == 20 and r["max_parallel"] == 20), None)
        add("Against the peers (their figures from issue 7, measured on this kind of machine):")
        add("")
        add("| | super | SuperOptiX 0.3.16 | CrewAI 1.15 | LangGraph 1.2 |")
        add("| --- | --- | --- | --- | --- |")
        add(f"| start (`--help`, or the framework import) | {s['time']['median_ms']:.1f} ms, "
            f"{s['rss']['median_mib']:.1f} MiB | 2.4 s, 115 MiB | 4.1 s | 2.7 s |")
        add(f"| a 3-task run with an instant model, whole process | {rows[3]['time']['median_ms']:.1f} ms "
            f"| 7–8 s | 5.9 s | about 3 s |")
        add(f"| marginal time per task, 0 ms stub (N=100 vs N=20) | {zero['marginal_overhead_per_task_ms']:.2f} ms "
            f"| 95 ms | 60 ms | 6 ms |")
        add(f"| peak RSS, 100 tasks | {rows[100]['rss']['median_mib']:.1f} MiB | 271 MiB | 196 MiB | 121 MiB |")
        if fan:
            add(f"| fan-out of 20 tasks + 1 at 200 ms, run / ideal | {fan['ratio']:.3f} | no parallel at all "
                f"| 3.9 | 1.22 |")
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
        add("| tasks | validate | µs per added task | growth exponent | dry-run | µs per added task | growth exponent | validate RSS | dry-run RSS |")
        add("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        for r in v["rows"]:
            vv, dd = r["validate"], r["dry_run"]
            add(f"| {r['tasks']:,} | {vv['median_ms']:.1f} ms | {vv.get('us_per_task_since_prev', '–')} "
                f"| {vv.get('exponent_since_prev', '–')} "
                f"| {dd['median_ms']:.1f} ms | {dd.get('us_per_task_since_prev', '–')} "
                f"| {dd.get('exponent_since_prev', '–')} "
                f"| {r['validate_rss']['median_mib']:.1f} MiB | {r['dry_run_rss']['median_mib']:.1f} MiB |")
        add("")
        add("µs per added task: (time(N) − time(previous N)) / (N − previous N). Growth exponent: "
            "log(time ratio) / log(task ratio) between consecutive sizes; 1 is linear, 2 quadratic.")
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
            fl = e.get("stub_floor")
            add(f"Marginal overhead per task at {e['latency_ms']} ms: {e['marginal_overhead_per_task_ms']:.3f} ms"
                + (f"; a minimal keep-alive client (bench/stub_rtt.py) gets {fl['median_ms']:.3f} ms per request "
                   f"from the same stub, so net of the stub floor: {e['marginal_overhead_net_of_stub_ms']:.3f} ms."
                   if fl else "."))
        add("")
    if f:
        add("### Fan-out (N independent tasks + 1 aggregator, 200 ms stub)")
        add("")
        add("| N | max_parallel | wall (median) | ideal | run / ideal | stub max in flight | one request alone | peak RSS |")
        add("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        for r in f["rows"]:
            add(f"| {r['tasks']} | {r['max_parallel']} | {r['time']['median_ms']:.1f} ms | {r['ideal_ms']} ms "
                f"| {r['ratio']:.3f} | {r['stub_max_in_flight']} | {r.get('stub_floor_ms', float('nan')):.1f} ms "
                f"| {r['rss']['median_mib']:.1f} MiB |")
        for r in f["rows"]:
            if "after_rm_rf" in r:
                add("")
                add(f"With `rm -rf` of the previous run's workspace just before each run (instead of moving it "
                    f"aside), {r['tasks']} + 1 at max_parallel {r['max_parallel']} takes "
                    f"{r['after_rm_rf']['time']['median_ms']:.1f} ms: run / ideal {r['after_rm_rf']['ratio']:.3f}.")
        add("")
    if loc:
        add(f"### Embedded model, {loc['threads']} thread, ~{loc['prompt_tokens_target']} prompt tokens, "
            f"{loc['gen_tokens']} generated (greedy, EOS ignored)")
        add("")
        add("| engine | prompt tok/s | generation tok/s | time to first token | load | peak RSS |")
        add("| --- | ---: | ---: | ---: | ---: | ---: |")
        for key, name in (("super_local", "super-local (`crates/super-local/examples/bench.rs`)"), ("llama_cpp", "llama.cpp (`bench/llama_cpp_bench.py`, llama-cpp-python)")):
            if key in loc:
                m = loc[key]["median"]
                extra = ""
                if "rss_after_import_kb" in m:
                    extra = f" ({(m['process_peak_rss_kb'] - m['rss_after_import_kb']) / MiB:.0f} MiB above the bare interpreter)"
                add(f"| {name} | {m['prompt_tokens_per_s']:.1f} | {m['generation_tokens_per_s']:.1f} "
                    f"| {m['time_to_first_token_ms']:.1f} ms | {m.get('load_ms', float('nan')):.0f} ms "
                    f"| {m['process_peak_rss_kb'] / MiB:.0f} MiB{extra} |")
            elif key + "_missing" in loc:
                add(f"| {name} | – | – | – | – | not measured: {loc[key + '_missing']} |")
        add("")
    if sc:
        L += scale.summary_lines(sc)
    if pe:
        L += peers.summary_lines(pe)
    text = "\n".join(L) + "\n"
    path = os.path.join(ctx.results, "summary.md")
    with open(path, "w") as fh:
        fh.write(text)
    print(text)
    if ctx.a.update_doc:
        update_doc(text)


DOC = os.path.join(os.path.dirname(HERE), "BENCHMARKS.md")
BEGIN, END = "<!-- bench:results:begin -->", "<!-- bench:results:end -->"


def update_doc(text):
    """Replace the generated block of BENCHMARKS.md (between the markers) with `text`."""
    with open(DOC) as f:
        doc = f.read()
    if BEGIN not in doc or END not in doc:
        raise SystemExit(f"{DOC}: markers {BEGIN} / {END} not found")
    head, rest = doc.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    with open(DOC + ".tmp", "w") as f:
        f.write(head + BEGIN + "\n" + text + END + tail)
    os.replace(DOC + ".tmp", DOC)
    log("updated", DOC)


FIGURES = {"baseline": fig_baseline, "startup": fig_startup, "validate": fig_validate,
           "overhead": fig_overhead, "fanout": fig_fanout, "local": fig_local,
           "scale": scale.fig_scale, "peers": peers.fig_peers}


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
    ap.add_argument("--scale-sizes", default="100,1000,10000",
                    help="scale: the fan-out sizes (N tasks + 1, max_parallel_tasks 500)")
    ap.add_argument("--peers-python", help="peers: a python with langgraph, langchain-openai and crewai")
    ap.add_argument("--peer-runs", type=int, default=3, help="peers: measured runs per framework and workload")
    ap.add_argument("--peer-warmup", type=int, default=1, help="peers: warm-up rounds before them")
    ap.add_argument("--peer-workloads", help="peers: KIND:TASKS:LATENCY_MS,... (default: the issue's seven)")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--results", default=os.path.join(HERE, "results"))
    ap.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "super-bench"))
    ap.add_argument("--quick", action="store_true", help="fewer runs (smoke test, not for figures)")
    ap.add_argument("--keep-work", action="store_true", help="keep the session folder (project, workspaces)")
    ap.add_argument("--update-doc", action="store_true",
                    help="also write the tables into BENCHMARKS.md (between its bench:results markers)")
    ap.add_argument("--quiet-load", type=float, default=1.5,
                    help="before each figure, wait for the 1-minute load average to drop below this")
    ap.add_argument("--quiet-wait", type=int, default=300, help="... for at most this many seconds")
    a = ap.parse_args()
    # A stop (kill, hang-up) unwinds like Ctrl-C: stubs and measured process groups are ended and
    # the session folder deleted by the finally blocks, so nothing is left running.
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda signum, _frame: sys.exit(128 + signum))
    if a.quick:
        a.quiet_wait = 0
    ctx = Ctx(a)
    figs = list(FIGURES) if "all" in a.figures else [x for x in a.figures if x != "summary"]
    try:
        for fig in figs:
            log(f"== {fig}")
            ctx.load_at_start = wait_quiet(ctx, fig)
            FIGURES[fig](ctx)
    finally:
        if not a.keep_work:
            shutil.rmtree(ctx.session, ignore_errors=True)
    summary(ctx)


if __name__ == "__main__":
    main()
