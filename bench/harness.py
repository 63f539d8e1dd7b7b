#!/usr/bin/env python3
"""What every figure of bench.py (and bench/scale.py, bench/peers.py) shares: the session
context, hyperfine and GNU time wrappers, the llm-stub process, and checks of a finished run."""

import json
import os
import re
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
GOAL = "bench"
MiB = 1024.0


TIME_FORMAT = "%e %U %S %M"  # GNU time: wall s, user s, system s, peak RSS KiB


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
        # A fresh folder per session: the project, and the trash where workspaces are moved
        # between timed runs (deleted when the session ends).
        self.session = os.path.join(self.work, time.strftime("session-%Y%m%d-%H%M%S"))
        self.project = os.path.join(self.session, "project")
        self.trash = os.path.join(self.session, "trash")
        os.makedirs(self.results, exist_ok=True)
        os.makedirs(self.session, exist_ok=True)
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
        data["load_average_at_start"] = getattr(self, "load_at_start", None)
        data["source"] = source_state()
        # What was measured: the binaries' build times (the source state above is read now;
        # with BENCH_NO_BUILD=1 the binaries may be older than the tree).
        data["binaries"] = {os.path.basename(b): time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(os.path.getmtime(b)))
                            for b in (self.super, self.stub, self.a.local_bench) if b and os.path.exists(b)}
        data["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
        data["quick"] = self.quick
        path = os.path.join(self.results, figure + ".json")
        with open(path + ".tmp", "w") as f:
            json.dump(data, f, indent=2)
        os.replace(path + ".tmp", path)
        log("wrote", path)


def source_state():
    """The commit measured and whether the tree had local changes (read-only git calls)."""
    root = os.path.dirname(HERE)
    try:
        head = subprocess.run(["git", "-C", root, "rev-parse", "HEAD"], capture_output=True,
                              text=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", root, "status", "--porcelain", "--", "src", "crates",
                                "Cargo.toml", "Cargo.lock"], capture_output=True, text=True).stdout
        changed = [line[3:] for line in dirty.splitlines() if line.strip()]
        return {"commit": head or None, "src_modified": bool(changed), "modified_paths": changed}
    except OSError:
        return {"commit": None}


