"""The peers figure (issue 20): `super`, LangGraph and CrewAI on the same workloads against the
same llm-stub, run by run interleaved.

Workloads (the orchestras of bench/gen_orchestras.py and their equivalents in bench/peers/):
a sequential chain of 3, 20 and 100 tasks at 0 and 50 ms stub latency (each task's context the
previous output, one output file per task, the goal interpolated) and a fan-out of 20 tasks + 1
aggregator at 200 ms (at most 20 at once). Each run of each framework is one whole process under
GNU time, against a fresh llm-stub of its own, whose request count must be the workload's
number of tasks (reported per run: a framework making extra calls shows there). The frameworks
take turns within each round, the first of the round rotating.

A framework that is not installed, or whose run fails, is reported as such: no figure is
made up for it.
"""

import importlib.util
import json
import os
import re
import shutil
import statistics
import subprocess
import tempfile

from harness import GOAL, HERE, Stub, RunFailed, check_manifest, log, timed_run

PEERS_DIR = os.path.join(HERE, "peers")
FRAMEWORKS = ("super", "langgraph", "crewai")
LABELS = {"super": "super", "langgraph": "LangGraph", "crewai": "CrewAI"}
# (kind, tasks, latency ms): the workloads.
WORKLOADS = [("chain", 3, 0), ("chain", 20, 0), ("chain", 100, 0),
             ("chain", 3, 50), ("chain", 20, 50), ("chain", 100, 50),
             ("fan", 20, 200)]
FAN_PARALLEL = 20


def workloads(ctx):
    """--peer-workloads (KIND:TASKS:LATENCY,...) or the issue's list."""
    if not ctx.a.peer_workloads:
        return WORKLOADS
    out = []
    for item in ctx.a.peer_workloads.split(","):
        kind, n, lat = item.split(":")
        if kind not in ("chain", "fan"):
            raise SystemExit(f"--peer-workloads: unknown kind {kind!r} in {item!r} (chain or fan)")
        out.append((kind, int(n), int(lat)))
    return out