def wait_quiet(ctx, label):
    """Wait (up to --quiet-wait seconds) until the 1-minute load average is below --quiet-load:
    the machine is shared, and another job's build or benchmark swamps what is measured."""
    deadline = time.time() + ctx.a.quiet_wait
    warned = False
    while os.getloadavg()[0] > ctx.a.quiet_load and time.time() < deadline:
        if not warned:
            log(f"{label}: load average {os.getloadavg()[0]:.2f} > {ctx.a.quiet_load}; waiting "
                f"up to {ctx.a.quiet_wait} s for a quieter machine")
            warned = True
        time.sleep(10)
    load = os.getloadavg()[0]
    if load > ctx.a.quiet_load:
        log(f"{label}: measuring anyway at load average {load:.2f}")
    return round(load, 2)


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

    def cpu_seconds(self):
        """The stub's own CPU time so far (user + system, from /proc): a run measured with
        GNU time on `super` alone leaves this out, and the figures report it beside."""
        with open(f"/proc/{self.p.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        # Fields 14 and 15 of proc(5) (utime, stime), counted after the command name.
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def __exit__(self, *exc):
        self.p.stdin.close()
        rest = self.p.stdout.read()
        self.p.wait(timeout=10)
        m = re.search(r"requests=(\d+) max_in_flight=(\d+)", rest)
        if m:
            self.requests, self.max_in_flight = int(m.group(1)), int(m.group(2))
        return False


def stub_floor(stub, n):
    """Median round trip of a minimal keep-alive client (bench/stub_rtt.py) to this stub."""
    r = subprocess.run([sys.executable, os.path.join(HERE, "stub_rtt.py"), stub.url, str(n)],
                       capture_output=True, text=True, check=True)
    return json.loads(r.stdout)


def run_cmd(ctx, oid, stub, extra=()):
    return [ctx.super, "--project", ctx.project, "orchestra", "run", oid, "--goal", GOAL, "--quiet",
            "--provider", "openai", "--model", "bench", "--base-url", stub.url + "/v1", *extra]


def workspace(ctx, oid):
    return os.path.join(ctx.project, "orchestra_workspaces", oid)


def stash(ctx, oid):
    """The --prepare command between timed runs: move the last run's workspace aside."""
    return [os.path.join(HERE, "stash.sh"), workspace(ctx, oid), ctx.trash]


def check_run(ctx, oid, stub, n_tasks, extra=()):
    """One untimed run; it must exit 0 and its run.json must show every task succeeded."""
    subprocess.run(stash(ctx, oid), check=True)
    r = subprocess.run(run_cmd(ctx, oid, stub, extra), env=ctx.env, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"run {oid} failed ({r.returncode}):\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}")
    check_manifest(workspace(ctx, oid), n_tasks, f"run {oid}")


def kill_group(p):
    """SIGKILL the process group led by `p` (started with start_new_session) and reap `p`."""
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    p.wait()


class RunFailed(SystemExit):
    """A measured command failed (uncaught, it ends the harness with its message)."""


def timed_run(ctx, cmd, label, env=None, cwd=None, stdout=False, timeout=1800):
    """One run of `cmd` under GNU time (of that process and its children alone): its wall time
    (perf_counter around it, and GNU time's %e), user and system CPU, peak RSS; with
    stdout=True also its standard output."""
    fd, out = tempfile.mkstemp(suffix=".time")
    os.close(fd)
    try:
        t0 = time.perf_counter()
        # Its own process group: if the harness is stopped mid-run, the whole group goes (GNU
        # time does not pass a kill on to the command it waits for).
        p = subprocess.Popen(["/usr/bin/time", "-o", out, "-f", TIME_FORMAT] + cmd, env=env or ctx.env,
                             cwd=cwd, stdout=subprocess.PIPE if stdout else subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True, start_new_session=True)
        try:
            r_out, r_err = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            kill_group(p)
            raise RunFailed(f"{label}: no end after {timeout} s (stopped)")
        except BaseException:
            kill_group(p)
            raise
        wall = time.perf_counter() - t0
        r = subprocess.CompletedProcess(p.args, p.returncode, r_out, r_err)
        with open(out) as f:
            last = f.read().strip().splitlines()[-1]
    finally:
        os.unlink(out)
    if r.returncode != 0:
        raise RunFailed(f"{label} failed ({r.returncode}):\n{r.stderr[-3000:]}")
    e, u, s, m = last.split()
    res = {"wall_ms": round(wall * 1e3, 1), "time_wall_ms": round(float(e) * 1e3, 1),
            "user_s": float(u), "sys_s": float(s), "cpu_s": round(float(u) + float(s), 3),
            "rss_mib": round(int(m) / MiB, 2)}
    if stdout:
        res["stdout"] = r.stdout
    return res


def check_manifest(ws, n_tasks, label):
    """The run.json in workspace `ws` must show `n_tasks` tasks, every one succeeded."""
    with open(os.path.join(ws, "run.json")) as f:
        m = json.load(f)
    tasks = m.get("tasks", {})
    statuses = [t.get("status") for t in (tasks.values() if isinstance(tasks, dict) else tasks)]
    ok = sum(1 for s in statuses if s in ("succeeded", "success", "completed", "done", "ok"))
    if len(statuses) != n_tasks or ok != n_tasks:
        raise SystemExit(f"{label}: expected {n_tasks} finished tasks in run.json, got "
                         f"{ok}/{len(statuses)}: {sorted(set(map(str, statuses)))}")


def load(ctx, fig):
    p = os.path.join(ctx.results, fig + ".json")
    if os.path.exists(p):
        with open(p) as f:
            return json.load(f)
    return None


def verdict(ok):
    return "met" if ok else "**missed**"