def peer_env(ctx):
    """The peers' environment: the benchmark's, plus every switch that keeps them off the
    network (telemetry, tracing, model price lists), from bench/peers/common.py."""
    spec = importlib.util.spec_from_file_location("peers_common", os.path.join(PEERS_DIR, "common.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    env = dict(ctx.env, **mod.QUIET_ENV)
    env["OPENAI_API_KEY"] = "bench-key"
    for k in ("OPENAI_BASE_URL", "OPENAI_API_BASE", "LANGSMITH_API_KEY", "LANGCHAIN_API_KEY"):
        env.pop(k, None)
    return env


def versions(py, env):
    """Which frameworks import in the peers' python, and their versions; else why not."""
    out = {}
    probe = {"langgraph": ("langgraph", "langchain_openai", ["langgraph", "langchain-openai", "langchain-core", "openai"]),
             "crewai": ("crewai", None, ["crewai", "openai", "litellm"])}
    for fw, (mod, mod2, dists) in probe.items():
        if not py or not os.path.exists(py):
            out[fw] = {"missing": f"no python for the peers ({py})"}
            continue
        code = ("import importlib.metadata as m, json\n"
                f"import {mod}\n" + (f"import {mod2}\n" if mod2 else "") +
                "v = {}\n"
                f"for d in {dists!r}:\n"
                "    try: v[d] = m.version(d)\n"
                "    except m.PackageNotFoundError: pass\n"
                "print(json.dumps(v))\n")
        r = subprocess.run([py, "-c", code], capture_output=True, text=True, env=env)
        if r.returncode != 0:
            out[fw] = {"missing": f"import {mod} failed: {r.stderr.strip().splitlines()[-1:]}"}
        else:
            out[fw] = {"versions": json.loads(r.stdout.strip().splitlines()[-1])}
    return out


def super_cmd(ctx, kind, n, stub, ws):
    oid = f"seq_{n}" if kind == "chain" else f"fan_{n}"
    cmd = [ctx.super, "--project", ctx.project, "orchestra", "run", oid, "--goal", GOAL, "--quiet",
           "--provider", "openai", "--model", "bench", "--base-url", stub.url + "/v1", "--workspace", ws]
    if kind == "fan":
        cmd += ["--max-parallel", str(FAN_PARALLEL)]
    return cmd


def peer_cmd(py, fw, kind, n, stub, out):
    return [py, os.path.join(PEERS_DIR, f"{fw}_bench.py"), kind, str(n), "--base-url", stub.url,
            "--out", out, "--goal", GOAL, "--max-parallel", str(FAN_PARALLEL)]


def expected_calls(kind, n):
    return n if kind == "chain" else n + 1


def network_check(ctx, py, fw, env, work):
    """One untimed chain of 3 under strace: every connect() the peer makes. Anything but the
    stub's loopback port (or a local socket) is a phone-home attempt, reported."""
    if not shutil.which("strace"):
        return {"checked": False, "why": "strace not installed"}
    trace = os.path.join(work, f"strace-{fw}.txt")
    with Stub(ctx, 0) as stub:
        port = stub.url.rsplit(":", 1)[1]
        try:
            r = subprocess.run(["strace", "-f", "-qq", "-e", "trace=connect", "-o", trace]
                               + peer_cmd(py, fw, "chain", 3, stub, os.path.join(work, f"net-{fw}")),
                               env=env, capture_output=True, text=True, timeout=600)
        except subprocess.TimeoutExpired:
            return {"checked": False, "why": "the run under strace did not end in 600 s"}
    if r.returncode != 0:
        return {"checked": False, "why": f"run under strace failed: {r.stderr.strip()[-300:]}"}
    other = []
    with open(trace) as f:
        for line in f:
            if "connect(" not in line or "AF_UNIX" in line or "AF_NETLINK" in line:
                continue
            m = re.search(r'sin6?_port=htons\((\d+)\).*?(?:inet_addr\("([^"]+)"\)|inet_pton\(AF_INET6, "([^"]+)")', line)
            if not m:
                other.append(line.strip()[-160:])
                continue
            p, addr = m.group(1), m.group(2) or m.group(3)
            if p == port and addr in ("127.0.0.1", "::1", "::ffff:127.0.0.1"):
                continue
            other.append(f"{addr}:{p}")
    return {"checked": True, "other_connections": sorted(set(other))}


def fig_peers(ctx):
    ctx.generate()
    py = ctx.a.peers_python
    env = peer_env(ctx)
    avail = versions(py, env)
    for fw, v in avail.items():
        log(f"{fw}: {v.get('versions') or v.get('missing')}")
    work = tempfile.mkdtemp(prefix="peers-", dir=ctx.session)
    net = {}
    for fw, v in avail.items():
        if "versions" in v:
            net[fw] = network_check(ctx, py, fw, env, work)
            log(f"{fw} network check: {net[fw]}")
    runs, warm = (1, 0) if ctx.quick else (ctx.a.peer_runs, ctx.a.peer_warmup)
    out = {"workloads": [], "frameworks": avail, "network_check": net, "runs": runs, "warmup": warm,
           "peers_python": py}
    todo = workloads(ctx)
    for wi, (kind, n, lat) in enumerate(todo):
        entry = {"kind": kind, "tasks": n, "latency_ms": lat, "expected_calls": expected_calls(kind, n),
                 "results": {}}
        got = {fw: [] for fw in FRAMEWORKS}
        failed = {fw: avail[fw]["missing"] for fw in avail if "missing" in avail[fw]}
        for i in range(warm + runs):
            # Rotate who goes first, so no framework always runs right after the same other.
            order = FRAMEWORKS[i % 3:] + FRAMEWORKS[:i % 3]
            for fw in order:
                if fw in failed:
                    continue
                dest = os.path.join(work, f"{kind}{n}-{lat}ms-{fw}-run{i}")
                with Stub(ctx, lat) as stub:
                    try:
                        if fw == "super":
                            res = timed_run(ctx, super_cmd(ctx, kind, n, stub, dest), f"super {kind} {n}")
                        else:
                            res = timed_run(ctx, peer_cmd(py, fw, kind, n, stub, dest), f"{fw} {kind} {n}",
                                            env=env, stdout=True)
                    except RunFailed as e:
                        failed[fw] = f"run failed: {str(e)[-600:]}"
                        log(f"{fw} {kind} {n} @ {lat} ms: {failed[fw]}")
                        continue
                if fw == "super":
                    check_manifest(dest, expected_calls(kind, n), f"super {kind} {n}")
                else:
                    line = res.pop("stdout").strip().splitlines()[-1]
                    rep = json.loads(line)
                    res.update({"import_s": rep["import_s"], "run_s": rep["run_s"],
                                "self_reported_calls": rep.get("calls")})
                res["requests"] = stub.requests
                res["load_1min"] = round(os.getloadavg()[0], 2)
                shutil.rmtree(dest, ignore_errors=True)
                log(f"{kind} {n} @ {lat} ms, {fw} run {i + 1}/{warm + runs}: {res['wall_ms']:.0f} ms, "
                    f"cpu {res['cpu_s']:.2f} s, {res['rss_mib']:.0f} MiB, {res['requests']} requests, "
                    f"load {res['load_1min']}")
                if i >= warm:
                    got[fw].append(res)
        for fw in FRAMEWORKS:
            if fw in failed or not got[fw]:
                entry["results"][fw] = {"not_measured": failed.get(fw, "no run")}
                continue
            rs = got[fw]
            med = {k: round(statistics.median(r[k] for r in rs), 3)
                   for k in ("wall_ms", "user_s", "sys_s", "cpu_s", "rss_mib", "load_1min")}
            for k in ("import_s", "run_s"):
                if k in rs[0]:
                    med[k] = round(statistics.median(r[k] for r in rs), 3)
            reqs = sorted({r["requests"] for r in rs})
            med["requests_per_run"] = reqs
            med["calls_match"] = reqs == [entry["expected_calls"]]
            entry["results"][fw] = {"median": med, "runs": rs}
        sup = entry["results"]["super"].get("median")
        for fw in FRAMEWORKS[1:]:
            m = entry["results"][fw].get("median")
            if sup and m:
                m["ratio"] = {k: round(m[k] / sup[k], 1) if sup[k] else None
                              for k in ("wall_ms", "cpu_s", "rss_mib")}
        out["workloads"].append(entry)
        log(f"workload {wi + 1}/{len(todo)} done: {kind} {n} @ {lat} ms")
    ctx.save("peers", out)


# ---------------------------------------------------------------- summary

def _fmt_wall(ms):
    return f"{ms:.0f} ms" if ms < 10000 else f"{ms / 1e3:.1f} s"


def summary_lines(d):
    L = []
    add = L.append
    add("### The peers: the same workloads against the same stub (issue 20)")
    add("")
    vers = []
    for fw in ("langgraph", "crewai"):
        v = d["frameworks"].get(fw, {})
        if "versions" in v:
            vers.append(f"{LABELS[fw]}: " + ", ".join(f"{k} {x}" for k, x in v["versions"].items()))
        else:
            vers.append(f"{LABELS[fw]}: not installed ({v.get('missing')})")
    src = d.get("source", {})
    changed = " (with local changes to src/)" if src.get("src_modified") else ""
    add(f"`super` at commit {str(src.get('commit'))[:10]}{changed}; " + "; ".join(vers) + ". "
        f"Recorded {d.get('recorded_at')}; load average {d.get('load_average_at_start')} (1 min) at the "
        f"start, {d.get('load_average_at_end')} (1, 5, 15 min) at the end. "
        + (f"Medians of {d['runs']} interleaved rounds" if d["runs"] > 1 else "One interleaved round (no median)")
        + f" after {d['warmup']} warm-up round{'s' if d['warmup'] != 1 else ''}; each run a whole process "
        "(interpreter and imports included) under GNU time, against a stub of its own.")
    add("")
    add("| workload | stub | framework | wall | CPU user + sys | peak RSS | stub requests per run "
        "| wall / super | CPU / super | RSS / super | load (1 min) |")
    add("| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for e in d["workloads"]:
        name = f"chain of {e['tasks']}" if e["kind"] == "chain" else f"fan-out {e['tasks']} + 1"
        for fw in FRAMEWORKS:
            r = e["results"].get(fw, {})
            m = r.get("median")
            if not m:
                why = str(r.get("not_measured", "not run")).splitlines()[0][:140].replace("|", "/")
                add(f"| {name} | {e['latency_ms']} ms | {LABELS[fw]} | – | – | – | – | – | – | – | not measured: {why} |")
                continue
            reqs = "/".join(str(x) for x in m["requests_per_run"])
            if not m["calls_match"]:
                reqs += f" (**expected {e['expected_calls']}**)"
            ratio = m.get("ratio", {})
            rr = [f"{ratio[k]:g}×" if ratio.get(k) is not None else "–" for k in ("wall_ms", "cpu_s", "rss_mib")] \
                if fw != "super" else ["1", "1", "1"]
            add(f"| {name} | {e['latency_ms']} ms | {LABELS[fw]} | {_fmt_wall(m['wall_ms'])} "
                f"| {m['cpu_s']:.2f} s | {m['rss_mib']:.0f} MiB | {reqs} | {rr[0]} | {rr[1]} | {rr[2]} "
                f"| {m['load_1min']} |")
    add("")
    rows = []
    for e in d["workloads"]:
        for fw in FRAMEWORKS[1:]:
            m = e["results"].get(fw, {}).get("median")
            if m and "import_s" in m:
                rows.append(f"{LABELS[fw]} {e['kind']} {e['tasks']} @ {e['latency_ms']} ms: import "
                            f"{m['import_s']:.2f} s, run {m['run_s']:.2f} s")
    if rows:
        add("Inside the peer processes (their own clocks): " + "; ".join(rows) + ".")
        add("")
    net = d.get("network_check", {})
    if net:
        parts = []
        for fw, c in net.items():
            if not c.get("checked"):
                parts.append(f"{LABELS[fw]}: not checked ({c.get('why')})")
            elif c["other_connections"]:
                parts.append(f"{LABELS[fw]}: **connected elsewhere**: {', '.join(c['other_connections'])}")
            else:
                parts.append(f"{LABELS[fw]}: only the stub")
        add("Network (`strace -f -e trace=connect` on one 3-task chain): " + "; ".join(parts) + ".")
        add("")
    return L
